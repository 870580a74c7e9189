"""``calbridge calendars confirm NAME``: let a calendar held by the mass-cancellation guard go
on, after showing what it will cancel (``--list`` shows it and changes nothing).

Calls :func:`calbridge.ops.sync_control.confirm` as the REST API and the admin UI do (actor
``cli``); the running service syncs the calendar at its next tick. Titles from calendars are
printed as plain text (never as rich markup).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from calbridge.cli.common import console, print_json, session
from calbridge.ops import sync_control
from calbridge.sync.guard import HeldItem, held_cancellations


def confirm(
    name: Annotated[str, typer.Argument(help="calendar name")],
    only_list: Annotated[
        bool, typer.Option("--list", help="show what would be cancelled; change nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Cancel the bookings the mass-cancellation guard held back, and let the calendar sync."""
    with session() as s:
        calendar = sync_control.find(s, name)
        held = held_cancellations(s, calendar.id)
        if not only_list:
            sync_control.confirm(s, None, name, actor="cli")
    if as_json:
        print_json(
            {
                "calendar": name,
                "confirmed": not only_list,
                "cancelled" if not only_list else "would_cancel": [_json(h) for h in held],
            }
        )
        return
    if held:
        console.print(_table(held))
    if only_list:
        verb = "would cancel" if held else "has nothing waiting:"
        console.print(f"calendar '{name}' {verb} {len(held)} bookings", markup=False)
        return
    console.print(
        f"calendar '{name}': {len(held)} bookings cancelled; it syncs again",
        markup=False,
        highlight=False,
    )


def _table(held: list[HeldItem]) -> Table:
    table = Table("booking", "start", "name", "why")
    for item in held:
        table.add_row(str(item.event_id), Text(item.start), Text(item.name), Text(item.reason))
    return table


def _json(item: HeldItem) -> dict[str, object]:
    return {"booking": item.event_id, "start": item.start, "name": item.name, "why": item.reason}
