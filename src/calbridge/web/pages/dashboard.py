"""The dashboard: every calendar's state with its actions, a red roll-up when something needs
a person, and the counts of bookings to review, rejections and conflicts. The calendar table
refreshes itself every few seconds (htmx polling ``/partials/dashboard``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from calbridge.web.auth import SignedIn
from calbridge.web.core import reader, render, store_of
from calbridge.web.status import all_calendars, counts

router = APIRouter()


def _context(request: Request) -> dict[str, Any]:
    with store_of(request).session() as s:
        calendars = all_calendars(s)
        totals = counts(s)
    attention = [c for c in calendars if c.needs_a_person]
    return {"calendars": calendars, "attention": attention, "counts": totals}


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    return render(request, "dashboard.html", {"page": "dashboard", **_context(request)})


@router.get("/partials/dashboard", response_class=HTMLResponse)
def dashboard_live(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    return render(request, "_dashboard_live.html", _context(request))
