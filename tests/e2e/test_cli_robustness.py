"""The CLI as a person meets it: instant ``--version``; one-line errors for a data directory
that cannot be created and a calendar URL without a scheme; a server that refuses connections
reported quickly; private files; plain, untruncated lines in pipes and readable
``calendars show`` fields. Real subprocesses (the installed console script)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from calbridge.domain.event import make_times
from calbridge.store.db import open_store
from calbridge.store.directory import import_directory
from calbridge.store.events import create_event
from calbridge_cli import Cli, make_cli
from postgres_server import free_port


def one_line_error(result: Any) -> str:
    assert result.code != 0, result.out
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    return str(lines[0])


def test_version_is_printed_without_loading_the_program() -> None:
    code = (
        "import sys; sys.argv = ['calbridge', '--version']\n"
        "from calbridge.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
        "heavy = [m for m in ('sqlalchemy', 'httpx', 'rich', 'calbridge.store.db') "
        "if m in sys.modules]\n"
        "print('loaded:', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["calbridge 0.1.0", "loaded: []"]


def test_version_through_the_console_script(cli: Cli) -> None:
    assert cli("--version") == (0, "calbridge 0.1.0\n", "")


def test_the_version_printed_is_the_installed_distributions() -> None:
    """The CLI (and the quiet marks) read the package's constant, not the installed metadata:
    the build takes the version from that constant, so the two can never disagree."""
    from importlib.metadata import version

    import calbridge

    assert calbridge.installed_version() == version("calbridge") == calbridge.__version__


def test_a_data_directory_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for data_dir in (blocker / "calbridge", blocker):
        cli = make_cli(data_dir, None)
        message = one_line_error(cli("events", "list"))
        assert f"data directory {data_dir}" in message
        assert "CALBRIDGE_DATA_DIR" in message


def test_data_directory_database_and_key_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "calbridge"
    cli = make_cli(data_dir, None)
    assert cli("events", "list").code == 0
    # the key file appears when the first secret is sealed
    from calbridge.config import Settings
    from calbridge.store.secrets import SecretBox

    SecretBox.from_settings(Settings(data_dir=data_dir))
    assert stat.S_IMODE((data_dir / "secret.key").stat().st_mode) == 0o600


def test_a_caldav_url_without_a_scheme_is_refused_before_any_request(cli: Cli) -> None:
    result = cli(
        "calendars", "add", "front", "--caldav", "dav.example.com/cal/mia/",
        "--username", "mia", "--password-env", "HOME",
    )  # fmt: skip
    message = one_line_error(result)
    assert "--caldav 'dav.example.com/cal/mia/' has no http:// or https:// scheme" in message
    assert "None:80" not in message


def test_a_refused_connection_is_one_clear_line(cli: Cli) -> None:
    port = free_port()  # nothing listens there
    result = cli(
        "calendars", "add", "front", "--caldav", f"http://127.0.0.1:{port}/cal/",
        "--username", "mia", "--password-env", "HOME",
    )  # fmt: skip
    message = one_line_error(result)
    assert f"cannot reach the server at 127.0.0.1:{port}" in message
    assert "Connection refused" in message


LONG_NAME = ("Annual general meeting of the harbour venue owners " * 4).strip()


@pytest.fixture
def with_events(sqlite_url: str, cli: Cli, example_directory_text: str) -> Cli:
    """The ``cli`` fixture's database with the example directory and two bookings (set up
    through the store API; only the behaviour under test goes through the CLI)."""
    store = open_store(sqlite_url)
    try:
        with store.session() as s:
            import_directory(s, example_directory_text)
            for name in ("Gala [/b]", LONG_NAME):
                times = make_times(
                    "2027-03-05T09:00", "2027-03-05T10:00", all_day=False, timezone=None
                )
                create_event(s, name=name, times=times, booker="ann@acme-events.example")
    finally:
        store.dispose()
    return cli


def test_tables_in_a_pipe_are_plain_untruncated_lines(with_events: Cli) -> None:
    listed = with_events("events", "list")
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    assert lines[0].split("\t") == ["id", "name", "start", "end", "status", "client", "manager"]
    rows = [line.split("\t") for line in lines[1:]]
    assert [row[1] for row in rows] == ["Gala [/b]", LONG_NAME]
    assert all(len(row) == 7 for row in rows)
    assert not any(ch in listed.out for ch in "│┃━…")


def test_calendars_show_prints_readable_fields(with_events: Cli, sqlite_url: str) -> None:
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.calendars import add_caldav_calendar

    store = open_store(sqlite_url)
    try:
        with store.session() as s:
            add_caldav_calendar(
                s, SecretBox(SecretBox.generate_key()), "front",
                "https://dav.example/cal/mia/", "mia", "pw", check=False,
            )  # fmt: skip
    finally:
        store.dispose()
    shown = with_events("calendars", "show", "front")
    assert shown.code == 0, shown.err
    fields = dict(line.split(": ", 1) for line in shown.out.splitlines())
    assert fields["name"] == "front" and fields["url"] == "https://dav.example/cal/mia/"
    assert fields["last sync"] == "never" and fields["links"] == "none"
    assert fields["owner"] == "none" and fields["last report"] == "none"
    assert "None" not in shown.out and "{" not in shown.out


def test_events_show_in_a_pipe_is_key_value_lines(with_events: Cli) -> None:
    shown = with_events("events", "show", "1")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == "#1 Gala [/b]  confirmed"
    assert "Event Client: Acme Corp (company co-acme)" in lines
    assert "Location: —" in lines
