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
ORGANIZERS = [
    "mia@harbour.example",
    "ann@acme-events.example",
    "tom@harbour.example",
    "raj.patel@mail.example",
    "someone@stranger.example",
]
ZONES = ["W. Europe Standard Time", "GMT Standard Time", "Eastern Standard Time"]


def when(i: int) -> datetime:
    return datetime(2026, 12, 7, 8) + timedelta(days=i // 17, minutes=(i % 17) * 40)


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


def bench(n: int, root: Path, info: dict[str, str]) -> dict[str, dict[str, Any]]:
    from sqlalchemy import select

    from calbridge.demo import __file__ as demo_file
    from calbridge.domain.event import make_times
    from calbridge.store.db import open_store
    from calbridge.store.directory import import_directory
    from calbridge.store.events import ManualAssignment, create_event, update_event
    from calbridge.store.models import Event
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.calendars import add_graph_calendar
    from calbridge.sync.engine import sync_calendar
    from calbridge.sync.providers import open_provider

    store = open_store(f"sqlite:///{root / 'calbridge.db'}")
    box = SecretBox(SecretBox.generate_key())
    with store.session() as session:
        import_directory(session, (Path(demo_file).parent / "directory.json").read_text())
        cal_id = add_graph_calendar(
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
        ).id
    outlook = Outlook(info)
    phases: dict[str, dict[str, Any]] = {}

    def run(phase: str) -> None:
        outlook.reset()
        started = time.perf_counter()
        report = sync_calendar(store, cal_id, lambda c: open_provider(c, box))
        seconds = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"{phase}: {report.error}")
        seen = outlook.counters()
        phases[phase] = {
            "seconds": round(seconds, 2),
            "requests": report.requests,
            "batches": seen["batch"],
            "in batches": seen["batch_inner"],
            "pulled": report.pulled,
            "created/updated": f"{report.created}/{report.updated}",
            "pushed c/u/d": f"{report.pushed_created}/{report.pushed_updated}/"
            f"{report.pushed_deleted}",
            "peak RSS MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

    bound, pages = outlook.delta_listing()
    run("initial import")
    phases["initial import"]["x lower bound"] = round(
        phases["initial import"]["seconds"] / bound, 2
    )
    phases = {
        "lower bound: delta pages": {"seconds": round(bound, 2), "requests": pages},
        **phases,
    }
    run("no-change re-sync")
    share = max(1, n // 100)
    for graph_id in outlook.event_ids(share, 100):
        outlook.rename(graph_id, "Renamed in Outlook")
    with store.session() as session:
        ids = list(session.scalars(select(Event.id).order_by(Event.id)))[50::100][:share]
        for event_id in ids:
            event = session.get(Event, event_id)
            assert event is not None
            update_event(session, event, {"notes": "changed in the booking system"})
    run("1% changed both ways")
    with store.session() as session:
        for i in range(1000):
            start = when(i) + timedelta(minutes=20)
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
        with tempfile.TemporaryDirectory(prefix="cb-bench-graph-") as root:
            phases = bench(args.n, Path(root), info)
    finally:
        if emulator.stdin is not None:
            emulator.stdin.close()
        emulator.wait(timeout=60)
    if args.json:
        print(json.dumps({"n": args.n, "phases": phases}, indent=2))
        return
    table = Table(title=f"calbridge ⇄ Microsoft Graph emulator, {args.n:,} events")
    columns = list(dict.fromkeys(c for figures in phases.values() for c in figures))
    table.add_column("phase")
    for column in columns:
        table.add_column(column, justify="right")
    for phase, figures in phases.items():
        table.add_row(phase, *(str(figures.get(c, "")) for c in columns))
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
