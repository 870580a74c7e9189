"""Directory import/export, validation, migrations and opening the database, on both databases.

The store API is used in-process; the few checks about what a person sees at the terminal (exit
codes, one-line errors, no traceback) run the real ``calbridge`` command.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from calbridge.errors import ConfigError, ValidationFailed
from calbridge.store.db import Store, open_store
from calbridge.store.directory import ImportReport, export_directory, import_directory
from calbridge.store.lookup import settings_problems
from calbridge_cli import make_inprocess_cli
from postgres_server import free_port

DIRECTORY_TABLES = (
    "companies",
    "contacts",
    "contact_emails",
    "users",
    "user_emails",
    "system_settings",
)


def import_text(store: Store, text_: str) -> ImportReport:
    with store.session() as s:
        return import_directory(s, text_)


def import_data(store: Store, data: dict[str, Any]) -> ImportReport:
    return import_text(store, json.dumps(data))


def export(store: Store) -> dict[str, Any]:
    with store.session() as s:
        return export_directory(s)


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every directory table, including surrogate ids of email rows."""
    with store.engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
            for table in DIRECTORY_TABLES
        }


def rejected(store: Store, data: dict[str, Any] | str) -> list[str]:
    """Import that must fail validation; returns the problems (and checks nothing changed)."""
    before = snapshot(store)
    with pytest.raises(ValidationFailed) as info:
        import_text(store, data if isinstance(data, str) else json.dumps(data))
    assert info.value.exit_code == 2
    assert snapshot(store) == before
    return info.value.problems


# --- import ---------------------------------------------------------------------------------


def test_importing_the_example_creates_everything(
    store: Store, example_directory_text: str
) -> None:
    report = import_text(store, example_directory_text)
    assert report.created == {"companies": 3, "contacts": 3, "users": 3, "locations": 3}
    assert report.settings_changed and report.changed
    rows = snapshot(store)
    assert len(rows["contact_emails"]) == 4  # three primaries and Ann's alternate
    assert len(rows["user_emails"]) == 3
    with store.session() as s:
        assert settings_problems(s) == []


def test_importing_the_same_file_twice_changes_nothing(
    store: Store, example_directory_text: str
) -> None:
    import_text(store, example_directory_text)
    before = snapshot(store)
    report = import_text(store, example_directory_text)
    assert not report.changed
    assert report.as_dict() == {
        "created": {"companies": 0, "contacts": 0, "users": 0, "locations": 0},
        "updated": {"companies": 0, "contacts": 0, "users": 0, "locations": 0},
        "unchanged": {"companies": 3, "contacts": 3, "users": 3, "locations": 3},
        "settings_changed": False,
        "changed": False,
        "warnings": [],
    }
    assert snapshot(store) == before


def test_changed_file_updates_in_place(store: Store, example_directory: dict[str, Any]) -> None:
    import_data(store, example_directory)
    changed = copy.deepcopy(example_directory)
    changed["contacts"][0]["name"] = "Ann Lee-Smith"
    changed["contacts"][0]["alternate_emails"].append("ann.smith@acme.example")
    changed["users"][2]["active"] = False
    changed["settings"]["auto_assign_event_manager"] = False
    report = import_data(store, changed)
    assert report.created == {"companies": 0, "contacts": 0, "users": 0, "locations": 0}
    assert report.updated == {"companies": 0, "contacts": 1, "users": 1, "locations": 0}
    assert report.settings_changed
    assert export(store) == changed
    assert len(snapshot(store)["contacts"]) == 3


def test_file_may_refer_to_ids_already_in_the_database(
    store: Store, example_directory: dict[str, Any]
) -> None:
    import_data(store, example_directory)
    extra = {
        "contacts": [
            {"id": "ct-new", "name": "New Person", "company": "co-acme",
             "primary_email": "new@acme.example", "alternate_emails": []}
        ],
        "users": [
            {"id": "u-new", "name": "New User", "type": "named", "active": True,
             "crm_account": "ct-ann", "email_accounts": []}
        ],
    }  # fmt: skip
    report = import_data(store, extra)
    assert report.created == {"companies": 0, "contacts": 1, "users": 1, "locations": 0}
    exported = export(store)
    assert [c["id"] for c in exported["contacts"]][-1] == "ct-new"
    assert exported["settings"] == example_directory["settings"]


