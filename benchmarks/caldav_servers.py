"""Benchmark: the same calendar synced from every CalDAV server calbridge is tested against.

For each server (Radicale, Xandikos, DAViCal — DAViCal when installed, see
scripts/setup-davical.sh) it seeds a calendar with N events (default 1,000), then runs through
the real sync engine on a fresh SQLite store:
  1. the initial import,
  2. a no-change re-sync — it should cost 1 request and pull 0 objects on every server,
  3. a re-sync after one event was deleted on the calendar (1 booking cancelled).
It prints requests, objects pulled, bookings created/cancelled and seconds per phase.

    python benchmarks/caldav_servers.py                      # every server, 1,000 events
    python benchmarks/caldav_servers.py --servers xandikos --events 200 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from calbridge.demo import __file__ as demo_file  # noqa: E402
from calbridge.store.db import open_store  # noqa: E402
from calbridge.store.directory import import_directory  # noqa: E402
from calbridge.store.secrets import SecretBox  # noqa: E402
from calbridge.sync.calendars import add_caldav_calendar  # noqa: E402
from calbridge.sync.engine import sync_calendar  # noqa: E402
from calbridge.sync.providers import open_provider  # noqa: E402
from calbridge_emulators.caldav_servers import (  # noqa: E402
    SERVER_NAMES,
    davical_missing,
    running_server,
)
from calbridge_emulators.radicale import RadicaleServer  # noqa: E402
from postgres_server import postgres_server  # noqa: E402

USER, PASSWORD = "bench", "bench-pw"
ORGANIZERS = ["mia@harbour.example", "ann@acme-events.example", "tom@harbour.example"]
err = Console(stderr=True)


def ics(i: int) -> str:
    start = datetime(2027, 1, 4, 8) + timedelta(days=i // 8, hours=i % 8)
    end = start + timedelta(hours=1)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:ev{i}\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART;TZID=Europe/London:{start:%Y%m%dT%H%M%S}\r\n"
        f"DTEND;TZID=Europe/London:{end:%Y%m%dT%H%M%S}\r\n"
        f"SUMMARY:Booking {i}\r\nORGANIZER:mailto:{ORGANIZERS[i % len(ORGANIZERS)]}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def seed(server: Any, url: str, n: int) -> float:
    """N events on the calendar; Radicale takes them in one request, the others one PUT each."""
    started = time.perf_counter()
    if isinstance(server, RadicaleServer):
        server.put_collection(url, (ics(i) for i in range(n)))
    else:
        for i in range(n):
            server.put_ics(f"{url}ev{i}.ics", ics(i))
    return round(time.perf_counter() - started, 1)


def bench(name: str, n: int, postgres: str | None, root: Path) -> dict[str, Any]:
    with running_server(name, root / name, {USER: PASSWORD}, postgres) as server:
        url = server.make_calendar(USER, "big")
        seeded = seed(server, url, n)
        err.print(f"{name}: {n} events seeded in {seeded} s", highlight=False)
        store = open_store(f"sqlite:///{root / f'{name}.db'}")
        box = SecretBox(SecretBox.generate_key())
        with store.session() as session:
            import_directory(session, (Path(demo_file).parent / "directory.json").read_text())
            calendar = add_caldav_calendar(
                session, box, "big", url, USER, PASSWORD, horizon_days=3650
            )
            calendar.settings = {**calendar.settings, "timeout": 600}
            cal_id = calendar.id
        phases: dict[str, dict[str, Any]] = {}

        def run(phase: str) -> None:
            started = time.perf_counter()
            report = sync_calendar(store, cal_id, lambda c: open_provider(c, box))
            if not report.ok:
                raise SystemExit(f"{name}, {phase}: {report.error}")
            phases[phase] = {
                "requests": report.requests,
                "pulled": report.pulled,
                "created": report.created,
                "cancelled": report.cancelled,
                "full_resync": report.full_resync,
                "seconds": round(time.perf_counter() - started, 3),
            }
            err.print(f"{name}, {phase}: {phases[phase]}", highlight=False)

        run("initial import")
        run("no-change re-sync")
        server.delete(f"{url}ev7.ics")
        run("one event deleted")
        store.dispose()
    return {"server": name, "events": n, "seed_seconds": seeded, "phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default=",".join(SERVER_NAMES))
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--postgres-url", help="PostgreSQL server URL for DAViCal's database")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    results = []
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cb-servers-")))
        for name in args.servers.split(","):
            postgres = None
            if name == "davical":
                problem = davical_missing()
                if problem:
                    err.print(f"davical skipped: {problem}", highlight=False, markup=False)
                    continue
                postgres = args.postgres_url or stack.enter_context(postgres_server())
            results.append(bench(name, args.events, postgres, root))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title=f"calbridge on each CalDAV server, {args.events} events")
    for column in ("server", "phase", "requests", "pulled", "created", "cancelled", "seconds"):
        table.add_column(column, justify="left" if column in ("server", "phase") else "right")
    for result in results:
        for phase, figures in result["phases"].items():
            table.add_row(
                result["server"],
                phase,
                *(str(figures[key]) for key in ("requests", "pulled", "created", "cancelled")),
                f"{figures['seconds']:.2f}",
            )
    Console().print(table)


if __name__ == "__main__":
    main()
