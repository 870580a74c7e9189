"""``calbridge demo``: see the whole product work on this machine, nothing to configure."""

from __future__ import annotations

from typing import Annotated

import typer

from calbridge.cli.common import console, make_console, print_json


def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep Radicale running afterwards")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the sync figures as JSON")] = False,
) -> None:
    """Start a local CalDAV server with two staff calendars, sync both ways, and explain."""
    from calbridge.demo.run import run_demo

    out = make_console(stderr=True) if as_json else console
    result = run_demo(out, keep)
    if as_json:
        print_json(result)
