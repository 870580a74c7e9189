"""Benchmark: SQL statements per pushed appointment and per listed booking, with rooms.

Counts every statement calbridge sends to the database (an SQLAlchemy ``before_cursor_execute``
listener on all engines; an executemany is one statement) for:

1. **push**: N bookings, each holding two rooms at the same times (one appointment inviting
   both rooms as resources), pushed to a Google calendar on the emulator (real HTTP, real
   google-api-python-client) — statements per pushed appointment;
2. **listing** N bookings with their booked locations: ``calbridge events list --json`` (in
   process), ``GET /api/bookings?limit=…`` (pages of 200, every page read) and the admin UI's
   ``/bookings`` page (its first page of 50).

at N = 10 and N = 1,000, on SQLite. A count that grows with N in the listing is an N+1; the
push writes each appointment, so its count per appointment should stay flat. Prints the counts
(and seconds, for orientation: timings are never asserted anywhere).

    python benchmarks/rooms_queries.py                 # N = 10 and 1000
    python benchmarks/rooms_queries.py --sizes 10 200 --json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import event
from sqlalchemy.engine import Engine

REPO = Path(__file__).resolve().parents[1]
DIRECTORY = REPO / "docs" / "examples" / "directory.json"
VENUE = "bookings@harbour.example"
ROOMS = (
    ("ballroom@harbour.example", "Ballroom", 300),
    ("garden-room@harbour.example", "Garden Room", 60),
)


class Statements:
    """Counts the statements sent to any engine while ``counting``."""

    def __init__(self) -> None:
        self.count = 0
        self.on = False
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any, **kwargs: Any) -> None:
        if self.on:
            self.count += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[dict[str, Any]]:
        out: dict[str, Any] = {}
        self.count, self.on = 0, True
        started = time.perf_counter()
        try:
            yield out
        finally:
            self.on = False
            out["statements"] = self.count
            out["seconds"] = round(time.perf_counter() - started, 3)


def seed(store: Any, n: int) -> list[int]:
    """N bookings of Acme, each holding the Ballroom and the Garden Room at its own hour."""
    from calbridge.domain.event import make_times
    from calbridge.ops.bookings import book_location
    from calbridge.store.booked import PlaceRequest
    from calbridge.store.events import ManualAssignment, create_event

    ids = []
    start = datetime(2027, 9, 1, 8)
    with store.session() as s:
        for i in range(n):
            at = start + timedelta(days=i // 8, hours=i % 8)
            times = make_times(at, at + timedelta(hours=1), all_day=False, timezone="UTC")
            made = create_event(
                s, name=f"Booking {i}", times=times, location="loc-ballroom",
                manual=ManualAssignment("co-acme", "ct-ann", "u-tom", "u-tom"),
            )  # fmt: skip
            book_location(s, made.id, PlaceRequest("loc-garden", None), actor="bench")
            ids.append(made.id)
    return ids


def run_case(n: int, stats: Statements, root: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from calbridge.service.app import create_app
    from calbridge.service.tokens import create_token
    from calbridge.store.db import open_store
    from calbridge.store.directory import import_directory
    from calbridge.store.models import Event
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.assistant import AssistantChange, apply_assistant
    from calbridge.sync.calendars import add_google_calendar, link_event
    from calbridge.sync.engine import sync_calendar
    from calbridge.sync.providers import open_provider
    from calbridge.web.auth import create_admin
    from calbridge_emulators.google.testing import running_emulator

    url = f"sqlite:///{root / 'calbridge.db'}"
    store = open_store(url)
    box = SecretBox(SecretBox.generate_key())
    with store.session() as s:
        import_directory(s, DIRECTORY.read_text(encoding="utf-8"))
    ids = seed(store, n)
    out: dict[str, Any] = {"n": n}
    with running_emulator() as gcal:
        calendar_id = gcal.add_user(VENUE, time_zone="UTC")
        for address, name, capacity in ROOMS:
            gcal.add_room(address, name, capacity)
        with store.session() as s:
            calendar = add_google_calendar(
                s, box, "venue", calendar_id, service_account_info=gcal.service_account_info(),
                subject=VENUE, api_base=gcal.base_url,
            )  # fmt: skip
            apply_assistant(s, calendar, AssistantChange(rooms_as_resources=True))
            for event_id in ids:
                found = s.get(Event, event_id)
                assert found is not None
                link_event(s, found, calendar)
            cal_id = calendar.id
        with stats.counting() as push:
            report = sync_calendar(store, cal_id, lambda c: open_provider(c, box))
        assert report.ok, report.error
        push["appointments"] = report.pushed_created
        push["per_appointment"] = round(push["statements"] / max(1, report.pushed_created), 2)
        out["push"] = push
    env = {"CALBRIDGE_DATA_DIR": str(root / "data"), "CALBRIDGE_DATABASE_URL": url}
    from calbridge.cli.main import main

    with (
        mock.patch.dict(os.environ, env),
        mock.patch.object(sys, "argv", ["calbridge", "events", "list", "--json"]),
        contextlib.redirect_stdout(io.StringIO()) as printed,
        stats.counting() as cli,
        contextlib.suppress(SystemExit),
    ):
        main()
    assert len(json.loads(printed.getvalue())) == n
    out["cli_events_list"] = cli
    with store.session() as s:
        _, token = create_token(s, "bench", actor="bench")
        create_admin(s, "admin@venue.example", "a-long-enough-password")
    with (
        mock.patch.dict(os.environ, {"CALBRIDGE_DATA_DIR": str(root / "data")}),
        TestClient(create_app(store)) as client,
    ):
        headers = {"Authorization": f"Bearer {token}"}
        listed = 0
        with stats.counting() as api:
            cursor: str | None = None
            while True:
                params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
                page = client.get("/api/bookings", params=params, headers=headers).json()
                listed += len(page["items"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        assert listed == n, listed
        out["api_bookings"] = api
        login = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert csrf is not None
        client.post(
            "/login",
            data={
                "email": "admin@venue.example",
                "password": "a-long-enough-password",
                "csrf_token": csrf[1],
            },
        )
        with stats.counting() as ui:
            page = client.get("/bookings")
        assert page.status_code == 200
        out["ui_bookings_page"] = ui
    store.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    stats = Statements()
    results = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="cb-roomsq-") as root:
            results.append(run_case(n, stats, Path(root)))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'N':>6} {'what':<22} {'statements':>10} {'per item':>9} {'seconds':>8}")
    for r in results:
        n = r["n"]
        rows = [
            ("push (appointments)", r["push"], r["push"]["appointments"]),
            ("cli events list", r["cli_events_list"], n),
            ("api /api/bookings", r["api_bookings"], n),
            ("ui /bookings (50)", r["ui_bookings_page"], min(n, 50)),
        ]
        for what, data, items in rows:
            per = round(data["statements"] / max(1, items), 2)
            print(f"{n:>6} {what:<22} {data['statements']:>10} {per:>9} {data['seconds']:>8}")


if __name__ == "__main__":
    main()
