"""A CalDAV address that is no calendar the user may use (issue 9 §2: error messages name the
command that actually fixes the problem): no collection there, a collection that is not a
calendar, another user's calendar (403). While adding, the fix is `calendars add` again; for a
calendar already linked it is `calendars update NAME --caldav URL`. The CLI (in-process: same
parsing, errors and exit codes) against a real Radicale."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from sync_helpers import USERS

from calbridge_cli import make_inprocess_cli
from worlds import EXAMPLE

ADD_AGAIN = (
    "run `calbridge calendars add desk --caldav URL --username USER --password-env VAR` again"
)
_names = itertools.count()
UPDATE = "run `calbridge calendars update desk --caldav URL` with the calendar's own address"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STAFF_PW", USERS["staff"])
    run = make_inprocess_cli(tmp_path / "data", None)
    assert run("directory", "import", str(EXAMPLE)).code == 0
    return run


def _add(cli, url: str):  # type: ignore[no-untyped-def]
    return cli(
        "calendars", "add", "desk", "--caldav", url, "--username", "staff",
        "--password-env", "STAFF_PW",
    )  # fmt: skip


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def _wrong_addresses(radicale) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Each kind of wrong address, with what the message says about it."""
    n = next(_names)
    return {
        "missing": (radicale.url + "/staff/nothing-here/", "there is no collection at"),
        "account": (radicale.url + "/staff/", "is not a calendar collection"),
        "address book": (
            radicale.make_address_book("staff", f"cards-{n}"),
            "is not a calendar collection",
        ),
        "another user's": (
            radicale.make_calendar("tom", f"toms-private-{n}"),
            "user 'staff' may not access",
        ),
    }


def test_a_wrong_address_while_adding_names_add_again(cli, radicale) -> None:  # type: ignore[no-untyped-def]
    for kind, (url, said) in _wrong_addresses(radicale).items():
        added = _add(cli, url)
        assert added.code != 0, kind
        message = _one_line(added.err)
        assert said in message, kind
        assert message.endswith(ADD_AGAIN + " with the calendar's own address, e.g. "
                                "https://host/dav/user/calendar/"), (kind, message)  # fmt: skip
        assert "calendars update" not in message, kind
    assert json.loads(cli("calendars", "list", "--json").out) == []


def test_a_wrong_address_of_a_linked_calendar_names_calendars_update(cli, radicale) -> None:  # type: ignore[no-untyped-def]
    url = radicale.make_calendar("staff", "desk-address")
    assert _add(cli, url).code == 0
    for kind, (wrong, said) in _wrong_addresses(radicale).items():
        updated = cli("calendars", "update", "desk", "--caldav", wrong)
        assert updated.code != 0, kind
        message = _one_line(updated.err)
        assert said in message and UPDATE in message, (kind, message)
        assert "calendars add" not in message, kind
    [kept] = json.loads(cli("calendars", "list", "--json").out)
    assert kept["url"] == url  # a refused update changes nothing


def test_a_linked_calendar_whose_collection_is_gone_names_calendars_update_at_sync(
    cli,  # type: ignore[no-untyped-def]
    radicale,  # type: ignore[no-untyped-def]
) -> None:
    url = radicale.make_calendar("staff", "desk-gone")
    assert _add(cli, url).code == 0
    radicale.delete(url)
    synced = cli("sync", "--json")
    assert synced.code != 0 and "Traceback" not in synced.err
    [report] = json.loads(synced.out)
    assert not report["ok"]
    assert "there is no collection at" in report["error"]
    assert UPDATE in report["error"]
