"""Exchange change notifications for the running service: one EWS **streaming subscription**
per calendar, kept open by ``calbridge serve``.

Why streaming: an on-premises Exchange server usually cannot reach the booking system (push
subscriptions would need a public URL it can call), so the service calls Exchange instead and
keeps a ``GetStreamingEvents`` request open on the calendar folder; Exchange writes each change
down that connection as it happens. No ``CALBRIDGE_PUBLIC_URL`` is needed.

What a stream (:class:`CalendarStream`, one thread) does:

* ``Subscribe`` (``StreamingSubscriptionRequest``) on the mailbox's calendar folder for
  ``CreatedEvent``, ``ModifiedEvent``, ``MovedEvent``, ``CopiedEvent`` and ``DeletedEvent``
  — or picks up the subscription stored by the process that streamed before (a restart), whose
  events Exchange kept meanwhile;
* ``GetStreamingEvents`` with a connection timeout of :data:`STREAM_MINUTES` (30, Exchange's
  maximum): every notification carrying one of those events calls ``on_change`` (the service
  enqueues the calendar's sync through its rate-limited queue); heartbeats (``ConnectionStatus``
  ``OK``) call nothing; when the server closes the connection (``Closed``) the stream reconnects
  at once;
* a dropped connection (reset, timeout, 5xx) reconnects after a back-off (1 s doubling to 60 s);
* ``ErrorSubscriptionNotFound`` (expired: no connection for 30 minutes; the server restarted;
  unsubscribed) → a new subscription, then ``on_change`` once — events may have been lost
  meanwhile, so the calendar catches up with a sync — unless the calendar is no longer wanted
  (removed, paused), in which case the stream ends.

One stream per calendar across processes (:class:`StreamKeeper`, driven by the service's
:class:`~calbridge.service.channels.ChannelKeeper` under the calendar's lock): the calendar's
``settings["stream"]`` holds the subscription id, what it watches (``of``), the process that
streams it (``owner``: host, pid, nonce) and until when (``lease_until``, renewed every keeper
pass). Another process leaves a calendar alone while that lease runs and its owner lives; a
lease of a process that died on this host is taken over at once.

For the service's channel keeper (the registry's ``notify`` contract,
:mod:`calbridge.providers.registry`): :data:`SETTINGS_KEY`,
:func:`keep_channel`, :func:`retain` and :func:`remove_channel`.

Removing the calendar (:func:`unsubscribe_calendar`, through ``ops.calendars.unlink_calendar``)
unsubscribes: the process streaming it sees the subscription go and, the calendar being gone,
does not re-create it. Polling (every 15 minutes with a stream, as for Google and Graph) stays
the backstop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from calbridge.errors import CalbridgeError
from calbridge.store.db import Store
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox

log = logging.getLogger(__name__)

SETTINGS_KEY = "stream"
EVENT_TYPES = ("CreatedEvent", "ModifiedEvent", "MovedEvent", "CopiedEvent", "DeletedEvent")
STREAM_MINUTES = 30  # GetStreamingEvents' ConnectionTimeout: Exchange allows 1-30 minutes
LEASE = timedelta(minutes=10)
MAX_BACKOFF = 60.0

Connect = Callable[[], Any]  # -> an opened EwsConnection (providers.ews.http)


def _gone_errors() -> tuple[type[BaseException], ...]:
    from exchangelib import errors

    return (
        errors.ErrorSubscriptionNotFound,
        errors.ErrorExpiredSubscription,
        errors.ErrorInvalidSubscription,
        errors.ErrorSubscriptionUnsubsribed,
        # made by another account (the calendar's sign-in changed): a new one under this one
        errors.ErrorSubscriptionAccessDenied,
    )


def subscribe(conn: Any) -> str:
    """A new streaming subscription on the connection's calendar folder (one request)."""
    from exchangelib.services import SubscribeToStreaming

    def run() -> str:
        return str(
            SubscribeToStreaming(account=conn.account).get(
                folders=[conn.calendar], event_types=EVENT_TYPES
            )
        )

    result: str = conn.call("subscribing to the calendar's changes", run)
    return result


def unsubscribe(conn: Any, subscription_id: str) -> bool:
    """End a subscription; False when Exchange no longer knew it."""
    from exchangelib.services import Unsubscribe

    def run() -> bool:
        try:
            Unsubscribe(account=conn.account).get(subscription_id=subscription_id)
        except _gone_errors():
            return False
        return True

    done: bool = conn.call("ending the change subscription", run)
    return done


