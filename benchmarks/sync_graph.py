"""Benchmark: two-way sync of a large Microsoft 365 calendar through the Graph emulator.

The emulator runs in a child process (https, real MSAL sign-in) holding N events (default
5,000); this process is calbridge alone, so its peak RSS is calbridge's. Phases:
  1. initial import (calendar -> booking system),
  2. a no-change re-sync,
  3. 1 % changed on both sides (edited "in Outlook" through Graph, and in the booking system),
  4. 1,000 new bookings pushed (the calendar's owner manages them),
  5. the re-sync that reads those creates back (their echoes must change nothing).
Before the import, the lower bound: the same ``calendarView/delta`` pages fetched with plain
HTTP (bytes and the next link only); the import's ratio to it is printed. Printed per phase:
seconds, HTTP requests made by calbridge (token, Graph and ``$batch``
requests; the writes inside a batch are not requests), what the emulator saw (``$batch``
requests and the operations inside them), and peak RSS.

    python benchmarks/sync_graph.py             # N = 5000
    python benchmarks/sync_graph.py --n 1000    # quicker
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
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


def serve_emulator(n: int) -> None:
    """Child process: an emulator with one mailbox calendar of ``n`` events; prints how to
    reach it as one JSON line, then serves until stdin closes."""
    from calbridge_emulators.graph.testing import running_emulator

    with running_emulator(tls=True) as graph:
        graph.add_user(graph.tenant_id, MAILBOX, "Harbour Bookings")
        cal = graph.add_calendar(MAILBOX, "Bookings")
        user = graph.emulator.user(MAILBOX)
        for i in range(n):
            start, zone = when(i), ZONES[i % len(ZONES)]
            made = graph.external_create(
                MAILBOX,
                {
                    "subject": f"Booking {i}",
                    "start": {"dateTime": start.isoformat(), "timeZone": zone},
                    "end": {
                        "dateTime": (start + timedelta(minutes=30)).isoformat(),
                        "timeZone": zone,
                    },
                    "location": {"displayName": f"Room {i % 12}"},
                },
                cal.id,
            )
            address = ORGANIZERS[i % len(ORGANIZERS)]
            user.calendars[cal.id].items[made["id"]].organizer = {
                "name": address,
                "address": address,
            }
        info = {
            "graph_url": graph.graph_url,
            "login_base": graph.login_base,
            "ca": str(graph.ca_cert_path),
            "tenant": graph.tenant_id,
            "client_id": graph.client_id,
            "secret": graph.client_secret,
            "calendar": cal.id,
        }
        print(json.dumps(info), flush=True)
        sys.stdin.read()


class Outlook:
    """Edits "in Outlook": plain Graph requests, and the emulator's counters."""

    def __init__(self, info: dict[str, str]) -> None:
        token = httpx.post(
            f"{info['login_base']}/{info['tenant']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": info["client_id"],
                "client_secret": info["secret"],
                "scope": "https://graph.microsoft.com/.default",
            },
            verify=info["ca"],
        ).json()["access_token"]
        self.base = info["graph_url"]
        self.client = httpx.Client(
            verify=info["ca"], headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self.calendar = info["calendar"]

    def event_ids(self, count: int, stride: int) -> list[str]:
        url = f"{self.base}/users/{MAILBOX}/calendars/{self.calendar}/events"
        params = {"$top": "1000", "$select": "id", "$orderby": "start/dateTime"}
        ids: list[str] = []
        next_url: str | None = url
        while next_url:
            data = self.client.get(next_url, params=params if next_url == url else None).json()
            ids.extend(e["id"] for e in data["value"])
            next_url = data.get("@odata.nextLink")
        return ids[::stride][:count]

    def delta_listing(self, page_size: int = 250) -> tuple[float, int]:
        """The emulator's own listing time for a full sync: every ``calendarView/delta`` page
        over the sync window (the provider's parameters), bytes and the next link only."""
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        start, end = now - timedelta(days=30), now + timedelta(days=365)
        url: str | None = (
            f"{self.base}/users/{MAILBOX}/calendars/{self.calendar}/calendarView/delta"
            f"?startDateTime={start.isoformat()}Z&endDateTime={end.isoformat()}Z"
        )
        prefer = (
            'outlook.timezone="UTC", outlook.body-content-type="text", IdType="ImmutableId", '
            f"odata.maxpagesize={page_size}"
        )
        started, pages = time.perf_counter(), 0
        while url:
            response = self.client.get(url, headers={"Prefer": prefer})
            response.raise_for_status()
            pages += 1
            url = json.loads(response.content).get("@odata.nextLink")
        return time.perf_counter() - started, pages

    def rename(self, event_id: str, subject: str) -> None:
        url = f"{self.base}/users/{MAILBOX}/events/{event_id}"
        self.client.patch(url, json={"subject": subject}).raise_for_status()

    def counters(self) -> dict[str, Any]:
        base = self.base.rsplit("/v1.0", 1)[0]
        return dict(self.client.get(f"{base}/_emulator/counters").json())

    def reset(self) -> None:
        base = self.base.rsplit("/v1.0", 1)[0]
        self.client.post(f"{base}/_emulator/counters/reset", json={})


def bench(n: int, root: Path, info: dict[str, str]) -> Phases:
    from calbridge.sync.calendars import add_graph_calendar

    def add(session: Any, box: Any) -> Any:
        return add_graph_calendar(
            session,
            box,
            "bookings",
            MAILBOX,
            tenant=info["tenant"],
            client_id=info["client_id"],
            client_secret=info["secret"],
            calendar_id=info["calendar"],
            api_base=info["graph_url"],
            login_base=info["login_base"],
            ca_file=info["ca"],
            owner="u-tom",
        )

    bench = Bench(root, add)
    outlook = Outlook(info)

    def run(phase: str) -> None:
        outlook.reset()

        def served() -> dict[str, Any]:
            seen = outlook.counters()
            return {"batches": seen["batch"], "in batches": seen["batch_inner"]}

        bench.run(phase, served)

    bound, pages = outlook.delta_listing()
    run("initial import")
    initial = bench.phases["initial import"]
    initial["x lower bound"] = round(initial["seconds"] / bound, 2)
    run("no-change re-sync")
    share = max(1, n // 100)
    for graph_id in outlook.event_ids(share, 100):
        outlook.rename(graph_id, "Renamed in Outlook")
    bench.change_bookings(share)
    run("1% changed both ways")
    bench.new_bookings(1000)
    run("1,000 new bookings pushed")
    run("re-sync reading them back")
    bench.store.dispose()
    return {
        "lower bound: delta pages": {"seconds": round(bound, 2), "requests": pages},
        **bench.phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if args.serve is not None:
        serve_emulator(args.serve)
        return
    phases = with_emulator_child(__file__, args.n, "cb-bench-graph-", bench)
    if args.json:
        print(json.dumps({"n": args.n, "phases": phases}, indent=2))
        return
    print_phases(f"calbridge ⇄ Microsoft Graph emulator, {args.n:,} events", phases, width=150)


if __name__ == "__main__":
    main()
