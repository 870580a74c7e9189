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
from calbridge.service.api.deps import Caller, Writer, transaction
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
