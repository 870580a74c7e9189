"""Text from outside never breaks the CLI: arbitrary Unicode in every text field — booking
name, location, notes, client, contact and user names, calendar names, rejection reasons, conflict
values, a server's error message — goes through ``events list/show`` (text and ``--json``),
``rejections list``, ``conflicts list``, ``calendars show`` and the demo's tables without a
traceback and without losing a character: on a terminal (rich tables) and in a pipe (plain
lines). Control characters are shown escaped (``calbridge.cli.common.shown``)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from sqlalchemy import select

from calbridge.cli import common
from calbridge.cli.common import Rows, make_console, report_rows, shown
from calbridge.demo.run import bookings_table, rejections_table
from calbridge.domain.event import make_times
from calbridge.store.db import Store, open_store
from calbridge.store.directory import import_directory
from calbridge.store.events import ManualAssignment, create_event
from calbridge.store.models import (
    Calendar,
    Company,
    ConflictRecord,
    Contact,
    Event,
    Link,
    Rejection,
    User,
)
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.report import SyncReport
from calbridge_cli import Cli, make_inprocess_cli
from worlds import EXAMPLE

# Hostile on purpose: rich markup, emoji codes, control characters, wide and combining
# characters, right-to-left text; plus whatever hypothesis makes of all of Unicode.
NASTY = [
    "Gala [/b]",
    "Lunch [w/ Acme]",
    "pip install 'calbridge[postgres]'",
    "[bold red]not red[/] :smile: :thumbs_up:",
    "tab\there\nnew line\r\x1b[31mred\x1b[0m\x07\x7f",
    "宴会 🎉 e\u0301 \u202eevil\u202c \ufeff zero\u200bwidth",
    "\\[escaped] \\",
    "0\x1f\x1f\u2028·line\u2029paragraph",  # found by this test: rich broke the line there
]
# (NUL is refused by the store before anything is written: no database can hold it.)
CHARACTERS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
TEXT = st.text(CHARACTERS, min_size=1, max_size=24).filter(lambda t: t.strip() != "")


@contextmanager
def wide_consoles() -> Iterator[None]:
    """Wide enough that no cell wraps: a value must appear whole on one line."""
    saved = common.console.width, common.err_console.width
    common.console.width = common.err_console.width = 2000
    try:
        yield
    finally:
        common.console.width, common.err_console.width = saved


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path, str]]:
    folder = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{folder / 'calbridge.db'}"
    store = open_store(url)
    with store.session() as s:
        import_directory(s, EXAMPLE.read_text(encoding="utf-8"))
    yield store, folder, url
    store.dispose()


def plant(store: Store, texts: dict[str, str]) -> int:
    """Every text field of the store set to outside text; returns the booking's id."""
    with store.session() as s:
        for model in (ConflictRecord, Rejection, Link, Calendar, Event):
            for row in s.scalars(select(model)):
                s.delete(row)
        s.flush()
        s.get(Company, "co-acme").name = texts["client"]  # type: ignore[union-attr]
        s.get(Contact, "ct-ann").name = texts["contact"]  # type: ignore[union-attr]
        s.get(User, "u-tom").name = texts["user"]  # type: ignore[union-attr]
        event = create_event(
            s,
            name=texts["name"],
            times=make_times(
                "2027-03-05T09:00", "2027-03-05T11:00", all_day=False, timezone="Europe/Berlin"
            ),
            location=texts["location"],
            notes=texts["notes"],
            manual=ManualAssignment("co-acme", "ct-ann", "u-tom", "u-tom"),
        )
        calendar = add_caldav_calendar(
            s,
            SecretBox(SecretBox.generate_key()),
            texts["calendar"],
            "https://dav.example/cal/",
            texts["user"],
            "pw",
            check=False,
        )
        calendar.last_error = texts["error"]
        s.flush()
        at = datetime(2027, 1, 1)
        s.add(Rejection(calendar_id=calendar.id, remote_id="r1", uid=texts["uid"],
                        reason=texts["reason"], at=at))  # fmt: skip
        s.add(ConflictRecord(calendar_id=calendar.id, event_id=event.id, field="name",
                             booking_value=texts["name"], calendar_value=texts["other"],
                             winner="booking", policy="booking-wins", at=at))  # fmt: skip
        return event.id


def check_shown(output: str, *values: str) -> None:
    for value in values:
        assert shown(value) in output, (value, output)


