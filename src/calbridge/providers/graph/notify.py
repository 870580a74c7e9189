"""Microsoft 365 change notifications, from the booking system's side.

The service (:mod:`calbridge.service.hooks`) exposes the URLs Graph calls and uses:

* :func:`validation_response` (re-exported) for Graph's ``?validationToken=`` handshake;
* :func:`verify_graph_notification` with every notification POST: each entry is matched to the
  calendar whose subscription it names and checked against that calendar's secret
  ``clientState``; the service then enqueues one sync per genuine calendar (never inline);
* :func:`renew_subscription` for lifecycle notifications (``reauthorizationRequired`` →
  renew, ``subscriptionRemoved`` → re-create) and :func:`renew_subscriptions` from its
  scheduler (:mod:`calbridge.service.channels`).

:func:`handle_graph_notification` verifies and syncs in one call (tests, scripts).

Where it is kept: ``Calendar.settings["subscription"]`` holds the subscription's id, expiry and
URL (not secret); the ``clientState`` is sealed inside ``Calendar.secret`` with the app's
credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import CalbridgeError, ConfigError
from calbridge.providers.graph.provider import GraphProvider
from calbridge.providers.graph.subscriptions import (
    LIFETIME,
    RENEW_BEFORE,
    Notification,
    NotificationRejected,
    Subscription,
    SubscriptionGone,
    Subscriptions,
    handle_notification,
    new_client_state,
    notifications_of,
    validation_response,
)
from calbridge.store.db import Store
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import find_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport

__all__ = [
    "GraphVerdict",
    "NotificationOutcome",
    "SubscribedCalendar",
    "handle_graph_notification",
    "keep_channel",
    "remove_channel",
    "renew_subscription",
    "renew_subscriptions",
    "subscribe_calendar",
    "subscribed_calendar",
    "unsubscribe_calendar",
    "validation_response",
    "verify_graph_notification",
]

log = logging.getLogger(__name__)
SETTINGS_KEY = "subscription"
HOOK_PATH = "/hooks/graph"
LIFECYCLE_PATH = "/hooks/graph/lifecycle"
LIFECYCLE_RENEW = ("reauthorizationRequired", "subscriptionRemoved")
ProviderFactory = Callable[[Calendar], CalendarProvider]


@dataclass
class NotificationOutcome:
    """What one notification POST caused: the syncs run and the entries refused."""

    synced: list[SyncReport] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected and all(report.ok for report in self.synced)


@contextmanager
def _subscriptions(
    calendar: Calendar,
    box: SecretBox,
    factory: ProviderFactory | None,
    lifetime: timedelta = LIFETIME,
) -> Iterator[Subscriptions]:
    """The subscription API of the calendar's provider, closed after use."""
    provider = (factory or (lambda c: open_provider(c, box)))(calendar)
    if not isinstance(provider, GraphProvider):
        raise ConfigError(f"calendar '{calendar.name}' is not a Microsoft 365 calendar")
    try:
        yield Subscriptions(provider, lifetime)
    finally:
        provider.close()


def _store(
    calendar: Calendar, box: SecretBox, subscription: Subscription | None, state: str | None
) -> None:
    settings = dict(calendar.settings or {})
    secret = box.open(calendar.secret, f"calendar '{calendar.name}'") if calendar.secret else {}
    if subscription is None:
        settings.pop(SETTINGS_KEY, None)
        secret.pop("client_state", None)
    else:
        settings[SETTINGS_KEY] = subscription.as_settings()
        if state is not None:
            secret["client_state"] = state
    calendar.settings = settings
    calendar.secret = box.seal(secret)


def subscribe_calendar(
    store: Store,
    box: SecretBox,
    name: str,
    notification_url: str,
    *,
    lifecycle_url: str | None = None,
    lifetime: timedelta = LIFETIME,
    now: datetime | None = None,
    provider_factory: ProviderFactory | None = None,
) -> Subscription:
    """Subscribe to the calendar's changes (replacing a previous subscription); lifecycle
    notifications go to ``lifecycle_url`` when given."""
    with store.session() as session:
        calendar = find_calendar(session, name)
        old = calendar.settings.get(SETTINGS_KEY) if calendar.settings else None
        state = new_client_state()
        with _subscriptions(calendar, box, provider_factory, lifetime) as subs:
            subscription = subs.create(notification_url, state, now, lifecycle_url)
            if isinstance(old, Mapping):
                subs.delete(str(old.get("id")))
        _store(calendar, box, subscription, state)
        log.info("subscribed", extra={"calendar": name, "subscription": subscription.id})
        return subscription


