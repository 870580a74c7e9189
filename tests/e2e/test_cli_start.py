"""Start-up: each command loads only what it needs, and ``open_store`` imports Alembic only
when a migration is due. These check *which* libraries a process imported (``sys.modules`` in a
fresh interpreter), never how long it took — the time is the benchmark's business
(benchmarks/sync_caldav.py prints ``calbridge --help`` start-up)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from calbridge.cli.main import COMMANDS, load_command
from calbridge.cli.sync_run import SYNC_FAILED
from calbridge.store.db import _alembic_config, head_revision, open_store

HEAVY = (
    "sqlalchemy",
    "sqlalchemy.orm",
    "alembic",
    "mako",
    "googleapiclient",
    "google.auth",
    "msal",
    "httpx",
    "fastapi",
    "pydantic_settings",
    "calbridge.store",
)


def loaded_after(
    args: list[str], env: dict[str, str] | None = None, watch: tuple[str, ...] = HEAVY
) -> tuple[int, list[str]]:
    """Run ``calbridge ARGS`` through ``main()`` in a fresh interpreter; the exit code and which
    of the ``watch``ed modules were imported by then."""
    code = (
        "import json, sys\n"
        f"sys.argv = ['calbridge', *{args!r}]\n"
        "from calbridge.cli.main import main\n"
        "try:\n    main()\n    code = 0\n"
        "except SystemExit as exc:\n    code = exc.code or 0\n"
        f"heavy = [m for m in {list(watch)!r} + ['alembic', 'googleapiclient', 'msal'] "
        "if m in sys.modules]\n"
        "sys.stderr.write('LOADED ' + json.dumps([code, sorted(set(heavy))]) + '\\n')\n"
    )
    _done, said = probe(code, "LOADED", env)
    exit_code, loaded = json.loads(said)
    return exit_code, loaded


def probe(
    code: str, marker: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run Python ``code`` in a fresh interpreter with only ``env`` (and a plain terminal);
    the finished process and what its last ``MARKER …`` line on stderr says after the marker."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**(env or {}), "COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=120,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith(marker + " ")]
    assert lines, done.stderr
    return done, lines[-1][len(marker) + 1 :]


def store_with_calendar(data: Path, directory: str, url: str) -> None:
    """A SQLite store in ``data`` with the example directory and one CalDAV calendar "b" at
    ``url`` (user ann), made in this process."""
    from calbridge.config import Settings
    from calbridge.ops.directory import import_directory
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.calendars import add_caldav_calendar

    store = open_store(f"sqlite:///{data / 'calbridge.db'}")
    try:
        with store.session() as s:
            import_directory(s, directory, actor="test")
            box = SecretBox.from_settings(Settings(data_dir=data))
            add_caldav_calendar(s, box, "b", url, "ann", "ann-pw")
    finally:
        store.dispose()


def test_importing_the_cli_loads_no_database_alembic_or_provider_library() -> None:
    code = (
        "import sys\nimport calbridge.cli.main\n"
        "print([m for m in ('sqlalchemy.orm', 'alembic', 'googleapiclient', 'msal', 'sqlalchemy',"
        " 'typer', 'rich', 'httpx') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_help_lists_every_command_without_loading_any_command_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "calbridge.cli", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    listed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("│ ")]
    assert set(COMMANDS) <= set(listed)
    assert loaded_after(["--help"]) == (0, [])


def test_the_help_lines_are_the_commands_own() -> None:
    """``calbridge --help`` shows stand-in lines (no command module imported): each is the
    first paragraph of the real command's help, word for word."""
    for name, (_loader, line) in COMMANDS.items():
        real = load_command(name)
        first = (real.help or "").split("\n\n")[0]
        assert " ".join(line.split()) == " ".join(first.split()), name


def test_a_command_on_an_up_to_date_database_loads_neither_alembic_nor_provider_libraries(
    tmp_path: Path,
) -> None:
    env = {"CALBRIDGE_DATA_DIR": str(tmp_path)}
    open_store(f"sqlite:///{tmp_path / 'calbridge.db'}").dispose()  # created and migrated
    # sync stops on the empty directory's settings (exit 1): by then it has opened the store
    for args, expected in ((["events", "list"], 0), (["sync"], 1), (["calendars", "list"], 0)):
        code, loaded = loaded_after(args, env)
        assert code == expected, args
        assert not {"alembic", "mako", "googleapiclient", "msal", "fastapi"} & set(loaded), args


