"""The dashboard: every calendar's state with its actions, a red roll-up when something needs
a person, and the counts of bookings to review, rejections and conflicts.

Calendars that need a person come first, then those syncing, then the rest by name; the table
shows :data:`PAGE` at a time (a venue may have a thousand) with a name filter, while the
roll-up always names every calendar that needs a person. The live part refreshes itself every
few seconds (htmx polling ``/partials/dashboard`` with the same filter and page)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from calbridge.web.auth import SignedIn
from calbridge.web.core import reader, render, store_of
from calbridge.web.status import calendar_page, counts

router = APIRouter()
PAGE = 100


def _context(request: Request) -> dict[str, Any]:
    q = (request.query_params.get("q") or "").strip()
    page_text = request.query_params.get("page") or "1"
    page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
    with store_of(request).session() as s:
        found = calendar_page(s, q, page, PAGE)
        totals = counts(s)
    pages = max(1, -(-found.matching // PAGE))
    params = {k: v for k, v in (("q", q), ("page", str(page))) if v and v != "1"}
    return {
        "calendars": found.rows,
        "matching": found.matching,
        "total": found.total,
        "attention": found.attention,
        "counts": totals,
        "q": q,
        "page_no": page,
        "pages": pages,
        "query": urlencode(params),
    }


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    return render(request, "dashboard.html", {"page": "dashboard", **_context(request)})


@router.get("/partials/dashboard", response_class=HTMLResponse)
def dashboard_live(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    return render(request, "_dashboard_live.html", _context(request))
