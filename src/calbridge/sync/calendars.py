"""Linking calendars: the one code path the CLI and the demo share."""

from __future__ import annotations

import secrets as pysecrets
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.domain.merge import POLICIES
from calbridge.errors import ConfigError, NotFound
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar, Event, Link, User
from calbridge.store.secrets import SecretBox
from calbridge.sync.providers import open_provider
from calbridge.sync.push import booking_key

DIRECTIONS = ("both", "pull", "push")


def add_caldav_calendar(
    session: Session,
    box: SecretBox,
    name: str,
    url: str,
    username: str,
    password: str,
    *,
    owner: str | None = None,
    policy: str = "booking-wins",
    direction: str = "both",
    horizon_days: int = 365,
    check: bool = True,
) -> Calendar:
    """Store a CalDAV calendar after checking the connection (credentials sealed at rest)."""
    _check_new(session, name, owner, policy, direction)
    return _store_new(
        session,
        box,
        name,
        "caldav",
        {"url": url, "username": username},
        {"password": password},
        owner=owner,
        policy=policy,
        direction=direction,
        horizon_days=horizon_days,
        check=check,
    )


def add_graph_calendar(
    session: Session,
    box: SecretBox,
    name: str,
    mailbox: str,
    *,
    tenant: str,
    client_id: str,
    client_secret: str | None = None,
    certificate_pem: str | None = None,
    calendar_id: str | None = None,
    api_base: str | None = None,
    login_base: str | None = None,
    ca_file: str | None = None,
    owner: str | None = None,
    policy: str = "booking-wins",
    direction: str = "both",
    horizon_days: int = 365,
    check: bool = True,
) -> Calendar:
    """Store a Microsoft 365 calendar (Graph, app-only) after checking that the app can sign
    in and read it. The client secret or certificate is sealed at rest; ``settings`` holds only
    what is not secret."""
    if (client_secret is None) == (certificate_pem is None):
        raise ConfigError("give exactly one of a client secret or a certificate for the app")
    if certificate_pem is not None:
        from calbridge.providers.graph_auth import certificate_credential

        certificate_credential(certificate_pem)  # a clear error now, not at the first sync
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError(f"--ca-file: there is no file {ca_file}")
    _check_new(session, name, owner, policy, direction)
    settings: dict[str, Any] = {
        "mailbox": mailbox.strip(),
        "tenant": tenant.strip(),
        "client_id": client_id.strip(),
        "auth": "client secret" if client_secret is not None else "certificate",
    }
    optional = {"calendar_id": calendar_id, "api_base": api_base, "login_base": login_base}
    settings.update({k: v.strip() for k, v in optional.items() if v})
    if ca_file is not None:
        settings["ca_file"] = str(Path(ca_file).resolve())
    sealed = {"client_secret": client_secret} if client_secret is not None else {}
    if certificate_pem is not None:
        sealed = {"certificate_pem": certificate_pem}
    return _store_new(
        session,
        box,
        name,
        "graph",
        settings,
        sealed,
        owner=owner,
        policy=policy,
        direction=direction,
        horizon_days=horizon_days,
        check=check,
    )


