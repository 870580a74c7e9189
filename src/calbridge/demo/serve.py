"""``calbridge demo --serve``: the always-on service on the demo world, nothing to configure.

Builds the same world as ``calbridge demo`` (Radicale with two staff calendars, a Google
calendar and a Microsoft 365 calendar on the local emulators, the example directory) in a
temporary folder, then starts ``calbridge serve`` on it as a child process with a public URL
on this machine, so the emulators deliver their push notifications to ``/hooks/google`` and
``/hooks/graph`` (CalDAV is polled every few seconds). Once the first syncs are done and the
channels are open it shows, with the time each took:

1. an event edited on the Google emulator (the real client library) becoming a booking change;
2. the same on the Graph emulator;
3. a booking created through the REST API reaching all three kinds of calendar;

then prints the URLs (admin UI, API docs, a demo API token, the emulators, the CalDAV
calendars) and serves until Ctrl-C / SIGTERM. Everything is removed on exit.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select

from calbridge.config import Settings
from calbridge.demo.cloud import GOOGLE_CALENDAR, GRAPH_MAILBOX, google_calendar, graph_calendar
from calbridge.demo.run import STAFF, DemoWorld, _remove, demo_world, seed_calendars
from calbridge.errors import CalbridgeError
from calbridge.store.models import Calendar, Event, Link
from calbridge.store.secrets import SecretBox

STARTUP_SECONDS = 90.0
CHANGE_SECONDS = 60.0


class DemoFailed(CalbridgeError):
    """A step of the served demo did not happen in time."""


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


Announce = Callable[[dict[str, Any]], None]


def serve_demo(
    console: Console,
    port: int,
    *,
    announce: Announce | None = None,
    wait: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run the served demo. Once the showcase is done its figures go to ``announce`` (``--json``
    prints them as one line) and the service runs until ``wait`` returns — by default until
    Ctrl-C or SIGTERM; returns the figures."""
    folder = Path(tempfile.mkdtemp(prefix="calbridge-demo-serve-"))
    try:
        return _run(console, folder, port, announce or (lambda _r: None), wait or _until_stopped)
    finally:
        _remove(folder)


def _run(
    console: Console, folder: Path, port: int, announce: Announce, wait: Callable[[], None]
) -> dict[str, Any]:
    today = date.today()
    key = secrets.token_urlsafe(32)
    with demo_world(folder) as world, ExitStack() as stack:
        world.box = SecretBox.from_settings(Settings(secret_key=key))
        seed_calendars(world, today)
        google = stack.enter_context(google_calendar(world.store, world.box, today))
        graph = stack.enter_context(graph_calendar(world.store, world.box, today))
        token = _api_token(world)
        console.print("Starting calbridge serve on the demo world…", highlight=False)
        served = stack.enter_context(_service(folder, key, port))
        _wait(lambda: _settled(world), STARTUP_SECONDS, "the first syncs and push channels", served)
        figures = {
            "url": served.url,
            "google_edit_seconds": _google_edit(world, google, served),
            "graph_edit_seconds": _graph_edit(world, graph, served),
            "api_booking_seconds": _api_booking(world, served, token),
        }
        console.print(_showcase_table(figures))
        console.print(_urls_table(world, google, graph, served, token))
        console.print("Serving. Ctrl-C stops it (and removes everything).", highlight=False)
        result = {**figures, "token": token}
        announce(result)
        wait()
        return result


# ------------------------------------------------------------------ the service


