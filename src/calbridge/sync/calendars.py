"""Linking calendars: the one code path the CLI, the demo and the future API and admin UI share.

One function per admin operation — :func:`add_caldav_calendar`, :func:`add_google_calendar`,
:func:`add_graph_calendar`, :func:`update_calendar`, :func:`remove_calendar`,
:func:`authorize_google_calendar` — taking a session and plain values and raising
:class:`calbridge.errors.CalbridgeError` subclasses whose messages name the command that fixes
the problem. A remote calendar may be linked once (see :mod:`calbridge.sync.relink`); removing
a calendar keeps its former links so that linking it again adopts, never duplicates.
"""

from __future__ import annotations

import secrets as pysecrets
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from calbridge.domain.merge import POLICIES
from calbridge.errors import ConfigError, NotFound
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar, Event, Link, User
from calbridge.store.secrets import SecretBox
from calbridge.sync.providers import credentials_fix, open_provider
from calbridge.sync.push import booking_key
from calbridge.sync.relink import (
    adopt_former_links,
    ensure_not_linked,
    keep_former_links,
    remote_identity,
)

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
    settings = {"url": url.strip(), "username": username}
    ensure_not_linked(session, "caldav", settings, name=name, exclude=None)
    return _store_new(
        session,
        box,
        name,
        "caldav",
        settings,
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
        from calbridge.providers.graph.auth import certificate_credential

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
    ensure_not_linked(session, "graph", settings, name=name, exclude=None)
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
    from calbridge.providers.google.auth import read_oauth_client, read_service_account

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
    ensure_not_linked(session, "google", settings, name=name, exclude=None)
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
    _check_options(session, owner, policy, direction)
    if session.scalars(select(Calendar).where(Calendar.name == name)).first() is not None:
        raise ConfigError(
            f"a calendar called '{name}' exists already; change it with "
            f"`calbridge calendars update {name} …`"
        )


def _check_options(session: Session, owner: str | None, policy: str, direction: str) -> None:
    """The options every kind of calendar shares, validated the same way by add and update."""
    if policy not in POLICIES:
        raise ConfigError(f"--policy must be one of {', '.join(POLICIES)}")
    if direction not in DIRECTIONS:
        raise ConfigError(f"--direction must be one of {', '.join(DIRECTIONS)}")
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
        provider = open_provider(calendar, box, adding=True)
        provider.check()
        resolved = getattr(provider, "resolved_calendar_id", None)
        if kind == "graph" and resolved and not settings.get("calendar_id"):
            # the mailbox's default calendar, by its id: linking it by id too is a duplicate
            calendar.settings = settings = {**settings, "default_calendar_id": resolved}
            ensure_not_linked(session, kind, settings, name=name, exclude=None)
    session.add(calendar)
    session.flush()
    adopt_former_links(session, calendar)
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


@dataclass(frozen=True)
class CalendarUpdate:
    """What :func:`update_calendar` changes; ``None`` leaves a setting as it is. Connection
    fields apply to one kind of calendar each (giving another kind's is an error)."""

    owner: str | None = None
    clear_owner: bool = False
    policy: str | None = None
    direction: str | None = None
    horizon_days: int | None = None
    # CalDAV
    url: str | None = None
    username: str | None = None
    password: str | None = None
    # Google
    google_calendar_id: str | None = None
    service_account_info: dict[str, Any] | None = None
    subject: str | None = None
    oauth_client: dict[str, Any] | None = None
    # Microsoft 365 (Graph)
    mailbox: str | None = None
    tenant: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    certificate_pem: str | None = None
    calendar_id: str | None = None
    login_base: str | None = None
    ca_file: str | None = None
    # Google and Graph
    api_base: str | None = None


# which fields each kind accepts, and the option a person gives them with (for messages)
_KIND_FIELDS = {
    "caldav": {"url": "--caldav", "username": "--username", "password": "--password-env"},
    "google": {
        "google_calendar_id": "--google",
        "service_account_info": "--service-account",
        "subject": "--subject",
        "oauth_client": "--oauth-client",
        "api_base": "--api-base",
    },
    "graph": {
        "mailbox": "--graph",
        "tenant": "--tenant",
        "client_id": "--client-id",
        "client_secret": "--client-secret-env",
        "certificate_pem": "--certificate",
        "calendar_id": "--calendar-id",
        "login_base": "--login-base",
        "ca_file": "--ca-file",
        "api_base": "--api-base",
    },
}
_KIND_NAMES = {"caldav": "CalDAV", "google": "Google", "graph": "Microsoft 365"}


def find_calendar(session: Session, name: str) -> Calendar:
    calendar = session.scalars(select(Calendar).where(Calendar.name == name)).first()
    if calendar is None:
        raise NotFound(f"no calendar is called '{name}' (see `calbridge calendars list`)")
    return calendar


def update_calendar(
    session: Session, box: SecretBox, name: str, change: CalendarUpdate, *, check: bool = True
) -> Calendar:
    """Change a linked calendar's credentials and settings in place, checked like an add
    (same option rules, the connection tested with the new values unless ``check`` is false),
    keeping its links, sync token and snapshots. Pointing it at another remote calendar is
    allowed when no other calendar links that one; the next sync is then a full one."""
    calendar = find_calendar(session, name)
    kind = calendar.kind
    given = {f.name for f in fields(change) if getattr(change, f.name) is not None}
    connection = set().union(*(set(v) for v in _KIND_FIELDS.values()))
    foreign = sorted((given & connection) - set(_KIND_FIELDS.get(kind, {})))
    if foreign:
        options = ", ".join(_option(f) for f in foreign)
        verb = "does" if len(foreign) == 1 else "do"
        raise ConfigError(
            f"calendar '{name}' is a {_KIND_NAMES.get(kind, kind)} calendar; {options} "
            f"{verb} not apply to it"
        )
    if change.owner is not None and change.clear_owner:
        raise ConfigError("give --owner USER_ID or --no-owner, not both")
    if change.horizon_days is not None and not 1 <= change.horizon_days <= 3650:
        raise ConfigError("--horizon-days must be between 1 and 3650")
    policy = change.policy or calendar.policy
    direction = change.direction or calendar.direction
    _check_options(session, change.owner, policy, direction)
    old_settings = dict(calendar.settings or {})
    settings = dict(old_settings)
    secret = _open_for_update(box, calendar, change)
    check = _apply_connection(kind, change, settings, secret) and check
    moved = remote_identity(kind, settings) != remote_identity(kind, old_settings)
    if moved:
        ensure_not_linked(session, kind, settings, name=name, exclude=calendar.id)
    sealed = box.seal(secret)
    if check and (given & connection or moved):
        candidate = Calendar(name=name, kind=kind, settings=settings, secret=sealed)
        provider = open_provider(candidate, box)
        provider.check()
        resolved = getattr(provider, "resolved_calendar_id", None)
        if kind == "graph" and resolved and not settings.get("calendar_id"):
            settings["default_calendar_id"] = resolved
            if remote_identity(kind, settings) != remote_identity(kind, old_settings):
                ensure_not_linked(session, kind, settings, name=name, exclude=calendar.id)
    calendar.settings, calendar.secret = settings, sealed
    if change.owner is not None:
        calendar.owner_user_id = change.owner
    if change.clear_owner:
        calendar.owner_user_id = None
    calendar.policy, calendar.direction = policy, direction
    if change.horizon_days is not None:
        calendar.horizon_days = change.horizon_days
    if moved:
        calendar.sync_token = None  # the token belongs to the calendar it pointed at
    session.flush()
    return calendar


_CREDENTIALS = (
    "password",
    "client_secret",
    "certificate_pem",
    "service_account_info",
    "oauth_client",
)


def _open_for_update(box: SecretBox, calendar: Calendar, change: CalendarUpdate) -> dict[str, Any]:
    """The calendar's opened secret. When this key cannot open it (the secret key changed),
    an update that brings new credentials starts afresh: that is how such a calendar is fixed."""
    if not calendar.secret:
        return {}
    try:
        return box.open(calendar.secret, f"calendar '{calendar.name}'", credentials_fix(calendar))
    except ConfigError:
        if any(getattr(change, name) is not None for name in _CREDENTIALS):
            return {}
        raise


def _option(field_name: str) -> str:
    for options in _KIND_FIELDS.values():
        if field_name in options:
            return options[field_name]
    return field_name


def _apply_connection(
    kind: str, change: CalendarUpdate, settings: dict[str, Any], secret: dict[str, Any]
) -> bool:
    """Write ``change``'s connection fields into ``settings`` / ``secret`` (validated like an
    add); False when the result cannot be checked yet (a Google OAuth client, no consent)."""
    if kind == "caldav":
        if change.url is not None:
            settings["url"] = change.url.strip()
        if change.username is not None:
            settings["username"] = change.username
        if change.password is not None:
            secret["password"] = change.password
        return True
    if kind == "google":
        return _apply_google(change, settings, secret)
    if kind == "graph":
        _apply_graph(change, settings, secret)
    return True


def _apply_google(change: CalendarUpdate, settings: dict[str, Any], secret: dict[str, Any]) -> bool:
    from calbridge.providers.google.auth import read_oauth_client, read_service_account

    if change.service_account_info is not None and change.oauth_client is not None:
        raise ConfigError("give exactly one of --service-account FILE or --oauth-client FILE")
    if change.google_calendar_id is not None:
        settings["calendar_id"] = change.google_calendar_id.strip()
    if change.api_base is not None:
        settings["api_base"] = change.api_base.strip().rstrip("/")
    if change.service_account_info is not None:
        info = read_service_account(change.service_account_info, "--service-account")
        settings["auth"] = "service_account"
        secret.clear()
        secret["service_account"] = info
    if change.oauth_client is not None:
        client, refresh_token = read_oauth_client(change.oauth_client, "--oauth-client")
        settings["auth"] = "oauth"
        settings.pop("subject", None)
        secret.clear()
        secret["oauth_client"] = client.as_dict()
        if refresh_token:
            secret["refresh_token"] = refresh_token
    if change.subject is not None:
        if settings.get("auth") != "service_account":
            raise ConfigError("--subject goes with a service account (the user it acts as)")
        settings["subject"] = change.subject.strip()
    return settings.get("auth") != "oauth" or bool(secret.get("refresh_token"))


def _apply_graph(change: CalendarUpdate, settings: dict[str, Any], secret: dict[str, Any]) -> None:
    if change.client_secret is not None and change.certificate_pem is not None:
        raise ConfigError("give exactly one of a client secret or a certificate for the app")
    if change.certificate_pem is not None:
        from calbridge.providers.graph.auth import certificate_credential

        certificate_credential(change.certificate_pem)
        secret.clear()
        secret["certificate_pem"] = change.certificate_pem
        settings["auth"] = "certificate"
    if change.client_secret is not None:
        secret.clear()
        secret["client_secret"] = change.client_secret
        settings["auth"] = "client secret"
    if change.ca_file is not None:
        if not Path(change.ca_file).is_file():
            raise ConfigError(f"--ca-file: there is no file {change.ca_file}")
        settings["ca_file"] = str(Path(change.ca_file).resolve())
    plain = {
        "mailbox": change.mailbox,
        "tenant": change.tenant,
        "client_id": change.client_id,
        "calendar_id": change.calendar_id,
        "api_base": change.api_base,
        "login_base": change.login_base,
    }
    for key, value in plain.items():
        if value is not None:
            settings[key] = value.strip()
    if change.mailbox is not None or change.api_base is not None:
        settings.pop("default_calendar_id", None)  # another mailbox: read again at the check
    if "calendar_id" in settings and not settings["calendar_id"]:
        del settings["calendar_id"]  # "" goes back to the mailbox's default calendar


def remove_calendar(session: Session, name: str) -> int:
    """Unlink a calendar: its bookings stay, its links go — kept as former links, so that
    linking the same remote calendar again adopts what both sides hold. Returns how many
    links were kept."""
    calendar = find_calendar(session, name)
    kept = keep_former_links(session, calendar, utcnow())
    session.execute(delete(Link).where(Link.calendar_id == calendar.id))
    session.delete(calendar)
    session.flush()
    return kept