@dataclass
class CalendarStream:
    """One calendar's streaming subscription, read on its own daemon thread."""

    calendar_id: int
    name: str
    of: str
    connect: Connect
    on_change: Callable[[int], None]
    still_wanted: Callable[[int], bool]
    subscription_id: str | None = None
    minutes: int = STREAM_MINUTES
    sleep: Callable[[float], bool] | None = None  # stop-aware wait; default: the stop event
    notifications: int = 0
    reconnects: int = 0
    resubscribed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _service: Any = None
    _conn: Any = None

    def start(self) -> CalendarStream:
        self._thread = threading.Thread(
            target=self._run, name=f"ews-stream-{self.calendar_id}", daemon=True
        )
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, *, unsubscribe_too: bool = False) -> None:
        """End the stream (closing its open connection); optionally end the subscription."""
        self._stop.set()
        service = self._service
        if service is not None:
            try:
                service.stop_streaming()
            except Exception:  # the reading thread may be closing it at the same moment
                log.debug("stream already closed", extra={"calendar": self.name})
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        if unsubscribe_too and self.subscription_id and self._conn is not None:
            try:
                unsubscribe(self._conn, self.subscription_id)
            except CalbridgeError as exc:
                log.warning(
                    "subscription not ended", extra={"calendar": self.name, "error": str(exc)}
                )

    def _wait(self, seconds: float) -> bool:
        """Wait (or until stopped); True when stopped."""
        if self.sleep is not None:
            return self.sleep(seconds) or self._stop.is_set()
        return self._stop.wait(seconds)

    def _run(self) -> None:
        backoff = 1.0
        gone = _gone_errors()
        lost = False
        while not self._stop.is_set():
            try:
                if self._conn is None:
                    self._conn = self.connect()
                if self.subscription_id is None:
                    if not self.still_wanted(self.calendar_id):
                        return
                    self.subscription_id = subscribe(self._conn)
                    self.resubscribed += 1
                    log.info(
                        "exchange stream subscribed",
                        extra={"calendar": self.name, "subscription": self.subscription_id[:16]},
                    )
                    if lost:
                        lost = False
                        self._changed()  # events may have been lost while it was gone
                self._stream(self._conn, self.subscription_id)
                backoff = 1.0
                self.reconnects += 1  # the server closed it (connection timeout): go on
            except gone:
                if self._stop.is_set():
                    return
                log.info("exchange subscription gone", extra={"calendar": self.name})
                self.subscription_id = None
                lost = True
                if not self.still_wanted(self.calendar_id):
                    return
            except Exception as exc:  # a dropped connection, a 5xx, credentials: one line
                if self._stop.is_set():
                    return
                log.warning(
                    "exchange stream interrupted",
                    extra={"calendar": self.name, "error": _one_line(exc)},
                )
                self.reconnects += 1
                if self._wait(backoff):
                    return
                backoff = min(MAX_BACKOFF, backoff * 2)
                if not self.still_wanted(self.calendar_id):
                    return

    def _stream(self, conn: Any, subscription_id: str) -> None:
        from exchangelib.services import GetStreamingEvents

        service = GetStreamingEvents(account=conn.account)
        self._service = service
        try:
            with conn.counting():
                for notification in service.call(
                    subscription_ids=[subscription_id], connection_timeout=self.minutes
                ):
                    if self._stop.is_set():
                        return
                    kinds = {type(e).__name__ for e in notification.events or ()}
                    if kinds & set(EVENT_TYPES):
                        self.notifications += 1
                        self._changed()
        finally:
            self._service = None
            try:
                service.stop_streaming()
            except Exception:
                log.debug("stream already closed", extra={"calendar": self.name})

    def _changed(self) -> None:
        try:
            self.on_change(self.calendar_id)
        except Exception:  # the queue may be away for a moment: the poll is the backstop
            log.exception("could not enqueue a sync", extra={"calendar": self.name})


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def process_owner() -> str:
    """Who streams: this host and process, plus a nonce (a new keeper, a new owner)."""
    return f"{socket.gethostname()[:200]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_alive(owner: str) -> bool:
    """False only for an owner of this host whose process is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname()[:200] or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class StreamKeeper:
    """This process's streams, one per Exchange calendar it owns the lease of. Called by the
    channel keeper for each Exchange calendar, under that calendar's lock."""

    store: Store
    connect: Callable[[int], Any]  # calendar id -> opened EwsConnection
    on_change: Callable[[int], None]
    minutes: int = STREAM_MINUTES
    lease: timedelta = LEASE
    owner: str = field(default_factory=process_owner)
    streams: dict[int, CalendarStream] = field(default_factory=dict)

    def keep(
        self, calendar_id: int, name: str, settings: dict[str, Any], of: str, now: datetime
    ) -> str | None:
        """Open or keep the calendar's stream and renew its lease; "opened" when a stream
        started here, None otherwise. Raises the calendar's :class:`CalbridgeError` when it
        cannot subscribe (credentials, server away): the keeper retries later."""
        stored = settings.get(SETTINGS_KEY)
        info: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
        mine = self.streams.get(calendar_id)
        holder = str(info.get("owner") or "")
        until = _parse(info.get("lease_until"))
        if (
            holder
            and holder != self.owner
            and until is not None
            and until > now
            and _owner_alive(holder)
        ):
            if mine is not None:  # another process took it over: it streams, we stop
                self.streams.pop(calendar_id).stop()
            return None
        if mine is not None and (mine.of != of or not mine.running):
            self.streams.pop(calendar_id).stop(unsubscribe_too=mine.of != of)
            if mine.of != of:
                info.pop("subscription_id", None)
            mine = None
        opened = None
        if mine is None:
            reuse = info.get("subscription_id") if info.get("of", of) == of else None
            conn = self.connect(calendar_id)
            subscription_id = str(reuse) if reuse else subscribe(conn)
            mine = CalendarStream(
                calendar_id,
                name,
                of,
                connect=lambda: conn,
                on_change=self.on_change,
                still_wanted=self.wanted,
                subscription_id=subscription_id,
                minutes=self.minutes,
            )
            mine._conn = conn
            self.streams[calendar_id] = mine.start()
            opened = "opened"
        info.update(
            {
                "subscription_id": mine.subscription_id,
                "of": of,
                "owner": self.owner,
                "lease_until": (now + self.lease).isoformat(),
            }
        )
        self._store_info(calendar_id, info)
        return opened

    def retain(self, calendar_ids: set[int]) -> list[str]:
        """Stop the streams of calendars no longer to be watched (removed, paused, pushing
        only); their names."""
        stopped = []
        for calendar_id in [c for c in self.streams if c not in calendar_ids]:
            stream = self.streams.pop(calendar_id)
            stream.stop(unsubscribe_too=self.wanted(calendar_id) is False)
            stopped.append(stream.name)
        return stopped

    def wanted(self, calendar_id: int) -> bool:
        """The calendar still exists, pulls and is not paused."""
        with self.store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            return (
                calendar is not None
                and calendar.kind == "ews"
                and not calendar.paused
                and calendar.direction in ("both", "pull")
            )

    def close(self) -> None:
        """Stop every stream (the subscriptions stay, for the next process to pick up)."""
        for calendar_id in list(self.streams):
            self.streams.pop(calendar_id).stop()

    def _store_info(self, calendar_id: int, info: dict[str, Any]) -> None:
        with self.store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            if calendar is not None:
                calendar.settings = {**(calendar.settings or {}), SETTINGS_KEY: info}


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def unsubscribe_calendar(store: Store, box: SecretBox, name: str) -> bool:
    """End calendar ``name``'s streaming subscription (before it is removed) and forget it;
    False when it had none or Exchange no longer knew it."""
    from calbridge.sync.providers import open_provider

    with store.session() as session:
        calendar = session.scalar(select(Calendar).where(Calendar.name == name))
        if calendar is None:
            return False
        info = (calendar.settings or {}).get(SETTINGS_KEY)
        subscription_id = info.get("subscription_id") if isinstance(info, dict) else None
        if not subscription_id:
            return False
        provider: Any = open_provider(calendar, box)
    try:
        done = unsubscribe(provider.conn, str(subscription_id))
    finally:
        provider.close()
    with store.session() as session:
        calendar = session.scalar(select(Calendar).where(Calendar.name == name))
        if calendar is not None:
            settings = dict(calendar.settings or {})
            settings.pop(SETTINGS_KEY, None)
            calendar.settings = settings
    return done


