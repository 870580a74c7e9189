"""The ``calbridge`` command. Commands are thin: parse, call the store/domain, print.

Every expected failure is a ``CalbridgeError``: its message is printed on stderr (with the list
of problems when there are several) and the process exits with the error's code — never a
traceback. Log records (and the tracebacks of unexpected failures) go to the log file
(``logs.py``), never to the terminal. ``calbridge --version`` answers before any command module
(SQLAlchemy, providers…) is imported, so it is instant; ``calbridge --help`` imports Typer and
the help lines of :data:`COMMANDS` only, and a command imports its own module and no other
(``tests/e2e/test_cli_start.py`` checks which libraries each one loads). The plain form of
``calbridge sync`` (``[--json] [NAME ...]``, what cron runs) does not import Typer at all
(``cli/sync_run.py``).
"""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING, Any

from calbridge import installed_version

if TYPE_CHECKING:
    from collections.abc import Callable

    import typer

    from calbridge.errors import CalbridgeError


#: The top-level commands: name → (loader, the help line ``calbridge --help`` shows). The
#: loaders import a command's module only when that command runs (or its own ``--help`` is
#: asked for), so ``calbridge --help`` imports Typer and nothing of the program. A test checks
#: these lines against the commands' own help, so they cannot drift apart.
COMMANDS: dict[str, tuple[str, str]] = {
    "resolve": (
        "_resolve",
        "Apply the client/user assignment rules (docs/assignment.md) to an address, explaining "
        "each step.",
    ),
    "check": (
        "_check",
        "Validate the stored configuration and directory, and say what to fix. Addresses that "
        "several users (or contacts) share are warnings (exit 0 unless --strict); so is a venue "
        "without a time zone (times typed without one are stored floating).",
    ),
    "sync": ("_sync", "Pull then push every calendar (or the named ones), incrementally."),
    "demo": (
        "_demo",
        "Start a local CalDAV server with two staff calendars, sync both ways, and explain.",
    ),
    "serve": (
        "_serve",
        "Run the service: web app, API, push endpoints, scheduler and sync workers.",
    ),
    "worker": (
        "_worker",
        "Run a sync worker on PostgreSQL (procrastinate); any number may run, anywhere.",
    ),
    "directory": (
        "_directory",
        "Import and export the CRM directory (companies, contacts, users).",
    ),
    "events": ("_events", "Bookings: create, list, show, update, cancel, re-assign."),
    "locations": (
        "_locations",
        "Venue rooms: list them, their double bookings, and location texts matching no room.",
    ),
    "emulate": ("_emulate", "Run a local emulator of a calendar API (for tests and demos)."),
    "calendars": ("_calendars", "Calendars kept in sync with the booking system."),
    "conflicts": ("_conflicts", "Fields changed on both sides, and who won."),
    "rejections": ("_rejections", "Calendar events that could not be imported."),
    "admin": ("_admin", "Admin accounts for the web UI."),
    "runs": ("_runs", "Sync-run history."),
    "tokens": ("_tokens", "API tokens for the REST API (shown once, stored hashed)."),
}


def _single(function: Callable[..., Any], name: str) -> Any:
    """The click command of one Typer command function."""
    import typer
    import typer.main

    holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    holder.command(name)(function)
    return typer.main.get_command(holder)


def _group(app: typer.Typer) -> Any:
    import typer.main

    return typer.main.get_group(app)


def _resolve() -> Any:
    from calbridge.cli import resolve_cmd

    return _single(resolve_cmd.resolve, "resolve")


def _check() -> Any:
    from calbridge.cli import directory_cmd

    return _single(directory_cmd.check, "check")


def _sync() -> Any:
    from calbridge.cli import sync_cmd

    return _single(sync_cmd.sync, "sync")


def _demo() -> Any:
    from calbridge.cli import demo_cmd

    return _single(demo_cmd.demo, "demo")


def _serve() -> Any:
    from calbridge.cli import serve_cmd

    return _single(serve_cmd.serve, "serve")


def _worker() -> Any:
    from calbridge.cli import worker_cmd

    return _single(worker_cmd.worker, "worker")


