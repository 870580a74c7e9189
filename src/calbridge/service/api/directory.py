"""``/api/directory`` (import, export, search) and ``/api/settings`` (get, update).

Import takes the directory file's JSON as the request body and runs the CLI's validation
(:mod:`calbridge.ops.directory`): every problem is listed in the 422 problem's ``errors`` at its
JSON path (``$.contacts[3].primary_email``) and nothing is written.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request

from calbridge.ops import directory as ops
from calbridge.service.api.deps import Caller, Writer, push_booking, transaction
from calbridge.service.problems import ProblemRoute

router = APIRouter(route_class=ProblemRoute, tags=["directory"])


@router.get("/directory", summary="Export the directory (the import format)")
def export_directory(request: Request, _: Caller) -> dict[str, Any]:
    with transaction(request) as session:
        return ops.export_directory(session)


@router.post("/directory/import", summary="Import a directory file (all or nothing)")
def import_directory(
    request: Request,
    who: Writer,
    payload: Annotated[Any, Body(description="The directory file (docs/examples/directory.json)")],
    strict: Annotated[
        bool, Query(description="Addresses several people share are problems, not warnings")
    ] = False,
) -> dict[str, Any]:
    """The report counts what was created, updated and unchanged, and lists as ``warnings``
    the addresses several users (or contacts) share."""
    text = json.dumps(payload)
    with transaction(request) as session:
        report = ops.import_directory(session, text, actor=who.name, strict=strict)
    return report.as_dict()


@router.get("/directory/search", summary="Users, contacts and companies by name, id or email")
def search_directory(
    request: Request,
    _: Caller,
    q: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[Literal["user", "contact", "company"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    kinds = (kind,) if kind else ops.KINDS
    with transaction(request) as session:
        found = ops.search(session, q, kinds=kinds, limit=limit)
    return {"items": [f.as_dict() for f in found]}


@router.get("/locations", tags=["locations"], summary="The venue's rooms")
def list_locations(request: Request, _: Caller) -> dict[str, Any]:
    """Rooms come and go with the directory file (`POST /api/directory/import`)."""
    from calbridge.store.locations import list_locations as rooms
    from calbridge.store.locations import location_json

    with transaction(request) as session:
        return {"items": [location_json(loc) for loc in rooms(session)]}


@router.get(
    "/locations/double-bookings",
    tags=["locations"],
    summary="Rooms two confirmed bookings hold at the same time",
)
def double_bookings(request: Request, _: Caller) -> dict[str, Any]:
    from calbridge.store.booked import double_bookings as found

    with transaction(request) as session:
        return {"items": [d.as_dict() for d in found(session)]}


@router.get(
    "/locations/unmatched",
    tags=["locations"],
    summary="Location texts from calendars that match no room, grouped",
)
def unmatched_texts(request: Request, _: Caller) -> dict[str, Any]:
    """One item per distinct text (compared case- and space-insensitively) with how many
    bookings wait on it; settle one with `POST /api/locations/{id}/aliases` or
    `POST /api/locations/ignored`."""
    from calbridge.ops.location_texts import unmatched_texts as found

    with transaction(request) as session:
        return {"items": [u.as_dict() for u in found(session)]}


@router.post(
    "/locations/{location_id}/aliases",
    tags=["locations"],
    summary="Add a location text as a room's alias; its waiting bookings get that room",
)
def add_alias(
    request: Request,
    location_id: str,
    who: Writer,
    body: Annotated[dict[str, str], Body(examples=[{"text": "Main hall"}])],
) -> dict[str, Any]:
    from calbridge.ops.location_texts import alias_text

    with transaction(request) as session:
        ids = alias_text(session, _text(body), location_id, actor=who.name)
    for booking_id in ids:
        push_booking(request, booking_id)
    return {"room": location_id, "alias": " ".join(_text(body).split()), "bookings": ids}


@router.get("/locations/ignored", tags=["locations"], summary="Texts marked not a room")
def ignored_texts(request: Request, _: Caller) -> dict[str, Any]:
    from calbridge.ops.location_texts import ignored_texts as found

    with transaction(request) as session:
        return {"items": found(session)}


@router.post(
    "/locations/ignored",
    tags=["locations"],
    summary="Mark a location text not a room: its bookings are no longer flagged",
)
def ignore_text(
    request: Request,
    who: Writer,
    body: Annotated[dict[str, str], Body(examples=[{"text": "Zoom"}])],
) -> dict[str, Any]:
    from calbridge.ops.location_texts import ignore_text as ignore

    with transaction(request) as session:
        count = ignore(session, _text(body), actor=who.name)
    return {"ignored": " ".join(_text(body).split()), "bookings": count}


@router.post(
    "/locations/ignored/remove",
    tags=["locations"],
    summary="Undo marking a text not a room: its bookings are flagged again",
)
def unignore_text(
    request: Request,
    who: Writer,
    body: Annotated[dict[str, str], Body(examples=[{"text": "Zoom"}])],
) -> dict[str, Any]:
    from calbridge.ops.location_texts import unignore_text as unignore

    with transaction(request) as session:
        count = unignore(session, _text(body), actor=who.name)
    return {"unignored": " ".join(_text(body).split()), "bookings": count}


def _text(body: dict[str, Any]) -> str:
    from calbridge.errors import ValidationFailed

    text = body.get("text")
    if not isinstance(text, str):
        raise ValidationFailed('give the location text as {"text": "…"}')
    return text


@router.get("/settings", tags=["settings"], summary="The Event System Settings")
def get_settings(request: Request, _: Caller) -> dict[str, Any]:
    with transaction(request) as session:
        return ops.get_settings(session)


@router.patch("/settings", tags=["settings"], summary="Change Event System Settings")
def update_settings(
    request: Request,
    who: Writer,
    changes: Annotated[
        dict[str, Any],
        Body(
            description="Settings to change (absent keys keep their value): "
            + ", ".join(ops.SETTINGS_FIELDS),
            examples=[{"default_event_manager": "u-mia", "auto_assign_event_manager": False}],
        ),
    ],
) -> dict[str, Any]:
    with transaction(request) as session:
        return ops.update_settings(session, changes, actor=who.name)
