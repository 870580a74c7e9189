"""Issue 9 §3–4 through the CLI (in-process: same parsing, errors and exit codes): times with
their offset and the venue's zone, shared addresses as warnings, a contact of another company
refused, and the directory's published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from calbridge.store.db import open_store
from calbridge.store.models import SystemSettings
from calbridge_cli import Cli, make_inprocess_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"


@pytest.fixture
def run(tmp_path: Path, sqlite_url: str) -> Cli:
    return make_inprocess_cli(tmp_path / "data", sqlite_url)


def _import(run: Cli, tmp_path: Path, data: dict[str, Any], *extra: str) -> Any:
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return run("directory", "import", str(path), *extra)


def _create(run: Cli, start: str, end: str, *extra: str) -> Any:
    return run(
        "events", "create", "--name", "Board dinner", "--start", start, "--end", end,
        "--client", "co-acme", "--contact", "ct-ann", "--booked-by", "u-tom",
        "--event-manager", "u-mia", *extra,
    )  # fmt: skip


def test_offset_is_kept_as_the_instant_and_shown_in_the_venue_zone(
    run: Cli, tmp_path: Path, example_directory: dict[str, Any]
) -> None:
    example_directory["settings"]["venue_timezone"] = "Europe/Berlin"
    assert _import(run, tmp_path, example_directory).code == 0
    made = _create(run, "2026-05-01T10:00+01:00", "2026-05-01T12:00+01:00", "--json")
    assert made.code == 0, made.err
    event = json.loads(made.out)
    assert (event["start"], event["end"], event["timezone"]) == (
        "2026-05-01T11:00:00+02:00",
        "2026-05-01T13:00:00+02:00",
        "Europe/Berlin",
    )
    assert event["floating"] is False and event["all_day"] is False
    listed = run("events", "list")
    assert "2026-05-01 11:00+02:00 Europe/Berlin" in listed.out
    assert "2026-05-01 13:00+02:00 Europe/Berlin" in listed.out
    moved = run("events", "update", str(event["id"]), "--start", "2026-05-01T09:00", "--json")
    assert json.loads(moved.out)["start"] == "2026-05-01T09:00:00+02:00"  # its own zone


def test_a_local_time_the_clocks_skip_is_a_one_line_error(run: Cli, tmp_path: Path) -> None:
    assert run("directory", "import", str(EXAMPLES / "directory.json")).code == 0
    made = _create(run, "2027-03-28T01:30", "2027-03-28T03:00")  # Europe/London skips 01:xx
    assert made.code != 0 and "Traceback" not in made.err
    assert "start 2027-03-28T01:30 does not exist in Europe/London" in made.err
    twice = _create(run, "2027-10-31T01:30", "2027-10-31T03:00")
    assert "start 2027-10-31T01:30 happens twice in Europe/London" in twice.err
    assert run("events", "list", "--json").out.strip() == "[]"  # nothing was stored


def test_shared_addresses_are_warnings_on_import_and_check_and_errors_when_strict(
    run: Cli, tmp_path: Path, example_directory: dict[str, Any]
) -> None:
    users = example_directory["users"]
    users.append(
        {"id": "u-sam", "name": "Sam Cole", "type": "named", "active": True,
         "crm_account": "co-harbour",
         "email_accounts": [{"address": "Tom@Harbour.example", "primary": True}]}
    )  # fmt: skip
    example_directory["contacts"][1]["alternate_emails"] = ["ANN@acme-events.example"]
    strict = _import(run, tmp_path, example_directory, "--strict")
    assert strict.code == 2 and "nothing was imported" in strict.err
    assert "address 'tom@harbour.example' belongs to 2 users: u-sam (Sam Cole), u-tom" in strict.err
    assert run("directory", "export").out.count('"id"') == 0  # nothing written
    imported = _import(run, tmp_path, example_directory, "--json")
    assert imported.code == 0
    warnings = json.loads(imported.out)["warnings"]
    assert [(w["kind"], w["address"], [r["id"] for r in w["records"]]) for w in warnings] == [
        ("users", "tom@harbour.example", ["u-sam", "u-tom"]),
        ("contacts", "ann@acme-events.example", ["ct-ann", "ct-raj"]),
    ]
    checked = run("check")
    assert checked.code == 0
    assert "warning: address 'ann@acme-events.example' belongs to 2 contacts: ct-ann" in (
        checked.err
    )
    assert run("check", "--strict").code == 1
    report = json.loads(run("check", "--json").out)
    assert report["ok"] is True and len(report["warnings"]) == 2


def test_a_contact_of_another_company_is_refused(run: Cli) -> None:
    assert run("directory", "import", str(EXAMPLES / "directory.json")).code == 0
    made = run(
        "events", "create", "--name", "Dinner", "--start", "2027-04-01T19:00",
        "--end", "2027-04-01T22:00", "--client", "co-harbour", "--contact", "ct-ann",
        "--booked-by", "u-tom", "--event-manager", "u-mia",
    )  # fmt: skip
    assert made.code != 0 and "Traceback" not in made.err
    assert (
        "--contact 'ct-ann' (Ann Lee) belongs to company 'co-acme', not to --client "
        "'co-harbour' (Harbour View Venue (house account)); give --client co-acme"
    ) in made.err
    assert run("events", "list", "--json").out.strip() == "[]"


def test_directory_schema_is_json_schema_and_the_documented_example_follows_it(run: Cli) -> None:
    printed = run("directory", "schema")
    assert printed.code == 0
    schema = json.loads(printed.out)
    jsonschema.Draft202012Validator.check_schema(schema)
    example = json.loads((EXAMPLES / "directory.json").read_text(encoding="utf-8"))
    jsonschema.validate(example, schema)
    broken = {**example, "users": [{"id": "u-x", "name": "X", "type": "robot"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    assert "venue_timezone" in schema["$defs"]["SettingsIn"]["properties"]


def test_the_documented_example_is_the_one_the_demo_ships() -> None:
    shipped = REPO / "src" / "calbridge" / "demo" / "directory.json"
    assert shipped.read_bytes() == (EXAMPLES / "directory.json").read_bytes()
    assert "docs/examples/directory.json" in (REPO / "docs" / "directory.md").read_text()


def test_check_names_a_stored_venue_zone_that_is_not_a_zone(run: Cli, sqlite_url: str) -> None:
    assert run("directory", "import", str(EXAMPLES / "directory.json")).code == 0
    store = open_store(sqlite_url)
    with store.session() as session:
        settings = session.get(SystemSettings, 1)
        assert settings is not None and settings.venue_timezone == "Europe/London"
        settings.venue_timezone = "Mars/Olympus"
    store.dispose()
    checked = run("check")
    assert checked.code == 1 and "Traceback" not in checked.err
    assert "the venue time zone 'Mars/Olympus' is not an IANA zone" in checked.err


def test_check_warns_that_without_a_venue_zone_typed_times_are_floating(
    run: Cli, tmp_path: Path, example_directory: dict[str, Any]
) -> None:
    del example_directory["settings"]["venue_timezone"]
    assert _import(run, tmp_path, example_directory).code == 0
    checked = run("check")
    assert checked.code == 0 and "Traceback" not in checked.err
    [warning] = checked.err.splitlines()
    assert warning.startswith("warning: no venue time zone is set: times typed without an offset")
    assert "are stored floating" in warning
    assert '"venue_timezone"' in warning and "`calbridge directory import`" in warning
    report = json.loads(run("check", "--json").out)
    assert report["ok"] is True and report["warnings"] == [warning.removeprefix("warning: ")]
    assert run("check", "--strict").code == 0  # --strict is about shared addresses
    example_directory["settings"]["venue_timezone"] = "Europe/London"
    assert _import(run, tmp_path, example_directory).code == 0
    assert json.loads(run("check", "--json").out)["warnings"] == []
