"""Calendars: the list, adding one (CalDAV, Google, Microsoft 365) with a *Test connection*
step that shows exactly what failed, updating credentials in place, removing with the
consequences spelled out, and the dashboard's actions (Sync now, Full resync, Pause/Resume).

Connection checks and writes go through :mod:`calbridge.web.calendar_ops` (the shared
calendar operations); the page only parses the form and shows the outcome. A secret typed
into a form is never rendered back into a page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calbridge.errors import CalbridgeError, NotFound
from calbridge.providers.registry import kind_of
from calbridge.store.models import Calendar, Link
from calbridge.sync.guard import held_cancellations
from calbridge.web import calendar_ops, google_consent
from calbridge.web.auth import SignedIn
from calbridge.web.calendar_form import form_fields, form_kinds
from calbridge.web.core import WebRefused, done, reader, render, store_of, writer
from calbridge.web.status import all_calendars, calendar_status

router = APIRouter()


def _calendar(session: Session, calendar_id: int) -> Calendar:
    calendar = session.get(Calendar, calendar_id)
    if calendar is None:
        raise NotFound(f"no calendar has id {calendar_id} (it may have been removed)")
    return calendar


@router.get("/calendars", response_class=HTMLResponse)
def calendars(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    with store_of(request).session() as s:
        rows = all_calendars(s)
        links = dict(
            s.execute(select(Link.calendar_id, func.count()).group_by(Link.calendar_id)).all()
        )
    return render(
        request, "calendars.html", {"page": "calendars", "calendars": rows, "links": links}
    )


def _form_page(
    request: Request, kind: str, values: dict[str, str], outcome: dict[str, str] | None, code: int
) -> Response:
    entry = kind_of(kind)
    assert entry.api_connection is not None
    fields = form_fields(entry.api_connection)
    secret = calendar_ops.SECRET_FIELDS | {f.name for f in fields if f.secret}
    safe = {k: v for k, v in values.items() if k not in secret}
    return render(
        request,
        "calendar_new.html",
        {
            "page": "calendars",
            "kind": kind,
            "kinds": {e.name: e.label for e in form_kinds()},
            "fields": fields,
            "values": safe,
            "outcome": outcome,
        },
        status_code=code,
    )


def _form_kinds() -> set[str]:
    return {entry.name for entry in form_kinds()}


@router.get("/calendars/new", response_class=HTMLResponse)
def new_calendar(
    request: Request, who: Annotated[SignedIn, Depends(reader)], kind: str = "caldav"
) -> Response:
    return _form_page(request, kind if kind in _form_kinds() else "caldav", {}, None, 200)


async def _values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


@router.post("/calendars/new", response_class=HTMLResponse)
async def add_calendar(request: Request, who: Annotated[SignedIn, Depends(writer)]) -> Response:
    values = await _values(request)
    kind = values.get("kind", "caldav")
    if kind not in _form_kinds():
        kind = "caldav"
    only_test = values.get("action") == "test"
    try:
        message, consent_next = calendar_ops.add_from_form(
            store_of(request), kind, values, actor=who.email, only_test=only_test
        )
    except CalbridgeError as exc:
        outcome = {"kind": "error", "text": f"Connection test failed: {exc}"}
        return _form_page(request, kind, values, outcome, 422)
    if only_test:
        return _form_page(request, kind, values, {"kind": "ok", "text": message}, 200)
    jobs = getattr(request.app.state, "jobs", None)
    calendar_id = calendar_ops.calendar_id(store_of(request), values.get("name", ""))
    if consent_next and calendar_id is not None:
        return done(request, f"/calendars/{calendar_id}", message)  # consent comes next
    if jobs is not None and calendar_id is not None:
        jobs.sync_calendar(calendar_id, trigger="manual")
    return done(request, "/calendars", message)


@router.get("/calendars/{calendar_id}", response_class=HTMLResponse)
def calendar_page(
    request: Request, calendar_id: int, who: Annotated[SignedIn, Depends(reader)]
) -> Response:
    with store_of(request).session() as s:
        try:
            calendar = _calendar(s, calendar_id)
        except NotFound as exc:
            return render(request, "refused.html", {"message": str(exc)}, status_code=404)
        context = {
            "page": "calendars",
            "c": calendar_status(calendar),
            "oauth": calendar.kind == "google" and (calendar.settings or {}).get("auth") == "oauth",
            "password": calendar_ops.uses_password(calendar.kind),
            "impact": calendar_ops.removal_impact(s, calendar),
            "runs": calendar_ops.recent_runs(s, calendar.id),
            "held": held_cancellations(s, calendar.id),
            "assistant": calendar_ops.assistant_form(s, calendar),
        }
    return render(request, "calendar.html", context)


UpdateOp = Callable[..., str]


async def _update_and_resync(
    request: Request, calendar_id: int, who: SignedIn, update: UpdateOp, saved: str
) -> Response:
    """Apply one form's update (``update`` returns the calendar's name), queue a sync so the
    change shows at once, and come back with ``saved`` (``{name}`` filled) or the refusal."""
    values = await _values(request)
    try:
        name = update(store_of(request), calendar_id, values, actor=who.email)
    except CalbridgeError as exc:
        return done(request, f"/calendars/{calendar_id}", f"Not changed: {exc}", "error")
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None:
        jobs.sync_calendar(calendar_id, trigger="manual")
    return done(request, f"/calendars/{calendar_id}", saved.format(name=name))


@router.post("/calendars/{calendar_id}/credentials", response_class=HTMLResponse)
async def update_credentials(
    request: Request, calendar_id: int, who: Annotated[SignedIn, Depends(writer)]
) -> Response:
    return await _update_and_resync(
        request,
        calendar_id,
        who,
        calendar_ops.update_credentials,
        "Credentials of '{name}' updated and checked; its bookings and links are kept.",
    )


@router.post("/calendars/{calendar_id}/assistant", response_class=HTMLResponse)
async def update_assistant(
    request: Request, calendar_id: int, who: Annotated[SignedIn, Depends(writer)]
) -> Response:
    return await _update_and_resync(
        request,
        calendar_id,
        who,
        calendar_ops.update_assistant,
        "Export, filters and rooms of '{name}' saved; the next sync applies them.",
    )


@router.post("/calendars/{calendar_id}/remove")
def remove_calendar(
    request: Request, calendar_id: int, who: Annotated[SignedIn, Depends(writer)]
) -> Response:
    try:
        text = calendar_ops.remove(store_of(request), calendar_id, actor=who.email)
    except CalbridgeError as exc:
        return done(request, "/calendars", str(exc), "error")
    return done(request, "/calendars", text)


@router.post("/calendars/{calendar_id}/google-consent")
def google_consent_start(
    request: Request, calendar_id: int, who: Annotated[SignedIn, Depends(writer)]
) -> Response:
    """Send the admin to Google's consent page; the answer comes back to the callback."""
    callback = str(request.base_url).rstrip("/") + google_consent.CALLBACK_PATH
    try:
        url = google_consent.start(request.app, calendar_id, callback)
    except CalbridgeError as exc:
        return done(request, f"/calendars/{calendar_id}", str(exc), "error")
    return RedirectResponse(url, status_code=303)