def add_google_calendar(
    session: Session,
    box: SecretBox,
    name: str,
    calendar_id: str,
    *,
    service_account_info: dict[str, Any] | None = None,
    subject: str | None = None,
    oauth_client: dict[str, Any] | None = None,
    api_base: str | None = None,
    owner: str | None = None,
    policy: str = "booking-wins",
    direction: str = "both",
    horizon_days: int = 365,
    page_size: int | None = None,
    check: bool = True,
) -> Calendar:
    """Store a Google calendar: a service account acting as ``subject`` (domain-wide
    delegation), or an OAuth client (a client-secrets file; an ``authorized_user`` file also
    brings its refresh token). Keys, client secrets and refresh tokens are sealed at rest.

    With an OAuth client and no refresh token yet the calendar is stored unchecked: the
    person runs ``calbridge calendars auth NAME`` next (:func:`authorize_google_calendar`)."""
    from calbridge.providers.google_auth import read_oauth_client, read_service_account

    if (service_account_info is None) == (oauth_client is None):
        raise ConfigError("give exactly one of --service-account FILE or --oauth-client FILE")
    _check_new(session, name, owner, policy, direction)
    settings: dict[str, Any] = {"calendar_id": calendar_id.strip()}
    sealed: dict[str, Any]
    if service_account_info is not None:
        info = read_service_account(service_account_info, "--service-account")
        settings["auth"] = "service_account"
        if subject:
            settings["subject"] = subject.strip()
        sealed = {"service_account": info}
    else:
        assert oauth_client is not None
        client, refresh_token = read_oauth_client(oauth_client, "--oauth-client")
        settings["auth"] = "oauth"
        sealed = {"oauth_client": client.as_dict()}
        if refresh_token:
            sealed["refresh_token"] = refresh_token
        check = check and refresh_token is not None
    if api_base:
        settings["api_base"] = api_base.strip().rstrip("/")
    if page_size:
        settings["page_size"] = int(page_size)
    return _store_new(
        session,
        box,
        name,
        "google",
        settings,
        sealed,
        owner=owner,
        policy=policy,
        direction=direction,
        horizon_days=horizon_days,
        check=check,
    )


def authorize_google_calendar(
    box: SecretBox,
    calendar: Calendar,
    refresh_token: str,
    *,
    oauth_client: dict[str, str] | None = None,
    check: bool = True,
) -> None:
    """Seal a (new) OAuth refresh token — and the client it was issued to, when given — into
    a Google calendar linked with an OAuth client, after checking that it works."""
    if calendar.kind != "google" or (calendar.settings or {}).get("auth") != "oauth":
        raise ConfigError(
            f"calendar '{calendar.name}' is not a Google calendar linked with --oauth-client; "
            "only those are authorized with `calbridge calendars auth`"
        )
    secret = box.open(calendar.secret, f"calendar '{calendar.name}'") if calendar.secret else {}
    secret["refresh_token"] = refresh_token
    if oauth_client is not None:
        secret["oauth_client"] = oauth_client
    candidate = Calendar(name=calendar.name, kind="google", settings=dict(calendar.settings))
    candidate.secret = box.seal(secret)
    if check:
        open_provider(candidate, box).check()
    calendar.secret = candidate.secret


def _check_new(session: Session, name: str, owner: str | None, policy: str, direction: str) -> None:
    if policy not in POLICIES:
        raise ConfigError(f"--policy must be one of {', '.join(POLICIES)}")
    if direction not in DIRECTIONS:
        raise ConfigError(f"--direction must be one of {', '.join(DIRECTIONS)}")
    if session.scalars(select(Calendar).where(Calendar.name == name)).first() is not None:
        raise ConfigError(f"a calendar called '{name}' exists already")
    if owner is not None and session.get(User, owner) is None:
        raise NotFound(f"--owner: no user has id '{owner}'")


def _store_new(
    session: Session,
    box: SecretBox,
    name: str,
    kind: str,
    settings: dict[str, Any],
    sealed: dict[str, Any],
    *,
    owner: str | None,
    policy: str,
    direction: str,
    horizon_days: int,
    check: bool,
) -> Calendar:
    """A new calendar of ``kind`` with ``sealed`` encrypted as its secret, stored once its
    provider could read it (unless ``check`` is false)."""
    calendar = Calendar(
        name=name,
        kind=kind,
        settings=settings,
        secret=box.seal(sealed),
        owner_user_id=owner,
        policy=policy,
        direction=direction,
        horizon_days=horizon_days,
        key_prefix=pysecrets.token_hex(4),
        full_gen=0,
        created_at=utcnow(),
    )
    if check:
        open_provider(calendar, box).check()
    session.add(calendar)
    session.flush()
    return calendar


def link_event(session: Session, event: Event, calendar: Calendar) -> Link:
    """Make ``calendar`` carry ``event`` from the next sync on (idempotent)."""
    existing = session.scalars(
        select(Link).where(Link.calendar_id == calendar.id, Link.event_id == event.id)
    ).first()
    if existing is not None:
        return existing
    link = Link(
        calendar_id=calendar.id,
        event_id=event.id,
        key=booking_key(calendar, event.id),
        state="pending",
        origin="booking",
    )
    session.add(link)
    session.flush()
    return link