def _directory() -> Any:
    from calbridge.cli import directory_cmd

    return _group(directory_cmd.app)


def _events() -> Any:
    import typer

    from calbridge.cli import events_cmd, sync_cmd

    app = typer.Typer(help=events_cmd.app.info.help)
    app.registered_commands = list(events_cmd.app.registered_commands)
    app.command("link")(sync_cmd.events_link)
    return _group(app)


def _locations() -> Any:
    from calbridge.cli import locations_cmd

    return _group(locations_cmd.app)


def _emulate() -> Any:
    from calbridge.cli import emulate_cmd

    return _group(emulate_cmd.app)


def _calendars() -> Any:
    import typer

    from calbridge.cli import calendars_cmd, guard_cmd, runs_cmd

    app = typer.Typer(help=calendars_cmd.app.info.help)
    app.registered_commands = list(calendars_cmd.app.registered_commands)
    app.command("sync-now")(runs_cmd.sync_now)
    app.command("resync")(runs_cmd.resync)
    app.command("pause")(runs_cmd.pause)
    app.command("resume")(runs_cmd.resume)
    app.command("confirm")(guard_cmd.confirm)
    return _group(app)


def _conflicts() -> Any:
    from calbridge.cli import sync_cmd

    return _group(sync_cmd.conflicts_app)


def _rejections() -> Any:
    from calbridge.cli import sync_cmd

    return _group(sync_cmd.rejections_app)


def _admin() -> Any:
    from calbridge.cli import admin_cmd

    return _group(admin_cmd.app)


def _runs() -> Any:
    from calbridge.cli import runs_cmd

    return _group(runs_cmd.app)


def _tokens() -> Any:
    from calbridge.cli import tokens_cmd

    return _group(tokens_cmd.app)


def load_command(name: str) -> Any:
    """The real click command behind top-level command ``name`` (imports its module)."""
    loader: Callable[[], Any] = globals()[COMMANDS[name][0]]
    command = loader()
    command.name = name
    return command


def build_app() -> typer.Typer:
    """The Typer application: the root options (``--version``), and logging set up before any
    command runs. The commands themselves are added lazily by :func:`command`."""
    import typer

    app = typer.Typer(
        name="calbridge",
        help="Keep an event-booking system in two-way sync with Google, Microsoft 365 and CalDAV.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def _root(
        show_version: bool = typer.Option(
            False, "--version", help="Print calbridge's version and exit"
        ),
    ) -> None:
        if show_version:  # reached only when --version follows other options
            typer.echo(f"calbridge {installed_version()}")
            raise typer.Exit(0)
        from calbridge.config import load_settings
        from calbridge.logs import configure_logging

        configure_logging(load_settings())

    return app


@cache
def command() -> Callable[..., Any]:
    """The click command behind the Typer app, built once per process. Each command is a
    stand-in carrying its help line until it is used: then its module is imported and the
    real command parses the arguments and runs."""
    import typer.main
    from typer.core import TyperCommand

    from calbridge.sync.collector import resume_after_start

    class LazyCommand(TyperCommand):
        def __init__(self, name: str, help_line: str) -> None:
            super().__init__(name, help=help_line)
            self._real: Any = None

        def real(self) -> Any:
            if self._real is None:
                self._real = load_command(str(self.name))
                resume_after_start()  # loaded: a service or worker then collects as usual
            return self._real

        def make_context(self, info_name: Any, args: Any, parent: Any = None, **extra: Any) -> Any:
            return self.real().make_context(info_name, args, parent=parent, **extra)

    group: Any = typer.main.get_command(build_app())
    for name, (_loader, help_line) in COMMANDS.items():
        group.add_command(LazyCommand(name, help_line), name)
    return group  # type: ignore[no-any-return]


def report_error(exc: CalbridgeError) -> int:
    from calbridge.cli.common import say
    from calbridge.errors import ValidationFailed

    say(("error:", "bold red"), " ", str(exc), err=True)
    if isinstance(exc, ValidationFailed):
        for problem in exc.problems:
            say("  - ", problem, err=True)
    return exc.exit_code


