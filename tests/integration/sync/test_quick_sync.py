"""``calbridge sync``'s quick path (``calbridge.sync.quick``): a calendar with nothing to do is
finished with one REPORT and without the engine; anything that may give a sync work — a
booking edited, the directory, the calendar's settings, a change on the calendar — goes to the
engine, and what the engine would report (a server down, a lock held) is reported the same.
Real ``calbridge`` processes against a real Radicale, on SQLite."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import USERS

from calbridge.demo.seed import vevent
from calbridge.sync.quick import (
    CALENDAR_BOOKKEEPING,
    CALENDAR_SETTINGS,
    COUNTED_TABLES,
    IGNORED_TABLES,
    REVISION_QUERY,
    WATCHED_TABLES,
)
from calbridge_emulators.radicale import RadicaleServer, running_radicale
from worlds import EXAMPLE

#: What a sync process reports about itself on stderr: did it load the engine?
PROBE = (
    "import json, sys\nsys.argv = ['calbridge', *json.loads(sys.argv[1])]\n"
    "from calbridge.cli.main import main\n"
    "try:\n    main()\n    code = 0\n"
    "except SystemExit as exc:\n    code = exc.code or 0\n"
    "engine = 'calbridge.sync.engine' in sys.modules\n"
    "sys.stderr.write('PROBE ' + json.dumps([code, engine]) + '\\n')\n"
)


class Cli:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
        self.env |= {
            "CALBRIDGE_DATA_DIR": str(data),
            "CALBRIDGE_PW": USERS["staff"],
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "calbridge.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def sync(self, *names: str) -> tuple[int, dict[str, Any], bool, str]:
        """``calbridge sync --json NAMES``: exit code, the first report, whether the engine was
        loaded, and stderr."""
        done = subprocess.run(
            [sys.executable, "-c", PROBE, json.dumps(["sync", "--json", *names])],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        probe = [line for line in done.stderr.splitlines() if line.startswith("PROBE ")]
        assert probe, done.stderr
        code, engine = json.loads(probe[-1][len("PROBE ") :])
        return code, json.loads(done.stdout)[0], engine, done.stderr

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data / "calbridge.db")

    def add(self, name: str, url: str) -> None:
        """``calbridge calendars add NAME --caldav URL`` as the staff user; it must succeed."""
        added = self(
            "calendars", "add", name, "--caldav", url, "--username", "staff",
            "--password-env", "CALBRIDGE_PW",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    run = Cli(tmp_path / "data")
    assert run("directory", "import", str(EXAMPLE)).returncode == 0
    return run


def _dt(day: int, hour: int) -> datetime:
    base = date.today() + timedelta(days=60 + day)
    return datetime(base.year, base.month, base.day, hour)


def _quiet_calendar(cli: Cli, radicale: RadicaleServer, name: str) -> str:
    """A calendar with one event, imported; its URL. The import leaves it quiet."""
    url = radicale.make_calendar("staff", name)
    radicale.put_ics(
        url + "a.ics",
        vevent("a", "Acme offsite", _dt(0, 9), _dt(0, 17), organizer="ann@acme-events.example"),
    )
    cli.add("front", url)
    code, report, engine, err = cli.sync()
    assert (code, report["created"], engine) == (0, 1, True), err
    return url


def test_a_calendar_with_nothing_to_do_is_synced_with_one_request_and_no_engine(
    cli: Cli, radicale: RadicaleServer
) -> None:
    _quiet_calendar(cli, radicale, "quick-quiet")
    before = cli.db().execute("SELECT sync_token FROM calendars").fetchone()
    for _ in range(2):
        code, report, engine, err = cli.sync()
        assert (code, engine, report["ok"], report["requests"]) == (0, False, True, 1), err
        assert report["pulled"] == report["pushed_updated"] == 0
    last_report, last_error, token = (
        cli.db().execute("SELECT last_report, last_error, sync_token FROM calendars").fetchone()
    )
    assert json.loads(last_report)["requests"] == 1 and last_error is None
    assert (token,) == before
    # the rest of the program reads what the quick path wrote
    shown = json.loads(cli("calendars", "show", "front", "--json").stdout)
    assert shown["name"] == "front"


def test_a_booking_edited_after_a_quiet_sync_is_pushed_by_the_next_one(
    cli: Cli, radicale: RadicaleServer
) -> None:
    url = _quiet_calendar(cli, radicale, "quick-edit")
    [(event_id,)] = cli.db().execute("SELECT id FROM events").fetchall()
    edited = cli("events", "update", str(event_id), "--name", "Acme offsite (moved)")
    assert edited.returncode == 0, edited.stderr
    code, report, engine, err = cli.sync()
    assert (code, engine, report["pushed_updated"]) == (0, True, 1), err
    assert "Acme offsite (moved)" in radicale.get_ics(url + "a.ics")


def test_the_directory_or_the_calendars_settings_changed_send_the_sync_to_the_engine(
    cli: Cli, radicale: RadicaleServer, tmp_path: Path
) -> None:
    _quiet_calendar(cli, radicale, "quick-settings")
    assert cli.sync()[2] is False
    assert cli("calendars", "update", "front", "--horizon-days", "400").returncode == 0
    assert cli.sync()[2] is True  # the settings changed: the engine syncs …
    assert cli.sync()[2] is False  # … and leaves it quiet again
    assert cli("directory", "import", str(EXAMPLE)).returncode == 0
    assert cli.sync()[2] is False  # the same directory again changes nothing
    directory = json.loads(EXAMPLE.read_text())
    directory["companies"].append({"id": "co-new", "name": "New Client Ltd"})
    changed = tmp_path / "directory.json"
    changed.write_text(json.dumps(directory))
    assert cli("directory", "import", str(changed)).returncode == 0
    code, report, engine, err = cli.sync()
    assert (code, engine, report["ok"]) == (0, True, True), err


def test_a_change_on_the_calendar_is_pulled_with_the_listing_the_quick_path_started(
    cli: Cli, radicale: RadicaleServer
) -> None:
    url = _quiet_calendar(cli, radicale, "quick-pull")
    radicale.put_ics(
        url + "b.ics",
        vevent("b", "Board dinner", _dt(1, 19), _dt(1, 22), organizer="ann@acme-events.example"),
    )
    code, report, engine, err = cli.sync()
    assert (code, engine, report["created"]) == (0, True, 1), err
    # one sync-collection REPORT (started before the engine loaded) and one multiget
    assert report["requests"] == 2


def test_a_server_down_on_a_quiet_calendar_is_reported_as_the_engine_reports_it(
    cli: Cli, tmp_path: Path
) -> None:
    with running_radicale(tmp_path / "own-radicale", USERS) as server:
        _quiet_calendar(cli, server, "quick-down")
    code, report, engine, err = cli.sync()
    assert (code, engine, report["ok"]) == (4, False, False), err
    assert "cannot reach the server" in report["error"] and "front" in report["error"]
    assert "Traceback" not in err
    (last_error,) = cli.db().execute("SELECT last_error FROM calendars").fetchone()
    assert last_error == report["error"]


def test_a_calendar_another_process_is_syncing_is_left_to_it(
    cli: Cli, radicale: RadicaleServer
) -> None:
    _quiet_calendar(cli, radicale, "quick-busy")
    db = cli.db()
    with db:
        db.execute(
            "INSERT INTO sync_locks (calendar_id, owner, host, pid, acquired_at) "
            "SELECT id, 'elsewhere:1:0:x', 'elsewhere', 1, ? FROM calendars",
            (datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f"),),
        )
    code, report, _engine, err = cli.sync()
    assert (code, report["ok"]) == (4, False), err
    assert "being synced by another process" in report["error"]


def test_every_table_and_calendar_column_is_watched_or_ignored(cli: Cli) -> None:
    """A new table or calendar column must be classified in ``calbridge.sync.quick`` (and a
    watched table given its triggers in a migration), or the quick path could miss work."""
    db = cli.db()
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    tables -= {"sqlite_sequence"}
    assert tables == WATCHED_TABLES | IGNORED_TABLES | {"calendars"}
    assert not WATCHED_TABLES & IGNORED_TABLES
    columns = {r[1] for r in db.execute("PRAGMA table_info(calendars)")}
    assert columns == CALENDAR_SETTINGS | CALENDAR_BOOKKEEPING
    assert not CALENDAR_SETTINGS & CALENDAR_BOOKKEEPING
    triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert set(COUNTED_TABLES) <= WATCHED_TABLES
    for table in [*WATCHED_TABLES, "calendars"]:
        for when in ("insert", "update", "delete"):
            counted = table in COUNTED_TABLES and when == "insert"  # seen by the row count
            assert (f"revision_{table}_{when}" in triggers) != counted, (table, when)


def test_writes_to_watched_tables_and_settings_raise_the_revision_bookkeeping_does_not(
    cli: Cli,
) -> None:
    db = cli.db()

    def revision() -> int:
        return int(db.execute("SELECT value FROM counters WHERE name='revision'").fetchone()[0])

    def full() -> str:
        return str(db.execute(REVISION_QUERY).fetchone()[0])

    start = revision()
    with db:
        db.execute(
            "UPDATE companies SET name = name || ' Ltd' WHERE id = (SELECT min(id) FROM companies)"
        )
    assert revision() == start + 1
    with db:
        db.execute(
            "INSERT INTO calendars (name, kind, settings, policy, direction, horizon_days, "
            "key_prefix, full_gen, created_at) VALUES ('c', 'caldav', '{}', 'booking-wins', "
            "'both', 365, 'k', 0, '2026-01-01 00:00:00.000000')"
        )
    assert revision() == start + 2
    with db:
        db.execute("UPDATE calendars SET last_report = '{}', sync_token = 't', state = 'ok'")
    assert revision() == start + 2
    with db:
        db.execute("UPDATE calendars SET filters = '{}'")
    assert revision() == start + 3
    # a booking inserted and deleted, another inserted: each step changes the revision text
    seen = [full()]
    booking = (
        'INSERT INTO events (name, start, "end", all_day, start_utc, end_utc, status, '
        "ambiguous, created_at, updated_at, change_seq) VALUES ('b', '2027-01-01T10:00', "
        "'2027-01-01T11:00', 0, '2027-01-01 10:00:00.000000', '2027-01-01 11:00:00.000000', "
        "'confirmed', 0, '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 1)"
    )
    with db:
        db.execute(booking)
    seen.append(full())
    with db:
        db.execute("DELETE FROM events WHERE id = (SELECT max(id) FROM events)")
    seen.append(full())
    with db:
        db.execute(booking)
    seen.append(full())
    assert len(set(seen)) == 4, seen
    assert revision() == start + 4  # only the delete ran a trigger


def test_a_quiet_push_only_calendar_makes_no_request_and_an_edit_is_still_written(
    cli: Cli, radicale: RadicaleServer
) -> None:
    url = _quiet_calendar(cli, radicale, "quick-push")
    assert cli("calendars", "update", "front", "--direction", "push").returncode == 0
    code, report, engine, err = cli.sync()
    assert (code, engine) == (0, True), err  # the settings changed: the engine, once
    code, report, engine, err = cli.sync()
    assert (code, engine, report["requests"], report["ok"]) == (0, False, 0, True), err
    [(event_id,)] = cli.db().execute("SELECT id FROM events").fetchall()
    assert cli("events", "update", str(event_id), "--name", "Renamed").returncode == 0
    code, report, engine, err = cli.sync()
    assert (code, engine, report["pushed_updated"]) == (0, True, 1), err
    assert "Renamed" in (radicale.get_ics(url + "a.ics") or "")


def test_a_first_sync_reads_the_calendar_in_a_child_process_and_books_every_event(
    cli: Cli, radicale: RadicaleServer
) -> None:
    """A calendar's first pull (no token yet) is read by a forked child while the engine loads
    (``sync/forked.py``): the bookings are what the objects say — assigned by organizer, a
    weekly series expanded, an all-day event kept all-day — an object with a broken
    organizer is rejected, the child's requests are counted, and the next sync has nothing
    to do."""
    url = radicale.make_calendar("staff", "forked-first")
    day = _dt(0, 9).date()
    objects = {
        "plain.ics": vevent("plain", "Acme offsite", _dt(0, 9), _dt(0, 17),
                            organizer="ann@acme-events.example"),
        "weekly.ics": vevent("weekly", "Raj weekly", _dt(1, 8), _dt(1, 9),
                             organizer="raj.patel@mail.example", rrule="FREQ=WEEKLY;COUNT=3"),
        "allday.ics": vevent("allday", "Harbour fair", day, day + timedelta(days=1),
                             organizer="mia@harbour.example", tz=None),
        "damaged.ics": vevent("damaged", "Broken", _dt(2, 9), _dt(2, 10),
                              organizer="not an address"),
    }  # fmt: skip
    for name, ics in objects.items():
        radicale.put_ics(url + name, ics)
    cli.add("front", url)
    code, report, engine, err = cli.sync()
    assert (code, engine, report["ok"]) == (0, True, True), err
    assert (report["pulled"], report["created"], report["rejected"]) == (4, 5, 1)
    assert report["requests"] == 3  # the query, the probe and the listing, all the child's
    log = (cli.data / "calbridge.log").read_text()
    assert "calendar 'front': read by child process" in log
    rows = (
        cli.db()
        .execute("SELECT name, client_id, all_day FROM events ORDER BY start_utc, name")
        .fetchall()
    )
    assert sorted(rows) == sorted(
        [("Acme offsite", "co-acme", 0), ("Harbour fair", "co-harbour", 1)]
        + [("Raj weekly", "ct-raj", 0)] * 3
    )
    rejected = cli.db().execute("SELECT uid, reason FROM rejections").fetchall()
    assert [uid for uid, _ in rejected] == ["damaged"]
    code, report, engine, err = cli.sync()
    assert (code, engine, report["requests"], report["pulled"]) == (0, False, 1, 0), err


def test_a_first_sync_whose_server_is_down_is_reported_from_the_child_as_the_engine_reports_it(
    cli: Cli, tmp_path: Path
) -> None:
    """The child's failure is the sync's: the same one-line error (from the listing's own
    exception, raised again in the parent), stored as the calendar's last error, no token."""
    with running_radicale(tmp_path / "own-radicale", USERS) as server:
        url = server.make_calendar("staff", "forked-down")
        cli.add("front", url)
    code, report, engine, err = cli.sync()
    assert (code, engine, report["ok"]) == (4, True, False), err
    assert "cannot reach the server" in report["error"] and "front" in report["error"]
    assert report["requests"] >= 1 and "Traceback" not in err
    assert "calendar 'front': read by child process" in (cli.data / "calbridge.log").read_text()
    last_error, token = cli.db().execute("SELECT last_error, sync_token FROM calendars").fetchone()
    assert (last_error, token) == (report["error"], None)


