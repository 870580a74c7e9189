"""``calbridge sync``, ``conflicts list``, ``rejections list`` and ``events link``.

``calbridge sync`` is run often (by hand, cron, scripts), so this module imports at start only
Typer; the store, the engine and the one provider kind being synced are imported when the
command runs, and rich only when a progress bar or a table is shown (``--json`` never).
``tests/e2e/test_cli_start.py`` checks what a sync process loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from calbridge.cli.common import Cell, Rows
    from calbridge.store.models import ConflictRecord, Rejection

conflicts_app = typer.Typer(help="Fields changed on both sides, and who won.")
rejections_app = typer.Typer(help="Calendar events that could not be imported.")


def sync(
    names: Annotated[list[str] | None, typer.Argument(help="Calendars (default: all)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary")] = False,
) -> None:
    """Pull then push every calendar (or the named ones), incrementally."""
    from calbridge.cli.sync_run import sync_and_print

    code = sync_and_print(names or [], as_json)
    if code:
        raise typer.Exit(code)


@conflicts_app.command("list")
def conflicts_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every field changed on both sides: both values, the winner, and when."""
    from calbridge.cli.common import Rows, readable
    from calbridge.store.models import ConflictRecord

    data = [
        {
            "calendar": calendar,
            "event_id": c.event_id,
            "field": c.field,
            "booking_value": c.booking_value,
            "calendar_value": c.calendar_value,
            "winner": c.winner,
            "policy": c.policy,
            "at": c.at.isoformat() + "Z",
        }
        for c, calendar in _per_calendar(ConflictRecord)
    ]
    table = Rows("when", "calendar", "event", "field", "booking", "calendar value", "winner")
    _print_list(
        data,
        as_json,
        table,
        lambda d: [
            d["at"],
            d["calendar"],
            str(d["event_id"]),
            d["field"],
            readable(d["booking_value"]),
            readable(d["calendar_value"]),
            d["winner"],
        ],
    )


@rejections_app.command("list")
def rejections_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Calendar events skipped because they cannot be imported, with the reason."""
    from calbridge.cli.common import Rows
    from calbridge.store.models import Rejection

    data = [
        {
            "calendar": calendar,
            "uid": r.uid,
            "remote_id": r.remote_id,
            "reason": r.reason,
            "at": r.at.isoformat() + "Z",
        }
        for r, calendar in _per_calendar(Rejection)
    ]
    table = Rows("when", "calendar", "uid", "reason")
    _print_list(
        data,
        as_json,
        table,
        lambda d: [d["at"], d["calendar"], d["uid"] or d["remote_id"], d["reason"]],
    )


Record = TypeVar("Record", "ConflictRecord", "Rejection")


def _per_calendar(model: type[Record]) -> list[tuple[Record, str]]:
    """Every record of a per-calendar log, oldest first, with its calendar's name."""
    from sqlalchemy import select

    from calbridge.cli.common import session
    from calbridge.store.models import Calendar

    with session() as s:
        rows = s.execute(
            select(model, Calendar.name)
            .join(Calendar, Calendar.id == model.calendar_id)
            .order_by(model.at, model.id)
        ).all()
        return [(record, name) for record, name in rows]


def _print_list(
    data: list[dict[str, Any]],
    as_json: bool,
    table: Rows,
    cells: Callable[[dict[str, Any]], list[Cell]],
) -> None:
    from calbridge.cli.common import print_json

    if as_json:
        print_json(data)
        return
    for d in data:
        table.add(*cells(d))
    table.print()


def events_link(
    event_id: Annotated[int, typer.Argument(help="Event id")],
    calendar: Annotated[str, typer.Option("--calendar", help="Calendar name")],
) -> None:
    """Put a booking on a calendar (written at the next sync)."""
    from calbridge.cli.common import say, session
    from calbridge.store.events import get_event
    from calbridge.sync.calendars import find_calendar, link_event

    with session() as s:
        event = get_event(s, event_id)
        link_event(s, event, find_calendar(s, calendar))
    say(f"Event {event_id} will be written to '{calendar}' at the next sync.")
