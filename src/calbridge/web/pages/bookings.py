"""Bookings: search and filters (calendar, status, client, date range, needs review) with
keyset pagination, and a booking's page — its fields, every calendar link with its sync
state, its history, and the assignment trace in the venue's words. Queries go through
:mod:`calbridge.ops.bookings`, the same functions as the REST API."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from calbridge.domain.event import STATUSES
from calbridge.errors import CalbridgeError
from calbridge.ops.bookings import BookingFilters, list_bookings, review_reasons
from calbridge.ops.history import history_of
from calbridge.store.booked import booked_json, booked_locations
from calbridge.store.events import get_event
from calbridge.store.models import Calendar, Event, Link
from calbridge.web.auth import SignedIn
from calbridge.web.core import reader, render, store_of
from calbridge.web.names import Names

router = APIRouter()
PAGE_SIZE = 50


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _BadFilter(f"'{text}' is not a date (use YYYY-MM-DD)") from None


class _BadFilter(CalbridgeError):
    pass


def _after(text: str | None) -> tuple[datetime, int] | None:
    """The page cursor ``<start ISO>_<id>`` (an invalid one means the first page)."""
    if not text or "_" not in text:
        return None
    start, _, last = text.rpartition("_")
    try:
        return datetime.fromisoformat(start), int(last)
    except ValueError:
        return None


def _filters(params: dict[str, str]) -> BookingFilters:
    start = _day(params.get("from"))
    end = _day(params.get("to"))
    return BookingFilters(
        calendar=params.get("calendar") or None,
        status=params.get("status") or None,
        client=(params.get("client") or "").strip() or None,
        start_from=datetime.combine(start, time()) if start else None,
        start_to=datetime.combine(end + timedelta(days=1), time()) if end else None,
        needs_review=True if params.get("review") else None,
        text=(params.get("q") or "").strip() or None,
    )


@router.get("/bookings", response_class=HTMLResponse)
def bookings(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    params = {k: v for k, v in request.query_params.items() if v}
    context: dict[str, Any] = {"page": "bookings", "params": params, "statuses": STATUSES}
    status_code = 200
    with store_of(request).session() as s:
        context["calendar_names"] = list(s.scalars(select(Calendar.name).order_by(Calendar.name)))
        try:
            found = list_bookings(
                s, _filters(params), after=_after(params.get("after")), limit=PAGE_SIZE
            )
        except CalbridgeError as exc:
            context.update(error=str(exc), items=[], names=None, next_after=None)
            status_code = 400
        else:
            context.update(items=found.items, names=Names(s, found.items), error=None)
            nxt = found.next_after
            context["next_after"] = f"{nxt[0].isoformat()}_{nxt[1]}" if nxt else None
    template = "_bookings_results.html" if request.headers.get("hx-request") else "bookings.html"
    return render(request, template, context, status_code=status_code)


def _link_rows(session: Any, event: Event) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Calendar.id, Calendar.name, Link.state, Link.synced_seq, Link.remote_id)
        .join(Calendar, Calendar.id == Link.calendar_id)
        .where(Link.event_id == event.id)
        .order_by(Calendar.name)
    )
    links = []
    for cal_id, name, state, synced, remote in rows:
        if state == "ok":
            label = "in sync" if synced >= event.change_seq else "change waiting to be pushed"
        else:
            label = {
                "pending": "waiting to be written to the calendar",
                "creating": "being written to the calendar",
                "gone": "removed on one side",
            }.get(state, state)
        links.append(
            {"id": cal_id, "calendar": name, "state": state, "label": label, "remote_id": remote}
        )
    return links


@router.get("/bookings/{event_id}", response_class=HTMLResponse)
def booking(request: Request, event_id: int, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    with store_of(request).session() as s:
        try:
            event = get_event(s, event_id)
        except CalbridgeError as exc:
            return render(request, "refused.html", {"message": str(exc)}, status_code=404)
        context = {
            "page": "bookings",
            "event": event,
            "names": Names(s, [event]),
            "links": _link_rows(s, event),
            "history": history_of(s, "booking", event.id),
            "review": review_reasons(s, event),
            "booked": [booked_json(s, bl) for bl in booked_locations(s, event.id)],
        }
    return render(request, "booking.html", context)