def test_only_calendars_reached_before_the_engine_is_loaded_are_read_by_a_child(
    cli: Cli, radicale: RadicaleServer
) -> None:
    """Two calendars synced for the first time in one run: the first is read by a child while
    the engine loads; the second, reached once the engine holds its database connections
    (which a child must not inherit), is read in this process. Both are imported whole."""
    for n, name in enumerate(("alpha", "beta")):
        url = radicale.make_calendar("staff", f"forked-{name}")
        radicale.put_ics(
            url + "a.ics",
            vevent(f"{name}-a", f"{name} offsite", _dt(n, 9), _dt(n, 17),
                   organizer="ann@acme-events.example"),
        )  # fmt: skip
        cli.add(name, url)
    done = cli("sync", "--json")
    assert done.returncode == 0, done.stderr
    reports = {r["calendar"]: r for r in json.loads(done.stdout)}
    assert {name: r["created"] for name, r in reports.items()} == {"alpha": 1, "beta": 1}
    log = (cli.data / "calbridge.log").read_text()
    assert "calendar 'alpha': read by child process" in log
    assert "calendar 'beta': read by child process" not in log


def test_a_first_sync_read_by_a_child_still_pushes_what_the_calendar_lacks(
    cli: Cli, radicale: RadicaleServer
) -> None:
    """The parent makes a provider of its own only when it has something to write: a booking
    put on the calendar before its first sync is written by the same run that reads the
    calendar in a child, and both processes' requests are counted."""
    url = radicale.make_calendar("staff", "forked-push")
    radicale.put_ics(
        url + "a.ics",
        vevent("a", "Acme offsite", _dt(0, 9), _dt(0, 17), organizer="ann@acme-events.example"),
    )
    cli.add("front", url)
    created = cli(
        "events", "create", "--name", "Board dinner", "--start", _dt(1, 19).isoformat(),
        "--end", _dt(1, 22).isoformat(), "--booker", "ann@acme-events.example",
        "--calendar", "front",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    code, report, engine, err = cli.sync()
    assert (code, engine, report["ok"]) == (0, True, True), err
    assert (report["created"], report["pushed_created"]) == (1, 1), report
    # the child's query, probe and listing, then the parent's own write
    assert report["requests"] == 4
    assert "calendar 'front': read by child process" in (cli.data / "calbridge.log").read_text()
    [(remote_id,)] = (
        cli.db()
        .execute(
            "SELECT remote_id FROM links JOIN events ON events.id = links.event_id "
            "WHERE events.name = 'Board dinner'"
        )
        .fetchall()
    )
    assert "Board dinner" in (radicale.get_ics(url[: url.index("/staff/")] + remote_id) or "")
    # the write comes back in the calendar's next listing: known, so nothing is booked twice
    code, report, engine, err = cli.sync()
    assert (code, report["created"], report["pushed_created"]) == (0, 0, 0), err
    assert cli.db().execute("SELECT count(*) FROM events").fetchone() == (2,)
    code, report, engine, err = cli.sync()
    assert (code, engine, report["requests"]) == (0, False, 1), err


def test_a_first_sync_whose_secret_the_child_cannot_open_is_left_to_the_engine(
    cli: Cli, radicale: RadicaleServer
) -> None:
    """The child makes the provider, so it opens the calendar's secret. When it cannot (the
    key changed), it says so before reading anything and the engine syncs the calendar as it
    would have without the child: its own error, naming the command that fixes it."""
    url = radicale.make_calendar("staff", "forked-secret")
    cli.add("front", url)
    cli.env["CALBRIDGE_SECRET_KEY"] = "not the key the credentials were sealed with"
    code, report, engine, err = cli.sync()
    assert (code, engine, report["ok"]) == (4, True, False), err
    assert "calendar 'front': the stored secret cannot be decrypted" in report["error"]
    assert "calbridge calendars update front" in report["error"]
    assert "Traceback" not in err
    log = (cli.data / "calbridge.log").read_text()
    assert "calendar 'front': read by child process" in log
    assert "calendar 'front': the child process did not list it" in log
    last_error, token = cli.db().execute("SELECT last_error, sync_token FROM calendars").fetchone()
    assert (last_error, token) == (report["error"], None)
