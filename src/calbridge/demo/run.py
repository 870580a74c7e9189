"""``calbridge demo``: the whole product on one machine, with nothing configured.

Starts a real Radicale with two staff calendars seeded with bookings, imports the example
directory into a fresh SQLite database, syncs both ways, changes something on each side, syncs
again, and shows what happened and why. Everything lives in a temporary folder that is removed
at the end — also after Ctrl-C or SIGTERM (what systemd and docker send), which stop Radicale and
the emulators the same way.

With ``keep`` the servers stay up until Ctrl-C/SIGTERM, and the demo prints the emulators' URLs
and the environment lines (``CALBRIDGE_DATABASE_URL``, ``CALBRIDGE_DATA_DIR``,
``CALBRIDGE_SECRET_KEY``) under which other ``calbridge`` commands use the demo's database and
can open its sealed credentials: the demo's secret key is a passphrase, as
``CALBRIDGE_SECRET_KEY`` takes it.
"""

from __future__ import annotations

import secrets
import shlex
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import select

from calbridge.cli.common import Rows, line, report_rows
from calbridge.config import Settings
from calbridge.demo.cloud import ews_calendar, google_calendar, graph_calendar
from calbridge.demo.seed import seed_events, vevent
from calbridge.store.db import Store, open_store
from calbridge.store.directory import import_directory
from calbridge.store.events import event_json, update_event
from calbridge.store.models import Calendar, Event, Link, Rejection
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport
from calbridge_emulators.radicale import RadicaleServer, running_radicale

STAFF = {"mia": ("u-mia", "mia-demo-password"), "tom": ("u-tom", "tom-demo-password")}


@dataclass
class DemoWorld:
    store: Store
    radicale: RadicaleServer
    box: SecretBox
    urls: dict[str, str]
    folder: Path
    secret_key: str  # the passphrase behind ``box`` (CALBRIDGE_SECRET_KEY)
    database_url: str


@contextmanager
def demo_world(folder: Path) -> Iterator[DemoWorld]:
    """Radicale + a seeded store in ``folder``; stopped on exit."""
    users = {name: password for name, (_uid, password) in STAFF.items()}
    (folder / "radicale").mkdir(parents=True, exist_ok=True)
    with running_radicale(folder / "radicale", users) as radicale:
        database_url = f"sqlite:///{folder / 'calbridge.db'}"
        store = open_store(database_url)
        secret_key = secrets.token_urlsafe(32)
        box = SecretBox.from_settings(Settings(secret_key=secret_key, data_dir=folder))
        directory = (Path(__file__).parent / "directory.json").read_text(encoding="utf-8")
        with store.session() as session:
            import_directory(session, directory)
        urls = {
            name: radicale.make_calendar(name, "bookings", f"{name}'s bookings") for name in STAFF
        }
        try:
            yield DemoWorld(store, radicale, box, urls, folder, secret_key, database_url)
        finally:
            store.dispose()


def seed_calendars(world: DemoWorld, today: date) -> None:
    for name, objects in seed_events(today).items():
        for file_name, ics in objects:
            world.radicale.put_ics(world.urls[name] + file_name, ics)
    with world.store.session() as session:
        for name, (user_id, password) in STAFF.items():
            add_caldav_calendar(
                session,
                world.box,
                f"{name}-bookings",
                world.urls[name],
                name,
                password,
                owner=user_id,
            )


def sync_all(world: DemoWorld) -> list[SyncReport]:
    with world.store.session() as session:
        ids = list(session.scalars(select(Calendar.id).order_by(Calendar.name)))
    return [
        sync_calendar(world.store, cid, lambda c: open_provider(c, world.box, world.store))
        for cid in ids
    ]


def change_both_sides(world: DemoWorld, today: date) -> list[str]:
    """A person moves a booking in their calendar app; another renames one in the booking
    system and cancels a third."""
    d = today + timedelta(days=7)
    moved = vevent(
        "demo-3",
        "Acme leadership offsite",
        datetime(d.year, d.month, d.day, 10) + timedelta(days=2),
        datetime(d.year, d.month, d.day, 18) + timedelta(days=2),
        organizer="ann@acme-events.example",
        location="Ballroom",
        rooms=("ballroom@harbour.example",),  # moved, still in the Ballroom
    )
    world.radicale.put_ics(world.urls["mia"] + "acme-offsite.ics", moved)
    with world.store.session() as session:
        tasting = session.scalars(select(Event).where(Event.name == "Supplier tasting")).one()
        update_event(session, tasting, {"name": "Supplier tasting (wine pairing)"})
        walk_in = session.scalars(select(Event).where(Event.name == "Walk-in enquiry")).one()
        update_event(session, walk_in, {"status": "cancelled"})
    return [
        "calendar: Mia moved 'Acme leadership offsite' to 10:00–18:00 in her calendar app",
        "booking system: 'Supplier tasting' renamed to 'Supplier tasting (wine pairing)'",
        "booking system: 'Walk-in enquiry' cancelled",
    ]


def bookings_table(world: DemoWorld) -> Rows:
    table = Rows(
        "#",
        "booking",
        "when",
        "status",
        "client",
        "contact",
        "booked by",
        "manager",
        "room",
        "why",
        title="Bookings, and why they were assigned as they are",
    )
    with world.store.session() as session:
        for event in session.scalars(select(Event).order_by(Event.start_utc, Event.id)):
            data = event_json(session, event)
            why = short_why(data["booker_email"], data["trace"])
            table.add(
                str(data["id"]),
                data["name"],
                data["start"].replace("T", " ")[:16],
                data["status"],
                data["client"]["name"],
                (data["client_contact"] or {}).get("name"),
                data["booked_by"]["name"],
                data["event_manager"]["name"],
                _rooms(data),
                why,
            )
    return table


