"""What the Microsoft benchmarks (``sync_graph.py``, ``sync_ews.py``) share: a mailbox
calendar of N events served by an emulator in a child process, the booking store opened on
it, the same sync phases, and the same table.

The emulator runs in a child process so this process is calbridge alone (its peak RSS is
calbridge's). The child prints how to reach it as one JSON line and serves until its stdin
closes.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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

Phases = dict[str, dict[str, Any]]


def when(i: int) -> datetime:
    """Event ``i``'s start (naive): 17 a day, 40 minutes apart."""
    return datetime(2026, 12, 7, 8) + timedelta(days=i // 17, minutes=(i % 17) * 40)


def with_emulator_child(
    script: str, n: int, prefix: str, bench: Callable[[int, Path, dict[str, str]], Phases]
) -> Phases:
    """Start ``script --serve n`` (the emulator), run ``bench`` against it in a fresh folder."""
    emulator = subprocess.Popen(
        [sys.executable, script, "--serve", str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        info = json.loads(emulator.stdout.readline())
        with tempfile.TemporaryDirectory(prefix=prefix) as root:
            return bench(n, Path(root), info)
    finally:
        if emulator.stdin is not None:
            emulator.stdin.close()
        emulator.wait(timeout=60)


class Bench:
    """A booking store in ``root`` with the demo directory and one calendar (``add`` links it:
    ``add(session, box)`` returns the calendar), and the phases run on it."""

    def __init__(self, root: Path, add: Callable[[Any, Any], Any]) -> None:
        from calbridge.demo import __file__ as demo_file
        from calbridge.store.db import open_store
        from calbridge.store.directory import import_directory
        from calbridge.store.secrets import SecretBox

        self.store = open_store(f"sqlite:///{root / 'calbridge.db'}")
        self.box = SecretBox(SecretBox.generate_key())
        with self.store.session() as session:
            import_directory(session, (Path(demo_file).parent / "directory.json").read_text())
            self.calendar_id = add(session, self.box).id
        self.phases: Phases = {}

    def run(self, phase: str, served: Callable[[], dict[str, Any]]) -> None:
        """One sync of the calendar, timed; ``served()`` gives the emulator's own figures for
        it (what it served since its counters were reset)."""
        from calbridge.sync.engine import sync_calendar
        from calbridge.sync.providers import open_provider

        started = time.perf_counter()
        report = sync_calendar(self.store, self.calendar_id, lambda c: open_provider(c, self.box))
        seconds = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"{phase}: {report.error}")
        self.phases[phase] = {
            "seconds": round(seconds, 2),
            "requests": report.requests,
            **served(),
            "pulled": report.pulled,
            "created/updated": f"{report.created}/{report.updated}",
            "pushed c/u/d": f"{report.pushed_created}/{report.pushed_updated}/"
            f"{report.pushed_deleted}",
            "peak RSS MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

    def change_bookings(self, share: int) -> None:
        """Change ``share`` bookings in the booking system (every 100th from the 50th)."""
        from sqlalchemy import select

        from calbridge.store.events import update_event
        from calbridge.store.models import Event

        with self.store.session() as session:
            ids = list(session.scalars(select(Event.id).order_by(Event.id)))[50::100][:share]
            for event_id in ids:
                event = session.get(Event, event_id)
                assert event is not None
                update_event(session, event, {"notes": "changed in the booking system"})

    def new_bookings(self, count: int) -> None:
        """``count`` new bookings managed by the calendar's owner (so it carries them)."""
        from calbridge.domain.event import make_times
        from calbridge.store.events import ManualAssignment, create_event

        with self.store.session() as session:
            for i in range(count):
                start = when(i) + timedelta(minutes=20)
                create_event(
                    session,
                    name=f"New booking {i}",
                    times=make_times(
                        start, start + timedelta(hours=1), all_day=False, timezone="Europe/London"
                    ),
                    manual=ManualAssignment("co-acme", "ct-ann", "u-tom", "u-tom"),
                )


def print_phases(title: str, phases: Phases, width: int = 170) -> None:
    table = Table(title=title)
    columns = list(dict.fromkeys(c for figures in phases.values() for c in figures))
    table.add_column("phase")
    for column in columns:
        table.add_column(column, justify="left" if column.endswith("operations") else "right")
    for phase, figures in phases.items():
        table.add_row(phase, *(str(figures.get(c, "")) for c in columns))
    Console(width=width).print(table)
