"""``/metrics`` sync figures come from the store: every process's runs, in one scrape."""

from __future__ import annotations

import re
from pathlib import Path

from calbridge.service.metrics import ServiceMetrics, count_sync
from worlds import example_store


def _value(scraped: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", scraped, re.MULTILINE)
    assert found, f"{sample} missing from:\n{scraped}"
    return float(found.group(1))


def test_runs_counted_by_other_processes_show_in_a_scrape_with_their_durations(
    tmp_path: Path,
) -> None:
    with example_store(tmp_path) as store:
        # three "workers" finishing runs, each in its own transaction
        for kind, result, seconds in [
            ("caldav", "ok", 0.2),
            ("caldav", "ok", 3.0),
            ("caldav", "error", 0.04),
            ("graph", "ok", 400.0),
            ("caldav", "ok", 0.2),
        ]:
            with store.session() as session:
                count_sync(session, kind, result, seconds)
        web = ServiceMetrics()  # the web process: it ran none of them
        web.watch_store(store, lambda: None)
        scraped = web.render().decode()

    assert _value(scraped, 'calbridge_syncs_total{kind="caldav",result="ok"}') == 3
    assert _value(scraped, 'calbridge_syncs_total{kind="caldav",result="error"}') == 1
    assert _value(scraped, 'calbridge_syncs_total{kind="graph",result="ok"}') == 1
    bucket = 'calbridge_sync_duration_seconds_bucket{kind="caldav",le="%s"}'
    assert _value(scraped, bucket % "0.05") == 1
    assert _value(scraped, bucket % "0.25") == 3
    assert _value(scraped, bucket % "2.5") == 3
    assert _value(scraped, bucket % "5.0") == 4
    assert _value(scraped, bucket % "+Inf") == 4
    assert _value(scraped, 'calbridge_sync_duration_seconds_count{kind="caldav"}') == 4
    assert abs(_value(scraped, 'calbridge_sync_duration_seconds_sum{kind="caldav"}') - 3.44) < 1e-9
    graph_inf = 'calbridge_sync_duration_seconds_bucket{kind="graph",le="300.0"}'
    assert _value(scraped, graph_inf) == 0  # 400 s is beyond the last bound: only +Inf