# ------------------------------------------------------------------ the channel keeper's hooks


def _streams(keeper: Any) -> StreamKeeper:
    """This keeper's streams (one :class:`StreamKeeper` per channel keeper)."""
    found = keeper.state.get("ews")
    if found is None:

        def connect(calendar_id: int) -> Any:
            with keeper.store.session() as session:
                calendar = session.get(Calendar, calendar_id)
                if calendar is None:
                    raise CalbridgeError(f"calendar {calendar_id} was removed")
                provider: Any = keeper.open_provider(calendar)
            return provider.conn

        found = StreamKeeper(keeper.store, connect, keeper.on_change, minutes=keeper.stream_minutes)
        keeper.state["ews"] = found
    assert isinstance(found, StreamKeeper)
    return found


def keep_channel(
    keeper: Any, calendar_id: int, name: str, settings: dict[str, Any], of: str, now: datetime
) -> str | None:
    """Under the calendar's lock: start this process's stream of the calendar unless another
    process holds its lease ("opened"), renew the lease."""
    return _streams(keeper).keep(calendar_id, name, settings, of, now)


def retain(keeper: Any, calendar_ids: set[int]) -> list[str]:
    """Stop the streams of calendars no longer watched; their names."""
    found = keeper.state.get("ews")
    return found.retain(calendar_ids) if isinstance(found, StreamKeeper) else []


def remove_channel(store: Store, box: SecretBox, name: str) -> None:
    """Before the calendar is removed: end its subscription."""
    unsubscribe_calendar(store, box, name)