@contextmanager
def _service(folder: Path, key: str, port: int) -> Iterator[Served]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env.pop(name, None)
    url = f"http://127.0.0.1:{port}"
    env |= {
        "CALBRIDGE_DATABASE_URL": f"sqlite:///{folder / 'calbridge.db'}",
        "CALBRIDGE_DATA_DIR": str(folder / "service"),
        "CALBRIDGE_SECRET_KEY": key,
        "CALBRIDGE_PUBLIC_URL": url,
        "CALBRIDGE_POLL_CALDAV_SECONDS": "5",
        "CALBRIDGE_SCHEDULER_TICK_SECONDS": "0.5",
        "CALBRIDGE_PUSH_CHECK_SECONDS": "5",
    }
    (folder / "service").mkdir(exist_ok=True)
    log = folder / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "calbridge.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=out,
        )
    served = Served(url, process, log)
    try:
        _wait(lambda: _answers(served), STARTUP_SECONDS, "the service to answer", served)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(35)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _answers(served: Served) -> bool:
    if served.process.poll() is not None:
        raise DemoFailed(f"calbridge serve stopped at start:\n{served.output()}")
    try:
        return httpx.get(served.url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(check: Callable[[], Any], seconds: float, what: str, served: Served) -> float:
    """Poll ``check`` until true; returns the seconds it took (a clear error at the deadline)."""
    started = time.monotonic()
    while not check():
        if served.process.poll() is not None:
            raise DemoFailed(f"calbridge serve stopped while waiting for {what}")
        if time.monotonic() - started > seconds:
            raise DemoFailed(
                f"the demo waited {seconds:.0f} s for {what} in vain; the service said:\n"
                f"{served.output()}"
            )
        time.sleep(0.05)
    return round(time.monotonic() - started, 2)


def _settled(world: DemoWorld) -> bool:
    """Every calendar synced once, and every calendar whose kind has push has its channel
    (Google watch, Graph subscription, Exchange stream)."""
    from calbridge.providers.registry import push_module

    with world.store.session() as session:
        calendars = session.scalars(select(Calendar)).all()
        synced = all(c.last_success_at is not None for c in calendars)
        modules = [(c, push_module(c.kind)) for c in calendars]
        opened = all((c.settings or {}).get(module.SETTINGS_KEY) for c, module in modules if module)
        return bool(calendars) and synced and opened


def _api_token(world: DemoWorld) -> str:
    from calbridge.service.tokens import create_token

    with world.store.session() as session:
        _info, token = create_token(session, "demo", actor="demo")
    return token


# ------------------------------------------------------------------ the showcase


def _booking_named(world: DemoWorld, name: str) -> bool:
    with world.store.session() as session:
        found = session.scalar(select(func.count()).select_from(Event).where(Event.name == name))
        return bool(found)


def _google_edit(world: DemoWorld, google: Any, served: Served) -> float:
    """Rename 'Staff training' in Google Calendar (the real client library)."""
    events = google.build_service(
        google.service_account_credentials(subject=GOOGLE_CALENDAR)
    ).events()
    listed = events.list(calendarId=GOOGLE_CALENDAR, q="Staff training").execute()
    event_id = next(e["id"] for e in listed["items"] if e.get("summary") == "Staff training")
    events.patch(
        calendarId=GOOGLE_CALENDAR,
        eventId=event_id,
        body={"summary": "Staff training (first aid)"},
    ).execute()
    renamed = "Staff training (first aid)"
    return _wait(lambda: _booking_named(world, renamed), CHANGE_SECONDS, "the Google edit", served)


def _graph_edit(world: DemoWorld, graph: Any, served: Served) -> float:
    """Rename 'Patel family lunch' in the Microsoft 365 mailbox (as Outlook would)."""
    with world.store.session() as session:
        remote_id = session.scalar(
            select(Link.remote_id)
            .join(Event, Event.id == Link.event_id)
            .join(Calendar, Calendar.id == Link.calendar_id)
            .where(Calendar.kind == "graph", Event.name == "Patel family lunch")
        )
    if remote_id is None:
        raise DemoFailed("the demo's Microsoft 365 booking 'Patel family lunch' is missing")
    renamed = "Patel family lunch (12 guests)"
    graph.external_update(GRAPH_MAILBOX, remote_id, {"subject": renamed})
    return _wait(lambda: _booking_named(world, renamed), CHANGE_SECONDS, "the Graph edit", served)


def _api_booking(world: DemoWorld, served: Served, token: str) -> float:
    """A booking created through the REST API, for every kind of calendar."""
    zone = ZoneInfo("Europe/London")
    day = date.today() + timedelta(days=10)
    start = datetime(day.year, day.month, day.day, 15, tzinfo=zone)
    with world.store.session() as session:
        names = list(session.scalars(select(Calendar.name).order_by(Calendar.name)))
    targets = [n for n in names if n in ("google-events", "m365-bookings", "mia-bookings")]
    answer = httpx.post(
        served.url + "/api/bookings",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "name": "Harbour tour (booked through the API)",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "timezone": "Europe/London",
            "booker": "ann.lee@acme.example",
            "calendars": targets,
        },
        timeout=30,
    )
    if answer.status_code != 201:
        raise DemoFailed(f"the API refused the demo booking: {answer.status_code} {answer.text}")
    booking_id = int(answer.json()["id"])

    def written() -> bool:
        with world.store.session() as session:
            links = session.scalars(
                select(Link).where(Link.event_id == booking_id, Link.remote_id.is_not(None))
            ).all()
            return len({link.calendar_id for link in links if link.state == "ok"}) >= len(targets)

    return _wait(written, CHANGE_SECONDS, "the API booking on the calendars", served)


def _showcase_table(figures: dict[str, Any]) -> Table:
    table = Table(title="Push: changes arrive without anyone running a sync")
    table.add_column("what happened")
    table.add_column("arrived after", justify="right")
    rows = [
        ("'Staff training' renamed in Google Calendar → booking", "google_edit_seconds"),
        ("'Patel family lunch' renamed in Outlook (Graph) → booking", "graph_edit_seconds"),
        (
            "booking created through the REST API → Google, Microsoft 365, CalDAV",
            "api_booking_seconds",
        ),
    ]
    for label, key in rows:
        table.add_row(Text(label), f"{figures[key]:.2f} s")
    return table


def _urls_table(world: DemoWorld, google: Any, graph: Any, served: Served, token: str) -> Table:
    table = Table(title="The demo, running")
    table.add_column("what")
    table.add_column("where")
    rows = [
        ("admin UI", served.url + "/"),
        ("REST API (OpenAPI docs)", served.url + "/api/docs"),
        ("API token (Authorization: Bearer …)", token),
        ("metrics / health", f"{served.url}/metrics, {served.url}/readyz"),
        ("Google Calendar emulator", google.base_url),
        ("Microsoft Graph emulator", graph.graph_url),
    ]
    for name, (_uid, password) in STAFF.items():
        rows.append(
            (f"CalDAV: {name}'s bookings (user {name}, password {password})", world.urls[name])
        )
    for what, where in rows:
        table.add_row(Text(what), Text(where))
    return table


def _until_stopped() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