def _rooms(data: dict[str, Any]) -> str:
    """The booking's rooms (from the venue's list) or its free-text place."""
    shown = [
        b["location"]["name"] if b["location"] else f"{b['text'] or '—'} (no room)"
        for b in data["booked_locations"]
        if b["status"] == "confirmed"
    ]
    return ", ".join(shown) or "—"


def rooms_booked(world: DemoWorld) -> dict[str, list[str]]:
    """Booking name → the venue rooms it holds (for ``--json`` and tests)."""
    with world.store.session() as session:
        return {
            event.name: [
                b["location"]["name"]
                for b in event_json(session, event)["booked_locations"]
                if b["location"] and b["status"] == "confirmed"
            ]
            for event in session.scalars(select(Event).order_by(Event.start_utc, Event.id))
        }


SHORT_RULES = {
    2: "a user linked to a contact",
    4: "a contact's email",
    5: "no contact: the Default Account",
}


def short_why(address: str | None, trace: list[dict[str, object]]) -> str:
    """One line per booking; `calbridge events show ID` has the whole trace."""
    steps = {
        int(str(step["step"])): str(step["outcome"])
        for step in trace
        if str(step["step"]).isdigit()  # the rules' steps, not the room steps
    }
    last = max(steps)
    why = f"{address or 'no address'} → step {last}: {SHORT_RULES.get(last, steps[last])}"
    if 1 in steps and steps[1].startswith("found user"):
        why += f" (booker is {steps[1].split(' by ')[0].removeprefix('found user ')})"
    return why


def rejections_table(world: DemoWorld) -> Rows:
    table = Rows("uid", "reason", title="Rejected calendar events (skipped; the rest synced)")
    with world.store.session() as session:
        for r in session.scalars(select(Rejection)):
            table.add(r.uid or r.remote_id, r.reason)
    return table


def run_demo(
    console: Console, keep: bool, wait: Callable[[], None] | None = None
) -> dict[str, object]:
    """Run the scenario; return the figures (for tests and ``--json``)."""
    folder = Path(tempfile.mkdtemp(prefix="calbridge-demo-"))
    try:
        with _sigterm_as_interrupt():
            return _scenario(console, folder, keep, wait)
    finally:  # also after Ctrl-C, SIGTERM, or when a step fails: leave nothing behind
        _remove(folder)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwound like Ctrl-C, so every server is stopped and the folder goes."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the demo runs, SIGTERM raises :class:`Terminated` (only the main thread can set
    signal handlers; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _scenario(
    console: Console, folder: Path, keep: bool, wait: Callable[[], None] | None
) -> dict[str, object]:
    today = date.today()
    with demo_world(folder) as world:
        console.print(line(f"Radicale running at {world.radicale.url} (data in {folder})"))
        seed_calendars(world, today)
        cloud = ExitStack()
        google = cloud.enter_context(google_calendar(world.store, world.box, today))
        graph = cloud.enter_context(graph_calendar(world.store, world.box, today))
        exchange = cloud.enter_context(ews_calendar(world.store, world.box, today))
        console.print(
            "Google Calendar, Microsoft 365 and Exchange Server (EWS) emulators running "
            "(real client libraries)"
        )
        first = sync_all(world)
        report_rows(first, "1. First sync: calendars → booking system").print(console)
        changes = change_both_sides(world, today)
        for change in changes:
            console.print(line(f"  • {change}"))
        second = sync_all(world)
        report_rows(second, "2. Sync after a change on each side").print(console)
        third = sync_all(world)
        report_rows(
            third, "3. Sync again: only the echoes of our own writes come back, recognised"
        ).print(console)
        bookings_table(world).print(console)
        rejections_table(world).print(console)
        with world.store.session() as session:
            links = session.scalar(select(Link.id).limit(1))
        result = {
            "first": [r.as_dict() for r in first],
            "second": [r.as_dict() for r in second],
            "third": [r.as_dict() for r in third],
            "has_links": links is not None,
            "rooms": rooms_booked(world),
        }
        if keep:
            for text in keep_lines(
                world, google.base_url, graph.graph_url, graph.login_base, exchange.ews_url
            ):
                console.print(line(text), soft_wrap=True)
            (wait or _wait_forever)()
        cloud.close()
    return result


def keep_lines(
    world: DemoWorld, google_url: str, graph_url: str, login_url: str, ews_url: str = ""
) -> list[str]:
    """What ``--keep`` prints: where everything runs, and the shell lines for exploring."""
    env = {
        "CALBRIDGE_DATABASE_URL": world.database_url,
        "CALBRIDGE_DATA_DIR": str(world.folder),
        "CALBRIDGE_SECRET_KEY": world.secret_key,
    }
    return [
        f"Keeping it running (Ctrl-C or SIGTERM stops everything and removes {world.folder}).",
        f"  CalDAV (Radicale): {world.urls['mia']} (user mia, password {STAFF['mia'][1]}), "
        f"{world.urls['tom']} (user tom, password {STAFF['tom'][1]})",
        f"  Google Calendar API emulator: {google_url}",
        f"  Microsoft Graph emulator: {graph_url} (sign-in: {login_url})",
        *([f"  Exchange Server (EWS) emulator: {ews_url}"] if ews_url else []),
        "To explore the demo's database with calbridge in another shell, first run:",
        *(f"  export {name}={shlex.quote(value)}" for name, value in env.items()),
        "  then e.g. `calbridge events list`, `calbridge calendars list`, `calbridge sync`.",
    ]


def _wait_forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
