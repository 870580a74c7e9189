"""Benchmark: two-way sync of a large Exchange Server calendar through the EWS emulator.

The emulator runs in a child process (HTTP, Basic sign-in, a service account impersonating
the mailbox) holding N items (default 5,000); this process is calbridge alone, so its peak RSS
is calbridge's. Phases:
  1. initial import (calendar -> booking system),
  2. a no-change re-sync (one SyncFolderItems request),
  3. 1 % changed on both sides (renamed "in Outlook" — exchangelib as a second EWS client —
     and in the booking system),
  4. 1,000 new bookings pushed (the calendar's owner manages them),
  5. the re-sync that reads those creates back (their echoes must change nothing).
Printed per phase: seconds, HTTP requests made by calbridge, the EWS operations the emulator
served, and peak RSS.

    python benchmarks/sync_ews.py             # N = 5000
    python benchmarks/sync_ews.py --n 1000    # quicker
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

MAILBOX = "bookings@harbour.example"
SERVICE = ("svc-calbridge", "bench-password")
OUTLOOK = ("bookings", "outlook-password")
ORGANIZERS = [
    "mia@harbour.example",
    "ann@acme-events.example",
    "tom@harbour.example",
    "raj.patel@mail.example",
    "someone@stranger.example",
]
ZONES = ["W. Europe Standard Time", "GMT Standard Time", "Eastern Standard Time"]


def when(i: int) -> datetime:
    return datetime(2026, 12, 7, 8, tzinfo=UTC) + timedelta(days=i // 17, minutes=(i % 17) * 40)


def serve_emulator(n: int) -> None:
    """Child process: an emulator with one mailbox of ``n`` items; prints its URL as one JSON
    line, then serves until stdin closes."""
    from calbridge_emulators.ews.server import running_emulator
    from calbridge_emulators.ews.store import Organizer

    with running_emulator() as server:
        org = server.org
        org.add_mailbox(MAILBOX, "Harbour Bookings")
        org.add_account(*SERVICE, impersonates=(MAILBOX,))
        org.add_account(*OUTLOOK, mailbox=MAILBOX)
        for i in range(n):
            start = when(i)
            address = ORGANIZERS[i % len(ORGANIZERS)]
            org.external_create(
                MAILBOX,
                f"Booking {i}",
                start,
                start + timedelta(minutes=30),
                ZONES[i % len(ZONES)],
                organizer=Organizer(address, address),
                location=f"Room {i % 12}",
            )
        print(json.dumps({"url": server.ews_url, "base": server.base_url}), flush=True)
        sys.stdin.read()


class Outlook:
    """Edits "in Outlook": exchangelib signed in as the mailbox's own account."""

    def __init__(self, url: str) -> None:
        from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials

        config = Configuration(
            service_endpoint=url, credentials=Credentials(*OUTLOOK), auth_type=BASIC
        )
        self.account = Account(MAILBOX, config=config, autodiscover=False, access_type=DELEGATE)

    def rename(self, count: int, stride: int) -> None:
        from exchangelib.folders import Calendar, Root
        from exchangelib.properties import DistinguishedFolderId, Mailbox

        mailbox = Mailbox(email_address=MAILBOX)
        root = Root(
            account=self.account,
            _distinguished_id=DistinguishedFolderId(id="root", mailbox=mailbox),
        )
        calendar = Calendar(
            root=root, _distinguished_id=DistinguishedFolderId(id="calendar", mailbox=mailbox)
        )
        items = list(calendar.all().only("subject"))[::stride][:count]
        for item in items:
            item.subject = "Renamed in Outlook"
        self.account.bulk_update([(item, ["subject"]) for item in items])


def bench(n: int, root: Path, info: dict[str, str]) -> dict[str, dict[str, Any]]:
    from sqlalchemy import select

    from calbridge.demo import __file__ as demo_file
    from calbridge.domain.event import make_times
    from calbridge.store.db import open_store
    from calbridge.store.directory import import_directory
    from calbridge.store.events import ManualAssignment, create_event, update_event
    from calbridge.store.models import Event
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.calendars import add_ews_calendar
    from calbridge.sync.engine import sync_calendar
    from calbridge.sync.providers import open_provider

    store = open_store(f"sqlite:///{root / 'calbridge.db'}")
    box = SecretBox(SecretBox.generate_key())
    with store.session() as session:
        import_directory(session, (Path(demo_file).parent / "directory.json").read_text())
        cal_id = add_ews_calendar(
            session,
            box,
            "bookings",
            MAILBOX,
            username=SERVICE[0],
            password=SERVICE[1],
            server=info["url"],
            auth="basic",
            impersonate=True,
            owner="u-tom",
        ).id
    control = httpx.Client(base_url=info["base"], timeout=60)
    phases: dict[str, dict[str, Any]] = {}

    def run(phase: str) -> None:
        control.post("/_emulator/calls")
        started = time.perf_counter()
        report = sync_calendar(store, cal_id, lambda c: open_provider(c, box))
        seconds = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"{phase}: {report.error}")
        seen = control.get("/_emulator/calls").json()["operations"]
        phases[phase] = {
            "seconds": round(seconds, 2),
            "requests": report.requests,
            "EWS operations": ", ".join(f"{k} {v}" for k, v in sorted(seen.items())),
            "pulled": report.pulled,
            "created/updated": f"{report.created}/{report.updated}",
            "pushed c/u/d": f"{report.pushed_created}/{report.pushed_updated}/"
            f"{report.pushed_deleted}",
            "peak RSS MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

    run("initial import")
    run("no-change re-sync")
    share = max(1, n // 100)
    Outlook(info["url"]).rename(share, 100)
    with store.session() as session:
        ids = list(session.scalars(select(Event.id).order_by(Event.id)))[50::100][:share]
        for event_id in ids:
            event = session.get(Event, event_id)
            assert event is not None
            update_event(session, event, {"notes": "changed in the booking system"})
    run("1% changed both ways")
    with store.session() as session:
        for i in range(1000):
            start = when(i).replace(tzinfo=None) + timedelta(minutes=20)
            create_event(
                session,
                name=f"New booking {i}",
                times=make_times(
                    start, start + timedelta(hours=1), all_day=False, timezone="Europe/London"
                ),
                manual=ManualAssignment("co-acme", "ct-ann", "u-tom", "u-tom"),
            )
    run("1,000 new bookings pushed")
    run("re-sync reading them back")
    store.dispose()
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if args.serve is not None:
        serve_emulator(args.serve)
        return
    emulator = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        info = json.loads(emulator.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="cb-bench-ews-") as root:
            phases = bench(args.n, Path(root), info)
    finally:
        if emulator.stdin is not None:
            emulator.stdin.close()
        emulator.wait(timeout=60)
    if args.json:
        print(json.dumps({"n": args.n, "phases": phases}, indent=2))
        return
    table = Table(title=f"calbridge ⇄ Exchange (EWS emulator), {args.n:,} items")
    columns = list(next(iter(phases.values())))
    table.add_column("phase")
    for column in columns:
        table.add_column(column, justify="right" if column != "EWS operations" else "left")
    for phase, figures in phases.items():
        table.add_row(phase, *(str(figures[c]) for c in columns))
    Console(width=170).print(table)


if __name__ == "__main__":
    main()