def test_export_then_import_round_trip_is_exact(store: Store, example_directory_text: str) -> None:
    import_text(store, example_directory_text)
    exported = export(store)
    original = json.loads(example_directory_text)
    assert exported == original
    assert list(exported) == list(original)
    for kind in ("companies", "contacts", "users"):
        assert [x["id"] for x in exported[kind]] == [x["id"] for x in original[kind]]
    assert not import_data(store, exported).changed


def test_cli_export_to_file_equals_the_imported_file(
    sqlite_url: str, tmp_path: Path, example_directory_text: str
) -> None:
    cli = make_inprocess_cli(tmp_path / "data", sqlite_url)
    source = tmp_path / "directory.json"
    source.write_text(example_directory_text, encoding="utf-8")
    assert cli("directory", "import", str(source)).code == 0
    again = cli("directory", "import", str(source))
    assert again.code == 0
    assert "Nothing changed" in again.out
    code, _, err = cli("directory", "export", "--output", str(tmp_path / "out.json"))
    assert (code, err) == (0, "")
    exported = (tmp_path / "out.json").read_text(encoding="utf-8")
    assert json.loads(exported) == json.loads(example_directory_text)


# --- validation: every problem, with its JSON path, nothing written -------------------------

Mutation = Callable[[dict[str, Any]], None]


def _dup_company(d: dict[str, Any]) -> None:
    d["companies"].append({"id": "co-acme", "name": "Acme again"})


def _dup_contact(d: dict[str, Any]) -> None:
    d["contacts"].append(dict(d["contacts"][1], primary_email="raj2@mail.example"))


def _dup_user(d: dict[str, Any]) -> None:
    d["users"].append(dict(d["users"][2], email_accounts=[]))


def _set(path: str, value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = d
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return mutate


VALIDATION_CASES: list[tuple[str, Mutation, str]] = [
    ("duplicate company id", _dup_company, "$.companies[3].id: duplicate id 'co-acme'"),
    ("duplicate contact id", _dup_contact, "$.contacts[3].id: duplicate id 'ct-raj'"),
    ("duplicate user id", _dup_user, "$.users[3].id: duplicate id 'u-tom'"),
    (
        "contact id equal to a company id",
        _set("contacts.1.id", "co-acme"),
        "$.contacts[1].id: 'co-acme' is also a company id",
    ),
    (
        "contact pointing at an unknown company",
        _set("contacts.0.company", "co-nowhere"),
        "$.contacts[0].company: unknown company 'co-nowhere'",
    ),
    (
        "user linked to an unknown account",
        _set("users.1.crm_account", "ct-nobody"),
        "$.users[1].crm_account: unknown CRM account 'ct-nobody'",
    ),
    (
        "settings naming a missing default account",
        _set("settings.default_account", "co-gone"),
        "$.settings.default_account: unknown account 'co-gone'",
    ),
    (
        "settings naming a missing virtual assistant",
        _set("settings.virtual_assistant_user", "u-gone"),
        "$.settings.virtual_assistant_user: unknown user 'u-gone'",
    ),
    (
        "settings naming an unknown venue time zone",
        _set("settings.venue_timezone", "Europe/Atlantis"),
        "$.settings.venue_timezone: unknown time zone 'Europe/Atlantis' (use an IANA name like "
        "Europe/London)",
    ),
    (
        "settings naming a missing default event manager",
        _set("settings.default_event_manager", "u-gone"),
        "$.settings.default_event_manager: unknown user 'u-gone'",
    ),
    (
        "virtual assistant user not of that type",
        _set("settings.virtual_assistant_user", "u-tom"),
        "$.settings.virtual_assistant_user: user 'u-tom' is of type 'concurrent', "
        "not 'virtual_assistant'",
    ),
    (
        "second virtual assistant user",
        _set("users.2.type", "virtual_assistant"),
        "$.users[2].type: only one virtual_assistant user is allowed",
    ),
    (
        "default event manager not active",
        lambda d: (
            _set("users.2.active", False)(d),
            _set("settings.default_event_manager", "u-tom")(d),
        ),
        "$.settings.default_event_manager: user 'u-tom' is not active",
    ),
    (
        "malformed contact primary email",
        _set("contacts.1.primary_email", "raj at mail"),
        "$.contacts[1].primary_email: malformed email address 'raj at mail'",
    ),
    (
        "malformed contact alternate email",
        _set("contacts.0.alternate_emails", ["ok@acme.example", "ann@"]),
        "$.contacts[0].alternate_emails[1]: malformed email address 'ann@'",
    ),
    (
        "malformed user email account",
        _set("users.1.email_accounts.1.address", "bookings@@harbour.example"),
        "$.users[1].email_accounts[1].address: malformed email address",
    ),
    (
        "an address listed twice for one contact",
        _set("contacts.0.alternate_emails", ["ANN.LEE@acme.example"]),
        "$.contacts[0].alternate_emails[0]: 'ANN.LEE@acme.example' is listed twice",
    ),
    (
        "two primary accounts for one user",
        _set("users.1.email_accounts.1.primary", True),
        "$.users[1].email_accounts: more than one account is marked primary",
    ),
    ("wrong type: boolean as string", _set("users.1.active", "yes"), "$.users[1].active:"),
    ("wrong type: name as number", _set("companies.0.name", 5), "$.companies[0].name:"),
    ("wrong type: list as object", _set("contacts", {}), "$.contacts:"),
    ("unknown user type", _set("users.1.type", "admin"), "$.users[1].type:"),
    ("unknown key", _set("companies.0.colour", "red"), "$.companies[0].colour:"),
    ("empty id", _set("companies.2.id", ""), "$.companies[2].id:"),
]


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [pytest.param(m, e, id=name) for name, m, e in VALIDATION_CASES],
)
def test_invalid_directory_is_rejected_with_the_json_path_and_nothing_is_written(
    sqlite_store: Store, example_directory: dict[str, Any], mutation: Mutation, expected: str
) -> None:
    # Validation runs before the database is written to; both databases are covered by
    # test_every_problem_is_listed_at_once and test_rejected_update_leaves_...untouched.
    mutation(example_directory)
    problems = rejected(sqlite_store, example_directory)
    assert any(p.startswith(expected) for p in problems), problems
    assert snapshot(sqlite_store)["companies"] == []


