"""The admin UI: server-rendered Jinja2 pages with htmx (shipped in the package), mounted at
``/`` on the service's app. Every write goes through :mod:`calbridge.ops`, like the API's.

:data:`router` holds every page (one module per page under :mod:`calbridge.web.pages`);
:func:`mount` adds what a router cannot: the static files (``/static``: htmx, the style
sheet) and the page shown when a request is refused (viewer writing, CSRF token missing).
Pages work without JavaScript; htmx only adds live updates and search-as-you-type.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from calbridge.web import models as models  # registers the admin tables on the metadata
from calbridge.web.core import HERE, WebRefused, render
from calbridge.web.pages.bookings import router as bookings
from calbridge.web.pages.calendars import router as calendars
from calbridge.web.pages.dashboard import router as dashboard
from calbridge.web.pages.directory import router as directory
from calbridge.web.pages.history import router as history
from calbridge.web.pages.issues import router as issues
from calbridge.web.pages.login import router as login
from calbridge.web.pages.review import router as review

router = APIRouter(include_in_schema=False)
for page in (login, dashboard, calendars, bookings, review, issues, directory, history):
    router.include_router(page)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebRefused)
    return render(request, "refused.html", {"message": str(exc)}, status_code=exc.status)


def mount(app: FastAPI) -> None:
    """Static files and the refusal page on the service's app (``create_app`` calls this)."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(WebRefused, _refused)
