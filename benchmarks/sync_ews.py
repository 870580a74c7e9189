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
import sys
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
from mailbox_bench import (
    MAILBOX,
    ORGANIZERS,
    ZONES,
    Bench,
    Phases,
    print_phases,
    when,
    with_emulator_child,
)

SERVICE = ("svc-calbridge", "bench-password")
OUTLOOK = ("bookings", "outlook-password")


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
            start = when(i).replace(tzinfo=UTC)
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


def bench(n: int, root: Path, info: dict[str, str]) -> Phases:
    from calbridge.sync.calendars import add_ews_calendar

    def add(session: Any, box: Any) -> Any:
        return add_ews_calendar(
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
        )

    bench = Bench(root, add)
    control = httpx.Client(base_url=info["base"], timeout=60)

    def run(phase: str) -> None:
        control.post("/_emulator/calls")

        def served() -> dict[str, Any]:
            seen = control.get("/_emulator/calls").json()["operations"]
            return {"EWS operations": ", ".join(f"{k} {v}" for k, v in sorted(seen.items()))}

        bench.run(phase, served)

    run("initial import")
    run("no-change re-sync")
    share = max(1, n // 100)
    Outlook(info["url"]).rename(share, 100)
    bench.change_bookings(share)
    run("1% changed both ways")
    bench.new_bookings(1000)
    run("1,000 new bookings pushed")
    run("re-sync reading them back")
    bench.store.dispose()
    return bench.phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if args.serve is not None:
        serve_emulator(args.serve)
        return
    phases = with_emulator_child(__file__, args.n, "cb-bench-ews-", bench)
    if args.json:
        print(json.dumps({"n": args.n, "phases": phases}, indent=2))
        return
    print_phases(f"calbridge ⇄ Exchange (EWS emulator), {args.n:,} items", phases)


if __name__ == "__main__":
    main()