def test_nul_characters_are_refused_before_they_reach_the_database(
    store: Store, example_directory: dict[str, Any]
) -> None:
    # PostgreSQL cannot store NUL; the file is refused with the paths instead of crashing.
    _set("companies.0.name", "Walk\x00in")(example_directory)
    _set("contacts.0.alternate_emails", ["ann\x00@acme.example"])(example_directory)
    assert rejected(store, example_directory) == [
        "$.companies[0].name: Value error, contains a NUL character",
        "$.contacts[0].alternate_emails: Value error, contains a NUL character",
    ]


def test_invalid_json_is_rejected_with_its_position(store: Store) -> None:
    problems = rejected(store, '{"companies": [}')
    assert problems == ["$: not valid JSON: Expecting value at line 1, column 16"]


def test_a_json_value_that_is_not_an_object_is_rejected(store: Store) -> None:
    assert rejected(store, "[]")[0].startswith("$:")


def test_every_problem_is_listed_at_once(store: Store, example_directory: dict[str, Any]) -> None:
    _dup_company(example_directory)
    _set("contacts.0.company", "co-nowhere")(example_directory)
    _set("users.1.crm_account", "ct-nobody")(example_directory)
    _set("users.1.email_accounts.0.address", "mia@")(example_directory)
    _set("settings.default_account", "co-gone")(example_directory)
    _set("settings.virtual_assistant_user", "u-mia")(example_directory)
    problems = rejected(store, example_directory)
    assert [p.split(":")[0] for p in problems] == [
        "$.companies[2].id",
        "$.companies[3].id",
        "$.contacts[0].company",
        "$.users[1].crm_account",
        "$.users[1].email_accounts[0].address",
        "$.settings.default_account",
        "$.settings.virtual_assistant_user",
    ]


def test_all_type_errors_are_listed_at_once(
    store: Store, example_directory: dict[str, Any]
) -> None:
    _set("users.1.active", "yes")(example_directory)
    _set("companies.0.name", 5)(example_directory)
    _set("settings.auto_assign_event_manager", "true")(example_directory)
    problems = rejected(store, example_directory)
    assert {p.split(":")[0] for p in problems} == {
        "$.users[1].active",
        "$.companies[0].name",
        "$.settings.auto_assign_event_manager",
    }


