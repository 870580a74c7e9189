"""Microsoft 365 change notifications, from the booking system's side.

The long-running service (to come) exposes one URL to Graph and calls:

* :func:`validation_response` (re-exported) for Graph's ``?validationToken=`` handshake;
* :func:`handle_graph_notification` with every notification POST: each entry is matched to the
  calendar whose subscription it names, checked against that calendar's secret ``clientState``
  and, when genuine, that calendar gets an incremental sync (once per POST, however many
  entries name it);
* :func:`renew_subscriptions` from its scheduler (hourly is plenty).

Where it is kept: ``Calendar.settings["subscription"]`` holds the subscription's id, expiry and
URL (not secret); the ``clientState`` is sealed inside ``Calendar.secret`` with the app's
credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ConfigError
from calbridge.providers.graph import GraphProvider
from calbridge.providers.graph_subscriptions import (
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
    "NotificationOutcome",
    "handle_graph_notification",
    "renew_subscriptions",
    "subscribe_calendar",
    "unsubscribe_calendar",
    "validation_response",
]

log = logging.getLogger(__name__)
SETTINGS_KEY = "subscription"
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
    calendar: Calendar, box: SecretBox, factory: ProviderFactory | None
) -> Iterator[Subscriptions]:
    """The subscription API of the calendar's provider, closed after use."""
    provider = (factory or (lambda c: open_provider(c, box)))(calendar)
    if not isinstance(provider, GraphProvider):
        raise ConfigError(f"calendar '{calendar.name}' is not a Microsoft 365 calendar")
    try:
        yield Subscriptions(provider)
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
    now: datetime | None = None,
    provider_factory: ProviderFactory | None = None,
) -> Subscription:
    """Subscribe to the calendar's changes (replacing a previous subscription)."""
    with store.session() as session:
        calendar = find_calendar(session, name)
        old = calendar.settings.get(SETTINGS_KEY) if calendar.settings else None
        state = new_client_state()
        with _subscriptions(calendar, box, provider_factory) as subs:
            subscription = subs.create(notification_url, state, now)
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
) -> list[str]:
    """Renew every subscription that expires within a day (re-create the ones Graph forgot).
    Returns the names of the calendars whose subscription was renewed or re-created."""
    moment = now or utcnow()
    renewed: list[str] = []
    with store.session() as session:
        calendars = session.scalars(select(Calendar).where(Calendar.kind == "graph")).all()
        for calendar in calendars:
            raw = (calendar.settings or {}).get(SETTINGS_KEY)
            if not isinstance(raw, Mapping):
                continue
            if Subscription.from_settings(raw).due(moment):
                _renew(calendar, box, provider_factory, moment)
                renewed.append(calendar.name)
    return renewed


def _renew(
    calendar: Calendar, box: SecretBox, factory: ProviderFactory | None, now: datetime
) -> None:
    current = Subscription.from_settings(calendar.settings[SETTINGS_KEY])
    with _subscriptions(calendar, box, factory) as subs:
        try:
            _store(calendar, box, subs.renew(current, now), None)
        except SubscriptionGone:
            state = new_client_state()
            _store(calendar, box, subs.create(current.notification_url, state, now), state)


def _subscribed(session: Session, subscription_id: str) -> Calendar | None:
    path = Calendar.settings[SETTINGS_KEY]["id"].as_string()
    found = session.scalars(
        select(Calendar).where(Calendar.kind == "graph", path == subscription_id)
    ).first()
    return found


def handle_graph_notification(
    store: Store,
    box: SecretBox,
    payload: Mapping[str, Any] | Any,
    *,
    now: datetime | None = None,
    provider_factory: ProviderFactory | None = None,
) -> NotificationOutcome:
    """Verify a notification POST and sync each calendar it genuinely names, once.

    Entries naming an unknown subscription or carrying a wrong ``clientState`` are refused
    (listed in ``rejected``, logged) and trigger nothing. Whatever the outcome, the service
    should answer Graph 202 quickly; a sync that fails is reported in its SyncReport."""
    outcome = NotificationOutcome()
    try:
        entries = notifications_of(payload)
    except NotificationRejected as exc:
        outcome.rejected.append(str(exc))
        return outcome
    by_subscription: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_subscription.setdefault(str(entry.get("subscriptionId") or ""), []).append(entry)
    to_sync: list[int] = []
    for subscription_id, group in by_subscription.items():
        with store.session() as session:
            calendar = _subscribed(session, subscription_id) if subscription_id else None
            if calendar is None:
                outcome.rejected.append(
                    f"no calendar has subscription '{subscription_id[:60]}'; ignored"
                )
                continue
            secret = box.open(calendar.secret, calendar.name) if calendar.secret else {}
            try:
                notes = handle_notification({"value": group}, str(secret.get("client_state", "")))
            except NotificationRejected as exc:
                outcome.rejected.append(f"calendar '{calendar.name}': {exc}")
                log.warning("forged notification", extra={"calendar": calendar.name})
                continue
            if any(n.lifecycle_event in LIFECYCLE_RENEW for n in notes):
                _renew(calendar, box, provider_factory, now or utcnow())
            to_sync.append(calendar.id)
    factory = provider_factory or (lambda c: open_provider(c, box))
    for calendar_id in to_sync:
        outcome.synced.append(sync_calendar(store, calendar_id, factory, now=now))
    return outcome
