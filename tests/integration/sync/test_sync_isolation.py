"""One bad server, one bug or two runs at once never take the run down: each is that calendar's
one-line error, the other calendars sync, and tracebacks go to the log, never the terminal."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sync_helpers import USERS

from calbridge.demo.seed import vevent
from calbridge.domain.remote import CalendarProvider
from calbridge.errors import CalendarBusy
from calbridge.store.db import Store, open_store
from calbridge.store.models import Calendar, Link, SyncLock
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.locks import calendar_lock
from calbridge.sync.providers import open_provider
from fake_caldav import Collection, FakeCalDAV, running_fake_caldav
from worlds import EXAMPLE

SOON = datetime.now().replace(microsecond=0, second=0, minute=0) + timedelta(days=3)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCalDAV]:
    with running_fake_caldav() as server:
        yield server


def _event(uid: str, day: int) -> str:
    start = SOON + timedelta(days=day)
    return vevent(
        uid,
        f"Booking {uid}",
        start,
        start + timedelta(hours=1),
        organizer="ann@acme-events.example",
    )


def _calendar_id(store: Store, name: str) -> int:
    with store.session() as session:
        return session.scalars(select(Calendar.id).where(Calendar.name == name)).one()


def _links(store: Store, name: str) -> int:
    with store.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Link)
                .where(Link.calendar_id == _calendar_id(store, name))
            )
            or 0
        )


def test_an_unexpected_error_in_one_calendar_is_its_error_and_the_next_calendar_syncs(
    world, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("a-buggy")
    world.add_calendar("b-fine")
    world.put("a-buggy", "e1.ics", _event("iso-a1", 1))
    world.put("b-fine", "e1.ics", _event("iso-b1", 1))

    def factory(calendar: Calendar) -> CalendarProvider:
        provider = open_provider(calendar, world.box)
        if calendar.name == "a-buggy":

            def broken(*_args: object) -> object:
                return {}["a bug in a provider"]  # KeyError: nobody planned for it

            provider.list_changes = broken  # type: ignore[method-assign]
        return provider

    reports = {}
    with caplog.at_level(logging.WARNING, logger="calbridge"):
        for name in ("a-buggy", "b-fine"):
            reports[name] = sync_calendar(world.store, _calendar_id(world.store, name), factory)

    buggy, fine = reports["a-buggy"], reports["b-fine"]
    assert not buggy.ok and buggy.error is not None
    assert buggy.error.startswith("calendar 'a-buggy': the sync stopped on an unexpected error")
    assert "KeyError" in buggy.error and "\n" not in buggy.error
    assert fine.ok and fine.created == 1 and _links(world.store, "b-fine") == 1
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is KeyError]
    assert logged, "the unexpected error's traceback is logged"
    with world.store.session() as session:
        stored = session.get(Calendar, _calendar_id(world.store, "a-buggy"))
        assert stored is not None and stored.last_error == buggy.error


def test_a_calendar_being_synced_elsewhere_is_that_calendars_error_and_the_others_sync(
    world,
) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("busy")
    world.add_calendar("free")
    world.put("busy", "e1.ics", _event("busy-1", 1))
    world.put("free", "e1.ics", _event("free-1", 1))
    busy_id = _calendar_id(world.store, "busy")
    with calendar_lock(world.store, busy_id):  # another sync of "busy" is under way
        busy = world.sync("busy")
        free = world.sync("free")
    assert not busy.ok
    assert busy.error is not None and busy.error.startswith(
        "calendar 'busy' is being synced by another process"
    )
    assert _links(world.store, "busy") == 0
    assert free.ok and free.created == 1
    again = world.sync("busy")  # the lock was released
    assert again.ok and again.created == 1


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_sync_lock_admits_one_holder_per_calendar(
    db: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url")
    store = open_store(url)
    try:
        box = SecretBox(SecretBox.generate_key())
        with store.session() as session:
            for name in ("one", "two"):
                add_caldav_calendar(
                    session, box, name, f"http://127.0.0.1:9/{name}/", "u", "p", check=False
                )
        one, two = _calendar_id(store, "one"), _calendar_id(store, "two")
        with calendar_lock(store, one):
            busy = pytest.raises(CalendarBusy, match="calendar 'one' is being synced by another")
            with busy, calendar_lock(store, one):
                pass
            with calendar_lock(store, two):  # another calendar is not held up
                pass
        with calendar_lock(store, one):  # released on leaving
            pass
    finally:
        store.dispose()


def test_a_lock_row_left_by_a_killed_process_is_taken_over_but_a_live_ones_is_not(
    world,
) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("locked")
    cal_id = _calendar_id(world.store, "locked")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    host = __import__("socket").gethostname()
    with world.store.session() as session:
        session.add(
            SyncLock(
                calendar_id=cal_id,
                owner=f"{host}:{dead_pid}::x",
                host=host,
                pid=dead_pid,
                acquired_at=datetime.utcnow(),
            )
        )
    with calendar_lock(world.store, cal_id):  # the holder is dead: its row is stale
        pass
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as alive:
        try:
            with world.store.session() as session:
                session.add(
                    SyncLock(
                        calendar_id=cal_id,
                        owner=f"{host}:{alive.pid}::y",
                        host=host,
                        pid=alive.pid,
                        acquired_at=datetime.utcnow(),
                    )
                )
            with (
                pytest.raises(CalendarBusy, match=f"pid {alive.pid}"),
                calendar_lock(world.store, cal_id),
            ):
                pass
        finally:
            assert alive.stdin is not None
            alive.stdin.close()
            alive.wait(timeout=30)


def test_calendar_whose_server_is_down_is_reported_and_others_sync(world) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("front")
    start = datetime(2027, 3, 1, 9)
    world.put("front", "a.ics", vevent("a", "Still syncs", start, start.replace(hour=10)))
    with world.store.session() as session:
        add_caldav_calendar(
            session, world.box, "dead", "http://127.0.0.1:9/cal/", "x", "y", check=False
        )
    dead = world.sync("dead")
    assert not dead.ok and "127.0.0.1" in (dead.error or "")
    assert world.sync("front").created == 1


# ---------------------------------------------------------------- through the CLI


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    env |= {"CALBRIDGE_DATA_DIR": str(tmp_path / "data"), "CALBRIDGE_PW": USERS["staff"]}
    env["COLUMNS"] = "200"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "calbridge.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run("directory", "import", str(EXAMPLE)).returncode == 0
    run.data_dir = tmp_path / "data"  # type: ignore[attr-defined]
    return run


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(Collection(listing_body=b"<D:multistatus xmlns:D='DAV:'><D:resp"), id="cut"),
        pytest.param(Collection(listing_body=b"\x00\xffgarbage, not XML"), id="garbage"),
    ],
)
def test_sync_with_a_server_sending_broken_xml_fails_that_calendar_alone(
    cli, radicale, fake: FakeCalDAV, broken: Collection, request: pytest.FixtureRequest
) -> None:  # type: ignore[no-untyped-def]
    broken_url = fake.serve(f"broken-{request.node.callspec.id}", broken)
    good_url = radicale.make_calendar("staff", f"after-broken-{request.node.callspec.id}")
    radicale.put_ics(good_url + "e1.ics", _event(f"good-{request.node.callspec.id}", 2))
    for name, url in (("a-broken", broken_url), ("b-good", good_url)):
        added = cli("calendars", "add", name, "--caldav", url, "--username", "staff",
                    "--password-env", "CALBRIDGE_PW")  # fmt: skip
        assert added.returncode == 0, added.stderr
    for _ in range(2):  # on every run, not only the first
        done = cli("sync", "--json")
        assert done.returncode == 4, done.stderr
        assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
        reports = {r["calendar"]: r for r in json.loads(done.stdout)}
        assert not reports["a-broken"]["ok"]
        assert reports["a-broken"]["error"].startswith("calendar 'a-broken'")
        assert reports["b-good"]["ok"]
    assert reports["b-good"]["pulled"] == 0  # the first run imported it; nothing new since
    shown = cli("events", "list", "--json")
    assert [e["name"] for e in json.loads(shown.stdout)] == [
        f"Booking good-{request.node.callspec.id}"
    ]


def test_a_second_sync_process_says_the_calendar_is_being_synced_and_syncs_the_others(
    cli, radicale
) -> None:  # type: ignore[no-untyped-def]
    for name in ("held", "other"):
        url = radicale.make_calendar("staff", f"second-process-{name}")
        radicale.put_ics(url + "e1.ics", _event(f"second-{name}", 1))
        added = cli("calendars", "add", name, "--caldav", url, "--username", "staff",
                    "--password-env", "CALBRIDGE_PW")  # fmt: skip
        assert added.returncode == 0, added.stderr
    store = open_store(f"sqlite:///{cli.data_dir / 'calbridge.db'}")
    try:
        with calendar_lock(store, _calendar_id(store, "held")):  # this process is syncing it
            done = cli("sync", "--json")
    finally:
        store.dispose()
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    reports = {r["calendar"]: r for r in json.loads(done.stdout)}
    assert reports["held"]["error"].startswith(
        "calendar 'held' is being synced by another process (pid "
    )
    assert reports["other"]["ok"] and reports["other"]["created"] == 1


def test_log_records_and_tracebacks_go_to_the_log_file_not_the_terminal(tmp_path: Path) -> None:
    code = (
        "import logging\n"
        "from calbridge.config import Settings\n"
        "from calbridge.logs import configure_logging\n"
        f"configure_logging(Settings(data_dir={str(tmp_path)!r}))\n"
        "try:\n"
        "    raise RuntimeError('boom')\n"
        "except RuntimeError:\n"
        "    logging.getLogger('calbridge.sync.engine').exception('unexpected error')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr == "" and done.stdout == ""
    log = (tmp_path / "calbridge.log").read_text()
    assert "unexpected error" in log and "Traceback" in log and "RuntimeError: boom" in log
    assert (tmp_path / "calbridge.log").stat().st_mode & 0o777 == 0o600
