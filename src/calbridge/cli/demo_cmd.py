"""``calbridge demo``: see the whole product work on this machine, nothing to configure."""

from __future__ import annotations

from typing import Annotated

import typer

from calbridge.cli.common import console, make_console, print_json


def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep Radicale running afterwards")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the sync figures as JSON")] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", help="Run `calbridge serve` on the demo world: push, API, admin UI"
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="with --serve: the service's port")] = 8080,
) -> None:
    """Start a local CalDAV server with two staff calendars, sync both ways, and explain."""
    if serve:
        from calbridge.demo.serve import serve_demo

        shown = make_console(stderr=True) if as_json else console
        serve_demo(shown, port, announce=_flush_json if as_json else None)
        return
    from calbridge.demo.run import run_demo

    out = make_console(stderr=True) if as_json else console
    result = run_demo(out, keep)
    if as_json:
        print_json(result)


def _flush_json(result: dict[str, object]) -> None:
    import sys

    from calbridge.cli.common import print_jsonl

    print_jsonl(result)
    sys.stdout.flush()
