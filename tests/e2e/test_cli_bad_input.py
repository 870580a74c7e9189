"""Bad files and bad numbers are one-line errors, never tracebacks (issue 12 §1): the real
console script, run as a person would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from calbridge.config import Settings
from calbridge.store.db import open_store
from calbridge.store.directory import import_directory
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge_cli import Cli, CliResult


def one_line_error(result: CliResult) -> str:
    assert result.code != 0
    assert "Traceback" not in result.err and "Traceback" not in result.out
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def ready(sqlite_url: str, example_directory: dict[str, Any]) -> str:
    store = open_store(sqlite_url)
    with store.session() as session:
        import_directory(session, json.dumps(example_directory))
    store.dispose()
    return sqlite_url


def test_directory_import_of_json_nested_a_thousand_deep_is_a_one_line_error(
    cli: Cli, tmp_path: Path
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"companies": ' + "[" * 1000 + "]" * 1000 + "}")
    result = cli("directory", "import", str(deep))
    assert result.code == 2
    assert "nests JSON too deeply" in one_line_error(result)


def test_directory_import_of_a_file_that_is_not_utf8_is_a_one_line_error(
    cli: Cli, tmp_path: Path
) -> None:
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{\n"companies": [{"id": "co-1", "name": "Société"}]}'.encode("latin-1"))
    result = cli("directory", "import", str(latin1))
    assert result.code == 2
    line = one_line_error(result)
    assert "is not UTF-8 text (byte 0xe9 on line 2)" in line and "save it as UTF-8" in line


def test_events_show_of_a_number_beyond_any_id_is_not_found(cli: Cli, ready: str) -> None:
    for command in (["events", "show"], ["events", "cancel"]):
        result = cli(*command, "99999999999999999999")
        assert "no event has id 99999999999999999999" in one_line_error(result)


def test_resolve_batch_echoes_at_most_the_start_of_a_huge_malformed_line(
    cli: Cli, ready: str, tmp_path: Path
) -> None:
    batch = tmp_path / "batch.txt"
    with batch.open("wb") as handle:
        handle.write(b"ann@acme-events.example\n")
        handle.write(b"x" * 50_000_000 + b"\n")
        handle.write(b"not an address\n")
    result = cli("resolve", "--batch", str(batch), "--json")
    assert result.code == 3
    assert len(result.out) < 10_000
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert lines[0]["email"] == "ann@acme-events.example" and "client" in lines[0]
    assert lines[1]["email"] == "x" * 120 + "… (50,000,000 bytes)"
    assert "50,000,000 bytes long" in lines[1]["error"]
    assert lines[2]["email"] == "not an address" and lines[2]["error"]


def _seal_a_calendar(url: str, data_dir: Path) -> None:
    """A calendar whose password is sealed with the data directory's secret.key."""
    data_dir.mkdir(exist_ok=True)
    box = SecretBox.from_settings(Settings(data_dir=data_dir, database_url=url))
    store = open_store(url)
    with store.session() as session:
        add_caldav_calendar(
            session, box, "sales", "http://127.0.0.1:9/cal/", "u", "secret-pw", check=False
        )
    store.dispose()


def test_a_damaged_secret_key_file_is_a_one_line_error(
    cli: Cli, ready: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    _seal_a_calendar(ready, data_dir)
    (data_dir / "secret.key").write_text("this is not a key\n")
    line = one_line_error(cli("sync"))
    assert f"the secret key file {data_dir / 'secret.key'} is damaged" in line
    assert "restore it from a backup" in line


def test_a_deleted_key_file_is_not_recreated_while_sealed_secrets_need_it(
    cli: Cli, ready: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    _seal_a_calendar(ready, data_dir)
    (data_dir / "secret.key").unlink()
    line = one_line_error(cli("sync"))
    assert "secret.key is missing" in line and "1 calendar(s) ('sales')" in line
    assert "restore secret.key from a backup" in line and "calbridge calendars remove" in line
    assert not (data_dir / "secret.key").exists()
    store = open_store(ready)
    with store.session() as session:
        assert session.scalars(select(Calendar.secret)).one() is not None  # nothing lost
    store.dispose()


def test_a_missing_key_file_is_created_when_no_secret_needs_the_old_one(
    cli: Cli, ready: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    box = SecretBox.from_settings(Settings(data_dir=data_dir, database_url=ready))
    assert (data_dir / "secret.key").exists()
    assert box.open(box.seal({"a": 1}), "test") == {"a": 1}
