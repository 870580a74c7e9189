"""For the service-core tests: ``calbridge serve`` / ``calbridge worker`` as subprocesses,
a real Radicale with CalDAV calendars, and a booking store the test shares with them.

The test process opens the same database (SQLite in WAL mode, or a fresh PostgreSQL
database) to set things up and to read what the service did. Waits poll with a deadline and
fail with what they waited for; nothing here sleeps a fixed time to "let things happen".
Test directories have no ``__init__``: this module's name is unique on purpose.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select

import waits
from calbridge.config import Settings
from calbridge.demo.seed import vevent
from calbridge.domain.event import make_times
from calbridge.store.db import Store, open_store
from calbridge.store.directory import import_directory
from calbridge.store.events import ManualAssignment, create_event
from calbridge.store.models import Calendar, Event, Link, SyncRun
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge_emulators.radicale import RadicaleServer
from postgres_server import free_port
from worlds import EXAMPLE

T = TypeVar("T")
SECRET_KEY = "core-tests-secret-key"
CALBRIDGE = str(Path(sys.executable).parent / "calbridge")
USERS = {"staff": "staff-pw", "tom": "tom-pw"}
BASE = datetime(2027, 3, 1, 9, 0)


def box() -> SecretBox:
    """The secret box the service processes use too (same ``CALBRIDGE_SECRET_KEY``)."""
    return SecretBox.from_settings(Settings(secret_key=SECRET_KEY))


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy (``waits.wait_until``, argument order
    of these service tests)."""
    return waits.wait_until(check, what, timeout=timeout, interval=0.05)


def at(day: int, hour: int = 9) -> datetime:
    return BASE + timedelta(days=day, hours=hour - 9)


def event_ics(uid: str, name: str, day: int = 0) -> str:
    return vevent(uid, name, at(day), at(day, 10), organizer="tom@harbour.example")


def owner_bookings(store: Store, count: int, prefix: str = "Booked", owner: str = "u-tom") -> None:
    """``count`` bookings managed by ``owner``: the owner's calendars carry (push) them."""
    with store.session() as session:
        for i in range(count):
            create_event(
                session,
                name=f"{prefix} {i}",
                times=make_times(
                    at(i).isoformat(), at(i, 11).isoformat(), all_day=False, timezone="UTC"
                ),
                manual=ManualAssignment("co-acme", "ct-ann", owner, owner),
            )


HOP_HEADERS = ("content-length", "transfer-encoding", "connection", "content-encoding")


class SlowProxy:
    """A real HTTP hop in front of Radicale that answers each request ``delay`` seconds late
    (a distant server), so a sync of a few dozen writes lasts long enough to be interrupted
    in the middle, whatever the machine's speed."""

    def __init__(self, target: str, delay: float) -> None:
        self.target = target.rstrip("/")
        self.delay = delay
        self.client = httpx.Client(timeout=60)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection", "accept-encoding")
                }
                time.sleep(proxy.delay)  # the simulated distance, not a wait for an outcome
                answer = proxy.client.request(
                    self.command, proxy.target + self.path, content=body, headers=headers
                )
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_DELETE = do_REPORT = do_PROPFIND = do_OPTIONS = _forward
            do_POST = do_HEAD = do_MKCALENDAR = do_PROPPATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


