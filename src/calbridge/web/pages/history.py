"""Sync history: runs (trigger, duration, counts, error), filterable by calendar, newest
first with cursor pagination (:func:`calbridge.service.runs.list_runs`, as the API and the
CLI), and a chart of runs and errors per day over the last days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from calbridge.errors import CalbridgeError
from calbridge.service.runs import list_runs
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar, SyncRun
from calbridge.web.auth import SignedIn
from calbridge.web.chart import Day, runs_chart
from calbridge.web.core import reader, render, store_of

router = APIRouter()
CHART_DAYS = 14
PAGE = 50
FAILED = ("error", "auth_expired", "retry", "interrupted")


def per_day(session: Session, calendar_id: int | None, days: int, today: date) -> list[Day]:
    first = today - timedelta(days=days - 1)
    day = func.date(SyncRun.started_at)
    query = (
        select(day, func.count(), func.sum(case((SyncRun.result.in_(FAILED), 1), else_=0)))
        .where(SyncRun.started_at >= datetime.combine(first, time()))
        .group_by(day)
    )
    if calendar_id is not None:
        query = query.where(SyncRun.calendar_id == calendar_id)
    found = {str(d): (int(n), int(e or 0)) for d, n, e in session.execute(query)}
    result = []
    for i in range(days):
        d = first + timedelta(days=i)
        runs, errors = found.get(d.isoformat(), (0, 0))
        result.append(Day(d, runs, errors))
    return result


def duration(run: SyncRun) -> str:
    if run.finished_at is None:
        return "running"
    seconds = (run.finished_at - run.started_at).total_seconds()
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


@router.get("/history", response_class=HTMLResponse)
def history(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    params = request.query_params
    name = params.get("calendar") or None
    cursor_text = params.get("before") or ""
    cursor = int(cursor_text) if cursor_text.isdigit() else None
    context: dict[str, Any] = {"page": "history", "calendar": name, "error": None}
    with store_of(request).session() as s:
        context["names"] = list(s.scalars(select(Calendar.name).order_by(Calendar.name)))
        calendar_id = s.scalar(select(Calendar.id).where(Calendar.name == name)) if name else None
        try:
            runs = list_runs(s, calendar=name, cursor=cursor, limit=PAGE)
        except CalbridgeError as exc:
            runs, context["error"] = [], str(exc)
        context["runs"] = runs
        context["next"] = runs[-1].id if len(runs) == PAGE else None
        context["chart"] = Markup(runs_chart(per_day(s, calendar_id, CHART_DAYS, utcnow().date())))
    context["duration"] = duration
    return render(request, "history.html", context)
