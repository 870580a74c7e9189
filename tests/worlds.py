"""What the integration tests' worlds share: a fresh booking store holding the example
directory, and a booking made in it (test directories have no ``__init__``; this module's name
is unique on purpose)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

import calbridge.demo
from calbridge.domain.event import make_times
from calbridge.store.db import Store, open_store
from calbridge.store.directory import import_directory
from calbridge.store.events import ManualAssignment, create_event
from calbridge.store.models import Event

EXAMPLE = Path(calbridge.demo.__file__).parent / "directory.json"

# The sync tests' clock: the engine's "now" (UTC, naive) unless a test passes another. Their
# fixed dates (March 2027…) lie inside its sync window whatever the real date is, so no test
# starts failing on some future day without a code change.
NOW = datetime(2027, 2, 1)

# The venue's bookings mailbox on the Graph emulator (Mia's second address in the example
# directory): an event its owner organizes is booked by Mia.
GRAPH_MAILBOX = "bookings@harbour.example"


@contextmanager
def example_store(folder: Path) -> Iterator[Store]:
    """A SQLite booking store in ``folder`` with the example directory imported; disposed on
    leaving."""
    store = open_store(f"sqlite:///{folder / 'calbridge.db'}")
    with store.session() as session:
        import_directory(session, EXAMPLE.read_text(encoding="utf-8"))
    try:
        yield store
    finally:
        store.dispose()


def book(session: Session, name: str, start: datetime | str, end: datetime | str) -> Event:
    """A booking made in the booking system: Acme's, booked and managed by Tom (``u-tom`` of
    the example directory), in UTC."""
    times = make_times(start, end, all_day=False, timezone="UTC")
    return create_event(
        session, name=name, times=times, manual=ManualAssignment("co-acme", None, "u-tom", "u-tom")
    )
