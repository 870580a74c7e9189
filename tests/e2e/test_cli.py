"""The ``calbridge`` command as a person or a script uses it: real subprocesses, JSON contracts,
exit codes, and one-line errors that leave nothing written.

Data is set up through the store API (fast); only the behaviour under test goes through the CLI.
Everything runs on SQLite; ``test_main_flow_on_postgresql`` runs the main flow on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from calbridge.cli.resolve_cmd import assignment_json
from calbridge.domain.event import MAX_NOTES, make_times
from calbridge.errors import BadEvent
from calbridge.store.db import open_store
from calbridge.store.directory import import_directory
from calbridge.store.events import create_event, event_json, get_event, list_events, resolve_booker
from calbridge_cli import Cli, CliResult, make_cli
from postgres_server import free_port

RULE_1 = "Search the email accounts of active named/concurrent users"
RULE_2 = "A matched user linked to a CRM contact: that contact is the client contact"
RULE_3 = "Otherwise search CRM contacts by primary and alternate email"
RULE_4 = "A matched contact is the client contact; its company is the client"
RULE_5 = "Otherwise the client is the Default Account"

EVENT_KEYS = {
    "id", "name", "start", "end", "all_day", "timezone", "location", "notes", "status",
    "client", "client_contact", "booked_by", "event_manager", "ambiguous", "trace", "links",
    "created_at", "updated_at",
}  # fmt: skip

MIA = {"id": "u-mia", "name": "Mia Stone"}
VA = {"id": "u-va", "name": "Calendar Assistant"}
ACME = {"id": "co-acme", "name": "Acme Corp", "kind": "company"}
ANN = {"id": "ct-ann", "name": "Ann Lee"}


def load_directory(url: str, data: dict[str, Any]) -> None:
    store = open_store(url)
    try:
        with store.session() as s:
            import_directory(s, json.dumps(data))
    finally:
        store.dispose()


def add_event(url: str, booker: str = "ann@acme-events.example", **fields: Any) -> int:
    store = open_store(url)
    try:
        with store.session() as s:
            times = make_times(
                fields.pop("start", "2027-03-05T09:00"),
                fields.pop("end", "2027-03-05T11:00"),
                all_day=False,
                timezone=fields.pop("timezone", "Europe/Berlin"),
            )
            return create_event(s, name="Launch", times=times, booker=booker, **fields).id
    finally:
        store.dispose()


def stored_events(url: str) -> list[dict[str, Any]]:
    store = open_store(url)
    try:
        with store.session() as s:
            return [
                {"id": e.id, "name": e.name, "notes": e.notes, "change_seq": e.change_seq}
                for e in list_events(s)
            ]
    finally:
        store.dispose()


@pytest.fixture
def ready(sqlite_url: str, example_directory: dict[str, Any]) -> str:
    """The SQLite database of ``cli``, holding the example directory."""
    load_directory(sqlite_url, example_directory)
    return sqlite_url


def one_line_error(result: CliResult) -> str:
    assert result.code != 0
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    return lines[0]


# --- resolve --------------------------------------------------------------------------------


def test_resolve_json_contract(cli: Cli, ready: str) -> None:
    result = cli("resolve", "  ANN@Acme-Events.example ", "--json")
    assert (result.code, result.err) == (0, "")
    data = result.json()
    assert isinstance(data, dict)
    assert data.pop("reasons") == {
        "booked_by": "no user matched: the Virtual Assistant user",
        "event_manager": "no user matched and no Default Event Manager: the Virtual Assistant",
    }
    assert data == {
        "email": "ann@acme-events.example",
        "client": ACME,
        "client_contact": ANN,
        "booked_by": VA,
        "event_manager": VA,
        "ambiguous": False,
        "trace": [
            {
                "step": 1,
                "rule": RULE_1,
                "outcome": "no active named/concurrent user has ann@acme-events.example",
            },
            {
                "step": 3,
                "rule": RULE_3,
                "outcome": "found contact ct-ann (Ann Lee) by ann@acme-events.example "
                "(alternate email)",
            },
            {
                "step": 4,
                "rule": RULE_4,
                "outcome": "client contact is ct-ann (Ann Lee); client is the contact's company "
                "co-acme (Acme Corp)",
            },
        ],
    }


def test_resolve_explains_each_step_in_readable_output(cli: Cli, ready: str) -> None:
    code, out, err = cli("resolve", "tom@harbour.example")
    assert (code, err) == (0, "")
    for text in (
        "step 1",
        "found user u-tom (Tom Reyes) by tom@harbour.example (primary account)",
        "step 2",
        "user is linked to company co-harbour",
        "not a contact: go on",
        "step 3",
        "no contact has tom@harbour.example",
        "step 5",
        "client is the Default Account co-walkin (Walk-in Bookings)",
        "Booked By",
        "Tom Reyes",
        "auto-assign is on",
    ):
        assert text in out, text


def test_resolve_batch_prints_json_lines_in_input_order_with_an_error_object(
    cli: Cli, ready: str, tmp_path: Path
) -> None:
    batch = tmp_path / "bookers.txt"
    lines = [
        "mia@harbour.example",
        "not an address",
        "",
        "MAILTO:ann@acme-events.example",
        "stranger@else.example",
        "bookings@harbour.example",
    ]
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = cli("resolve", "--batch", str(batch), "--json")
    assert code == 3
    assert err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["email"] for r in rows] == [
        "mia@harbour.example",
        "not an address",
        "ann@acme-events.example",
        "stranger@else.example",
        "bookings@harbour.example",
    ]
    assert rows[1] == {
        "email": "not an address",
        "error": "'not an address' is not a valid email address",
    }
    assert [r["client"]["id"] for r in (rows[0], rows[2], rows[3], rows[4])] == [
        "co-harbour",
        "co-acme",
        "co-walkin",
        "co-harbour",
    ]
    assert rows[4]["booked_by"] == MIA
    store = open_store(ready)
    with store.session() as s:
        single = assignment_json(resolve_booker(s, "ann@acme-events.example"))
    store.dispose()
    assert rows[2] == single


def test_resolve_batch_reads_stdin_and_exits_0_when_every_line_resolves(
    cli: Cli, ready: str
) -> None:
    code, out, _ = cli(
        "resolve", "--batch", "-", "--json", input="tom@harbour.example\nraj.patel@mail.example\n"
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["client"]["id"] for r in rows] == ["co-walkin", "ct-raj"]
    assert rows[1]["client"]["kind"] == "contact"


def test_resolve_batch_with_a_missing_file_is_a_one_line_error(cli: Cli, ready: str) -> None:
    assert "cannot read the --batch file" in one_line_error(
        cli("resolve", "--batch", "/no/such/file")
    )


def test_resolve_malformed_address_is_a_one_line_error(cli: Cli, ready: str) -> None:
    assert "is not a valid email address" in one_line_error(cli("resolve", "ann at acme", "--json"))


def test_resolve_on_an_unconfigured_database_says_what_to_do(cli: Cli) -> None:
    message = one_line_error(cli("resolve", "ann@acme.example", "--json"))
    assert "the booking system is not configured" in message
    assert "calbridge directory import" in message


# --- events ---------------------------------------------------------------------------------


def test_create_with_booker_stores_the_assignment_and_its_trace(cli: Cli, ready: str) -> None:
    code, out, err = cli(
        "events", "create", "--name", "Product launch", "--start", "2027-03-05T09:00",
        "--end", "2027-03-05T11:30", "--timezone", "Europe/Berlin", "--location", "Hall A",
        "--notes", "Projector", "--booker", "bookings@harbour.example", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    created = json.loads(out)
    assert set(created) >= EVENT_KEYS
    assert {k: created[k] for k in ("name", "start", "end", "all_day", "timezone")} == {
        "name": "Product launch",
        "start": "2027-03-05T09:00:00+01:00",
        "end": "2027-03-05T11:30:00+01:00",
        "all_day": False,
        "timezone": "Europe/Berlin",
    }
    assert (created["location"], created["notes"], created["status"]) == (
        "Hall A",
        "Projector",
        "confirmed",
    )
    assert created["client"] == {
        "id": "co-harbour",
        "name": "Harbour View Venue (house account)",
        "kind": "company",
    }
    assert created["client_contact"] == {"id": "ct-mia", "name": "Mia Stone"}
    assert (created["booked_by"], created["event_manager"]) == (MIA, MIA)
    assert [(t["step"], t["rule"]) for t in created["trace"]] == [(1, RULE_1), (2, RULE_2)]
    assert "(non-primary account)" in created["trace"][0]["outcome"]
    assert created["links"] == []
    assert created["created_at"].endswith("Z")
    datetime.fromisoformat(created["created_at"].removesuffix("Z"))
    shown = cli("events", "show", str(created["id"]), "--json").json()
    assert shown == created


def test_create_with_explicit_client_and_users(cli: Cli, ready: str) -> None:
    code, out, _ = cli(
        "events", "create", "--name", "Board dinner", "--start", "2027-04-01T19:00Z",
        "--end", "2027-04-01T22:00Z", "--client", "co-acme", "--contact", "ct-ann",
        "--booked-by", "u-tom", "--event-manager", "u-mia", "--tentative", "--json",
    )  # fmt: skip
    assert code == 0
    event = json.loads(out)
    assert (event["client"], event["client_contact"]) == (ACME, ANN)
    assert event["booked_by"] == {"id": "u-tom", "name": "Tom Reyes"}
    assert (event["event_manager"], event["status"]) == (MIA, "tentative")
    # the instant typed (19:00Z), in the venue's zone (the example's Europe/London)
    assert (event["start"], event["timezone"]) == ("2027-04-01T20:00:00+01:00", "Europe/London")
    assert event["trace"] == [
        {"step": 0, "rule": "Assigned explicitly", "outcome": "client and users given by hand"}
    ]


def test_all_day_event_with_next_day_end_is_one_day(cli: Cli, ready: str) -> None:
    code, out, _ = cli(
        "events", "create", "--name", "Fair", "--start", "2027-03-05", "--end", "2027-03-06",
        "--all-day", "--booker", "raj.patel@mail.example", "--json",
    )  # fmt: skip
    assert code == 0
    event = json.loads(out)
    assert (event["start"], event["end"], event["all_day"], event["timezone"]) == (
        "2027-03-05",
        "2027-03-06",
        True,
        None,
    )
    assert event["client"] == {"id": "ct-raj", "name": "Raj Patel", "kind": "contact"}


def test_list_and_status_filter_json(cli: Cli, ready: str) -> None:
    late = add_event(ready, start="2027-05-01T09:00", end="2027-05-01T10:00")
    early = add_event(ready, booker="tom@harbour.example", status="tentative")
    rows = cli("events", "list", "--json").json()
    assert isinstance(rows, list)
    assert [r["id"] for r in rows] == [early, late]  # by start time
    assert all(set(r) >= EVENT_KEYS for r in rows)
    tentative = cli("events", "list", "--status", "tentative", "--json").json()
    assert [r["id"] for r in tentative] == [early]  # type: ignore[union-attr]


def test_update_changes_fields_but_never_the_client_or_users(
    cli: Cli, ready: str, example_directory: dict[str, Any]
) -> None:
    event_id = add_event(ready)
    store = open_store(ready)
    with store.session() as s:
        before = event_json(s, get_event(s, event_id))
    store.dispose()
    example_directory["contacts"][0]["alternate_emails"] = []  # ann@acme-events no longer Ann
    load_directory(ready, example_directory)
    code, out, _ = cli(
        "events", "update", str(event_id), "--name", "Launch (moved)", "--start",
        "2027-03-06T10:00", "--end", "2027-03-06T12:00", "--location", "Hall B", "--json",
    )  # fmt: skip
    assert code == 0
    after = json.loads(out)
    assert (after["name"], after["start"], after["location"]) == (
        "Launch (moved)",
        "2027-03-06T10:00:00+01:00",
        "Hall B",
    )
    assert after["timezone"] == "Europe/Berlin"
    for key in ("client", "client_contact", "booked_by", "event_manager", "trace", "created_at"):
        assert after[key] == before[key], key


def test_reassign_after_a_directory_change_re_resolves(
    cli: Cli, ready: str, example_directory: dict[str, Any]
) -> None:
    event_id = add_event(ready)
    example_directory["users"][2]["email_accounts"].append(
        {"address": "ann@acme-events.example", "primary": False}
    )  # Tom now owns Ann's old alternate address as well
    load_directory(ready, example_directory)
    code, out, _ = cli("events", "reassign", str(event_id), "--json")
    assert code == 0
    event = json.loads(out)
    assert event["booked_by"] == {"id": "u-tom", "name": "Tom Reyes"}
    assert event["client"] == ACME  # the contact search still finds Ann
    assert [t["step"] for t in event["trace"]] == [1, 2, 3, 4]


def test_cancel_keeps_the_booking_with_status_cancelled(cli: Cli, ready: str) -> None:
    event_id = add_event(ready)
    code, out, _ = cli("events", "cancel", str(event_id), "--json")
    assert code == 0
    assert json.loads(out)["status"] == "cancelled"
    assert [e["id"] for e in stored_events(ready)] == [event_id]


# --- bad input: one line, non-zero, nothing written -----------------------------------------

CREATE = ["events", "create", "--name", "Gala", "--start", "2027-03-05T18:00"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            [*CREATE, "--end", "2027-03-05T17:00", "--booker", "ann@acme.example"],
            "end 2027-03-05T17:00:00 is before start 2027-03-05T18:00:00",
            id="end-before-start",
        ),
        pytest.param(
            [*CREATE, "--end", "2027-03-05T20:00", "--timezone", "Mars/Olympus",
             "--booker", "a@b.example"],
            "unknown time zone 'Mars/Olympus'",
            id="unknown-time-zone",
        ),
        pytest.param(
            [*CREATE, "--end", "2027-03-05T20:00", "--client", "co-nowhere", "--booked-by", "u-tom",
             "--event-manager", "u-tom"],
            "no company or contact has id 'co-nowhere'",
            id="unknown-client",
        ),
        pytest.param(
            [*CREATE, "--end", "2027-03-05T20:00", "--client", "co-acme", "--booked-by", "u-nobody",
             "--event-manager", "u-tom"],
            "--booked-by: no user has id 'u-nobody'",
            id="unknown-user",
        ),
        pytest.param(
            ["events", "show", "999", "--json"], "no event has id 999", id="unknown-event"
        ),
    ],
)  # fmt: skip
def test_bad_input_is_a_one_line_error_and_nothing_is_written(
    cli: Cli, ready: str, args: list[str], message: str
) -> None:
    assert message in one_line_error(cli(*args))
    assert stored_events(ready) == []


def test_ten_megabyte_notes_are_refused_through_a_file_and_stdin(
    cli: Cli, ready: str, tmp_path: Path
) -> None:
    # Over-limit notes cannot be an argument at all: Linux refuses any single argument over
    # 128 KiB and the notes limit is 256 KiB, so they come from --notes-file (a file or stdin).
    assert MAX_NOTES > 128 * 1024
    big = tmp_path / "notes.txt"
    big.write_bytes(b"n" * (10 * 1024 * 1024))
    base = [*CREATE, "--end", "2027-03-05T20:00", "--booker", "ann@acme.example"]
    from_file = one_line_error(cli(*base, "--notes-file", str(big)))
    assert "notes are 10,485,760 characters; the limit is 262,144" in from_file
    from_stdin = one_line_error(cli(*base, "--notes-file", "-", input="n" * (10 * 1024 * 1024)))
    assert from_stdin == from_file
    assert stored_events(ready) == []


def test_ten_megabyte_notes_are_refused_by_the_store(ready: str) -> None:
    with pytest.raises(BadEvent, match="notes are 10,485,760 characters"):
        add_event(ready, notes="n" * (10 * 1024 * 1024))
    assert stored_events(ready) == []


def test_update_with_bad_times_changes_nothing(cli: Cli, ready: str) -> None:
    event_id = add_event(ready)
    before = stored_events(ready)
    message = one_line_error(
        cli("events", "update", str(event_id), "--name", "New", "--end", "2027-03-05T08:00")
    )
    assert "is before start" in message
    assert stored_events(ready) == before


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://calbridge:pw@127.0.0.1:{port}/calbridge", id="postgresql-down"),
        pytest.param("sqlite:///{tmp}/missing/calbridge.db", id="sqlite-missing-folder"),
    ],
)
def test_database_that_cannot_be_opened_is_a_one_line_error(tmp_path: Path, url: str) -> None:
    url = url.format(port=free_port(), tmp=tmp_path)
    message = one_line_error(make_cli(tmp_path / "data", url)("resolve", "ann@acme.example"))
    assert message.startswith("error: cannot open database")


def test_usage_error_is_reported_without_a_traceback(cli: Cli, ready: str) -> None:
    code, _, err = cli("events", "show", "not-a-number")
    assert code == 2
    assert "Traceback" not in err


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_main_flow_on_postgresql(
    postgres_url: str, tmp_path: Path, example_directory_text: str
) -> None:
    run = make_cli(tmp_path / "data", postgres_url)
    source = tmp_path / "directory.json"
    source.write_text(example_directory_text, encoding="utf-8")
    assert run("directory", "import", str(source)).code == 0
    resolved = run("resolve", "ann@acme-events.example", "--json").json()
    assert isinstance(resolved, dict) and resolved["client"] == ACME
    created = run(
        "events", "create", "--name", "Launch", "--start", "2027-03-05T09:00",
        "--end", "2027-03-05T10:00", "--timezone", "Europe/Berlin",
        "--booker", "ann@acme-events.example", "--json",
    ).json()  # fmt: skip
    assert isinstance(created, dict)
    assert (created["client_contact"], created["trace"]) == (ANN, resolved["trace"])
    event_id = str(created["id"])
    updated = run("events", "update", event_id, "--location", "Hall C", "--json").json()
    assert isinstance(updated, dict)
    assert (updated["location"], updated["client"], updated["trace"]) == (
        "Hall C",
        ACME,
        resolved["trace"],
    )
    cancelled = run("events", "cancel", event_id, "--json").json()
    assert isinstance(cancelled, dict) and cancelled["status"] == "cancelled"
