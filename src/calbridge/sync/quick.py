"""``calbridge sync`` on SQLite before the engine: the no-change path and the CalDAV head start.

Most runs of ``calbridge sync`` (cron, scripts) find nothing to do. The engine
(:mod:`calbridge.sync.engine`) needs SQLAlchemy's ORM, pydantic and the rest of the program:
about a second of start-up for one REPORT that says "nothing changed". This module decides,
with the standard library's ``sqlite3``, the CalDAV provider and nothing else, whether a
calendar's sync can be finished without it — and when it cannot, it gives the engine a head
start. It never decides anything the engine would decide differently: whatever it is not sure
of goes to the engine.

**Quiet marks.** The store keeps a *revision*: the ``revision`` row of ``counters``, raised by
SQLite triggers on every write to a table a sync reads — the bookings, their rooms and links,
the directory, the settings, held cancellations, and a calendar's settings columns (not its
bookkeeping columns: token, last report, service state) — together with the row counts of
:data:`COUNTED_TABLES`, whose inserts have no trigger (:data:`REVISION_QUERY`). Tables and
columns are classified in :data:`WATCHED_TABLES`, :data:`IGNORED_TABLES`,
:data:`CALENDAR_SETTINGS` and :data:`CALENDAR_BOOKKEEPING` (migrations ``0015_quiet_marks`` and
``0016_counted_inserts`` make the triggers; a test checks every table and column of the schema
is classified and every watched one has its triggers).
When an engine sync of a calendar ends with nothing left to retry (ok, no failed write), it
stores a *quiet mark* on the calendar: the revision at which a push scan, run under the
calendar's lock in one transaction with the revision's read, found nothing to write (for a
calendar that pushes), with the schema and calbridge version (:func:`quiet_mark`). While the
revision is unchanged, nothing that scan looked at has changed since, so a push would still
find nothing to write, and with the calendar reporting no change the sync is complete.

**The no-change path** (CalDAV, SQLite, schema up to date, a stored token and a valid mark):
one ``sync-collection`` REPORT through the same :class:`CalDAVProvider` the engine uses (same
authentication, retries, timeouts and error messages). When the calendar reports nothing, the
calendar's token and report are written in one ``BEGIN IMMEDIATE`` transaction that first
checks, again, that no other sync holds the calendar's lock and that the revision, token and
mark are still those read — otherwise the engine syncs it. A calendar that refuses the
credentials or fails gets the report the engine would have written. A calendar syncing only
towards the calendar (``direction push``) with a valid mark makes no request at all.

**The head start** (every other CalDAV pull): the change listing starts in a read-ahead thread
(:class:`ReadAhead`) before the engine is imported, so the server works while the process
starts; the engine takes the pages from it (:class:`Handover`) — when the calendar's token is
still the one the listing started from; otherwise they are dropped and the engine lists again.
A first pull (no token: the whole calendar to read and parse) is listed by a forked child
process where one can fork (:mod:`calbridge.sync.forked`), so parsing takes the second core
while this one loads the engine; the read-ahead thread then reads the child's parsed pages.
The child makes the provider; this process makes its own (:class:`LazyProvider`) only if the
engine writes to the calendar, and when the child could not make one, the engine syncs the
calendar itself (:meth:`Handover.provider_for`).

PostgreSQL stores, the other provider kinds, names that are not exact calendar names and
anything unexpected go to the engine unchanged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calbridge.config import Settings
from calbridge.domain.event import utcnow
from calbridge.domain.remote import ChangePage, DeferredPage, sync_window
from calbridge.errors import CalbridgeError, TokenExpired
from calbridge.sync.readahead import ReadAhead
from calbridge.sync.report import SyncReport

if TYPE_CHECKING:
    from calbridge.providers.caldav.provider import CalDAVProvider
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.forked import ChildPages, Listing

log = logging.getLogger(__name__)

#: Tables whose writes raise the store's revision (triggers of migrations 0015 and 0016).
WATCHED_TABLES = frozenset(
    {
        "companies",
        "contacts",
        "contact_emails",
        "users",
        "user_emails",
        "locations",
        "not_room_texts",
        "system_settings",
        "events",
        "booked_locations",
        "links",
        "former_links",
        "held_cancellations",
        "booking_reviews",
    }
)
#: Tables no sync decision reads: logs, run history, locks, counters, web and API accounts.
IGNORED_TABLES = frozenset(
    {
        "alembic_version",
        "counters",
        "sync_runs",
        "sync_totals",
        "history",
        "service_workers",
        "conflicts",
        "rejections",
        "calendar_alerts",
        "sync_locks",
        "admin_users",
        "admin_sessions",
        "login_failures",
        "api_tokens",
    }
)
#: Columns of ``calendars`` whose change raises the revision (so does adding or removing one).
CALENDAR_SETTINGS = frozenset(
    {
        "id",
        "name",
        "kind",
        "settings",
        "secret",
        "owner_user_id",
        "policy",
        "direction",
        "horizon_days",
        "key_prefix",
        "paused",
        "full_requested",
        "export_mode",
        "rooms_as_resources",
        "filters",
        "title_template",
        "room_location_id",
    }
)
#: Columns of ``calendars`` a sync or the service writes as bookkeeping.
CALENDAR_BOOKKEEPING = frozenset(
    {
        "sync_token",
        "full_gen",
        "last_sync_at",
        "last_error",
        "last_report",
        "created_at",
        "state",
        "last_success_at",
        "error_hint",
        "next_run_at",
        "poll_seconds",
        "idle_polls",
        "auth_failed_secret",
        "quiet_mark",
    }
)

CALDAV_CREDENTIALS = "--password-env VAR"  # the CalDAV kind's ``credentials`` (registry)
#: Watched tables whose inserts are seen by their row count, not by a trigger: an import adds a
#: booking, a link and a booked location per event, and a per-row trigger doubled the cost of
#: those inserts (migration 0016). An insert raises a count; a delete or update raises the
#: revision through its trigger, so the pair never comes back to a value it had.
COUNTED_TABLES = ("events", "links", "booked_locations")
#: The store's revision as text (None without the counter row): the counter and the counts.
REVISION_QUERY = "SELECT (SELECT value FROM counters WHERE name = 'revision')" + "".join(
    f" || ':' || (SELECT count(*) FROM {table})" for table in COUNTED_TABLES
)
_COLUMNS = "id, name, kind, settings, secret, direction, horizon_days, sync_token, quiet_mark"


def quiet_mark(revision: str) -> str:
    """The mark stored for a calendar that had nothing to push at store ``revision``: also
    naming the schema and the program, so an upgrade never trusts an older mark."""
    from calbridge import installed_version
    from calbridge.store.schema import head_revision

    return f"{revision}/{head_revision()}/{installed_version()}"


@dataclass
class Target:
    """A calendar as read before the engine: its row."""

    id: int
    name: str
    kind: str
    settings: dict[str, Any]
    secret: str | None
    direction: str
    horizon_days: int
    token: str | None
    mark: str | None


@dataclass
class Handover:
    """What the engine takes over: the calendar's provider, the moment the sync started (its
    window) and the change listing already under way from ``token``."""

    provider: LazyProvider
    now: datetime
    token: str | None
    pages: ReadAhead[ChangePage] | None
    settings: dict[str, Any]  # the calendar's settings and sealed secret the provider is for
    secret: str | None
    child: ChildPages | None = None  # the child process reading the pages, if one does

    def provider_for(self, settings: dict[str, Any] | None, secret: str | None) -> Any:
        """The provider, if the calendar (as the engine read it under its lock) still has the
        settings and secret it was made for, and the child reading it (if any) could start;
        else None, and the listing is dropped: the engine makes its own."""
        if (
            settings == self.settings
            and secret == self.secret
            and (self.child is None or self.child.started())
        ):
            return self.provider
        self.close()
        self.provider.close()
        return None

    def pages_for(self, token: str | None) -> ReadAhead[ChangePage] | None:
        """The listing under way, if it started from ``token``; else it is dropped."""
        pages, self.pages = self.pages, None
        if pages is None:
            return None
        if token == self.token:
            return pages
        pages.close()
        return None

    def close(self) -> None:
        if self.pages is not None:
            self.pages.close()
            self.pages = None


class LazyProvider:
    """A CalDAV provider made on first use (:meth:`open`, or any attribute of it); until then
    it counts the requests made for it elsewhere (:meth:`count`: by a child process)."""

    def __init__(self, make: Callable[[], CalDAVProvider]) -> None:
        self._make = make
        self._made: CalDAVProvider | None = None
        self._counted = 0

    def open(self) -> CalDAVProvider:
        if self._made is None:
            self._made = self._make()
        return self._made

    def count(self, requests: int) -> None:
        self._counted += requests

    @property
    def requests(self) -> int:
        return self._counted + (self._made.requests if self._made is not None else 0)

    def close(self) -> None:
        if self._made is not None:
            self._made.close()

    def __getattr__(self, name: str) -> Any:  # the provider's own methods and attributes
        if name.startswith("_"):  # never made (a copy): no provider to make from
            raise AttributeError(name)
        return getattr(self.open(), name)


class QuickSync:
    """The calendars of one SQLite store, read with ``sqlite3``; see the module docstring."""

    def __init__(self, path: Path, settings: Settings, box: SecretBox | None = None) -> None:
        """The store at ``path``; ``box`` opens the calendars' secrets (default: the one
        ``settings`` give, made when first needed)."""
        self.path, self.settings = path, settings
        self._box: SecretBox | None = box

    @classmethod
    def open(cls, settings: Settings) -> QuickSync | None:
        """The quick path for this store, or None when the engine must do everything: not
        SQLite, no database yet, a migration due, or no secret key to open credentials."""
        try:
            url = settings.resolved_database_url()
            if not url.startswith("sqlite:///") or url.endswith(":memory:"):
                return None
            path = Path(url[len("sqlite:///") :]).expanduser()
            if not path.is_file():
                return None
            key_file = settings.resolved_data_dir() / "secret.key"
            if not settings.secret_key and not key_file.exists():
                return None
            quick = cls(path, settings)
            from calbridge.store.schema import head_revision

            with quick._connect() as db:
                rows = db.execute("SELECT version_num FROM alembic_version").fetchall()
            if [r[0] for r in rows] != [head_revision()]:
                return None
            return quick
        except (CalbridgeError, sqlite3.Error, OSError):
            return None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one ``with`` block, closed at its end: none stays open while the
        process goes on (a forked child must never inherit one, ``sync/forked.py``)."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys=ON")
            with db:
                yield db
        finally:
            db.close()

    def targets(self, names: list[str]) -> list[Target] | None:
        """The calendars to sync, in the engine's order (all by name, or the ones named);
        None when a name is not exactly one calendar's (the engine says what is wrong)."""
        try:
            with self._connect() as db:
                rows = db.execute(f"SELECT {_COLUMNS} FROM calendars ORDER BY name").fetchall()
        except sqlite3.Error:
            return None
        by_name = {row[1]: row for row in rows}
        if names and any(n not in by_name for n in names):
            return None
        chosen = [by_name[n] for n in names] if names else rows
        targets = []
        for row in chosen:
            try:
                settings = json.loads(row[3]) if row[3] else {}
            except ValueError:
                return None
            targets.append(Target(row[0], row[1], row[2], settings, *row[4:]))
        return targets

    def start(self, target: Target, *, fork: bool = True) -> SyncReport | Handover | None:
        """Sync ``target`` here when nothing changed (its report), or start its listing for
        the engine (a :class:`Handover`), or None: the engine does it all. ``fork``: a first
        pull may be read by a child process (:mod:`calbridge.sync.forked`) — only while this
        process holds no database connection of its own (the engine not loaded yet)."""
        started = time.perf_counter()
        try:
            if target.kind != "caldav" or target.direction not in ("both", "pull", "push"):
                return None
            with self._connect() as db:
                held = db.execute(
                    "SELECT count(*) FROM held_cancellations WHERE calendar_id = ?", (target.id,)
                ).fetchone()[0]
                locked = db.execute(
                    "SELECT 1 FROM sync_locks WHERE calendar_id = ?", (target.id,)
                ).fetchone()
                revision = db.execute(REVISION_QUERY).fetchone()
            if held or locked or revision is None:
                return None  # the engine says what is held, or who is syncing it
            if target.direction == "push":  # nothing to ask the calendar
                quiet = target.mark == quiet_mark(revision[0])
                return self._finish(target, None, target.token, 0, started) if quiet else None
            provider = self._provider(target)
            if provider is None:
                return None
            now = utcnow()
            window = sync_window(now, target.horizon_days)
            token = target.token
            source: ChildPages | None = None
            if token is None and fork:  # the whole calendar to read: parsed by a child
                from calbridge.sync.forked import pages_from_child  # not for a no-change sync

                def start_child() -> Listing:
                    made = provider.open()
                    return made.list_changes(None, window), lambda: made.requests

                source = pages_from_child(start_child, provider.count, f"calendar '{target.name}'")
            if source is None:
                provider.open()  # its trouble is the engine's to report
        except (CalbridgeError, sqlite3.Error, OSError, ValueError, TypeError):
            log.info("quick path not taken", exc_info=True, extra={"calendar": target.name})
            return None

        def listing() -> Iterator[ChangePage]:
            yield from provider.list_changes(token, window)

        handover = Handover(
            provider,
            now,
            token,
            ReadAhead(source or listing()),
            target.settings,
            target.secret,
            source,
        )
        try:  # while the server answers (the mark names the schema head: read from files)
            quiet = token is not None and target.mark == quiet_mark(revision[0])
        except (CalbridgeError, OSError, ValueError) as exc:
            log.info("quick path not taken: %s", exc, extra={"calendar": target.name})
            quiet = False
        if not quiet:
            return handover
        assert handover.pages is not None
        try:
            first = handover.pages.peek()
        except TokenExpired:
            return handover
        except CalbridgeError as exc:  # the server's or credentials' trouble: as the engine
            handover.close()
            report = self._failed(target, exc, provider, started)
            provider.close()
            return report
        if (
            first is None
            or not first.done
            or isinstance(first, DeferredPage)  # it carries objects (unparsed): the engine's
            or first.items
            or first.deleted
            or not first.token
        ):
            return handover
        done = self._finish(target, first.token, token, provider.requests, started)
        if done is None:
            return handover
        handover.close()
        provider.close()
        return done

    def _provider(self, target: Target) -> LazyProvider | None:
        """The calendar's provider, made when first used (None: settings the engine must
        judge). Making it opens the secret and imports the HTTP client: a first pull read by
        a child process never needs it in this process unless the engine pushes."""
        settings = target.settings
        url, username = settings.get("url"), settings.get("username", "")
        timeout = settings.get("timeout", 30)
        if not isinstance(url, str) or not url or not isinstance(username, str):
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            return None

        def make() -> CalDAVProvider:
            secret: dict[str, Any] = {}
            if target.secret:
                from calbridge.errors import credentials_hint

                secret = self._secret_box().open(
                    target.secret,
                    f"calendar '{target.name}'",
                    credentials_hint(target.name, CALDAV_CREDENTIALS),
                )
            from calbridge.providers.caldav.messages import caldav_fix, caldav_url_fix
            from calbridge.providers.caldav.provider import CalDAVProvider

            return CalDAVProvider(
                url,
                username,
                str(secret.get("password", "")),
                name=target.name,
                timeout=float(timeout),
                fix=caldav_fix(target.name, url, False),
                url_fix=caldav_url_fix(target.name, False),
            )

        return LazyProvider(make)

    def _secret_box(self) -> SecretBox:
        if self._box is None:
            from calbridge.store.secrets import SecretBox

            self._box = SecretBox.from_settings(self.settings)
        return self._box

    def _finish(
        self,
        target: Target,
        new_token: str | None,
        token: str | None,
        requests: int,
        started: float,
    ) -> SyncReport | None:
        """Record a no-change sync, if the calendar is still as read; else None."""
        report = SyncReport(target.name, requests=requests)
        report.seconds = round(time.perf_counter() - started, 3)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                locked = db.execute(
                    "SELECT 1 FROM sync_locks WHERE calendar_id = ?", (target.id,)
                ).fetchone()
                row = db.execute(
                    "SELECT sync_token, quiet_mark FROM calendars WHERE id = ?", (target.id,)
                ).fetchone()
                revision = db.execute(REVISION_QUERY).fetchone()
                if (
                    locked
                    or row is None
                    or tuple(row) != (token, target.mark)
                    or revision is None
                    or target.mark != quiet_mark(revision[0])
                ):
                    db.execute("ROLLBACK")
                    return None
                self._record(db, target.id, report, new_token or token)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return report

    def _failed(
        self, target: Target, exc: CalbridgeError, provider: LazyProvider, started: float
    ) -> SyncReport:
        """The report the engine gives a calendar whose server or credentials failed."""
        report = SyncReport(target.name, requests=provider.requests, ok=False, error=str(exc))
        report.failure = exc
        log.warning("sync failed", extra={"calendar": target.name, "error": report.error})
        report.seconds = round(time.perf_counter() - started, 3)
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                self._record(db, target.id, report, None)
                db.execute("COMMIT")
        except sqlite3.Error:  # the report still reaches the caller, as with the engine
            log.exception("could not record the sync report", extra={"calendar": target.name})
        return report

    @staticmethod
    def _record(
        db: sqlite3.Connection, calendar_id: int, report: SyncReport, token: str | None
    ) -> None:
        """What the engine writes at the end of a sync (``sync_calendar``), as SQLAlchemy
        stores it on SQLite (naive UTC text, JSON text)."""
        now = utcnow()
        db.execute(
            "UPDATE calendars SET last_sync_at = ?, last_error = ?, last_report = ?"
            + (", sync_token = ?" if token is not None else "")
            + " WHERE id = ?",
            (
                now.strftime("%Y-%m-%d %H:%M:%S.%f"),
                report.error,
                json.dumps(report.as_dict()),
                *((token,) if token is not None else ()),
                calendar_id,
            ),
        )