@router.get(google_consent.CALLBACK_PATH)
def google_consent_callback(
    request: Request, who: Annotated[SignedIn, Depends(reader)]
) -> Response:
    """Google's answer (a code, or an error such as access_denied), tied to the flow that the
    admin started by its ``state``; a viewer cannot complete one."""
    if not who.can_write:
        raise WebRefused(f"{who.email} is a viewer: only an admin can give Google's consent.")
    answer = {k: v for k, v in request.query_params.items()}
    try:
        calendar_id, name = google_consent.finish(request.app, answer, actor=who.email)
    except CalbridgeError as exc:
        return done(request, "/calendars", str(exc), "error")
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None:
        jobs.sync_calendar(calendar_id, trigger="manual")
    return done(
        request,
        f"/calendars/{calendar_id}",
        f"Google's consent stored for '{name}' (checked); its first sync is queued.",
    )


@router.post("/calendars/{calendar_id}/{action}")
def calendar_action(
    request: Request, calendar_id: int, action: str, who: Annotated[SignedIn, Depends(writer)]
) -> Response:
    back = request.headers.get("referer") or "/"
    back = back if back.startswith(str(request.base_url)) else "/"
    try:
        text = calendar_ops.run_action(request.app, calendar_id, action, actor=who.email)
    except CalbridgeError as exc:
        return done(request, back, str(exc), "error")
    return done(request, back, text)
