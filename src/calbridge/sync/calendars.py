"""Linking calendars: the one code path the CLI, the demo and the future API and admin UI share.

One function per admin operation — :func:`add_calendar` (any kind of the provider registry,
:mod:`calbridge.providers.registry`, with typed shorthands :func:`add_caldav_calendar`,
:func:`add_google_calendar`, :func:`add_graph_calendar`), :func:`update_calendar`,
:func:`remove_calendar`, :func:`authorize_google_calendar` — taking a session and plain values
and raising
:class:`calbridge.errors.CalbridgeError` subclasses whose messages name the command that fixes
the problem. A remote calendar may be linked once (see :mod:`calbridge.sync.relink`); removing
a calendar keeps its former links so that linking it again adopts, never duplicates.
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from calbridge.domain.merge import POLICIES
from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError, NotFound
from calbridge.providers.registry import (
    ConnectRequest,
    ProviderKind,
    ProviderSettings,
    flag_for_key,
    foreign_options,
    kind_of,
)
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar, Event, Link, User
from calbridge.store.secrets import SecretBox
from calbridge.sync.assistant import AssistantChange, apply_assistant
from calbridge.sync.providers import credentials_fix, open_provider
from calbridge.sync.push import booking_key
from calbridge.sync.relink import (
    adopt_former_links,
    ensure_not_linked,
    keep_former_links,
    remote_identity,
)

DIRECTIONS = ("both", "pull", "push")


def add_calendar(
    session: Session,
    box: SecretBox,
    name: str,
    kind: str,
    values: Mapping[str, Any],
    *,
    owner: str | None = None,
    policy: str = "booking-wins",
    direction: str = "both",
    horizon_days: int = 365,
    check: bool = True,
) -> Calendar:
    """Store a calendar of ``kind`` (a key of :data:`calbridge.providers.registry.KINDS`)
    from its connection option ``values`` (by key, read already: see the kind's options),
    after checking the connection unless ``check`` is false or the kind cannot check it yet.
    Credentials are sealed at rest; ``Calendar.settings`` holds only what is not secret."""
    entry = kind_of(kind)
    _check_new(session, name, owner, policy, direction)
    connection = entry.make(ConnectRequest(name, dict(values)))
    settings = connection.settings.stored()
    ensure_not_linked(session, kind, settings, name=name, exclude=None)
    return _store_new(
        session,
        box,
        name,
        kind,
        settings,
        connection.secret,
        owner=owner,
        policy=policy,
        direction=direction,
        horizon_days=horizon_days,
        check=check and connection.checkable,
    )


# Typed shorthands for the three kinds the demo, the web UI, the API and the tests link most;
# each is add_calendar with that kind's option values (a new kind needs none of these).


def add_caldav_calendar(
    session: Session,
    box: SecretBox,
    name: str,
    url: str,
    username: str,
    password: str,
    **common: Any,
) -> Calendar:
    """Store a CalDAV calendar after checking the connection (credentials sealed at rest)."""
    values = {"caldav": url, "username": username, "password": password}
    return add_calendar(session, box, name, "caldav", values, **common)


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
    **common: Any,
) -> Calendar:
    """Store a Microsoft 365 calendar (Graph, app-only) after checking that the app can sign
    in and read it; exactly one of ``client_secret`` or ``certificate_pem``."""
    values = {
        "graph": mailbox,
        "tenant": tenant,
        "client_id": client_id,
        "client_secret": client_secret,
        "certificate": certificate_pem,
        "calendar_id": calendar_id,
        "api_base": api_base,
        "login_base": login_base,
        "ca_file": ca_file,
    }
    given = {key: value for key, value in values.items() if value is not None}
    return add_calendar(session, box, name, "graph", given, **common)


def add_ews_calendar(
    session: Session,
    box: SecretBox,
    name: str,
    mailbox: str,
    *,
    username: str,
    password: str,
    server: str | None = None,
    auth: str = "ntlm",
    impersonate: bool = False,
    ca_file: str | None = None,
    cancellations: bool = False,
    **common: Any,
) -> Calendar:
    """Store an Exchange Server calendar (EWS) after signing in and reading its folder; the
    password is sealed at rest, the server build learnt on connecting kept in the settings."""
    values = {
        "ews": mailbox,
        "username": username,
        "password": password,
        "server": server,
        "auth": auth,
        "impersonate": impersonate,
        "ca_file": ca_file,
        "cancellations": cancellations,
    }
    given = {key: value for key, value in values.items() if value is not None}
    return add_calendar(session, box, name, "ews", given, **common)


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
    page_size: int | None = None,
    **common: Any,
) -> Calendar:
    """Store a Google calendar: a service account acting as ``subject`` (domain-wide
    delegation), or an OAuth client (a client-secrets file; an ``authorized_user`` file also
    brings its refresh token). With an OAuth client and no refresh token yet the calendar is
    stored unchecked: the person runs ``calbridge calendars auth NAME`` next
    (:func:`authorize_google_calendar`)."""
    values = {
        "google": calendar_id,
        "service_account": service_account_info,
        "subject": subject,
        "oauth_client": oauth_client,
        "api_base": api_base,
        "page_size": page_size,
    }
    given = {key: value for key, value in values.items() if value is not None}
    return add_calendar(session, box, name, "google", given, **common)


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
        learned = _learned(kind, calendar.name, settings, provider)
        if learned != settings:
            calendar.settings = settings = learned
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
    """What :func:`update_calendar` changes; ``None`` leaves a setting as it is.
    ``connection``: connection option values by key (``{"password": …}``, ``{"tenant": …}``:
    the keys of the calendar's kind in :mod:`calbridge.providers.registry`; another kind's
    key is an error naming its option)."""

    owner: str | None = None
    clear_owner: bool = False
    policy: str | None = None
    direction: str | None = None
    horizon_days: int | None = None
    connection: Mapping[str, Any] = field(default_factory=dict)
    # the calendar as an assistant: export mode, rooms, filters, title (sync/assistant.py)
    assistant: AssistantChange | None = None


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
    entry = kind_of(kind)
    values = {key: value for key, value in change.connection.items() if value is not None}
    keys = {option.key for option in entry.all_options}
    foreign = sorted(flag_for_key(key) for key in values if key not in keys)
    if foreign:
        raise ConfigError(foreign_options(entry, foreign, name))
    if change.owner is not None and change.clear_owner:
        raise ConfigError("give --owner USER_ID or --no-owner, not both")
    if change.horizon_days is not None and not 1 <= change.horizon_days <= 3650:
        raise ConfigError("--horizon-days must be between 1 and 3650")
    policy = change.policy or calendar.policy
    direction = change.direction or calendar.direction
    _check_options(session, change.owner, policy, direction)
    old_settings = dict(calendar.settings or {})
    settings = dict(old_settings)
    secret = _open_for_update(box, calendar, entry, values)
    if values:
        request = ConnectRequest(name, values, settings=old_settings, secret=secret)
        connection = entry.make(request)
        settings, secret = connection.settings.stored(), connection.secret
        check = check and connection.checkable
    moved = remote_identity(kind, settings) != remote_identity(kind, old_settings)
    if moved:
        ensure_not_linked(session, kind, settings, name=name, exclude=calendar.id)
    sealed = box.seal(secret)
    if check and (values or moved):
        candidate = Calendar(name=name, kind=kind, settings=settings, secret=sealed)
        provider = open_provider(candidate, box)
        provider.check()
        learned = _learned(kind, name, settings, provider)
        if learned != settings:
            settings = learned
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
    apply_assistant(session, calendar, change.assistant or AssistantChange())
    if moved:
        calendar.sync_token = None  # the token belongs to the calendar it pointed at
    session.flush()
    return calendar


def _open_for_update(
    box: SecretBox, calendar: Calendar, entry: ProviderKind[Any], values: Mapping[str, Any]
) -> dict[str, Any]:
    """The calendar's opened secret. When this key cannot open it (the secret key changed),
    an update that brings new credentials starts afresh: that is how such a calendar is fixed."""
    if not calendar.secret:
        return {}
    try:
        return box.open(calendar.secret, f"calendar '{calendar.name}'", credentials_fix(calendar))
    except ConfigError:
        if any(option.credential and option.key in values for option in entry.all_options):
            return {}
        raise


def _learned(
    kind: str, name: str, settings: dict[str, Any], provider: CalendarProvider
) -> dict[str, Any]:
    """``settings`` with what the connection check learned (the kind's ``checked``)."""
    entry = kind_of(kind)
    if entry.checked is None:
        return settings
    learned: ProviderSettings = entry.checked(entry.parse(name, settings), provider)
    return learned.stored()


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
