"""Google's OAuth consent started from the admin UI, for a calendar linked with an OAuth client.

The same flow as ``calbridge calendars auth`` (:mod:`calbridge.providers.google.consent`:
``state``, PKCE, the code exchanged at the client's token endpoint, calendar access and a
refresh token required) with the admin UI as the redirect target,
``<UI base URL>/oauth/google/callback``. A desktop ("installed app") client accepts that when
the UI is opened on 127.0.0.1 / localhost (Google's loopback rule); on any other host, use a
"web" client with that redirect URI registered. The flow waiting for its answer is kept in the
process for :data:`CONSENT_MINUTES` minutes, keyed by its ``state``; the refresh token is
checked, then sealed into the calendar — never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session

from calbridge.config import load_settings
from calbridge.errors import ConfigError, NotFound
from calbridge.ops.history import record
from calbridge.providers.google.auth import CALENDAR_SCOPE, OAuthClient
from calbridge.providers.google.consent import (  # the CLI flow's steps, reused as they are
    _declined,
    _exchange,
    _plain_http_on_loopback,
    _refresh_token,
)
from calbridge.store.db import Store
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import authorize_google_calendar

CONSENT_MINUTES = 10
CALLBACK_PATH = "/oauth/google/callback"


@dataclass
class Pending:
    calendar_id: int
    name: str
    client: OAuthClient
    flow: Any
    expires: datetime


def _pending(app: FastAPI) -> dict[str, Pending]:
    waiting: dict[str, Pending] | None = getattr(app.state, "google_consents", None)
    if waiting is None:
        waiting = app.state.google_consents = {}
    now = utcnow()
    for state in [k for k, p in waiting.items() if p.expires < now]:
        del waiting[state]
    return waiting


def _oauth_calendar(session: Session, box: SecretBox, calendar_id: int) -> tuple[str, OAuthClient]:
    calendar = session.get(Calendar, calendar_id)
    if calendar is None:
        raise NotFound(f"no calendar has id {calendar_id} (it may have been removed)")
    if calendar.kind != "google" or (calendar.settings or {}).get("auth") != "oauth":
        raise ConfigError(
            f"calendar '{calendar.name}' is not a Google calendar linked with an OAuth client; "
            "only those get Google's consent"
        )
    secret = box.open(calendar.secret, f"calendar '{calendar.name}'") if calendar.secret else {}
    return calendar.name, OAuthClient(**secret["oauth_client"])


def start(app: FastAPI, calendar_id: int, callback_url: str) -> str:
    """The URL of Google's consent page for this calendar."""
    from google_auth_oauthlib.flow import Flow

    store: Store = app.state.store
    box = SecretBox.from_settings(load_settings())
    with store.session() as s:
        name, client = _oauth_calendar(s, box, calendar_id)
    flow = Flow.from_client_config(client.flow_config(), scopes=[CALENDAR_SCOPE])
    flow.redirect_uri = callback_url
    with _plain_http_on_loopback(client):
        url, state = flow.authorization_url(access_type="offline", prompt="consent")
    expires = utcnow() + timedelta(minutes=CONSENT_MINUTES)
    _pending(app)[state] = Pending(calendar_id, name, client, flow, expires)
    return str(url)


def finish(app: FastAPI, answer: dict[str, str], *, actor: str) -> tuple[int, str]:
    """Turn Google's answer into a sealed refresh token; returns (calendar id, name).
    Raises CalbridgeError (declined, unknown answer, no calendar access…): nothing stored."""
    pending = _pending(app).pop(answer.get("state", ""), None)
    if pending is None:
        raise ConfigError(
            "this answer from Google's consent page is unknown or more than "
            f"{CONSENT_MINUTES} minutes old; nothing was stored. Start again from the "
            "calendar's page"
        )
    label = f"calendar '{pending.name}' (Google)"
    if "code" not in answer:
        raise _declined(label, pending.name, answer)
    with _plain_http_on_loopback(pending.client):
        token = _exchange(pending.flow, answer["code"], label, pending.name)
    refresh = _refresh_token(token, label, pending.name)
    store: Store = app.state.store
    box = SecretBox.from_settings(load_settings())
    with store.session() as s:
        calendar = s.get(Calendar, pending.calendar_id)
        if calendar is None:
            raise NotFound(f"calendar '{pending.name}' was removed meanwhile; nothing stored")
        authorize_google_calendar(box, calendar, refresh)
        record(
            s,
            actor=actor,
            subject="calendar",
            subject_id=calendar.id,
            action="google_consent",
            details={"name": calendar.name},
        )
    return pending.calendar_id, pending.name
