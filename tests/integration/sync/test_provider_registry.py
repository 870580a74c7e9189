"""The provider registry (calbridge.providers.registry): a kind is one module plus one line,
and sync/ and the calendars CLI reach every API through it only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from sync_helpers import USERS
from typer.testing import CliRunner

from calbridge.cli import calendars_cmd
from calbridge.errors import ConfigError
from calbridge.providers import registry
from calbridge.store.models import Calendar, Event
from calbridge.sync.calendars import CalendarUpdate, add_calendar, update_calendar
from calbridge.sync.providers import open_provider


@pytest.fixture
def with_toy_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The registry with one more line: ``"davlite": "toy_kind"``."""
    monkeypatch.setitem(registry.KINDS, "davlite", "toy_kind")
    registry.kind_of.cache_clear()
    yield
    registry.kind_of.cache_clear()


def calendars_app() -> typer.Typer:
    """``calendars add`` / ``update`` built from the registry as it is now."""
    app = typer.Typer()
    app.command("add")(calendars_cmd._with_connection_options(calendars_cmd.add))
    app.command("update")(calendars_cmd._with_connection_options(calendars_cmd.update))
    return app


def test_a_new_kind_is_one_module_plus_one_registry_line(with_toy_kind: None, world) -> None:  # type: ignore[no-untyped-def]
    url = world.radicale.make_calendar("staff", "toy")
    world.radicale.put_ics(
        url + "m.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//p//EN\r\nBEGIN:VEVENT\r\nUID:m\r\n"
        "DTSTAMP:20270101T000000Z\r\nDTSTART:20270305T090000Z\r\nDTEND:20270305T100000Z\r\n"
        "SUMMARY:Toy meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    with world.store.session() as session:
        values = {"davlite": url, "username": "staff", "password": USERS["staff"]}
        add_calendar(session, world.box, "toy", "davlite", values)
    with world.store.session() as session:
        stored = session.scalars(select(Calendar).where(Calendar.name == "toy")).one()
        assert (stored.kind, stored.settings) == ("davlite", {"address": url, "user": "staff"})
        assert type(open_provider(stored, world.box)).__name__ == "CalDAVProvider"
    report = world.sync("toy")
    assert report.ok, report.error
    with world.store.session() as session:
        assert [e.name for e in session.scalars(select(Event))] == ["Toy meeting"]
    with world.store.session() as session, pytest.raises(ConfigError) as error:
        update_calendar(session, world.box, "toy", CalendarUpdate(connection={"tenant": "t"}))
    assert (
        str(error.value) == "calendar 'toy' is a DAV-lite calendar; --tenant does not apply to it"
    )


def test_the_calendars_cli_offers_a_new_kinds_options(with_toy_kind: None, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"CALBRIDGE_DATA_DIR": str(tmp_path), "COLUMNS": "200", "NO_COLOR": "1"}
    shown = runner.invoke(calendars_app(), ["add", "--help"], env=env)
    assert shown.exit_code == 0
    assert "--davlite" in shown.output and "DAV-lite connection" in shown.output
    # an option of another kind is refused with the kind's name, before anything is stored
    refused = runner.invoke(
        calendars_app(),
        ["add", "toy", "--davlite", "http://127.0.0.1:1/", "--tenant", "t"],
        env=env,
    )
    assert refused.exit_code != 0
    assert str(refused.exception) == "--tenant does not apply to a DAV-lite calendar"


def test_giving_no_kind_or_two_kinds_names_every_kind() -> None:
    for given in ({}, {"--caldav": "http://a/", "--graph": "m@x"}):
        with pytest.raises(ConfigError) as error:
            registry.kind_for_selector(given)
        assert str(error.value) == (
            "give exactly one of --caldav URL, --google CALENDAR_ID, --graph MAILBOX or "
            "--ews MAILBOX"
        )


def test_options_are_read_by_their_reader_with_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    caldav = registry.kind_of("caldav")
    monkeypatch.setenv("DAV_PW", "s3cret")
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n", encoding="utf-8")
    assert registry.read_values(caldav, {"--password-env": "DAV_PW"}) == {"password": "s3cret"}
    assert registry.read_values(caldav, {"--password-file": str(secret_file)}) == {
        "password": "from-file"
    }
    cases = {
        "--password-env: the environment variable NOPE_PW is not set": {
            "--password-env": "NOPE_PW"
        },
        "give one of --password-env or --password-file, not both": {
            "--password-env": "DAV_PW",
            "--password-file": str(secret_file),
        },
        "--caldav 'ftp://x/' has no http:// or https:// scheme": {"--caldav": "ftp://x/"},
        "--client-id, --tenant do not apply to a CalDAV calendar": {
            "--tenant": "t",
            "--client-id": "c",
        },
    }
    for message, given in cases.items():
        with pytest.raises(ConfigError) as error:
            registry.read_values(caldav, given)
        assert str(error.value).startswith(message), str(error.value)


def test_an_unknown_kind_or_unreadable_settings_is_a_clear_error(world) -> None:  # type: ignore[no-untyped-def]
    odd = Calendar(name="old", kind="exchange2003", settings={})
    with pytest.raises(ConfigError) as error:
        open_provider(odd, world.box)
    assert str(error.value) == (
        "calendar 'old': provider 'exchange2003' is not available in this version "
        "(known: caldav, ews, google, graph)"
    )
    broken = Calendar(name="front", kind="caldav", settings={"username": "staff"})
    with pytest.raises(ConfigError) as error:
        open_provider(broken, world.box)
    assert str(error.value).startswith(
        "calendar 'front': its stored CalDAV settings are not valid (url: Field required); "
        "link it again with `calbridge calendars update front --caldav URL`"
    )


def test_stored_settings_keep_keys_this_version_does_not_model() -> None:
    google = registry.kind_of("google")
    stored = {"calendar_id": "c@x", "auth": "oauth", "watch": {"id": "w"}, "later": [1, 2]}
    assert google.parse("g", stored).stored() == stored


def test_options_shared_by_kinds_are_declared_alike() -> None:
    options = registry.cli_options()
    flags = [option.flag for option in options]
    assert len(flags) == len(set(flags))
    assert {"--caldav", "--google", "--graph", "--api-base"} <= set(flags)
    for kind in registry.all_kinds():
        assert registry.kind_of(kind.name) is kind
        assert kind.selector.flag in flags
