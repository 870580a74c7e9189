"""The sync commands as an admin uses them: `calbridge calendars …`, `sync`, `conflicts`,
`rejections`, `events link` — real CLI processes against a real Radicale."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sync_helpers import USERS, objects_at

from calbridge.demo.seed import vevent
from worlds import EXAMPLE

REPORT_KEYS = {
    "calendar",
    "pulled",
    "created",
    "updated",
    "cancelled",
    "pushed_created",
    "pushed_updated",
    "pushed_deleted",
    "conflicts",
    "rejected",
    "requests",
}


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    env["CALBRIDGE_DATA_DIR"] = str(tmp_path / "data")
    env["CALBRIDGE_PW"] = USERS["staff"]
    env["WRONG_PW"] = "not-the-password"
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
    run.env = env  # type: ignore[attr-defined]
    return run


def _add(cli, name: str, url: str, *extra: str):  # type: ignore[no-untyped-def]
    return cli(
        "calendars",
        "add",
        name,
        "--caldav",
        url,
        "--username",
        "staff",
        "--password-env",
        "CALBRIDGE_PW",
        *extra,
    )


def test_a_no_change_sync_is_one_request_without_icalendar_or_alembic(cli, radicale) -> None:  # type: ignore[no-untyped-def]
    url = radicale.make_calendar("staff", "cli-quiet")
    radicale.put_ics(
        url + "a.ics",
        vevent("a", "Acme offsite", _dt(0, 9), _dt(0, 17), organizer="ann@acme-events.example"),
    )
    assert _add(cli, "front", url).returncode == 0
    first = cli("sync", "--json")
    assert json.loads(first.stdout)[0]["created"] == 1, first.stderr
    code = (
        "import json, sys\nsys.argv = ['calbridge', 'sync', '--json']\n"
        "from calbridge.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('icalendar', 'alembic', 'googleapiclient', 'msal', 'fastapi')\n"
        "sys.stderr.write('LOADED ' + json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    again = subprocess.run(
        [sys.executable, "-c", code], env=cli.env, capture_output=True, text=True, timeout=120
    )
    [report] = json.loads(again.stdout)
    assert (report["pulled"], report["requests"], report["ok"]) == (0, 1, True)
    assert again.stderr.rsplit("LOADED ", 1)[1] == "[]"


def test_calendars_add_checks_credentials_collection_and_reachability(cli, radicale) -> None:  # type: ignore[no-untyped-def]
    url = radicale.make_calendar("staff", "cli-check")
    wrong = cli(
        "calendars",
        "add",
        "x",
        "--caldav",
        url,
        "--username",
        "staff",
        "--password-env",
        "WRONG_PW",
    )
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert "password" in wrong.stderr.lower()
    plain = radicale.make_address_book("staff", "not-a-calendar")
    not_cal = _add(cli, "y", plain)
    assert not_cal.returncode != 0 and "calendar" in not_cal.stderr.lower()
    down = _add(cli, "z", "http://127.0.0.1:9/staff/cal/")
    assert down.returncode != 0 and "127.0.0.1" in down.stderr
    assert json.loads(cli("calendars", "list", "--json").stdout) == []


def test_secrets_are_encrypted_and_never_printed(cli, radicale) -> None:  # type: ignore[no-untyped-def]
    url = radicale.make_calendar("staff", "cli-secret")
    added = _add(cli, "front", url, "--owner", "u-mia", "--policy", "calendar-wins")
    assert added.returncode == 0, added.stderr
    listing = cli("calendars", "list", "--json")
    shown = cli("calendars", "show", "front", "--json")
    for out in (listing.stdout, shown.stdout):
        assert USERS["staff"] not in out
    [row] = json.loads(listing.stdout)
    assert (row["name"], row["owner"], row["policy"]) == ("front", "u-mia", "calendar-wins")
    key = cli.data_dir / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    database = (cli.data_dir / "calbridge.db").read_bytes()
    assert USERS["staff"].encode() not in database


def test_sync_json_summary_links_conflicts_rejections_and_remove(cli, radicale) -> None:  # type: ignore[no-untyped-def]
    url = radicale.make_calendar("staff", "cli-sync")
    radicale.put_ics(
        url + "a.ics",
        vevent("a", "Acme offsite", _dt(0, 9), _dt(0, 17), organizer="ann@acme-events.example"),
    )
    radicale.put_ics(url + "bad.ics", vevent("bad", "Backwards", _dt(1, 12), _dt(1, 10)))
    assert _add(cli, "front", url).returncode == 0
    done = cli("sync", "--json")
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)
    assert report.keys() >= REPORT_KEYS
    assert (report["created"], report["rejected"]) == (1, 1)
    [rejection] = json.loads(cli("rejections", "list", "--json").stdout)
    assert rejection["calendar"] == "front" and rejection["uid"] == "bad"
    assert "before" in rejection["reason"]

    created = cli(
        "events",
        "create",
        "--name",
        "Board dinner",
        "--start",
        f"{_dt(31, 19):%Y-%m-%dT%H:%M}",
        "--end",
        f"{_dt(31, 22):%Y-%m-%dT%H:%M}",
        "--timezone",
        "Europe/Berlin",
        "--booker",
        "mia@harbour.example",
        "--json",
    )
    event_id = json.loads(created.stdout)["id"]
    assert cli("events", "link", str(event_id), "--calendar", "front").returncode == 0
    pushed = json.loads(cli("sync", "front", "--json").stdout)[0]
    assert pushed["pushed_created"] == 1
    assert any("Board dinner" in o for o in objects_at(radicale, url))

    acme = next(
        e for e in json.loads(cli("events", "list", "--json").stdout) if e["name"] == "Acme offsite"
    )
    cli("events", "update", str(acme["id"]), "--name", "Acme offsite (booking)")
    radicale.put_ics(
        url + "a.ics",
        vevent(
            "a",
            "Acme offsite (calendar)",
            _dt(0, 9),
            _dt(0, 17),
            organizer="ann@acme-events.example",
        ),
    )
    assert json.loads(cli("sync", "--json").stdout)[0]["conflicts"] == 1
    [conflict] = json.loads(cli("conflicts", "list", "--json").stdout)
    assert conflict["field"] == "name" and conflict["winner"] == "booking"
    assert conflict["calendar_value"] == "Acme offsite (calendar)"

    assert cli("calendars", "remove", "front").returncode == 0
    remaining = json.loads(cli("events", "list", "--json").stdout)
    assert len(remaining) == 2  # the bookings stay


def test_sync_of_unknown_calendar_is_a_clear_error(cli) -> None:  # type: ignore[no-untyped-def]
    missing = cli("sync", "nope", "--json")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "no calendar is called 'nope'" in missing.stderr


def _dt(day: int, hour: int):  # type: ignore[no-untyped-def]
    """``day`` days after a date 60 days from today (the CLI syncs with the real clock, so the
    test's events are placed relative to today: always inside the sync window)."""
    from datetime import date, datetime, timedelta

    base = date.today() + timedelta(days=60 + day)
    return datetime(base.year, base.month, base.day, hour)