def test_rejected_update_leaves_the_existing_directory_untouched(
    store: Store, example_directory: dict[str, Any]
) -> None:
    import_data(store, example_directory)
    broken = copy.deepcopy(example_directory)
    broken["contacts"][0]["name"] = "Renamed"  # a valid change ...
    broken["contacts"][1]["company"] = "co-nowhere"  # ... next to an invalid one
    rejected(store, broken)  # checks the snapshot is unchanged
    assert export(store) == example_directory


def test_cli_lists_every_problem_and_exits_2(
    tmp_path: Path, sqlite_url: str, example_directory: dict[str, Any]
) -> None:
    _set("contacts.0.company", "co-nowhere")(example_directory)
    _set("settings.virtual_assistant_user", "u-tom")(example_directory)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(example_directory), encoding="utf-8")
    code, out, err = make_inprocess_cli(tmp_path / "data", sqlite_url)(
        "directory", "import", str(bad)
    )
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0] == "error: the directory file has 2 problem(s); nothing was imported"
    assert lines[1].startswith("  - $.contacts[0].company: unknown company 'co-nowhere'")
    assert lines[2].startswith("  - $.settings.virtual_assistant_user: user 'u-tom'")
    assert "Imported" not in out
    with open_store(sqlite_url).session() as s:
        assert export_directory(s)["companies"] == []


# --- opening the database -------------------------------------------------------------------


def test_migrations_are_applied_automatically_on_first_use(db_url: str) -> None:
    opened = open_store(db_url)
    try:
        assert opened.engine.dialect.name == db_url.split(":")[0].split("+")[0]
        tables = set(inspect(opened.engine).get_table_names())
        assert {"alembic_version", "events", "counters", *DIRECTORY_TABLES} <= tables
        with opened.engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        assert version
    finally:
        opened.dispose()
    reopened = open_store(db_url)  # a second open is a no-op, not a second migration
    reopened.dispose()


def test_unreachable_postgresql_is_a_one_line_config_error() -> None:
    url = f"postgresql://calbridge:secret@127.0.0.1:{free_port()}/calbridge"
    with pytest.raises(ConfigError) as info:
        open_store(url)
    message = str(info.value)
    assert message.startswith("cannot open database postgresql+psycopg://calbridge:***@127.0.0.1")
    assert "secret" not in message
    assert "\n" not in message


def test_sqlite_path_in_a_missing_folder_is_a_one_line_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        open_store(f"sqlite:///{tmp_path}/no/such/folder/calbridge.db")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://calbridge@127.0.0.1:{port}/calbridge", id="postgresql"),
        pytest.param("sqlite:///{tmp}/missing/calbridge.db", id="sqlite-missing-folder"),
        pytest.param("nonsense", id="not-a-url"),
    ],
)
def test_cli_reports_a_database_it_cannot_open_in_one_line(tmp_path: Path, url: str) -> None:
    url = url.format(port=free_port(), tmp=tmp_path)
    code, out, err = make_inprocess_cli(tmp_path / "data", url)("check")
    assert code != 0
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")


# --- calbridge check ------------------------------------------------------------------------


def test_check_on_an_empty_database_says_what_to_fix_then_passes_after_import(
    tmp_path: Path, sqlite_url: str, example_directory_text: str
) -> None:
    cli = make_inprocess_cli(tmp_path / "data", sqlite_url)
    code, _, err = cli("check")
    assert code != 0
    assert "no Event System Settings are stored" in err
    assert "calbridge directory import" in err
    source = tmp_path / "directory.json"
    source.write_text(example_directory_text, encoding="utf-8")
    assert cli("directory", "import", str(source)).code == 0
    code, out, err = cli("check", "--json")
    assert (code, json.loads(out), err) == (0, {"ok": True, "problems": [], "warnings": []}, "")


def test_check_names_a_deactivated_default_event_manager(
    store: Store, example_directory: dict[str, Any]
) -> None:
    example_directory["settings"]["default_event_manager"] = "u-tom"
    import_data(store, example_directory)
    with store.session() as s:
        assert settings_problems(s) == []
    example_directory["settings"]["default_event_manager"] = None
    example_directory["users"][2]["active"] = False
    import_data(store, example_directory)
    with store.engine.begin() as conn:  # a later change made outside the import
        conn.execute(text("UPDATE system_settings SET default_event_manager_id = 'u-tom'"))
    with store.session() as s:
        problems = settings_problems(s)
    assert len(problems) == 1
    assert "Default Event Manager 'u-tom' is not an active user" in problems[0]