def unsubscribe_calendar(
    store: Store, box: SecretBox, name: str, *, provider_factory: ProviderFactory | None = None
) -> bool:
    """Delete the calendar's subscription; False when it had none."""
    with store.session() as session:
        calendar = find_calendar(session, name)
        old = (calendar.settings or {}).get(SETTINGS_KEY)
        if not isinstance(old, Mapping):
            return False
        with _subscriptions(calendar, box, provider_factory) as subs:
            subs.delete(str(old.get("id")))
        _store(calendar, box, None, None)
        return True


def renew_subscriptions(
    store: Store,
    box: SecretBox,
    *,
    now: datetime | None = None,
    provider_factory: ProviderFactory | None = None,
    lifetime: timedelta = LIFETIME,
    renew_before: timedelta = RENEW_BEFORE,
) -> list[str]:
    """Renew every subscription that expires within ``renew_before`` (a day; re-create the
    ones Graph forgot). Returns the names of the calendars whose subscription was renewed or
    re-created. One calendar's failure does not stop the others (logged, tried next time)."""
    moment = now or utcnow()
    renewed: list[str] = []
    with store.session() as session:
        calendars = session.scalars(select(Calendar).where(Calendar.kind == "graph")).all()
        for calendar in calendars:
            raw = (calendar.settings or {}).get(SETTINGS_KEY)
            if not isinstance(raw, Mapping):
                continue
            if Subscription.from_settings(raw).due(moment, renew_before):
                try:
                    _renew(calendar, box, provider_factory, moment, lifetime)
                except CalbridgeError as exc:
                    log.warning(
                        "subscription not renewed",
                        extra={"calendar": calendar.name, "error": str(exc)},
                    )
                    continue
                renewed.append(calendar.name)
    return renewed


def _renew(
    calendar: Calendar,
    box: SecretBox,
    factory: ProviderFactory | None,
    now: datetime,
    lifetime: timedelta = LIFETIME,
) -> None:
    current = Subscription.from_settings(calendar.settings[SETTINGS_KEY])
    with _subscriptions(calendar, box, factory, lifetime) as subs:
        try:
            _store(calendar, box, subs.renew(current, now), None)
        except SubscriptionGone:
            _recreate(calendar, box, subs, current, now)


def _recreate(
    calendar: Calendar,
    box: SecretBox,
    subs: Subscriptions,
    current: Subscription,
    now: datetime,
) -> None:
    state = new_client_state()
    fresh = subs.create(current.notification_url, state, now, current.lifecycle_url or None)
    subs.delete(current.id)  # gone already, or superseded: never two subscriptions
    _store(calendar, box, fresh, state)
    log.info("subscription re-created", extra={"calendar": calendar.name})


def renew_subscription(
    store: Store,
    box: SecretBox,
    calendar_id: int,
    *,
    recreate: bool = False,
    lifetime: timedelta = LIFETIME,
    now: datetime | None = None,
    provider_factory: ProviderFactory | None = None,
) -> bool:
    """Renew one calendar's subscription now (Graph sent ``reauthorizationRequired``), or
    create a new one (``subscriptionRemoved``: ``recreate=True``). False when the calendar has
    no subscription (any more)."""
    moment = now or utcnow()
    with store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        raw = (calendar.settings or {}).get(SETTINGS_KEY) if calendar is not None else None
        if calendar is None or not isinstance(raw, Mapping):
            return False
        if not recreate:
            _renew(calendar, box, provider_factory, moment, lifetime)
            return True
        with _subscriptions(calendar, box, provider_factory, lifetime) as subs:
            _recreate(calendar, box, subs, Subscription.from_settings(raw), moment)
        return True


def _subscribed(session: Session, subscription_id: str) -> Calendar | None:
    path = Calendar.settings[SETTINGS_KEY]["id"].as_string()
    found = session.scalars(
        select(Calendar).where(Calendar.kind == "graph", path == subscription_id)
    ).first()
    return found