def test_a_new_database_is_migrated_through_the_cli(tmp_path: Path) -> None:
    code, loaded = loaded_after(["events", "list"], {"CALBRIDGE_DATA_DIR": str(tmp_path)})
    assert code == 0
    assert "alembic" in loaded  # a migration was due: Alembic ran it
    opened = open_store(f"sqlite:///{tmp_path / 'calbridge.db'}")
    try:
        from sqlalchemy import text

        with opened.engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        assert version == head_revision()
    finally:
        opened.dispose()


def test_the_head_revision_read_from_the_scripts_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    assert head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()


def test_a_database_one_migration_behind_is_brought_to_the_head(tmp_path: Path) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, text

    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_revision(head_revision())
    assert head is not None
    previous = head.down_revision
    if not isinstance(previous, str):
        pytest.skip("only one migration")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, previous)
    engine.dispose()
    opened = open_store(url)
    try:
        with opened.engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        assert version == head_revision()
    finally:
        opened.dispose()


def test_a_json_sync_of_a_caldav_calendar_loads_no_other_provider_and_no_terminal_library(
    tmp_path: Path, example_directory_text: str
) -> None:
    """``calbridge sync --json`` of a CalDAV calendar (a real Radicale), first with nothing on
    it and then with nothing changed: the first runs the whole engine, yet loads no other
    kind's connector or client library, no migration tool, no iCalendar parser (there is
    nothing to read), and nothing that only prints to a terminal (rich, pygments, click) — nor
    the CalDAV connector, its HTTP client, the secrets' cipher or the recurrence rules'
    library: a child process reads the calendar (``sync/forked.py``) and there is nothing to
    push; the second is the quick path
    (``sync/quick.py``): the CalDAV connector and no engine, ORM, pydantic or Typer at all."""
    from calbridge_emulators.radicale import running_radicale

    data = tmp_path / "data"
    data.mkdir()
    env = {"CALBRIDGE_DATA_DIR": str(data)}
    watch = (
        "calbridge.providers.google",
        "calbridge.providers.graph",
        "calbridge.providers.ews",
        "exchangelib",
        "icalendar",
        "alembic",
        "mako",
        "rich",
        "pygments",
        "click",
        "calbridge.providers.caldav.provider",
        "httpx",
        "cryptography",
        "dateutil",
        "calbridge.sync.engine",
        "sqlalchemy",
        "pydantic",
        "typer",
    )
    with running_radicale(tmp_path / "radicale", {"ann": "ann-pw"}) as server:
        store_with_calendar(data, example_directory_text, server.make_calendar("ann", "bookings"))
        code, loaded = loaded_after(["sync", "--json"], env, watch)
        assert code == 0
        # the engine ran; the calendar was read by the child; nothing else was loaded
        assert loaded == ["calbridge.sync.engine", "sqlalchemy"]
        code, loaded = loaded_after(["sync", "--json"], env, watch)
        assert code == 0
        assert loaded == ["calbridge.providers.caldav.provider", "cryptography", "httpx"]


def collector_at_exit(args: list[str], entry: str, env: dict[str, str] | None = None) -> str:
    """Run ``calbridge ARGS`` through ``entry`` (``run``, the console script, or ``main``) in a
    fresh interpreter, with the exit code main gives; what its cyclic collector was like at
    exit: ``"on"``/``"off"`` and ``"frozen"``/``"unfrozen"``."""
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: sys.stderr.write(\n"
        '    f\'COLLECTOR {"on" if gc.isenabled() else "off"} \'\n'
        '    f\'{"frozen" if gc.get_freeze_count() else "unfrozen"}\\n\'))\n'
        f"sys.argv = ['calbridge', *{args!r}]\n"
        f"from calbridge.cli.main import {entry}\n{entry}()\n"
    )
    done, said = probe(code, "COLLECTOR", env)
    assert done.returncode == 0, done.stderr
    return said


