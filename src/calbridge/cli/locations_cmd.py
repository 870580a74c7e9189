"""``calbridge locations ...``: the venue's rooms (imported with the directory), the double
bookings among them, and the location texts from calendars that match no room.

Rooms are added, changed and deactivated through ``calbridge directory import`` (the
``locations`` section). ``unmatched`` lists the texts that match no room, grouped (one line per
text, with its bookings); ``alias TEXT --room ID`` makes one a room's alias (its bookings are
matched to the room), ``ignore TEXT`` marks it not a room (its bookings stop being flagged),
``unignore TEXT`` undoes that and ``ignored`` lists them (:mod:`calbridge.ops.location_texts`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from calbridge.cli.common import Rows, print_json, say, session
from calbridge.ops.location_texts import (
    alias_text,
    ignore_text,
    ignored_texts,
    unignore_text,
    unmatched_texts,
)
from calbridge.store.booked import double_bookings
from calbridge.store.locations import list_locations, location_json

app = typer.Typer(
    help="Venue rooms: list them, their double bookings, and location texts matching no room."
)
ACTOR = "cli"

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


@app.command("unmatched")
def unmatched(as_json: AsJson = False) -> None:
    """Location texts from calendars that match no room, one line per text with how many
    bookings wait on it (settle one with `locations alias` or `locations ignore`)."""
    with session() as s:
        found = [u.as_dict() for u in unmatched_texts(s)]
    if as_json:
        print_json(found)
        return
    if not found:
        say("no location texts waiting: every booking from a calendar is in a room")
        return
    table = Rows("text", "bookings", "for example")
    for u in found:
        table.add(
            u["text"] or "(no location)", str(u["bookings"]), ", ".join(map(str, u["examples"]))
        )
    table.print()


@app.command("alias")
def alias(
    text: Annotated[str, typer.Argument(help="The location text, as calendars write it")],
    room: Annotated[str, typer.Option("--room", help="The room's id (`locations list`)")],
    as_json: AsJson = False,
) -> None:
    """Make TEXT another name of a room: the bookings waiting on it are matched to that room,
    and later ones too."""
    with session() as s:
        count = len(alias_text(s, text, room, actor=ACTOR))
    if as_json:
        print_json({"alias": " ".join(text.split()), "room": room, "bookings": count})
        return
    say("'", text, f"' is now an alias of {room}; {count} booking(s) matched to that room")


@app.command("ignore")
def ignore(
    text: Annotated[str, typer.Argument(help="The location text, e.g. 'Zoom'")],
    as_json: AsJson = False,
) -> None:
    """Mark TEXT not a room (an online meeting, a client's office): bookings with it are no
    longer flagged for review, now or later."""
    with session() as s:
        count = ignore_text(s, text, actor=ACTOR)
    if as_json:
        print_json({"ignored": " ".join(text.split()), "bookings": count})
        return
    say("'", text, f"' is marked not a room; {count} booking(s) no longer flagged")


@app.command("unignore")
def unignore(
    text: Annotated[str, typer.Argument(help="A text marked not a room")],
    as_json: AsJson = False,
) -> None:
    """Undo `locations ignore`: bookings with TEXT are flagged again."""
    with session() as s:
        count = unignore_text(s, text, actor=ACTOR)
    if as_json:
        print_json({"unignored": " ".join(text.split()), "bookings": count})
        return
    say("'", text, f"' is no longer marked not a room; {count} booking(s) flagged again")


@app.command("ignored")
def ignored(as_json: AsJson = False) -> None:
    """The location texts marked not a room."""
    with session() as s:
        rows = ignored_texts(s)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("no location text is marked not a room")
        return
    table = Rows("text", "marked by", "at")
    for r in rows:
        table.add(r["text"], r["actor"], r["at"])
    table.print()