@dataclass
class GraphVerdict:
    """What a notification POST genuinely says, per calendar: ``notes`` by calendar id,
    ``names`` by calendar id, and the refused entries (each a reason, already logged)."""

    notes: dict[int, list[Notification]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SubscribedCalendar:
    """What checks a subscription's notifications: its calendar and secret ``clientState``.
    A subscription's values never change (a re-creation has a new id): it may be cached."""

    calendar_id: int
    calendar: str
    client_state: str


SubscriptionLookup = Callable[[str], "SubscribedCalendar | None"]


def subscribed_calendar(
    store: Store, box: SecretBox, subscription_id: str
) -> SubscribedCalendar | None:
    """The calendar whose subscription is ``subscription_id`` (None: no calendar's)."""
    with store.session() as session:
        calendar = _subscribed(session, subscription_id) if subscription_id else None
        if calendar is None:
            return None
        secret = box.open(calendar.secret, calendar.name) if calendar.secret else {}
        return SubscribedCalendar(calendar.id, calendar.name, str(secret.get("client_state", "")))


def verify_graph_notification(
    store: Store,
    box: SecretBox,
    payload: Mapping[str, Any] | Any,
    *,
    lookup: SubscriptionLookup | None = None,
) -> GraphVerdict:
    """Check every entry of a notification POST (change or lifecycle) against the secret
    ``clientState`` of the calendar whose subscription it names; nothing is synced here.
    Entries naming an unknown subscription or carrying a wrong ``clientState`` are refused.
    ``lookup`` may be a cache of :func:`subscribed_calendar`."""
    verdict = GraphVerdict()
    try:
        entries = notifications_of(payload)
    except NotificationRejected as exc:
        verdict.rejected.append(str(exc))
        log.warning("notification rejected", extra={"calendar": None, "reason": str(exc)})
        return verdict
    by_subscription: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_subscription.setdefault(str(entry.get("subscriptionId") or ""), []).append(entry)
    find = lookup or (lambda sid: subscribed_calendar(store, box, sid))
    for subscription_id, group in by_subscription.items():
        calendar = find(subscription_id) if subscription_id else None
        if calendar is None:
            reason = f"no calendar has subscription '{subscription_id[:60]}'; ignored"
            verdict.rejected.append(reason)
            log.warning("notification rejected", extra={"calendar": None, "reason": reason})
            continue
        try:
            notes = handle_notification({"value": group}, calendar.client_state)
        except NotificationRejected as exc:
            verdict.rejected.append(f"calendar '{calendar.calendar}': {exc}")
            log.warning(
                "forged notification", extra={"calendar": calendar.calendar, "reason": str(exc)}
            )
            continue
        verdict.notes.setdefault(calendar.calendar_id, []).extend(notes)
        verdict.names[calendar.calendar_id] = calendar.calendar
    return verdict


def handle_graph_notification(
    store: Store,
    box: SecretBox,
    payload: Mapping[str, Any] | Any,
    *,
    now: datetime | None = None,
    provider_factory: ProviderFactory | None = None,
) -> NotificationOutcome:
    """Verify a notification POST and sync each calendar it genuinely names, once, here (the
    service enqueues instead: :mod:`calbridge.service.hooks`).

    Entries naming an unknown subscription or carrying a wrong ``clientState`` are refused
    (listed in ``rejected``, logged) and trigger nothing. Whatever the outcome, the service
    should answer Graph 202 quickly; a sync that fails is reported in its SyncReport."""
    verdict = verify_graph_notification(store, box, payload)
    outcome = NotificationOutcome(rejected=list(verdict.rejected))
    for calendar_id, notes in verdict.notes.items():
        if any(n.lifecycle_event in LIFECYCLE_RENEW for n in notes):
            renew_subscription(
                store,
                box,
                calendar_id,
                recreate=any(n.lifecycle_event == "subscriptionRemoved" for n in notes),
                now=now,
                provider_factory=provider_factory,
            )
    factory = provider_factory or (lambda c: open_provider(c, box))
    for calendar_id in verdict.notes:
        outcome.synced.append(sync_calendar(store, calendar_id, factory, now=now))
    return outcome


# ------------------------------------------------------------------ the channel keeper's hooks


def keep_channel(
    keeper: Any, calendar_id: int, name: str, settings: dict[str, Any], of: str, now: datetime
) -> str | None:
    """Under the calendar's lock: subscribe when the calendar has no subscription to this
    address or for this mailbox ("opened"); extend one expiring soon, re-created when Graph
    forgot it ("renewed")."""
    address = keeper.address(HOOK_PATH)
    lifetime = keeper.lifetime("graph", LIFETIME)
    raw = settings.get(SETTINGS_KEY)
    if (
        not isinstance(raw, dict)
        or raw.get("notification_url") != address
        or raw.get("of", of) != of
    ):
        subscribe_calendar(
            keeper.store,
            keeper.box,
            name,
            address,
            lifecycle_url=keeper.address(LIFECYCLE_PATH),
            lifetime=lifetime,
            now=now,
            provider_factory=keeper.provider_factory,
        )
        return "opened"
    if Subscription.from_settings(raw).due(now, keeper.renew_margin(lifetime, RENEW_BEFORE)):
        renew_subscription(
            keeper.store,
            keeper.box,
            calendar_id,
            lifetime=lifetime,
            now=now,
            provider_factory=keeper.provider_factory,
        )
        return "renewed"
    return None


def remove_channel(store: Store, box: SecretBox, name: str) -> None:
    """Before the calendar is removed: delete its subscription."""
    unsubscribe_calendar(store, box, name)
