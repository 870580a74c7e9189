"""``/api/conflicts``, ``/api/rejections``, ``/api/runs`` and ``/api/history``: what the sync
and the people did, newest first, with cursor pagination."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from calbridge.errors import NotFound
from calbridge.ops.history import SUBJECTS, recent
from calbridge.service.api import pagination
from calbridge.service.api.deps import Caller, transaction
from calbridge.service.api.times import instant, parse_instant
from calbridge.service.problems import ProblemRoute
from calbridge.store.models import Calendar, ConflictRecord, Rejection

router = APIRouter(route_class=ProblemRoute, tags=["records"])

CalendarQuery = Annotated[str | None, Query(description="Only this calendar (by name)")]


def _calendar_id(session: Any, name: str | None) -> int | None:
    if name is None:
        return None
    found = session.scalar(select(Calendar.id).where(Calendar.name == name))
    if found is None:
        raise NotFound(f"no calendar is called '{name}' (see `calbridge calendars list`)")
    return int(found)


def _next(kind: str, rows: list[Any], limit: int) -> str | None:
    return pagination.encode(kind, [rows[-1].id]) if len(rows) == limit else None


def _before(cursor: str | None, kind: str) -> int | None:
    position = pagination.decode(cursor, kind, 1)
    if position is None:
        return None
    if not isinstance(position[0], int):
        raise pagination.bad_cursor(cursor)
    return position[0]


def _calendar_records_page(
    request: Request,
    response: Response,
    kind: str,
    model: Any,
    calendar: str | None,
    limit: int,
    cursor: str | None,
    shape: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of a per-calendar record table (conflicts, rejections), newest first: each row
    shaped by ``shape`` with the calendar's name beside it."""
    before = _before(cursor, kind)
    with transaction(request) as session:
        query = (
            select(model, Calendar.name)
            .join(Calendar, Calendar.id == model.calendar_id)
            .order_by(model.id.desc())
            .limit(limit)
        )
        cal_id = _calendar_id(session, calendar)
        if cal_id is not None:
            query = query.where(model.calendar_id == cal_id)
        if before is not None:
            query = query.where(model.id < before)
        rows = list(session.execute(query).all())
    items = [{"id": record.id, "calendar": name, **shape(record)} for record, name in rows]
    return pagination.page(request, response, items, _next(kind, [r for r, _ in rows], limit))


@router.get("/conflicts", summary="Fields changed on both sides, and who won")
def list_conflicts(
    request: Request,
    response: Response,
    _: Caller,
    calendar: CalendarQuery = None,
    limit: int = pagination.LimitQuery,
    cursor: str | None = pagination.CursorQuery,
) -> dict[str, Any]:
    return _calendar_records_page(
        request,
        response,
        "conflicts",
        ConflictRecord,
        calendar,
        limit,
        cursor,
        lambda c: {
            "booking_id": c.event_id,
            "field": c.field,
            "booking_value": c.booking_value,
            "calendar_value": c.calendar_value,
            "winner": c.winner,
            "policy": c.policy,
            "at": instant(c.at),
        },
    )


@router.get("/rejections", summary="Calendar events that could not be imported, and why")
def list_rejections(
    request: Request,
    response: Response,
    _: Caller,
    calendar: CalendarQuery = None,
    limit: int = pagination.LimitQuery,
    cursor: str | None = pagination.CursorQuery,
) -> dict[str, Any]:
    return _calendar_records_page(
        request,
        response,
        "rejections",
        Rejection,
        calendar,
        limit,
        cursor,
        lambda r: {"uid": r.uid, "remote_id": r.remote_id, "reason": r.reason, "at": instant(r.at)},
    )


@router.get("/runs", summary="Sync runs: trigger, duration, counts, errors")
def list_runs(
    request: Request,
    response: Response,
    _: Caller,
    calendar: CalendarQuery = None,
    since: Annotated[str | None, Query(description="Started at or after (RFC 3339)")] = None,
    limit: int = pagination.LimitQuery,
    cursor: str | None = pagination.CursorQuery,
) -> dict[str, Any]:
    from calbridge.service.runs import list_runs as runs_of

    before = _before(cursor, "runs")
    since_at = parse_instant(since, "since") if since else None
    with transaction(request) as session:
        rows = runs_of(session, calendar=calendar, since=since_at, cursor=before, limit=limit)
        items = [
            {
                "id": run.id,
                "calendar": run.calendar_name,
                "trigger": run.trigger,
                "full": run.full,
                "attempt": run.attempt,
                "started_at": instant(run.started_at),
                "finished_at": instant(run.finished_at),
                "result": run.result,
                "counts": run.counts or {},
                "requests": run.requests,
                "error": run.error,
            }
            for run in rows
        ]
    return pagination.page(request, response, items, _next("runs", rows, limit))


@router.get("/history", summary="Who changed what, and when (newest first)")
def list_history(
    request: Request,
    response: Response,
    _: Caller,
    subject: Annotated[Literal[SUBJECTS] | None, Query()] = None,  # type: ignore[valid-type]
    limit: int = pagination.LimitQuery,
    cursor: str | None = pagination.CursorQuery,
) -> dict[str, Any]:
    before = _before(cursor, "history")
    with transaction(request) as session:
        changes = recent(session, subject=subject, before_id=before, limit=limit)
    items = [
        {
            "id": c.id,
            "at": instant(c.at),
            "actor": c.actor,
            "subject": c.subject,
            "subject_id": c.subject_id,
            "action": c.action,
            "details": c.details,
        }
        for c in changes
    ]
    return pagination.page(request, response, items, _next("history", changes, limit))
