"""What every admin page shares: templates, who is signed in, CSRF checks, flash messages.

Templates are Jinja2 with autoescape on (every ``.html``): text from calendars and the
directory is always shown as text. :func:`reader` admits any signed-in admin (else a redirect
to the sign-in page); :func:`writer` also requires the ``admin`` role and the session's CSRF
token, and is the dependency of every route that changes something.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from calbridge.domain.shown_times import shown
from calbridge.store.db import Store
from calbridge.store.events import event_times, utcnow
from calbridge.store.models import Event
from calbridge.web.auth import SignedIn, same_token, signed_in

HERE = Path(__file__).parent
SESSION_COOKIE = "calbridge_session"
LOGIN_CSRF_COOKIE = "calbridge_login_csrf"
FLASH_COOKIE = "calbridge_flash"

templates = Jinja2Templates(directory=str(HERE / "templates"))


class WebRefused(Exception):
    """A request the UI refuses with a page that says why (viewer writing, CSRF missing)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def reader(request: Request) -> SignedIn:
    """The signed-in admin (any role); anyone else is sent to the sign-in page."""
    token = request.cookies.get(SESSION_COOKIE)
    who = None
    if token:
        with store_of(request).session() as s:
            who = signed_in(s, token)
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, headers={"Location": f"/login?next={quote(target)}"})
    request.state.who = who
    return who


async def _check_csrf(request: Request, who: SignedIn) -> None:
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not same_token(given, who.csrf_token):
        raise WebRefused(
            "this form was refused: its security token (CSRF) is missing or out of date. "
            "Reload the page and submit it again."
        )


async def signed_form(request: Request) -> SignedIn:
    """A form from a signed-in admin of any role (signing out), with its CSRF token."""
    who = reader(request)
    await _check_csrf(request, who)
    return who


async def writer(request: Request) -> SignedIn:
    """A signed-in ``admin`` whose request carries the session's CSRF token."""
    who = reader(request)
    if not who.can_write:
        raise WebRefused(
            f"{who.email} is a viewer: viewers can look but not change anything. "
            "Ask an admin to make the change."
        )
    await _check_csrf(request, who)
    return who


def flash(response: Response, text: str, kind: str = "ok") -> None:
    """A one-time message shown on the next page (after a redirect)."""
    value = quote(json.dumps({"kind": kind, "text": text[:1500]}))
    response.set_cookie(FLASH_COOKIE, value, httponly=True, samesite="lax", path="/")


def done(request: Request, to: str, text: str, kind: str = "ok") -> RedirectResponse:
    """After a write: back to a page (303, so a reload does not repeat the write)."""
    response = RedirectResponse(to, status_code=303)
    flash(response, text, kind)
    return response


def _take_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        from urllib.parse import unquote

        data = json.loads(unquote(raw))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {"kind": str(data.get("kind", "ok")), "text": str(data.get("text", ""))}


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    who: SignedIn | None = getattr(request.state, "who", None)
    message = _take_flash(request)
    response = templates.TemplateResponse(
        request,
        template,
        {"who": who, "flash": message, "now": utcnow(), **context},
        status_code=status_code,
    )
    if message is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def when(value: datetime | None) -> str:
    """A stored UTC time as shown in the UI: ``2026-12-01 14:05 UTC``."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime | None) -> str:
    """``3 min ago`` / ``in 2 min`` relative to now."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    seconds = int((utcnow() - value).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        text = f"{seconds} s"
    elif seconds < 3600:
        text = f"{seconds // 60} min"
    elif seconds < 172800:
        text = f"{seconds // 3600} h"
    else:
        text = f"{seconds // 86400} days"
    return f"in {text}" if future else f"{text} ago"


def booking_times(event: Event) -> tuple[str, str]:
    """A booking's start and end as people read them (:func:`calbridge.domain.shown_times.
    shown`): wall-clock time with offset and zone, ``(floating)``, or dates for all-day."""
    times = event_times(event)
    return shown(times.start, times), shown(times.end, times, end=True)


templates.env.filters["when"] = when
templates.env.globals["booking_times"] = booking_times
templates.env.filters["ago"] = ago
templates.env.globals["same_token"] = same_token
assert templates.env.autoescape  # outside text is always escaped