def test_the_console_script_freezes_what_is_left_before_the_interpreter_exits() -> None:
    """``run`` (the ``calbridge`` script) pauses the cyclic collector while modules load and
    ends with ``gc.freeze()``, so shutting down does not walk every object a sync left; the
    exit code is main's. A command resumes collection once its module is loaded (a service
    runs for long); ``--version`` loads none and ends paused. ``main`` itself, which tests
    call in their own process, pauses and freezes nothing."""
    assert collector_at_exit(["--version"], "run") == "off frozen"
    assert collector_at_exit(["directory", "--help"], "run") == "on frozen"
    assert collector_at_exit(["--version"], "main") == "on unfrozen"
    assert collector_at_exit(["directory", "--help"], "main") == "on unfrozen"


def test_a_sync_through_the_console_script_collects_once_the_engine_is_loaded(
    tmp_path: Path, example_directory_text: str
) -> None:
    """The first ``calbridge sync`` of a CalDAV calendar runs the engine: collection resumes
    when it is loaded, so an import of any size is collected as usual. The second finds
    nothing changed on the quick path, loads no engine, and ends with collection paused."""
    from calbridge_emulators.radicale import running_radicale

    data = tmp_path / "data"
    data.mkdir()
    env = {"CALBRIDGE_DATA_DIR": str(data)}
    with running_radicale(tmp_path / "radicale", {"ann": "ann-pw"}) as server:
        store_with_calendar(data, example_directory_text, server.make_calendar("ann", "bookings"))
        assert collector_at_exit(["sync", "--json"], "run", env) == "on frozen"
        assert collector_at_exit(["sync", "--json"], "run", env) == "off frozen"


def ending(args: list[str], env: dict[str, str]) -> tuple[int, str, list[str]]:
    """Run ``calbridge ARGS`` through the console script's ``run`` in a fresh interpreter that
    also has a thread still working and an exit handler, and that says when it ends without
    the interpreter's teardown (``os._exit``); its exit code, stdout and what was said."""
    code = (
        "import atexit, sys, threading, time\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    sys.stderr.write('END thread finished\\n')\n"
        "threading.Thread(target=late).start()\n"
        "atexit.register(lambda: sys.stderr.write('END exit handler ran\\n'))\n"
        "import os\n"
        "ended = os._exit\n"
        "def without_teardown(code):\n"
        "    os.write(2, b'END ended without the teardown\\n')\n"
        "    ended(code)\n"
        "os._exit = without_teardown\n"
        f"sys.argv = ['calbridge', *{args!r}]\n"
        "from calbridge.cli.main import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=120,
    )
    said = [line[4:] for line in done.stderr.splitlines() if line.startswith("END ")]
    return done.returncode, done.stdout, said


def test_a_plain_sync_ends_without_the_interpreters_teardown(
    tmp_path: Path, example_directory_text: str
) -> None:
    """``calbridge sync`` ends the way the interpreter would — threads waited for, exit
    handlers run, its output complete, its exit code (here a calendar whose server is down:
    the sync's own failure) — but skips freeing every object one by one
    (``cli.main._end_now``); other commands, and a sync refused outright, exit as usual."""
    from calbridge_emulators.radicale import running_radicale

    data = tmp_path / "data"
    data.mkdir()
    with running_radicale(tmp_path / "radicale", {"ann": "ann-pw"}) as server:
        store_with_calendar(data, example_directory_text, server.make_calendar("ann", "b"))
    env = {"CALBRIDGE_DATA_DIR": str(data)}  # the server is gone again
    code, out, said = ending(["sync", "--json"], env)
    [report] = json.loads(out)
    assert code == SYNC_FAILED and not report["ok"] and "cannot reach" in report["error"]
    assert said == ["thread finished", "exit handler ran", "ended without the teardown"]
    code, out, said = ending(["--version"], env)
    assert code == 0 and out.startswith("calbridge ")
    assert said == ["thread finished", "exit handler ran"]
    code, out, said = ending(["sync", "no-such-calendar"], env)
    assert code != 0 and said == ["thread finished", "exit handler ran"]
