"""`calbridge calendars update` / `remove` / `add` as an admin uses them after a password
change (issue 9 §2): the CLI (in-process: same parsing, errors and exit codes) against a real
Radicale."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sync_helpers import USERS, objects_at

from calbridge.demo.seed import vevent
from calbridge_cli import make_inprocess_cli
from worlds import EXAMPLE


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STAFF_PW", USERS["staff"])
    monkeypatch.setenv("WRONG_PW", "not-the-password")
    run = make_inprocess_cli(tmp_path / "data", None)
    assert run("directory", "import", str(EXAMPLE)).code == 0
    return run


def _add(cli, name: str, url: str):  # type: ignore[no-untyped-def]
    return cli(
        "calendars",
        "add",
        name,
        "--caldav",
        url,
        "--username",
        "staff",
        "--password-env",
        "STAFF_PW",
    )


def test_update_remove_and_add_again_through_the_cli_never_duplicate(cli, radicale) -> None:  # type: ignore[no-untyped-def]
    url = radicale.make_calendar("staff", "cli-relink")
    # The CLI syncs with the real clock: dates relative to today stay inside its window.
    day = date.today() + timedelta(days=60)
    start = datetime(day.year, day.month, day.day, 9)
    radicale.put_ics(url + "a.ics", vevent("a", "Acme offsite", start, start + timedelta(hours=2)))
    assert _add(cli, "front", url).code == 0
    dinner = start + timedelta(days=1)
    created = cli(
        "events", "create", "--name", "Board dinner", "--start", f"{dinner:%Y-%m-%d}T19:00",
        "--end", f"{dinner:%Y-%m-%d}T22:00", "--timezone", "Europe/Berlin",
        "--booker", "mia@harbour.example", "--calendar", "front", "--json",
    )  # fmt: skip
    assert created.code == 0, created.err
    first = json.loads(cli("sync", "--json").out)[0]
    assert (first["created"], first["pushed_created"]) == (1, 1)

    wrong = cli("calendars", "update", "front", "--password-env", "WRONG_PW")
    assert wrong.code != 0 and "Traceback" not in wrong.err
    assert "`calbridge calendars update front --password-env VAR`" in wrong.err
    changed = cli(
        "calendars", "update", "front", "--password-env", "STAFF_PW", "--policy", "latest-wins",
        "--json",
    )  # fmt: skip
    assert changed.code == 0, changed.err
    shown = json.loads(changed.out)
    assert (shown["policy"], shown["links"], shown["token"]) == ("latest-wins", {"ok": 2}, "set")

    twice = _add(cli, "second", url.rstrip("/"))
    assert twice.code != 0 and "Traceback" not in twice.err
    assert "is linked already, as calendar 'front'" in twice.err
    same_name = _add(cli, "front", url)
    assert "`calbridge calendars update front …`" in same_name.err

    assert cli("calendars", "remove", "front").code == 0
    assert _add(cli, "front", url).code == 0
    again = json.loads(cli("sync", "--json").out)[0]
    assert (again["created"], again["pushed_created"]) == (0, 0)
    assert len(json.loads(cli("events", "list", "--json").out)) == 2
    assert len(objects_at(radicale, url)) == 2


def test_update_of_an_unknown_calendar_names_the_list_command(cli) -> None:  # type: ignore[no-untyped-def]
    missing = cli("calendars", "update", "nope", "--policy", "calendar-wins")
    assert missing.code != 0 and "Traceback" not in missing.err
    assert "no calendar is called 'nope' (see `calbridge calendars list`)" in missing.err
