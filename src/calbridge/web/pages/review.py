"""The review queue: bookings flagged ambiguous, sent to the Default Account or booked by the
Virtual Assistant. *Accept* keeps the assignment; *Re-assign* applies a contact, company or
user picked with search-as-you-type (a plain search button without JavaScript). Both go
through :mod:`calbridge.ops.bookings`, which records who did it and when; the calendars are
then told through ``jobs.push_booking``.

Location texts from calendars that match no room are not listed booking by booking: one row
per distinct text with its count, settled for all its bookings at once — *Add as alias* of a
room (the bookings get that room) or *Not a room* (they stop being flagged), through
:mod:`calbridge.ops.location_texts` like the CLI and the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from calbridge.errors import CalbridgeError, ValidationFailed
from calbridge.ops.bookings import (
    BookingFilters,
    Reassignment,
    accept_review,
    list_bookings,
    reasons_for_many,
    reassign_booking,
)
from calbridge.ops.directory import search
from calbridge.ops.location_texts import alias_text, ignore_text, unmatched_texts
from calbridge.store.locations import list_locations
from calbridge.web.auth import SignedIn
from calbridge.web.core import done, reader, render, store_of, writer
from calbridge.web.names import Names

router = APIRouter()
SUGGESTIONS = 12


def directory_matches(session: Session, q: str) -> list[dict[str, str]]:
    """Active users, contacts and companies matching ``q`` (name, id or address), through the
    same search as the directory page and the API."""
    if len(q.strip()) < 2:
        return []
    found = []
    for f in search(session, q, limit=SUGGESTIONS):
        if f.kind == "user" and not f.active:
            continue
        detail = ", ".join(f.emails[:2]) if f.emails else ""
        found.append({"kind": f.kind, "id": f.id, "name": f.name, "detail": detail})
    return found


def _queue(session: Session) -> dict[str, Any]:
    filters = BookingFilters(needs_review=True, texts_grouped=True)
    page = list_bookings(session, filters, limit=100)
    reasons = reasons_for_many(session, page.items)
    return {
        "items": [(e, reasons[e.id]) for e in page.items],
        "names": Names(session, page.items),
        "more": page.next_after is not None,
        "texts": unmatched_texts(session),
        "rooms": list_locations(session, include_inactive=False),
    }


@router.get("/review", response_class=HTMLResponse)
def review(request: Request, who: Annotated[SignedIn, Depends(reader)], q: str = "") -> Response:
    for_id = int(request.query_params.get("for") or 0)
    with store_of(request).session() as s:
        context = _queue(s)
        context["search"] = {"for": for_id, "q": q, "found": directory_matches(s, q) if q else []}
    return render(request, "review.html", {"page": "review", **context})


@router.get("/partials/directory-search", response_class=HTMLResponse)
def directory_search(
    request: Request, who: Annotated[SignedIn, Depends(reader)], q: str = ""
) -> Response:
    event_id = int(request.query_params.get("for") or 0)
    with store_of(request).session() as s:
        found = directory_matches(s, q)
    return render(request, "_suggestions.html", {"found": found, "event_id": event_id, "q": q})


def _push(request: Request, event_id: int) -> None:
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None:
        jobs.push_booking(event_id)


@router.post("/review/{event_id}/accept")
def accept(request: Request, event_id: int, who: Annotated[SignedIn, Depends(writer)]) -> Response:
    try:
        with store_of(request).session() as s:
            event = accept_review(s, event_id, actor=who.email)
            name = event.name
    except CalbridgeError as exc:
        return done(request, "/review", str(exc), "error")
    return done(request, "/review", f"Accepted booking {event_id} “{name}” as it is.")


def choice(pick: str) -> Reassignment:
    """``contact:ID`` / ``company:ID`` / ``user:ID`` as picked in the search results."""
    kind, _, value = pick.partition(":")
    if not value:
        raise ValidationFailed("pick a contact, company or user from the search results first")
    if kind == "contact":
        return Reassignment(contact=value)
    if kind == "company":
        return Reassignment(client=value)
    if kind == "user":
        return Reassignment(booked_by=value)
    raise ValidationFailed(f"'{kind}' is not a contact, company or user")


@router.post("/review/{event_id}/reassign")
def reassign(
    request: Request,
    event_id: int,
    who: Annotated[SignedIn, Depends(writer)],
    pick: Annotated[str, Form()] = "",
) -> Response:
    try:
        with store_of(request).session() as s:
            event = reassign_booking(s, event_id, actor=who.email, chosen=choice(pick))
            name = event.name
    except CalbridgeError as exc:
        return done(request, f"/review#booking-{event_id}", str(exc), "error")
    _push(request, event_id)
    return done(request, "/review", f"Re-assigned booking {event_id} “{name}”.")


@router.post("/review/texts/alias")
def alias(
    request: Request,
    who: Annotated[SignedIn, Depends(writer)],
    text: Annotated[str, Form()] = "",
    room: Annotated[str, Form()] = "",
) -> Response:
    try:
        with store_of(request).session() as s:
            ids = alias_text(s, text, room, actor=who.email)
    except CalbridgeError as exc:
        return done(request, "/review#texts", str(exc), "error")
    for event_id in ids:
        _push(request, event_id)
    return done(
        request,
        "/review#texts",
        f"“{' '.join(text.split())}” is now an alias of {room}: {len(ids)} booking(s) matched.",
    )


@router.post("/review/texts/ignore")
def ignore(
    request: Request,
    who: Annotated[SignedIn, Depends(writer)],
    text: Annotated[str, Form()] = "",
) -> Response:
    try:
        with store_of(request).session() as s:
            count = ignore_text(s, text, actor=who.email)
    except CalbridgeError as exc:
        return done(request, "/review#texts", str(exc), "error")
    return done(
        request,
        "/review#texts",
        f"“{' '.join(text.split())}” is marked not a room: {count} booking(s) no longer flagged.",
    )