@dataclass
class Proc:
    """A calbridge subprocess with its log file."""

    process: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"calbridge did not exit within {timeout:.0f} s; log:\n{self.output()[-3000:]}"
            ) from exc

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class World:
    """A shared store + Radicale + the environment for service subprocesses."""

    folder: Path
    database_url: str
    store: Store
    radicale: RadicaleServer
    urls: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
        env |= {
            "CALBRIDGE_DATA_DIR": str(self.folder / "data"),
            "CALBRIDGE_DATABASE_URL": self.database_url,
            "CALBRIDGE_SECRET_KEY": SECRET_KEY,
            "CALBRIDGE_SCHEDULER_TICK_SECONDS": "0.2",
            "CALBRIDGE_POLL_CALDAV_SECONDS": "3600",
            "CALBRIDGE_WORKER_HEARTBEAT_SECONDS": "1",
            "CALBRIDGE_STALLED_AFTER_SECONDS": "4",
            "CALBRIDGE_STALLED_CHECK_SECONDS": "1",
            "CALBRIDGE_RETRY_BASE_SECONDS": "0.2",
            "NO_COLOR": "1",
        }
        env |= extra
        return env

    def add_calendar(
        self, name: str, user: str = "staff", *, via: SlowProxy | None = None, **options: Any
    ) -> int:
        """A Radicale calendar linked as ``name`` (reached through ``via`` when given)."""
        url = self.radicale.make_calendar(user, f"{name}-{self.folder.name}")
        linked = url if via is None else via.url + url[len(self.radicale.url.rstrip("/")) :]
        with self.store.session() as session:
            calendar = add_caldav_calendar(
                session, box(), name, linked, user, USERS[user], check=False, **options
            )
            session.flush()
            calendar_id = calendar.id
        self.urls[name] = url
        return calendar_id

    def put(self, calendar: str, uid: str, name: str, day: int = 0) -> None:
        self.radicale.put_ics(f"{self.urls[calendar]}{uid}.ics", event_ics(uid, name, day))

    def serve(self, *args: str, **env: str) -> Proc:
        port = free_port()
        proc = self._start(
            ["serve", "--port", str(port), *args], f"serve-{len(self.procs)}.log", env
        )
        proc.url = f"http://127.0.0.1:{port}"
        wait_until(lambda: self._answers(proc), 60, "calbridge serve to answer /healthz")
        return proc

    def worker(self, *args: str, **env: str) -> Proc:
        proc = self._start(["worker", *args], f"worker-{len(self.procs)}.log", env)
        wait_until(
            lambda: "started" in proc.output() or proc.process.poll() is not None,
            60,
            "calbridge worker to start",
        )
        assert proc.process.poll() is None, proc.output()
        return proc

    def _start(self, argv: list[str], log_name: str, env: dict[str, str]) -> Proc:
        log = self.folder / log_name
        with log.open("wb") as out:
            process = subprocess.Popen(
                [CALBRIDGE, *argv], env=self.env(**env), stdout=out, stderr=subprocess.STDOUT
            )
        proc = Proc(process, log)
        self.procs.append(proc)
        return proc

    @staticmethod
    def _answers(proc: Proc) -> bool:
        if proc.process.poll() is not None:
            raise AssertionError(f"calbridge exited early:\n{proc.output()[-3000:]}")
        try:
            return httpx.get(f"{proc.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # -- reading what happened ------------------------------------------------------------
    def bookings(self) -> dict[str, int]:
        """Booking name -> how many bookings carry it."""
        with self.store.session() as session:
            rows = session.execute(select(Event.name, func.count()).group_by(Event.name))
            return {name: count for name, count in rows}

    def runs(self, calendar_id: int | None = None) -> list[SyncRun]:
        with self.store.session() as session:
            query = select(SyncRun).order_by(SyncRun.id)
            if calendar_id is not None:
                query = query.where(SyncRun.calendar_id == calendar_id)
            return list(session.scalars(query))

    def calendar(self, calendar_id: int) -> Calendar:
        with self.store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            assert calendar is not None
            return calendar

    def radicale_uids(self, calendar: str) -> list[str]:
        """UIDs of the calendar's objects as Radicale holds them (one REPORT, no calbridge)."""
        url = self.urls[calendar]
        body = (
            '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop>'
            '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
        )
        response = self.radicale._client_for(url).request(
            "REPORT", url, content=body, headers={"Depth": "1"}, timeout=60
        )
        return [
            line.split(":", 1)[1].strip()
            for line in response.text.splitlines()
            if line.startswith("UID:")
        ]

    def due_now(self, calendar_id: int) -> None:
        """Make the calendar due for the scheduler's next tick."""
        with self.store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            assert calendar is not None
            calendar.next_run_at = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)

    def not_due(self, calendar_id: int) -> None:
        with self.store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            assert calendar is not None
            calendar.next_run_at = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)

    def duplicate_links(self) -> int:
        with self.store.session() as session:
            per_key = (
                select(Link.calendar_id, Link.key, Link.recurrence_id, func.count().label("n"))
                .group_by(Link.calendar_id, Link.key, Link.recurrence_id)
                .subquery()
            )
            return int(session.scalar(select(func.count()).where(per_key.c.n > 1)) or 0)


@contextmanager
def world_on(folder: Path, database_url: str, radicale: RadicaleServer) -> Iterator[World]:
    store = open_store(database_url)
    with store.session() as session:
        import_directory(session, EXAMPLE.read_text(encoding="utf-8"))
    world = World(folder, database_url, store, radicale)
    try:
        yield world
    finally:
        for proc in world.procs:
            proc.stop()
        store.dispose()


def overlapping(runs: list[SyncRun]) -> list[tuple[int, int]]:
    """Pairs of runs of one calendar whose [started, finished] intervals overlap."""
    pairs = []
    by_calendar: dict[int, list[SyncRun]] = {}
    for run in runs:
        by_calendar.setdefault(run.calendar_id, []).append(run)
    for each in by_calendar.values():
        each.sort(key=lambda r: r.started_at)
        for before, after in itertools.pairwise(each):
            end = before.finished_at or datetime.max
            if after.started_at < end:
                pairs.append((before.id, after.id))
    return pairs
