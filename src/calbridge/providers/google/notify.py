"""Google push notifications: ``events.watch`` channels, and answering their notifications.

A channel tells Google to POST to our address whenever the calendar's events change; the POST
carries headers only (``X-Goog-Channel-ID``, ``X-Goog-Channel-Token``, ``X-Goog-Resource-ID``,
``X-Goog-Resource-State``: ``sync`` right after opening, then ``exists``). It says *that*
something changed, never what: the answer is an incremental sync of that calendar.

Anyone can POST those headers to a public address, so every notification is checked against
the channel's **token** — a random secret chosen when the channel was opened, compared in
constant time. Channels expire (Google's default is a week, at most about a month): they are
renewed — a new channel opened, the old one stopped — a while before they do.

The service (:mod:`calbridge.service.hooks`) receives Google's POSTs and calls
:func:`verify_google_notification` with the request's headers: it finds the calendar the
channel belongs to and checks the channel's secret token and resource id; the service then
enqueues a sync. :func:`handle_google_notification` verifies and syncs in one call (tests,
scripts). A notification that does not check out is rejected and nothing runs.

Where things live: the non-secret channel data (id, resource id, expiry, address) in
``Calendar.settings["watch"]``; the channel token sealed with the calendar's other secrets in
``Calendar.secret`` (``watch_token``).

For the service's channel keeper (the registry's ``notify`` contract,
:mod:`calbridge.providers.registry`): :data:`SETTINGS_KEY`,
:func:`keep_channel` (open a channel to ``{public_url}/hooks/google``, renew it before it
expires) and :func:`remove_channel`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError, ProviderError
from calbridge.providers.google.provider import GoogleProvider
from calbridge.store.db import Store
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import find_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport

log = logging.getLogger(__name__)
ProviderFactory = Callable[[Calendar], CalendarProvider]

DEFAULT_TTL = timedelta(days=7)
RENEW_MARGIN = timedelta(days=1)
SETTINGS_KEY = "watch"
HOOK_PATH = "/hooks/google"


@dataclass(frozen=True)
class Channel:
    """An open channel. ``expiration`` is naive UTC; ``token`` is the secret to verify."""

    id: str
    resource_id: str
    expiration: datetime
    token: str
    address: str


@dataclass(frozen=True)
class Notification:
    """The headers of one push notification (names are case-insensitive)."""

    channel_id: str | None
    token: str | None
    resource_id: str | None
    state: str | None
    message_number: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Notification:
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        number = lower.get("x-goog-message-number", "")
        return cls(
            channel_id=lower.get("x-goog-channel-id"),
            token=lower.get("x-goog-channel-token"),
            resource_id=lower.get("x-goog-resource-id"),
            state=lower.get("x-goog-resource-state"),
            message_number=int(number) if number.isdigit() else None,
        )


def token_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a channel without a token never matches."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def open_channel(
    provider: GoogleProvider, address: str, *, ttl: timedelta = DEFAULT_TTL
) -> Channel:
    """Open a channel on the calendar's events, delivering to ``address`` (HTTPS on Google)."""
    api = provider.api
    channel_id = "calbridge-" + uuid.uuid4().hex
    token = secrets.token_urlsafe(32)
    body = {
        "id": channel_id,
        "type": "web_hook",
        "address": address,
        "token": token,
        "params": {"ttl": str(int(ttl.total_seconds()))},
    }
    request = api.events.watch(calendarId=api.calendar_id, body=body)
    answer = api.call(request, "opening a notification channel", missing="calendar") or {}
    try:
        expires_ms = int(answer["expiration"])
        resource_id = str(answer["resourceId"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(
            f"{api.label}: Google's answer to events.watch lacks resourceId/expiration"
        ) from exc
    expiration = datetime.fromtimestamp(expires_ms / 1000, tz=UTC).replace(tzinfo=None)
    return Channel(channel_id, resource_id, expiration, token, address)


def stop_channel(provider: GoogleProvider, channel_id: str, resource_id: str) -> None:
    """Stop a channel; one Google no longer knows (expired, stopped) is fine."""
    api = provider.api
    request = api.service.channels().stop(body={"id": channel_id, "resourceId": resource_id})
    api.call(request, f"stopping notification channel {channel_id}", missing="none")


def needs_renewal(expiration: datetime, now: datetime, margin: timedelta = RENEW_MARGIN) -> bool:
    return expiration - now <= margin


@dataclass(frozen=True)
class NotificationOutcome:
    """What became of one notification. ``accepted`` False: answer 4xx, nothing ran."""

    accepted: bool
    reason: str
    calendar: str | None = None
    report: SyncReport | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether one notification checks out, and for which calendar. ``known_channel`` False
    means no calendar is watched through that channel (answer 404: Google then stops it)."""

    accepted: bool
    reason: str
    calendar: str | None = None
    calendar_id: int | None = None
    state: str | None = None
    known_channel: bool = True


@dataclass(frozen=True)
class WatchedChannel:
    """What checks a channel's notifications: its calendar, resource id and secret token.
    A channel's values never change (a renewal opens a new channel), so it may be cached."""

    calendar_id: int
    calendar: str
    resource_id: str | None
    token: str | None


ChannelLookup = Callable[[str], "WatchedChannel | None"]


def watched_channel(store: Store, box: SecretBox, channel_id: str) -> WatchedChannel | None:
    """The calendar watched through ``channel_id`` (None: no calendar uses that channel)."""
    with store.session() as session:
        calendar = _watched(session, channel_id)
        if calendar is None:
            return None
        watch = dict((calendar.settings or {}).get("watch") or {})
        name = calendar.name
        secret = box.open(calendar.secret, f"calendar '{name}'") if calendar.secret else {}
        resource = watch.get("resource_id")
        return WatchedChannel(
            calendar.id,
            name,
            str(resource) if resource else None,
            secret.get("watch_token"),
        )


def verify_google_notification(
    store: Store,
    box: SecretBox,
    headers: Mapping[str, str],
    *,
    lookup: ChannelLookup | None = None,
) -> Verdict:
    """Check one notification (channel id → calendar, token, resource id) without syncing;
    quick enough to answer inside the request (``lookup`` may be a cache of
    :func:`watched_channel`). Never raises for a bad notification."""
    note = Notification.from_headers(headers)
    if not note.channel_id:
        return _refuse("not a Google Calendar notification (no X-Goog-Channel-ID)")
    find = lookup or (lambda channel_id: watched_channel(store, box, channel_id))
    channel = find(note.channel_id)
    if channel is None:
        reason = f"no calendar is watched through channel {note.channel_id[:80]}"
        log.warning("notification rejected", extra={"calendar": None, "reason": reason})
        return Verdict(False, reason, known_channel=False)
    name = channel.calendar
    if not token_matches(channel.token, note.token):
        return _refuse(f"the channel token does not match calendar '{name}'", name)
    if note.resource_id != channel.resource_id:
        return _refuse(f"the resource id does not match calendar '{name}'", name)
    return Verdict(
        True, f"'{note.state}' for calendar '{name}'", name, channel.calendar_id, note.state
    )


def handle_google_notification(
    store: Store,
    box: SecretBox,
    headers: Mapping[str, str],
    *,
    provider_factory: ProviderFactory | None = None,
    now: datetime | None = None,
) -> NotificationOutcome:
    """Verify one notification and, for a change, sync that calendar incrementally here
    (the service enqueues instead: :mod:`calbridge.service.hooks`). Never raises for a bad
    notification."""
    verdict = verify_google_notification(store, box, headers)
    if not verdict.accepted or verdict.calendar_id is None:
        return NotificationOutcome(False, verdict.reason, verdict.calendar)
    name = verdict.calendar
    if verdict.state == "sync":
        return NotificationOutcome(True, "channel opened", name)
    factory = provider_factory or (lambda c: open_provider(c, box))
    report = sync_calendar(store, verdict.calendar_id, factory, now=now)
    log.info("notification synced", extra={"calendar": name, "state": verdict.state})
    return NotificationOutcome(True, f"synced after '{verdict.state}'", name, report)


def watches_resource(store: Store, resource_id: str) -> bool:
    """Whether one of our Google calendars is watched as ``resource_id``."""
    with store.session() as session:
        for calendar in session.scalars(select(Calendar).where(Calendar.kind == "google")):
            if ((calendar.settings or {}).get("watch") or {}).get("resource_id") == resource_id:
                return True
    return False


def stop_stray_channel(
    store: Store,
    box: SecretBox,
    channel_id: str,
    resource_id: str,
    *,
    provider_factory: ProviderFactory | None = None,
) -> bool:
    """Stop a channel we no longer use (replaced, or left over) that still notifies us about
    one of our watched calendars; False when no calendar of ours has that resource."""
    with store.session() as session:
        for calendar in session.scalars(select(Calendar).where(Calendar.kind == "google")):
            watch = (calendar.settings or {}).get("watch") or {}
            if resource_id and watch.get("resource_id") == resource_id:
                if watch.get("channel_id") == channel_id:
                    return False  # our current channel: never stop it
                stop_channel(_provider(calendar, box, provider_factory), channel_id, resource_id)
                return True
    return False


def watch_google_calendar(
    store: Store,
    box: SecretBox,
    name: str,
    address: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    provider_factory: ProviderFactory | None = None,
) -> Channel:
    """Open a notification channel for calendar ``name`` (replacing, then stopping, the one it
    had) and remember it."""
    with store.session() as session:
        calendar = _google(session, name)
        old = dict((calendar.settings or {}).get("watch") or {})
        provider = _provider(calendar, box, provider_factory)
        channel = open_channel(provider, address, ttl=ttl)
        secret = box.open(calendar.secret, f"calendar '{name}'") if calendar.secret else {}
        secret["watch_token"] = channel.token
        calendar.secret = box.seal(secret)
        calendar.settings = {**(calendar.settings or {}), "watch": _watch_json(channel)}
    if old.get("channel_id") and old.get("resource_id"):
        stop_channel(provider, str(old["channel_id"]), str(old["resource_id"]))
    return channel


def renew_google_channels(
    store: Store,
    box: SecretBox,
    *,
    now: datetime | None = None,
    margin: timedelta = RENEW_MARGIN,
    ttl: timedelta = DEFAULT_TTL,
    provider_factory: ProviderFactory | None = None,
) -> list[str]:
    """Renew every channel that expires within ``margin``; returns the calendars renewed."""
    moment = now or utcnow()
    due: list[tuple[str, str]] = []
    with store.session() as session:
        for calendar in session.scalars(select(Calendar).where(Calendar.kind == "google")):
            watch = (calendar.settings or {}).get("watch") or {}
            if watch.get("expiration") and needs_renewal(
                datetime.fromisoformat(str(watch["expiration"])), moment, margin
            ):
                due.append((calendar.name, str(watch["address"])))
    for name, address in due:
        watch_google_calendar(store, box, name, address, ttl=ttl, provider_factory=provider_factory)
    return [name for name, _ in due]


def stop_watching_google_calendar(
    store: Store, box: SecretBox, name: str, *, provider_factory: ProviderFactory | None = None
) -> None:
    with store.session() as session:
        calendar = _google(session, name)
        watch = dict((calendar.settings or {}).get("watch") or {})
        if not watch:
            return
        stop_channel(
            _provider(calendar, box, provider_factory),
            str(watch["channel_id"]),
            str(watch["resource_id"]),
        )
        settings = dict(calendar.settings or {})
        settings.pop("watch", None)
        calendar.settings = settings


def _watched(session: Session, channel_id: str) -> Calendar | None:
    for calendar in session.scalars(select(Calendar).where(Calendar.kind == "google")):
        watch = (calendar.settings or {}).get("watch") or {}
        if watch.get("channel_id") == channel_id:
            found: Calendar = calendar
            return found
    return None


def _google(session: Session, name: str) -> Calendar:
    calendar = find_calendar(session, name)
    if calendar.kind != "google":
        raise ConfigError(f"calendar '{name}' is not a Google calendar: it has no push channels")
    return calendar


def _provider(
    calendar: Calendar, box: SecretBox, factory: ProviderFactory | None
) -> GoogleProvider:
    provider = factory(calendar) if factory is not None else open_provider(calendar, box)
    assert isinstance(provider, GoogleProvider)
    return provider


def _watch_json(channel: Channel) -> dict[str, str]:
    return {
        "channel_id": channel.id,
        "resource_id": channel.resource_id,
        "expiration": channel.expiration.isoformat(),
        "address": channel.address,
    }


def _refuse(reason: str, calendar: str | None = None) -> Verdict:
    log.warning("notification rejected", extra={"calendar": calendar, "reason": reason})
    return Verdict(False, reason, calendar)


# ------------------------------------------------------------------ the channel keeper's hooks


def keep_channel(
    keeper: Any, calendar_id: int, name: str, settings: dict[str, Any], of: str, now: datetime
) -> str | None:
    """Under the calendar's lock: open a channel when the calendar has none to this address
    or for this remote calendar ("opened"), replace one expiring soon ("renewed")."""
    address = keeper.address(HOOK_PATH)
    ttl = keeper.lifetime("google", DEFAULT_TTL)
    watch = settings.get(SETTINGS_KEY)
    if not isinstance(watch, dict) or watch.get("address") != address or watch.get("of", of) != of:
        done = "opened"
    elif needs_renewal(
        datetime.fromisoformat(str(watch["expiration"])),
        now,
        keeper.renew_margin(ttl, RENEW_MARGIN),
    ):
        done = "renewed"
    else:
        return None
    watch_google_calendar(
        keeper.store, keeper.box, name, address, ttl=ttl, provider_factory=keeper.provider_factory
    )
    return done


def remove_channel(store: Store, box: SecretBox, name: str) -> None:
    """Before the calendar is removed: stop its channel."""
    stop_watching_google_calendar(store, box, name)
