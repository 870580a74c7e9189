"""One sync of a calendar at a time, across processes: :func:`calendar_lock`.

Two ``calbridge sync`` runs (or the CLI and the service) working on the same calendar at once
would both import the same new objects; the constraints stop duplicates, but one run would die
on an ``IntegrityError``. So every sync of a calendar holds its lock, and a second one gets
:class:`CalendarBusy` — "calendar 'X' is being synced by another process" — as that calendar's
error, while its other calendars go on.

* **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock(namespace, calendar)``)
  on a connection held for the sync. The server releases it when that connection ends, so a
  killed process never leaves it behind.
* **SQLite**: a row in ``sync_locks`` (the primary key makes taking it atomic), deleted on
  release. A process killed mid-sync leaves its row: a row is *stale* — taken over — when it was
  written on this host by a process that no longer runs (its pid is gone, or now belongs to a
  process started at another time), or written on another host more than
  :data:`FOREIGN_LOCK_HOURS` ago.

The lock is not re-entrant: one holder per calendar, whether the other holder is another
process or another thread of this one.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from calbridge.errors import CalendarBusy, NotFound
from calbridge.store.db import Store
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar, SyncLock

NAMESPACE = 0x63616C62  # "calb": the first key of calbridge's advisory locks
FOREIGN_LOCK_HOURS = 12


@contextmanager
def calendar_lock(store: Store, calendar_id: int) -> Iterator[None]:
    """Hold calendar ``calendar_id``'s sync lock for the ``with`` block; raise
    :class:`CalendarBusy` at once (no waiting) when another holder has it."""
    with store.session() as session:
        name = session.scalar(select(Calendar.name).where(Calendar.id == calendar_id))
    if name is None:
        raise NotFound(f"no calendar has id {calendar_id}")
    if store.engine.dialect.name == "postgresql":
        with _advisory_lock(store, calendar_id, name):
            yield
        return
    owner = _take_row(store, calendar_id, name)
    try:
        yield
    finally:
        with store.session() as session:
            session.execute(
                delete(SyncLock).where(SyncLock.calendar_id == calendar_id, SyncLock.owner == owner)
            )


def _busy(name: str, holder: str = "") -> CalendarBusy:
    return CalendarBusy(
        f"calendar '{name}' is being synced by another process{holder}; "
        "its changes are picked up by that run — sync it again once it has finished"
    )


@contextmanager
def _advisory_lock(store: Store, calendar_id: int, name: str) -> Iterator[None]:
    keys = {"ns": NAMESPACE, "id": calendar_id}
    with store.engine.connect() as connection:
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:ns, :id)"), keys).scalar_one()
        connection.commit()  # the lock outlives the transaction; the connection stays idle
        if not taken:
            raise _busy(name)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), keys)
            connection.commit()


def _take_row(store: Store, calendar_id: int, name: str) -> str:
    """Insert our lock row, taking over a stale one; the owner string we wrote."""
    host, pid = socket.gethostname()[:255], os.getpid()
    owner = f"{host}:{pid}:{_started(pid)}:{uuid.uuid4().hex[:12]}"
    for _ in range(3):
        try:
            with store.session() as session:
                session.add(
                    SyncLock(
                        calendar_id=calendar_id,
                        owner=owner,
                        host=host,
                        pid=pid,
                        acquired_at=utcnow(),
                    )
                )
            return owner
        except IntegrityError:
            pass
        with store.session() as session:
            row = session.get(SyncLock, calendar_id)
            if row is None:
                continue  # released meanwhile: try again
            if not _stale(row, host):
                since = row.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
                raise _busy(name, f" (pid {row.pid} on {row.host}, since {since})")
            session.execute(
                delete(SyncLock).where(
                    SyncLock.calendar_id == calendar_id, SyncLock.owner == row.owner
                )
            )
    raise _busy(name)


def _stale(row: SyncLock, host: str) -> bool:
    if row.host != host:
        return utcnow() - row.acquired_at > timedelta(hours=FOREIGN_LOCK_HOURS)
    parts = row.owner.rsplit(":", 3)  # host:pid:started:nonce
    started = parts[2] if len(parts) == 4 else ""
    return not _alive(row.pid) or (started != "" and _started(row.pid) not in ("", started))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from /proc), or "" where unknown:
    tells a reused pid from the process that wrote a lock row."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""
