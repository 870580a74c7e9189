"""The ``calbridge`` command. Commands are thin: parse, call the store/domain, print.

Every expected failure is a ``CalbridgeError``: its message is printed on stderr (with the list
of problems when there are several) and the process exits with the error's code — never a
traceback. Log records (and the tracebacks of unexpected failures) go to the log file
(``logs.py``), never to the terminal. ``calbridge --version`` answers before any command module
(SQLAlchemy, providers…) is imported, so it is instant.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import typer

    from calbridge.errors import CalbridgeError


def version() -> str:
    """The installed distribution's version (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("calbridge")
    except PackageNotFoundError:
        return "0+unknown"


def build_app() -> typer.Typer:
    """The Typer application with every command group."""
    import typer

    from calbridge.cli import (
        admin_cmd,
        calendars_cmd,
        demo_cmd,
        directory_cmd,
        emulate_cmd,
        events_cmd,
        guard_cmd,
        resolve_cmd,
        runs_cmd,
        serve_cmd,
        sync_cmd,
        tokens_cmd,
        worker_cmd,
    )

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
            typer.echo(f"calbridge {version()}")
            raise typer.Exit(0)

    app.add_typer(directory_cmd.app, name="directory")
    app.add_typer(events_cmd.app, name="events")
    app.add_typer(emulate_cmd.app, name="emulate")
    app.command("resolve")(resolve_cmd.resolve)
    app.command("check")(directory_cmd.check)
    app.add_typer(calendars_cmd.app, name="calendars")
    app.command("sync")(sync_cmd.sync)
    app.command("demo")(demo_cmd.demo)
    app.add_typer(sync_cmd.conflicts_app, name="conflicts")
    app.add_typer(sync_cmd.rejections_app, name="rejections")
    app.add_typer(admin_cmd.app, name="admin")
    events_cmd.app.command("link")(sync_cmd.events_link)
    app.command("serve")(serve_cmd.serve)
    app.command("worker")(worker_cmd.worker)
    app.add_typer(runs_cmd.app, name="runs")
    calendars_cmd.app.command("sync-now")(runs_cmd.sync_now)
    calendars_cmd.app.command("resync")(runs_cmd.resync)
    calendars_cmd.app.command("pause")(runs_cmd.pause)
    calendars_cmd.app.command("resume")(runs_cmd.resume)
    calendars_cmd.app.command("confirm")(guard_cmd.confirm)
    app.add_typer(tokens_cmd.app, name="tokens")
    return app


@cache
def command() -> Callable[..., Any]:
    """The click command behind the Typer app, built once per process (Typer inspects every
    command's signature to build it)."""
    import typer.main

    return typer.main.get_command(build_app())


def report_error(exc: CalbridgeError) -> int:
    from calbridge.cli.common import say
    from calbridge.errors import ValidationFailed

    say(("error:", "bold red"), " ", str(exc), err=True)
    if isinstance(exc, ValidationFailed):
        for problem in exc.problems:
            say("  - ", problem, err=True)
    return exc.exit_code


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"calbridge {version()}\n")
        sys.exit(0)
    import click
    import typer

    from calbridge.cli.common import err_console
    from calbridge.config import load_settings
    from calbridge.errors import CalbridgeError
    from calbridge.logs import configure_logging

    configure_logging(load_settings())
    try:
        code = command()(standalone_mode=False)
    except CalbridgeError as exc:
        sys.exit(report_error(exc))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except (typer.TyperException, click.ClickException) as exc:  # usage errors
        show: Any = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"error: {exc}")
        sys.exit(int(getattr(exc, "exit_code", 2)))
    sys.exit(code if isinstance(code, int) else 0)
