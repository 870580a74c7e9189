"""``calbridge locations ...``: the venue's rooms (imported with the directory) and the
double bookings among them.

Rooms are added, changed and deactivated through ``calbridge directory import`` (the
``locations`` section); these commands only read.
"""

from __future__ import annotations

from typing import Annotated

import typer

from calbridge.cli.common import Rows, print_json, say, session
from calbridge.store.booked import double_bookings
from calbridge.store.locations import list_locations, location_json

app = typer.Typer(help="Venue rooms: list them and their double bookings.")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every location (room) with its capacity, resource address and aliases."""
    with session() as s:
        rows = [location_json(loc) for loc in list_locations(s)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        say(
            "no locations yet: add a `locations` section to the directory file and run "
            "`calbridge directory import FILE`"
        )
        return
    table = Rows("id", "name", "capacity", "active", "resource", "aliases")
    for r in rows:
        table.add(
            r["id"],
            r["name"],
            None if r["capacity"] is None else str(r["capacity"]),
            "yes" if r["active"] else "no",
            r["resource_address"],
            ", ".join(r["aliases"]) or None,
        )
    table.print()


@app.command("double-bookings")
def double_bookings_(as_json: AsJson = False) -> None:
    """Rooms two confirmed bookings hold at the same time (each pair listed from both sides)."""
    with session() as s:
        found = [d.as_dict() for d in double_bookings(s)]
    if as_json:
        print_json(found)
        return
    if not found:
        say("no double bookings")
        return
    table = Rows("room", "booking", "booked location", "also booked by")
    for d in found:
        other = d["other_event"]
        table.add(
            d["room"]["name"],
            str(d["event"]),
            str(d["booked_location"]),
            f"{other['id']} {other['name']}",
        )
    table.print()