def run_everything(cli: Cli, event_id: int, texts: dict[str, str], with_json: bool) -> None:
    listed = cli("events", "list")
    shown_event = cli("events", "show", str(event_id))
    calendars = cli("calendars", "list")
    calendar = cli("calendars", "show", texts["calendar"])
    rejections = cli("rejections", "list")
    conflicts = cli("conflicts", "list")
    for result in (listed, shown_event, calendars, calendar, rejections, conflicts):
        assert (result.code, result.err) == (0, ""), result.err
    check_shown(listed.out, texts["name"], texts["client"], texts["user"])
    check_shown(shown_event.out, texts["name"], texts["location"], texts["notes"],
                texts["client"], texts["contact"], texts["user"])  # fmt: skip
    check_shown(calendars.out, texts["calendar"], texts["error"])
    check_shown(calendar.out, texts["calendar"], texts["user"], texts["error"])
    check_shown(rejections.out, texts["uid"], texts["reason"], texts["calendar"])
    check_shown(conflicts.out, texts["name"], texts["other"], texts["calendar"])
    if not with_json:
        return
    event: Any = cli("events", "show", str(event_id), "--json").json()
    assert (event["name"], event["location"], event["notes"]) == (
        texts["name"], texts["location"], texts["notes"])  # fmt: skip
    assert event["client"]["name"] == texts["client"]
    assert event["client_contact"]["name"] == texts["contact"]
    [listed_json] = cli("events", "list", "--json").json()  # type: ignore[misc]
    assert listed_json["name"] == texts["name"]
    [rejection] = cli("rejections", "list", "--json").json()  # type: ignore[misc]
    assert (rejection["uid"], rejection["reason"]) == (texts["uid"], texts["reason"])
    [conflict] = cli("conflicts", "list", "--json").json()  # type: ignore[misc]
    assert conflict["booking_value"] == texts["name"]
    assert conflict["calendar_value"] == texts["other"]
    stored: Any = cli("calendars", "show", texts["calendar"], "--json").json()
    assert (stored["name"], stored["last_error"]) == (texts["calendar"], texts["error"])


def demo_tables(store: Store, texts: dict[str, str], terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, width=2000, force_terminal=terminal, markup=False, emoji=False,
                      highlight=False, color_system=None)  # fmt: skip
    world: Any = SimpleNamespace(store=store)
    bookings_table(world).print(console)
    rejections_table(world).print(console)
    report = SyncReport(texts["calendar"], ok=False, error=texts["error"])
    report_rows([report], texts["name"]).print(console)
    return out.getvalue()


FIELDS = ("name", "location", "notes", "client", "contact", "user", "calendar", "error",
          "uid", "reason", "other")  # fmt: skip


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.fixed_dictionaries({field: TEXT for field in FIELDS}))
@example({field: NASTY[i % len(NASTY)] for i, field in enumerate(FIELDS)})
@example({field: NASTY[(i + 3) % len(NASTY)] for i, field in enumerate(FIELDS)})
@example(
    {field: "0" for field in FIELDS}
    | {
        "client": "\U0010e9a8xH\U000cd005\U000560df\x14\x97\U0002fc93w\\\U0008fe93\x15ª\x1dç"
        "\U000a32e9oT\x08\U0007c96fl^®\U000af710",
        "user": "0000000000\x1f\x1f\x1f\x1f\x1f\x1f\x08",
    }
)
def test_outside_text_round_trips_through_every_listing(
    world: tuple[Store, Path, str], texts: dict[str, str]
) -> None:
    store, folder, url = world
    if len(set(texts.values())) < len(texts):  # distinct names keep the lookups unambiguous
        texts = {key: f"{value}·{key}" for key, value in texts.items()}
    event_id = plant(store, texts)
    piped = make_inprocess_cli(folder / "data", url)
    run_everything(piped, event_id, texts, with_json=True)
    # as wide as wide_consoles(): each run makes its console from COLUMNS
    terminal = make_inprocess_cli(folder / "data", url, {"TTY_COMPATIBLE": "1", "COLUMNS": "2000"})
    with wide_consoles():
        run_everything(terminal, event_id, texts, with_json=False)
    for on_terminal in (False, True):
        check_shown(demo_tables(store, texts, on_terminal), texts["name"], texts["client"],
                    texts["contact"], texts["user"], texts["uid"], texts["reason"],
                    texts["calendar"], texts["error"])  # fmt: skip


def test_markup_in_an_error_message_is_printed_whole(tmp_path: Path) -> None:
    cli = make_inprocess_cli(tmp_path / "data", f"sqlite:///{tmp_path / 'c.db'}")
    result = cli("calendars", "show", "[bold]x[/] [postgres]")
    assert result.code != 0 and "Traceback" not in result.err
    assert "no calendar is called '[bold]x[/] [postgres]'" in result.err


def test_shown_escapes_control_characters_only() -> None:
    assert shown("a\tb\nc\x1b[0m\x7f\x85é 🎉 [x]") == "a\\tb\\nc\\x1b[0m\\x7f\\x85é 🎉 [x]"
    assert shown("a\u2028b\u2029c") == "a\\u2028b\\u2029c"
    assert shown(None) == "—"


def test_rows_in_a_pipe_are_plain_untruncated_lines() -> None:
    rows = Rows("id", "name", title="Bookings")
    rows.add("1", "x" * 500 + " [b]")
    out = io.StringIO()
    rows.print(Console(file=out, width=40))
    assert out.getvalue().splitlines() == ["# Bookings", "id\tname", "1\t" + "x" * 500 + " [b]"]


def test_rows_on_a_terminal_wrap_instead_of_cutting() -> None:
    rows = Rows("id", "name")
    rows.add("1", "abcdefghij" * 20)
    out = io.StringIO()
    rows.print(Console(file=out, width=40, force_terminal=True, color_system=None))
    text = out.getvalue()
    assert "…" not in text
    cells = [line.split("│")[2].strip() for line in text.splitlines() if line.count("│") == 3]
    assert "".join(cells) == "abcdefghij" * 20


def test_make_console_reads_no_markup_and_no_emoji() -> None:
    console = make_console()
    out = io.StringIO()
    console.file = out
    console.print("[bold]x[/] :smile: [postgres]")
    assert out.getvalue() == "[bold]x[/] :smile: [postgres]\n"
    assert json.dumps(shown("x")) == '"x"'