def lighten_libraries() -> None:
    """Two libraries do costly work at import that a calbridge process never uses:

    - httpx imports its own command line (``httpx._main``: click, rich, pygments) whenever
      those are installed — they are, for calbridge's CLI. A stand-in module is registered
      before httpx is first imported, so only ``httpx.main`` (httpx's CLI) is missing here;
    - pydantic scans every installed distribution's entry points for plugins the first time
      it builds a validator; ``PYDANTIC_DISABLE_PLUGINS`` (pydantic's documented switch) skips
      that unless the environment sets it.
    """
    import os
    import types

    if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
        stand_in = types.ModuleType("httpx._main")

        def _no_httpx_cli() -> None:
            raise SystemExit("httpx's command line is not available inside calbridge")

        stand_in.main = _no_httpx_cli  # type: ignore[attr-defined]
        sys.modules["httpx._main"] = stand_in
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def run() -> None:
    """The ``calbridge`` console script: :func:`main`, then the process ends. The cyclic
    collector is paused while the command's modules load (``sync/collector.py``). Objects still
    alive at the end are frozen out of the collector: the interpreter's collections while it
    shuts down would otherwise walk every one of them — after an import, about 0.2 s for
    nothing, since the process is ending. A plain ``calbridge sync`` (the command cron runs)
    then ends at once (:func:`_end_now`). None of this is done by :func:`main`, which tests
    call within their own process."""
    import gc

    from calbridge.sync.collector import pause_while_starting

    pause_while_starting()
    try:
        main()
    except SystemExit as exc:
        if _synced and (exc.code is None or isinstance(exc.code, int)):
            gc.freeze()
            _end_now(exc.code or 0)
        raise
    finally:
        gc.freeze()


_synced = False  # a plain sync ran to its end (its store closed, its output written)


def _end_now(code: int) -> None:
    """End the process as the interpreter would, without its teardown: threads joined and
    exit handlers run (logging's among them), output flushed, then ``os._exit``. The teardown
    frees every object the process made — SQLAlchemy, the ORM models, the engine — one by one,
    about 5 % of a 1,000-event import's wall time, for a process that is ending anyway. The
    store is already closed (its connections, SQLite's log). Where the interpreter's private
    hooks for the first two steps are missing, the normal exit happens instead."""
    import atexit
    import os
    import threading

    shutdown = getattr(threading, "_shutdown", None)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if not callable(shutdown) or not callable(run_exit_handlers):
        return
    shutdown()
    run_exit_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: what the interpreter would report as 120
        code = code or 120
    os._exit(code)


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"calbridge {installed_version()}\n")
        sys.exit(0)
    lighten_libraries()
    from calbridge.cli.sync_run import plain_sync_args

    plain = plain_sync_args(sys.argv[1:])
    if plain is not None:
        sys.exit(_plain_sync(*plain))
    import typer

    from calbridge.errors import CalbridgeError

    try:
        code = command()(standalone_mode=False)
    except CalbridgeError as exc:
        sys.exit(report_error(exc))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(1)
    except typer.TyperException as exc:  # usage errors
        sys.exit(_usage_error(exc))
    except Exception as exc:
        if not _is_click_error(exc):
            raise
        sys.exit(_usage_error(exc))
    sys.exit(code if isinstance(code, int) else 0)


def _plain_sync(names: list[str], as_json: bool) -> int:
    """``calbridge sync [--json] [NAME ...]`` without Typer (``cli/sync_run.py``): logging set
    up as the root command does, errors reported as for any command."""
    from calbridge.cli.sync_run import sync_and_print
    from calbridge.config import load_settings
    from calbridge.errors import CalbridgeError
    from calbridge.logs import configure_logging

    global _synced
    configure_logging(load_settings())
    try:
        code = sync_and_print(names, as_json)
    except CalbridgeError as exc:
        return report_error(exc)
    _synced = True
    return code


def _is_click_error(exc: Exception) -> bool:
    """A usage error raised with the ``click`` package itself (a command may; importing click
    only to test for it would cost every start)."""
    if "click" not in sys.modules:
        return False
    import click

    return isinstance(exc, click.ClickException)


def _usage_error(exc: Exception) -> int:
    show: Any = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        sys.stderr.write(f"error: {exc}\n")
    return int(getattr(exc, "exit_code", 2))
