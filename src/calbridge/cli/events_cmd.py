"""``calbridge events ...``: bookings in the booking system.

Writes go through :mod:`calbridge.ops.bookings` (the same functions as the REST API and the
admin UI), which records each change in the history with the actor ``cli``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from calbridge.cli.common import Rows, print_json, say, session, styled
from calbridge.domain.shown_times import shown_range
from calbridge.errors import BadEvent
from calbridge.ops.bookings import (
    ManualAssignment,
    NewBooking,
    book_location,
    cancel_booking,
    create_booking,
    reassign_booking,
    unbook_location,
    update_booking,
)
from calbridge.store.booked import BookedPrefetch, PlaceRequest
from calbridge.store.events import (
    event_json,
    event_times,
    get_event,
    links_of_many,
    list_events,
    typed_event_times,
)
from calbridge.store.lookup import hold_people

app = typer.Typer(help="Bookings: create, list, show, update, cancel, re-assign.")

#: who the history records for changes made from the command line
ACTOR = "cli"

Name = Annotated[str, typer.Option("--name", help="What the booking is called")]
Start = Annotated[str, typer.Option("--start", help="ISO date-time, or date with --all-day")]
End = Annotated[str, typer.Option("--end", help="ISO date-time; all-day: exclusive end date")]
AllDay = Annotated[bool, typer.Option("--all-day", help="Dates, exclusive end (as iCalendar)")]
Zone = Annotated[
    str | None,
    typer.Option("--timezone", help="IANA zone, e.g. Europe/Berlin (default: the venue's)"),
]
Location = Annotated[str | None, typer.Option("--location", help="Room or place")]
Locations = Annotated[
    list[str] | None,
    typer.Option(
        "--location",
        help="A room (location id, name or alias) or free text; repeat for several booked "
        "locations; ID@START/END gives that one its own times",
    ),
]
Notes = Annotated[str | None, typer.Option("--notes", help="Free text")]
NotesFile = Annotated[
    Path | None,
    typer.Option("--notes-file", help="Read the notes from this UTF-8 file ('-' = stdin)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _notes(notes: str | None, notes_file: Path | None) -> str | None:
    """The notes text: from --notes, or read from --notes-file (long notes do not fit in an
    argument: Linux limits one argument to 128 KiB)."""
    if notes_file is None:
        return notes
    if notes is not None:
        raise BadEvent("give --notes or --notes-file, not both")
    try:
        data = sys.stdin.buffer.read() if str(notes_file) == "-" else notes_file.read_bytes()
    except OSError as exc:
        raise BadEvent(f"cannot read --notes-file {notes_file}: {exc.strerror}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadEvent(f"--notes-file {notes_file} is not UTF-8 text") from exc


def _places(
    s: Any, values: list[str], *, all_day: bool, timezone: str | None
) -> list[PlaceRequest]:
    """``--location`` values: ``ROOM`` (the booking's times) or ``ROOM@START/END``."""
    out = []
    for value in values:
        head, sep, tail = value.rpartition("@")
        start, slash, end = tail.partition("/")
        if sep and slash and start[:1].isdigit() and end[:1].isdigit():
            times = typed_event_times(s, start, end, all_day=all_day, timezone=timezone)
            out.append(PlaceRequest(head, times))
        else:
            out.append(PlaceRequest(value, None))
    return out


def _show(data: dict[str, Any]) -> None:
    say((f"#{data['id']} {data['name']}", "bold"), "  ", (data["status"], "dim"))
    start, end = shown_range(data)
    when = f"{start} → {end}"
    rows = Rows(fields=True)
    rows.add("When", when)
    rows.add("Location", data["location"])
    client = data["client"]
    rows.add("Event Client", f"{client['name']} ({client['kind']} {client['id']})")
    contact = data["client_contact"]
    rows.add("Event Client Contact", f"{contact['name']} ({contact['id']})" if contact else None)
    rows.add("Booked By", data["booked_by"]["name"])
    rows.add("Event Manager", data["event_manager"]["name"])
    if data["booker_email"]:
        rows.add("Booker address", data["booker_email"])
    if data["ambiguous"]:
        rows.add("Review", styled("ambiguous assignment: see the trace", "yellow"))
    if data.get("notes"):
        rows.add("Notes", data["notes"])
    for d in data.get("double_bookings", []):
        rows.add("Review", styled(d["message"], "yellow"))
    rows.print()
    booked = data.get("booked_locations", [])
    if len(booked) > 1 or any(b["location"] for b in booked):
        table = Rows("booked", "room", "place", "start", "end", "status")
        for b in booked:
            start, end = shown_range(b)
            room = b["location"]
            table.add(
                str(b["id"]),
                f"{room['name']} ({room['id']})" if room else None,
                b["text"],
                start,
                end,
                b["status"],
            )
        table.print()
    for step in data["trace"]:
        say("  ", (f"step {step['step']}", "cyan"), " ", step["outcome"])


@app.command("create")
def create(
    name: Name,
    start: Start,
    end: End,
    all_day: AllDay = False,
    timezone: Zone = None,
    location: Locations = None,
    notes: Notes = None,
    notes_file: NotesFile = None,
    booker: Annotated[
        str | None, typer.Option("--booker", help="Booker's email: assign by the rules")
    ] = None,
    client: Annotated[str | None, typer.Option("--client", help="Company or contact id")] = None,
    contact: Annotated[str | None, typer.Option("--contact", help="Client contact id")] = None,
    booked_by: Annotated[str | None, typer.Option("--booked-by", help="User id")] = None,
    event_manager: Annotated[str | None, typer.Option("--event-manager", help="User id")] = None,
    tentative: Annotated[bool, typer.Option("--tentative", help="Status tentative")] = False,
    calendar: Annotated[
        str | None, typer.Option("--calendar", help="Also put it on this calendar")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Create a booking, assigned from --booker's address or given explicitly."""
    manual = None
    if booker is not None:
        if any(v is not None for v in (client, contact, booked_by, event_manager)):
            raise BadEvent("give either --booker or --client/--booked-by/--event-manager, not both")
    else:
        if client is None or booked_by is None or event_manager is None:
            raise BadEvent("give --booker EMAIL, or --client, --booked-by and --event-manager")
        manual = ManualAssignment(client, contact, booked_by, event_manager)
    notes = _notes(notes, notes_file)
    with session() as s:
        times = typed_event_times(s, start, end, all_day=all_day, timezone=timezone)
        places = _places(s, location or [], all_day=all_day, timezone=timezone)
        booking = NewBooking(
            name=name,
            start=times.start,
            end=times.end,
            all_day=times.all_day,
            timezone=times.timezone,
            notes=notes,
            status="tentative" if tentative else "confirmed",
            places=tuple(places),
        )
        event = create_booking(
            s,
            booking,
            actor=ACTOR,
            booker=booker,
            manual=manual,
            calendars=[calendar] if calendar is not None else [],
        )
        data = event_json(s, event)
    print_json(data) if as_json else _show(data)


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option("--status", help="Only this status")] = None,
    as_json: AsJson = False,
) -> None:
    """List bookings by start time."""
    with session() as s:
        events = list_events(s, status)
        ids = [e.id for e in events]  # booked locations, doubles and links: a few queries
        pre, links = BookedPrefetch(s, ids), links_of_many(s, ids)
        held = hold_people(s, events)
        rows = [event_json(s, e, pre, links) for e in events]
        del held
    if as_json:
        print_json(rows)
        return
    table = Rows("id", "name", "start", "end", "status", "client", "manager")
    for r in rows:
        start, end = shown_range(r)
        table.add(
            str(r["id"]),
            r["name"],
            start,
            end,
            r["status"],
            r["client"]["name"] if r["client"] else None,
            r["event_manager"]["name"] if r["event_manager"] else None,
        )
    table.print()


@app.command("show")
def show(
    event_id: Annotated[int, typer.Argument(help="Event id")], as_json: AsJson = False
) -> None:
    """One booking with its assignment trace."""
    with session() as s:
        data = event_json(s, get_event(s, event_id))
    print_json(data) if as_json else _show(data)


@app.command("update")
def update(
    event_id: Annotated[int, typer.Argument(help="Event id")],
    name: Annotated[str | None, typer.Option("--name")] = None,
    start: Annotated[str | None, typer.Option("--start")] = None,
    end: Annotated[str | None, typer.Option("--end")] = None,
    all_day: Annotated[bool | None, typer.Option("--all-day/--timed")] = None,
    timezone: Zone = None,
    location: Location = None,
    notes: Notes = None,
    notes_file: NotesFile = None,
    status: Annotated[str | None, typer.Option("--status", help="tentative or confirmed")] = None,
    as_json: AsJson = False,
) -> None:
    """Change fields of a booking. Client and users change only with `events reassign`."""
    if status == "cancelled":
        raise BadEvent("use `calbridge events cancel ID` to cancel a booking")
    given = {
        "name": name,
        "start": start,
        "end": end,
        "all_day": all_day,
        "timezone": timezone,
        "location": location,
        "notes": _notes(notes, notes_file),
        "status": status,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    with session() as s:
        event = update_booking(s, event_id, changes, actor=ACTOR, typed=True)
        data = event_json(s, event)
    print_json(data) if as_json else _show(data)


@app.command("cancel")
def cancel(
    event_id: Annotated[int, typer.Argument(help="Event id")], as_json: AsJson = False
) -> None:
    """Cancel a booking (it is kept, with status cancelled)."""
    with session() as s:
        event = cancel_booking(s, event_id, actor=ACTOR)
        data = event_json(s, event)
    print_json(data) if as_json else _show(data)


@app.command("book-location")
def book_location_(
    event_id: Annotated[int, typer.Argument(help="Event id")],
    location: Annotated[
        str, typer.Option("--location", help="Location id, room name or alias, or free text")
    ],
    start: Annotated[str | None, typer.Option("--start", help="Its own start")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Its own end")] = None,
    timezone: Zone = None,
    as_json: AsJson = False,
) -> None:
    """Book one more location for a booking (its own times, or the booking's)."""
    if (start is None) != (end is None):
        raise BadEvent("give both --start and --end, or neither (the booking's times)")
    with session() as s:
        event = get_event(s, event_id)
        times = None
        if start is not None and end is not None:
            current = event_times(event)
            times = typed_event_times(
                s, start, end, all_day=current.all_day, timezone=timezone, current=current
            )
        event = book_location(s, event_id, PlaceRequest(location, times), actor=ACTOR)
        data = event_json(s, event)
    print_json(data) if as_json else _show(data)


@app.command("unbook-location")
def unbook_location_(
    event_id: Annotated[int, typer.Argument(help="Event id")],
    booked: Annotated[
        int | None, typer.Option("--booked", help="The booked location's id (events show)")
    ] = None,
    location: Annotated[
        str | None, typer.Option("--location", help="The room (id, name, alias) or text")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Cancel one booked location; the booking is cancelled when none is left."""
    with session() as s:
        event = unbook_location(s, event_id, actor=ACTOR, booked_id=booked, location=location)
        data = event_json(s, event)
    print_json(data) if as_json else _show(data)


@app.command("reassign")
def reassign(
    event_id: Annotated[int, typer.Argument(help="Event id")],
    booker: Annotated[str | None, typer.Option("--booker", help="Resolve this address")] = None,
    as_json: AsJson = False,
) -> None:
    """Re-run the assignment rules for a booking (the only way client/users change)."""
    with session() as s:
        event = reassign_booking(s, event_id, actor=ACTOR, booker=booker)
        data = event_json(s, event)
    print_json(data) if as_json else _show(data)
