"""Benchmark: two-way sync of a 5,000-event Google calendar on the emulator (real HTTP, real
google-api-python-client), phase by phase:

  1. initial import (calendar → booking system): pulls in pages (≈ N / page size + 1 requests),
  2. a no-change re-sync (≤ 2 requests: a token and one events.list),
  3. 1 % changed on the calendar and another 1 % changed in the booking system, one sync,
  4. 1,000 new bookings pushed: writes go in HTTP batches (≈ writes / 50 requests),
  5. the echo of those 1,000 creates: a no-change re-sync again.

Before the import it times the lower bound: the same ``events.list`` pages fetched with plain
HTTP (bytes and the page token only, no parsing, no database), and prints the import's ratio to
it. Prints seconds, HTTP requests made by calbridge (token requests and batch envelopes included;
calls inside a batch are not requests), the emulator's own count as a cross-check, and peak
RSS. The emulator runs in this process (it must, for fast seeding), so RSS includes it; the
RSS before the import — emulator with the events loaded — is printed as the baseline.

    python benchmarks/sync_google.py                  # N = 5000, page size 1000
    python benchmarks/sync_google.py --events 20000 --page-size 2500 --json
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

VENUE = "bookings@harbour.example"  # Mia's second address: the venue calendar's owner
CREATORS = [
    "mia@harbour.example",
    "ann@acme-events.example",
    "tom@harbour.example",
    "raj.patel@mail.example",
    "someone@stranger.example",
]
START = datetime(2027, 1, 4, 8)


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def event_body(i: int, summary: str | None = None) -> dict[str, Any]:
    start = START + timedelta(days=i // 8, hours=i % 8)
    end = start + timedelta(hours=1)
    return {
        "summary": summary or f"Booking {i}",
        "location": f"Room {i % 12}",
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/London"},
        "end": {"dateTime": end.isoformat(), "timeZone": "Europe/London"},
    }


def list_lower_bound(gcal: Any, calendar_id: str, page_size: int) -> dict[str, Any]:
    """The emulator's own listing time: every ``events.list`` page of a full sync (same
    parameters as the provider), over HTTP, bytes only."""
    from urllib.parse import quote

    import httpx
    from google.auth.transport.requests import Request

    credentials = gcal.service_account_credentials(subject=VENUE)
    credentials.refresh(Request())
    url = f"{gcal.api_endpoint}calendars/{quote(calendar_id)}/events"
    params = {"showDeleted": "true", "singleEvents": "false", "maxResults": str(page_size)}
    started = time.perf_counter()
    pages, size = 0, 0
    with httpx.Client(headers={"Authorization": f"Bearer {credentials.token}"}) as client:
        while True:
            response = client.get(url, params=params)
            response.raise_for_status()
            pages, size = pages + 1, size + len(response.content)
            token = json.loads(response.content).get("nextPageToken")
            if not token:
                break
            params["pageToken"] = token
    return {"seconds": round(time.perf_counter() - started, 3), "requests": pages, "mb": size / 1e6}


def run_benchmark(n: int, page_size: int, pushed: int) -> dict[str, Any]:
    from sqlalchemy import select

    from calbridge.demo import __file__ as demo_file
    from calbridge.domain.event import make_times
    from calbridge.store.db import open_store
    from calbridge.store.directory import import_directory
    from calbridge.store.events import ManualAssignment, create_event, update_event
    from calbridge.store.models import Event
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.calendars import add_google_calendar
    from calbridge.sync.engine import sync_calendar
    from calbridge.sync.providers import open_provider
    from calbridge_emulators.google.events import update_event as update_on_calendar
    from calbridge_emulators.google.testing import running_emulator

    phases: dict[str, dict[str, Any]] = {}
    with running_emulator() as gcal, tempfile.TemporaryDirectory(prefix="cb-gbench-") as root:
        calendar_id = gcal.add_user(VENUE, time_zone="Europe/London")
        ids: list[str] = []
        for start in range(0, n, 1000):
            chunk = range(start, min(n, start + 1000))
            for i in chunk:  # each event created by its booker, as on a shared venue calendar
                ids += gcal.seed_events(
                    calendar_id, [event_body(i)], principal=CREATORS[i % len(CREATORS)]
                )
        store = open_store(f"sqlite:///{Path(root) / 'calbridge.db'}")
        box = SecretBox(SecretBox.generate_key())
        with store.session() as session:
            import_directory(session, (Path(demo_file).parent / "directory.json").read_text())
            cal_id = add_google_calendar(
                session,
                box,
                "venue",
                calendar_id,
                service_account_info=gcal.service_account_info(),
                subject=VENUE,
                api_base=gcal.base_url,
                owner="u-tom",
                page_size=page_size,
            ).id
        baseline = rss_mb()

        def run(phase: str, expected: str) -> None:
            gcal.emulator.reset_counters()
            started = time.perf_counter()
            report = sync_calendar(store, cal_id, lambda c: open_provider(c, box))
            if not report.ok:
                raise SystemExit(f"{phase}: {report.error}")
            counts = gcal.request_counts()
            phases[phase] = {
                "seconds": round(time.perf_counter() - started, 3),
                "requests": report.requests,
                "expected": expected,
                "emulator_http": counts["http_requests"],
                "batch_calls": counts["batch_inner_calls"],
                "pulled": report.created + report.updated,
                "pushed": report.pushed_created + report.pushed_updated,
                "peak_rss_mb": rss_mb(),
            }

        pages = math.ceil(n / page_size)
        bound = list_lower_bound(gcal, calendar_id, page_size)
        phases["lower bound: events.list pages"] = {
            "seconds": bound["seconds"],
            "requests": bound["requests"],
            "expected": f"{bound['mb']:.1f} MB",
            "emulator_http": bound["requests"],
            "batch_calls": 0,
            "pulled": 0,
            "pushed": 0,
            "peak_rss_mb": rss_mb(),
        }
        run("initial import", f"{pages} pages + 1 token = {pages + 1}")
        ratio = phases["initial import"]["seconds"] / max(bound["seconds"], 1e-6)
        phases["initial import"]["expected"] += f"; {ratio:.1f}x the lower bound"
        run("no-change re-sync", "≤ 2")
        changed = max(1, n // 100)
        emulator = gcal.emulator
        with emulator.store.lock:
            calendar = emulator.calendar(calendar_id)
            for i in range(0, n, n // changed):
                update_on_calendar(
                    emulator.store,
                    calendar,
                    VENUE,
                    ids[i],
                    {"summary": f"Booking {i} (moved)"},
                    patch=True,
                    if_match=None,
                )
        with store.session() as session:
            rows = list(session.scalars(select(Event.id).order_by(Event.id)))
            for event_id in rows[n // changed // 2 :: n // changed][:changed]:
                event = session.get(Event, event_id)
                assert event is not None
                update_event(session, event, {"notes": "changed in the booking system"})
        writes = math.ceil(changed / 50)
        run("1% changed both ways", f"1 token + 1 list + {writes} batch = {2 + writes}")
        with store.session() as session:
            for i in range(pushed):
                start = START + timedelta(days=400 + i // 8, hours=i % 8)
                create_event(
                    session,
                    name=f"New booking {i}",
                    times=make_times(
                        start, start + timedelta(hours=2), all_day=False, timezone="Europe/Berlin"
                    ),
                    manual=ManualAssignment("co-acme", "ct-ann", "u-tom", "u-tom"),
                )
        batches = math.ceil(pushed / 50)
        run(f"{pushed:,} new bookings pushed", f"2 + {batches} batches = {2 + batches}")
        run("echo of the pushed bookings", "≤ 2")
        store.dispose()
    return {"events": n, "page_size": page_size, "baseline_rss_mb": baseline, "phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--push", type=int, default=1000, help="new bookings pushed")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    result = run_benchmark(args.events, args.page_size, args.push)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    title = (
        f"calbridge ⇄ Google Calendar emulator: {result['events']:,} events, page size "
        f"{result['page_size']}, RSS before import {result['baseline_rss_mb']} MB"
    )
    table = Table(title=title)
    columns = ("phase", "seconds", "requests", "expected", "emulator HTTP", "batched calls")
    for column in (*columns, "pulled", "pushed", "peak RSS MB"):
        table.add_column(column)
    for phase, f in result["phases"].items():
        table.add_row(
            phase,
            str(f["seconds"]),
            str(f["requests"]),
            f["expected"],
            str(f["emulator_http"]),
            str(f["batch_calls"]),
            str(f["pulled"]),
            str(f["pushed"]),
            str(f["peak_rss_mb"]),
        )
    Console(width=max(Console().width, 150)).print(table)


if __name__ == "__main__":
    main()
