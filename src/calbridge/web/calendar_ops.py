"""The calendar operations the admin UI performs, on top of the shared code paths.

- adding a calendar and testing its connection use :mod:`calbridge.sync.calendars` (the same
  functions as ``calbridge calendars add``): a test runs the whole add — the provider's
  connection check included — in a transaction that is rolled back, so it shows exactly the
  error an add would give and writes nothing;
- Sync now / Full resync / Pause / Resume / Confirm use :mod:`calbridge.ops.sync_control`;
- every change is recorded in :mod:`calbridge.ops.history` with the admin's email.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calbridge.config import load_settings
from calbridge.errors import ConfigError, NotFound, ValidationFailed
from calbridge.ops import sync_control
from calbridge.ops.calendars import unlink_calendar
from calbridge.ops.history import record
from calbridge.providers.registry import kind_of, known_kind
from calbridge.service.runs import list_runs
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Link, SyncRun
from calbridge.store.secrets import SecretBox
from calbridge.sync.assistant import AssistantChange, apply_assistant, assistant_json
from calbridge.sync.calendars import CalendarUpdate, add_calendar, update_calendar
from calbridge.web.calendar_form import connection_from_form

#: form fields that hold secrets: never rendered back into a page (with every password or
#: JSON input of a kind's form, see :func:`calbridge.web.calendar_form.form_fields`)
SECRET_FIELDS = frozenset(
    {"password", "client_secret", "certificate_pem", "service_account", "oauth_client"}
)


class _TestOnly(Exception):
    """Raised inside the transaction of a connection test so that nothing is kept."""


def _required(values: dict[str, str], key: str, label: str) -> str:
    value = values.get(key, "").strip()
    if not value:
        raise ValidationFailed(f"{label} is required")
    return value


def _json(values: dict[str, str], key: str, label: str) -> dict[str, Any]:
    text = _required(values, key, label)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationFailed(f"{label} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValidationFailed(f"{label} must be a JSON object")
    return data


def _common(values: dict[str, str]) -> dict[str, Any]:
    horizon = values.get("horizon_days") or "365"
    if not horizon.isdigit() or not 1 <= int(horizon) <= 3650:
        raise ValidationFailed("the horizon must be a whole number of days from 1 to 3650")
    return {
        "owner": values.get("owner") or None,
        "policy": values.get("policy") or "booking-wins",
        "direction": values.get("direction") or "both",
        "horizon_days": int(horizon),
    }


def _add(session: Session, box: SecretBox, kind: str, values: dict[str, str]) -> Calendar:
    """The calendar of the form: its connection read through the kind's API model
    (:mod:`calbridge.web.calendar_form`), linked like ``POST /api/calendars`` links it."""
    name = _required(values, "name", "a name")
    common = _common(values)
    connection = connection_from_form(kind, values)
    return add_calendar(session, box, name, kind, connection.values(), **common)


def _needs_consent(box: SecretBox, kind: str, values: dict[str, str], calendar: Calendar) -> bool:
    """Whether a person must consent next (a Google calendar linked with an OAuth client)."""
    secret = box.open(calendar.secret, f"calendar '{calendar.name}'") if calendar.secret else {}
    return connection_from_form(kind, values).needs_consent(secret)


def add_from_form(
    store: Store, kind: str, values: dict[str, str], *, actor: str, only_test: bool
) -> tuple[str, bool]:
    """Add the calendar described by the form (after its connection check), or only test the
    connection; returns what to tell the admin and whether a person's consent comes next
    (the calendar could not be checked yet). Raises CalbridgeError with what failed."""
    box = SecretBox.from_settings(load_settings())
    try:
        with store.session() as s:
            calendar = _add(s, box, kind, values)
            name, checked = calendar.name, not _needs_consent(box, kind, values, calendar)
            if only_test:
                raise _TestOnly
            record(
                s,
                actor=actor,
                subject="calendar",
                subject_id=calendar.id,
                action="added",
                details={"name": name, "kind": kind},
            )
    except _TestOnly:
        if not checked:
            return "The sign-in details are valid; consent comes after adding it.", True
        return f"Connection OK: calbridge signed in and can read the calendar for '{name}'.", False
    label = kind_of(kind).label
    if not checked:
        return f"Added calendar '{name}'. Next: give {label}'s consent with the button below.", True
    return f"Added calendar '{name}'; its first sync is queued.", False


def uses_password(kind: str) -> bool:
    """Whether calendars of ``kind`` sign in with a user name and password (its registry entry
    has a ``password`` option): their credentials form asks for those."""
    entry = known_kind(kind)
    return entry is not None and any(o.key == "password" for o in entry.all_options)


def calendar_id(store: Store, name: str) -> int | None:
    with store.session() as s:
        return s.scalar(select(Calendar.id).where(Calendar.name == name))


def _calendar(session: Session, calendar_id: int) -> Calendar:
    calendar = session.get(Calendar, calendar_id)
    if calendar is None:
        raise NotFound(f"no calendar has id {calendar_id} (it may have been removed)")
    return calendar


def update_credentials(
    store: Store, calendar_id: int, values: dict[str, str], *, actor: str
) -> str:
    """Replace a calendar's credentials in place (:func:`calbridge.sync.calendars.
    update_calendar`, as ``calbridge calendars update``): checked first; links, sync token and
    snapshots are kept, so nothing is duplicated."""
    box = SecretBox.from_settings(load_settings())
    with store.session() as s:
        calendar = _calendar(s, calendar_id)
        name, kind = calendar.name, calendar.kind
        if uses_password(kind):  # CalDAV, Exchange: what the registry's options say
            connection = {"password": _required(values, "password", "the new password")}
            if values.get("username"):
                connection["username"] = values["username"]
            change = CalendarUpdate(connection=connection)
        elif kind == "graph":
            secret = _required(values, "client_secret", "the client secret")
            change = CalendarUpdate(connection={"client_secret": secret})
        elif (calendar.settings or {}).get("auth") == "service_account":
            key = _json(values, "service_account", "the service-account key")
            change = CalendarUpdate(connection={"service_account": key})
        else:
            raise ConfigError(
                f"calendar '{name}' uses Google OAuth: renew its consent with the "
                "“Give Google's consent” button on its page"
            )
        update_calendar(s, box, name, change)
        record(
            s,
            actor=actor,
            subject="calendar",
            subject_id=calendar_id,
            action="credentials_updated",
            details={"name": name},
        )
    return name


def _ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def update_assistant(store: Store, calendar_id: int, values: dict[str, str], *, actor: str) -> str:
    """The calendar form's assistant section (as ``calbridge calendars update --export …
    --only-… --title … --room …``): every value given replaces the stored one."""
    change = AssistantChange(
        export_mode=values.get("export") or None,
        rooms_as_resources=values.get("rooms_as_resources") == "on",
        title_template=values.get("title_template", ""),
        filters={
            "statuses": _ids(values.get("only_statuses")),
            "locations": _ids(values.get("only_locations")),
            "clients": _ids(values.get("only_clients")),
            "managers": _ids(values.get("only_managers")),
        },
        room=values.get("room", ""),
    )
    with store.session() as s:
        calendar = _calendar(s, calendar_id)
        apply_assistant(s, calendar, change)
        record(
            s,
            actor=actor,
            subject="calendar",
            subject_id=calendar_id,
            action="assistant_updated",
            details={"name": calendar.name, **assistant_json(calendar)},
        )
        return calendar.name


def assistant_form(session: Session, calendar: Calendar) -> dict[str, Any]:
    """What the calendar page's assistant form shows."""
    from calbridge.store.locations import list_locations

    data = assistant_json(calendar)
    filters = data["filters"]
    return {
        **data,
        "only_statuses": ", ".join(filters.get("statuses", [])),
        "only_locations": ", ".join(filters.get("locations", [])),
        "only_clients": ", ".join(filters.get("clients", [])),
        "only_managers": ", ".join(filters.get("managers", [])),
        "rooms": [(loc.id, loc.name) for loc in list_locations(session)],
        "publish_only": calendar.direction == "push",
    }


def removal_impact(session: Session, calendar: Calendar) -> dict[str, int]:
    """What removing the calendar does: its links are kept aside, the bookings stay."""
    links = session.scalar(select(func.count()).where(Link.calendar_id == calendar.id)) or 0
    others = select(Link.event_id).where(Link.calendar_id != calendar.id)
    only_here = (
        session.scalar(
            select(func.count())
            .select_from(Link)
            .where(Link.calendar_id == calendar.id, Link.event_id.not_in(others))
        )
        or 0
    )
    return {"links": int(links), "only_here": int(only_here)}


def remove(store: Store, calendar_id: int, *, actor: str) -> str:
    """Unlink a calendar (:func:`calbridge.sync.calendars.remove_calendar`, as the CLI and the
    API): bookings stay; its links are kept as former links so adding it again adopts both
    sides instead of duplicating them."""
    with store.session() as s:
        name = _calendar(s, calendar_id).name
    done = unlink_calendar(store, SecretBox.from_settings(load_settings()), name, actor=actor)
    kept = done.links_kept
    note = f" Note: {done.channel_note}." if done.channel_note else ""
    return (
        f"Removed calendar '{name}': every booking is kept and nothing was deleted on the "
        f"calendar itself; its {kept} links are kept aside, so adding it again picks them up.{note}"
    )


def recent_runs(session: Session, calendar_id: int) -> list[SyncRun]:
    return list_runs(session, calendar=calendar_id, limit=10)


ACTIONS = {
    "sync": "Sync of '{name}' queued.",
    "resync": "Full resync of '{name}' queued.",
    "pause": "'{name}' paused: it will not sync until resumed.",
    "resume": "'{name}' resumed.",
    "confirm": "Confirmed the cancellations held for '{name}'; its sync goes on.",
}


def run_action(app: FastAPI, calendar_id: int, action: str, *, actor: str) -> str:
    """Sync now / Full resync / Pause / Resume / Confirm one calendar, through
    :mod:`calbridge.ops.sync_control` (as the CLI and the API)."""
    if action not in ACTIONS:
        raise NotFound(f"unknown calendar action '{action}'")
    store: Store = app.state.store
    jobs = app.state.jobs
    with store.session() as s:
        name = _calendar(s, calendar_id).name
        if action == "sync":
            sync_control.sync_now(s, jobs, name, actor=actor)
        elif action == "resync":
            sync_control.full_resync(s, jobs, name, actor=actor)
        elif action == "pause":
            sync_control.pause(s, name, actor=actor)
        elif action == "resume":
            sync_control.resume(s, name, actor=actor)
        else:
            sync_control.confirm(s, jobs, name, actor=actor)
    return ACTIONS[action].format(name=name)
