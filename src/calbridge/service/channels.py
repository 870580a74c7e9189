"""Push channels of the running service: a Google watch channel per Google calendar, a
Graph subscription (with its lifecycle URL) per Microsoft 365 calendar and an EWS streaming
subscription per Exchange calendar, kept alive.

Google and Graph only with a public URL (``CALBRIDGE_PUBLIC_URL``): Google and Microsoft must
be able to reach ``{public_url}/hooks/google`` and ``{public_url}/hooks/graph``; without one
their push is off and the scheduler polls those calendars more often instead. Exchange streams
need no public URL — the service calls Exchange and keeps the connection open
(:mod:`calbridge.providers.ews.notify`); each change enqueues the calendar's sync through the
same per-calendar throttle as ``/hooks/*`` notifications.

:meth:`ChannelKeeper.run_once` is what the scheduler calls (at start, once the web server
answers — Graph calls ``/hooks/graph`` back before it creates a subscription — and then every
``CHECK_SECONDS``):

- *ensure*: every Google / Graph / Exchange calendar that pulls (direction ``both`` or
  ``pull``), is not paused and has no channel to this address (a new calendar, a changed
  public URL) gets one;
- *renew*: a channel whose expiry is near is replaced (Google: a new channel, the old one
  stopped) or extended (Graph: ``PATCH``, re-created when Graph forgot it). Lifetimes: Google
  channels ``google_ttl`` (7 days), renewed a day before; Graph events subscriptions
  ``graph_lifetime`` (3 days; at most 10,080 minutes), renewed a day before. Shorter
  lifetimes renew at a third of the lifetime before expiry. Exchange: the stream's lease is
  renewed (its thread reconnects and re-subscribes by itself); a calendar that no longer
  qualifies (removed, paused) has its stream stopped.

The keeper knows no API: every kind with a push module (the registry's ``notify``, see
:mod:`calbridge.providers.registry`) keeps its own channels through ``keep_channel`` /
``remove_channel``; a kind whose API calls us back is kept only with a public URL.

One calendar's failure (credentials, outage) is logged and retried after ``RETRY_SECONDS``;
the others go on.

Several service processes may run keepers on one PostgreSQL database. Each calendar's channel
is kept while holding that calendar's lock (:func:`~calbridge.sync.locks.calendar_lock`, the
one its syncs hold) and from settings read again under it, so two processes never open two
channels for one calendar; a calendar whose lock is held elsewhere is simply left to the next
pass. A channel remembers what it watches (``of``: the calendar's remote identity): when
``calendars update`` points the calendar at another remote calendar or mailbox, the next pass
opens a channel on the new one and stops the old one. Removing a calendar stops its channel
first (:func:`stop_push`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select

from calbridge.config import load_settings
from calbridge.errors import CalbridgeError, CalendarBusy
from calbridge.providers.registry import calls_back, kind_of, push_kinds, push_module
from calbridge.store.db import Store
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.engine import ProviderFactory
from calbridge.sync.locks import calendar_lock
from calbridge.sync.providers import open_provider

log = logging.getLogger(__name__)

CHECK_SECONDS = 60.0
RETRY_SECONDS = 60.0


class PushSettings(BaseSettings):
    """Lifetimes and check interval of the push channels (``CALBRIDGE_PUSH_*``); the
    defaults suit Google and Microsoft, short values suit tests and demos."""

    model_config = SettingsConfigDict(env_prefix="CALBRIDGE_PUSH_", extra="ignore")

    google_ttl_seconds: float = Field(default=7 * 86400.0, gt=0)  # Google's default: a week
    graph_lifetime_seconds: float = Field(default=3 * 86400.0, gt=0, le=604800)  # ≤ 10,080 min
    check_seconds: float = Field(default=CHECK_SECONDS, gt=0)
    min_interval_seconds: float = Field(
        default=5.0, ge=0, description="a calendar's push-triggered syncs at most this often"
    )
    stray_stop_seconds: float = Field(
        default=30.0, ge=0, description="wait before stopping a channel no calendar uses"
    )
    ews_stream_minutes: int = Field(
        default=30, ge=1, le=30, description="an Exchange stream's connection timeout"
    )


def renew_margin(lifetime: timedelta, default: timedelta) -> timedelta:
    """A day before expiry, or a third of a short lifetime (tests, demos)."""
    return min(default, lifetime / 3)


@dataclass
class KeeperReport:
    """What one pass did, by calendar name."""

    opened: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)


def watched_identity(kind: str, name: str, settings: dict[str, object]) -> str:
    """What a calendar's channel watches: its remote calendar's identity (the registry's), and
    the account it belongs to for kinds whose channels are an account's own."""
    entry = kind_of(kind)
    parsed = entry.parse(name, settings)
    identity = entry.identity(parsed)
    if entry.channel_account is not None:
        identity += f" as {entry.channel_account(parsed)}"
    return identity


def stop_push(store: Store, box: SecretBox, name: str) -> str | None:
    """Stop calendar ``name``'s watch channel or subscription, if it has one (before the
    calendar is removed, so that Google and Microsoft stop calling). Best effort: when it
    cannot be stopped (credentials revoked, service down), say so — the channel then ends
    at its expiry, and its notifications are refused meanwhile."""
    with store.session() as session:
        calendar = session.scalar(select(Calendar).where(Calendar.name == name))
        if calendar is None:
            return None
        kind, settings = calendar.kind, dict(calendar.settings or {})
    module = push_module(kind)
    try:
        if module is not None and settings.get(module.SETTINGS_KEY):
            module.remove_channel(store, box, name)
    except (CalbridgeError, httpx.HTTPError) as exc:
        return (
            f"its push channel could not be stopped ({exc}); it ends by itself at its expiry "
            "and its notifications are refused meanwhile"
        )
    return None


@dataclass
class ChannelKeeper:
    store: Store
    box: SecretBox
    public_url: str | None
    google_ttl: timedelta = timedelta(days=7)
    graph_lifetime: timedelta = timedelta(days=3)
    provider_factory: ProviderFactory | None = None
    clock: Callable[[], datetime] = utcnow
    on_change: Callable[[int], None] = lambda calendar_id: None  # a stream saw a change
    stream_minutes: int = 30
    state: dict[str, Any] = field(default_factory=dict)  # per kind: what its module keeps
    _retry_at: dict[int, float] = field(default_factory=dict)

    # ------------------------------------------------- what the kinds' notify modules use
    def address(self, path: str) -> str:
        """The public URL of one of our ``/hooks/…`` paths."""
        return (self.public_url or "").rstrip("/") + path

    def lifetime(self, kind: str, default: timedelta) -> timedelta:
        """The channel lifetime configured for ``kind`` (``CALBRIDGE_PUSH_*``)."""
        return {"google": self.google_ttl, "graph": self.graph_lifetime}.get(kind, default)

    @staticmethod
    def renew_margin(lifetime: timedelta, default: timedelta) -> timedelta:
        return renew_margin(lifetime, default)

    def open_provider(self, calendar: Calendar) -> Any:
        factory = self.provider_factory or (lambda c: open_provider(c, self.box))
        return factory(calendar)

    def run_once(self) -> KeeperReport:
        """Open missing channels and renew the ones expiring soon."""
        report = KeeperReport()
        now = self.clock()
        calendars = self._push_calendars()
        for kind in push_kinds():
            retain = getattr(push_module(kind), "retain", None)
            if callable(retain):
                report.stopped += retain(self, {c for c, _ in calendars})
        for calendar_id, name in calendars:
            if self._retry_at.get(calendar_id, 0.0) > time.monotonic():
                continue
            try:
                with calendar_lock(self.store, calendar_id):
                    current = self._settings(calendar_id)
                    if current is not None:
                        self._keep(calendar_id, name, *current, now, report)
            except CalendarBusy:
                report.busy.append(name)  # a sync or another process's keeper has it: next pass
            except CalbridgeError as exc:
                self._retry_at[calendar_id] = time.monotonic() + RETRY_SECONDS
                report.failed[name] = str(exc)
                log.warning("push channel not kept", extra={"calendar": name, "error": str(exc)})
            else:
                self._retry_at.pop(calendar_id, None)
        return report

    def _push_calendars(self) -> list[tuple[int, str]]:
        kinds = [kind for kind in push_kinds() if self.public_url or not calls_back(kind)]
        with self.store.session() as session:
            rows = session.execute(
                select(Calendar.id, Calendar.name).where(
                    Calendar.kind.in_(kinds),
                    Calendar.direction.in_(("both", "pull")),
                    Calendar.paused.is_(False),
                )
            ).all()
        return [(row[0], row[1]) for row in rows]

    def _settings(self, calendar_id: int) -> tuple[str, dict[str, object]] | None:
        """The calendar's kind and settings as they are now (None once it is gone)."""
        with self.store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            if calendar is None:
                return None
            return calendar.kind, dict(calendar.settings or {})

    def _keep(
        self,
        calendar_id: int,
        name: str,
        kind: str,
        settings: dict[str, object],
        now: datetime,
        report: KeeperReport,
    ) -> None:
        of = watched_identity(kind, name, settings)
        module = push_module(kind)
        if module is None or (calls_back(kind) and not self.public_url):
            return
        done = module.keep_channel(self, calendar_id, name, settings, of, now)
        if done == "opened":
            report.opened.append(name)
        elif done == "renewed":
            report.renewed.append(name)
        if done is not None:
            self._remember(calendar_id, module.SETTINGS_KEY, of)

    def _remember(self, calendar_id: int, key: str, of: str) -> None:
        """Note on the channel just opened or renewed what it watches."""
        with self.store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            if calendar is not None and isinstance((calendar.settings or {}).get(key), dict):
                settings = dict(calendar.settings)
                settings[key] = {**settings[key], "of": of}
                calendar.settings = settings


class _KeeperTask:
    """The keeper as a scheduler task: waits until this process's web server answers (Graph
    calls ``/hooks/graph`` back while a subscription is created), then a pass every
    ``check_seconds``."""

    def __init__(self, keeper: ChannelKeeper, local_url: str, check_seconds: float) -> None:
        self.keeper = keeper
        self.local_url = local_url
        self.check_seconds = check_seconds
        self.last_pass: float | None = None

    def __call__(self) -> None:
        now = time.monotonic()
        if self.last_pass is not None and now - self.last_pass < self.check_seconds:
            return
        if self.last_pass is None and not self._answers():
            return
        self.last_pass = now
        report = self.keeper.run_once()
        if report.opened or report.renewed or report.stopped:
            log.info(
                "push channels kept",
                extra={
                    "opened": report.opened,
                    "renewed": report.renewed,
                    "stopped": report.stopped,
                },
            )

    def _answers(self) -> bool:
        try:
            return httpx.get(self.local_url + "/healthz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False


def schedule(scheduler: Any, ctx: Any, jobs: Any) -> None:
    """Register the push side's periodic work on the service's scheduler (called by
    ``calbridge serve``): booking changes made outside the service
    (:class:`~calbridge.service.booking_watch.BookingWatcher`, every tick), email alerts
    (:class:`~calbridge.service.alerts.Alerter`) and the channels: Exchange streams always,
    Google and Graph channels with a public URL."""
    from calbridge.service.alerts import CHECK_SECONDS as ALERT_SECONDS
    from calbridge.service.alerts import Alerter
    from calbridge.service.booking_watch import BookingWatcher

    settings = ctx.settings
    watcher = BookingWatcher(ctx.store, jobs)
    watcher.start()
    scheduler.every(settings.scheduler_tick_seconds, "booking changes", watcher.run_once)
    scheduler.every(ALERT_SECONDS, "alerts", Alerter(ctx.store).run_once)
    push = PushSettings()
    box = SecretBox.from_settings(load_settings())
    from calbridge.service.hooks import Throttle

    throttle = Throttle(push.min_interval_seconds)

    def changed(calendar_id: int) -> None:
        throttle.submit(calendar_id, lambda: jobs.sync_calendar(calendar_id, trigger="push"))

    keeper = ChannelKeeper(
        ctx.store,
        box,
        settings.public_url or None,
        google_ttl=timedelta(seconds=push.google_ttl_seconds),
        graph_lifetime=timedelta(seconds=push.graph_lifetime_seconds),
        provider_factory=lambda c: open_provider(c, box),
        on_change=changed,
        stream_minutes=push.ews_stream_minutes,
    )
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    local = f"http://{host}:{settings.port}"
    scheduler.every(
        min(2.0, push.check_seconds),
        "push channels",
        _KeeperTask(keeper, local, push.check_seconds),
    )
