"""Microsoft 365 across separate CLI runs: MSAL's token cache and tenant discovery are kept,
sealed in the calendar's secret, so a no-change ``calbridge sync`` in a new process makes at
most 2 requests (without them: discovery + token + delta = 3 in every run). Real processes,
real MSAL, the Graph emulator over https."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from calbridge.config import Settings
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_graph_calendar
from calbridge_cli import make_cli
from calbridge_emulators.graph.testing import GraphEmulatorHandle
from worlds import example_store

MAILBOX = "bookings@harbour.example"  # the session emulator's mailbox (conftest)


def test_a_no_change_sync_in_a_new_process_makes_at_most_two_requests(
    graph: GraphEmulatorHandle, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    box = SecretBox.from_settings(Settings(data_dir=data_dir))  # the CLI's key file
    calendar = graph.add_calendar(MAILBOX, "across-runs")
    graph.external_create(
        MAILBOX,
        {
            "subject": "Harbour lunch",
            "start": {"dateTime": "2027-03-01T12:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-01T13:00:00", "timeZone": "UTC"},
        },
        calendar.id,
    )
    with example_store(tmp_path) as store:
        with store.session() as session:
            add_graph_calendar(
                session,
                box,
                "front",
                MAILBOX,
                calendar_id=calendar.id,
                **graph.link_options(),
                horizon_days=3650,
                check=False,
            )
        url = str(store.engine.url.render_as_string(hide_password=False))
        cli = make_cli(data_dir, url)

        runs = []
        for _ in range(3):
            done = cli("sync", "--json")
            assert done.code == 0, done.err
            [report] = json.loads(done.out)
            assert report["ok"], report["error"]
            runs.append(report)

        with store.session() as session:
            sealed = session.scalars(select(Calendar.secret)).one()
        assert sealed is not None
    assert runs[0]["created"] == 1
    assert runs[0]["requests"] == 3  # first run ever: discovery + token + delta
    assert [r["requests"] for r in runs[1:]] == [1, 1]  # cached discovery and token: delta only
    assert all(r["created"] == 0 and r["updated"] == 0 for r in runs[1:])
    kept = box.open(sealed, "front")["msal"]
    assert kept["http"]["responses"] and "AccessToken" in kept["tokens"]  # what MSAL keeps
    assert "AccessToken" not in sealed  # sealed, never in the clear
