"""The push endpoints Google and Microsoft call: ``POST /hooks/google``, ``POST /hooks/graph``
(and ``/hooks/graph/lifecycle``, the subscriptions' lifecycle URL).

Contract: a notification is *verified* here and *never synced here*: a genuine one enqueues
``jobs.sync_calendar(id, trigger="push")`` and the answer goes back at once (Graph wants 202
within 3 s and drops notifications for good when too many replies are slow; Google retries
slow or failing webhooks). What is answered:

- Google (headers only): ``X-Goog-Channel-ID`` names the calendar's channel, the channel token
  and resource id must match what we sealed when opening it. ``sync`` (channel opened) → 200,
  nothing enqueued; ``exists`` / ``not_exists`` → 200 and a sync; a channel no calendar uses
  (replaced by a renewal, left over) → 404, and the channel is stopped a little later when it
  still notifies about one of our calendars; a wrong token → 403, nothing runs.
- Graph: ``?validationToken=`` → the token as ``text/plain`` (the handshake, answered before
  anything else); a notification POST → each entry is checked against the calendar's secret
  ``clientState`` (:func:`calbridge.providers.graph.notify.verify_graph_notification`): genuine
  ones → 202 and one sync per calendar; lifecycle events: ``reauthorizationRequired`` → the
  subscription is renewed, ``subscriptionRemoved`` → re-created (then a sync: notifications
  may have been lost), ``missed`` → a full delta resync; a POST whose every entry is refused
  (forged, unknown subscription, malformed) → 403, nothing runs.

Notifications are rate-limited per calendar (:class:`Throttle`): the first one enqueues at
once; more within ``CALBRIDGE_PUSH_MIN_INTERVAL_SECONDS`` (5) are merged into one enqueue at
the end of the interval — a change is never dropped, a burst costs one queue write, and a
calendar notifying without pause syncs every 5 s instead of back to back (the syncs share the
process with these endpoints). What verifies a channel or subscription is cached for a
minute (:class:`KeyCache`), so the common path never leaves the event loop. Every POST is
counted in ``/metrics`` (received, refused by reason); every refused notification is one log
line (:mod:`calbridge.providers.google.notify` / ``calbridge.providers.graph.notify``).
Channel renewals and re-creations run after the answer (they call Google or Graph, and Graph's
re-creation calls us back).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from calbridge.config import load_settings
from calbridge.errors import CalbridgeError
from calbridge.providers.google.notify import (
    stop_stray_channel,
    verify_google_notification,
    watched_channel,
    watches_resource,
)
from calbridge.providers.graph.notify import (
    SubscribedCalendar,
    renew_subscription,
    subscribed_calendar,
    validation_response,
    verify_graph_notification,
)
from calbridge.providers.graph.subscriptions import Notification
from calbridge.store.db import Store
from calbridge.store.secrets import SecretBox

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

MAX_BODY = 1_000_000  # a Graph notification POST is a few KB


class Throttle:
    """At most one call per key every ``interval`` seconds; calls inside the interval are
    merged into one trailing call at its end (so the last change is never lost)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[int, float] = {}
        self._trailing: dict[int, threading.Timer] = {}

    def submit(self, key: int, call: Callable[[], None]) -> bool:
        """Run ``call`` now (True) or once at the end of the key's interval (False)."""
        if not self.admit(key, call):
            return False
        call()
        return True

    def admit(self, key: int, later: Callable[[], None]) -> bool:
        """True: the caller makes the call now (the interval starts). False: the call is
        merged into one ``later()`` at the end of the key's interval (scheduled here)."""
        with self._lock:
            now = self.clock()
            last = self._last.get(key)
            if last is None or now - last >= self.interval:
                self._last[key] = now
                return True
            if key not in self._trailing:
                timer = threading.Timer(self.interval - (now - last), self._fire, (key, later))
                timer.daemon = True
                self._trailing[key] = timer
                timer.start()
            return False

    def _fire(self, key: int, call: Callable[[], None]) -> None:
        with self._lock:
            self._trailing.pop(key, None)
            self._last[key] = self.clock()
        try:
            call()
        except Exception:  # a queue hiccup must not kill the timer thread silently
            log.exception("delayed push enqueue failed", extra={"calendar_id": key})

    def close(self) -> None:
        with self._lock:
            for timer in self._trailing.values():
                timer.cancel()
            self._trailing.clear()


class KeyCache:
    """A short-lived cache of what verifies a channel or subscription (its calendar and
    secret), so a burst of notifications costs no database reads or decryptions. Safe because
    those values never change under one id (renewals and re-creations get new ids); a removed
    calendar's entry lives at most ``ttl`` seconds (its sync is then skipped as removed).
    Misses (unknown ids) are not cached: a channel stored a moment ago is found at once."""

    def __init__(self, ttl: float = 60.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Any]] = {}

    def peek(self, key: str) -> Any:
        """The cached value, or None (absent or expired)."""
        with self._lock:
            hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    async def fetch(self, key: str, load: Callable[[str], Any]) -> Any:
        """:meth:`get` for the event loop: a hit costs no thread; a miss loads in one."""
        hit = self.peek(key)
        if hit is not None:
            return hit
        return await run_in_threadpool(self.get, key, load)

    def get(self, key: str, load: Callable[[str], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load(key)
        if value is not None:
            with self._lock:
                if len(self._entries) >= self.size:
                    self._entries.clear()
                self._entries[key] = (now + self.ttl, value)
        return value


# ------------------------------------------------------------------ shared plumbing


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _box(request: Request) -> SecretBox:
    """The secret box the service seals calendars' secrets with (opened once per app)."""
    state = request.app.state
    box = getattr(state, "box", None)
    if box is None:
        box = SecretBox.from_settings(load_settings())
        state.box = box
    assert isinstance(box, SecretBox)
    return box


def _throttle(request: Request) -> Throttle:
    state = request.app.state
    throttle = getattr(state, "push_throttle", None)
    if throttle is None:
        from calbridge.service.channels import PushSettings

        throttle = Throttle(PushSettings().min_interval_seconds)
        state.push_throttle = throttle
    assert isinstance(throttle, Throttle)
    return throttle


def _cache(request: Request, name: str) -> KeyCache:
    state = request.app.state
    cache = getattr(state, name, None)
    if cache is None:
        cache = KeyCache()
        setattr(state, name, cache)
    assert isinstance(cache, KeyCache)
    return cache


def _count(request: Request, provider: str, refused: str | None = None) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return
    metrics.notification_received(provider)
    if refused is not None:
        metrics.notification_refused(provider, refused)


async def _enqueue_push(request: Request, calendar_id: int) -> None:
    """Enqueue a push-triggered sync, throttled: most notifications of a burst are merged
    without leaving the event loop; the enqueue itself (a database write on PostgreSQL) runs
    in a thread."""
    jobs = request.app.state.jobs

    def enqueue() -> None:
        jobs.sync_calendar(calendar_id, trigger="push")

    if _throttle(request).admit(calendar_id, enqueue):
        await run_in_threadpool(enqueue)


# ------------------------------------------------------------------ Google


@router.post("/google")
async def google_notification(request: Request, background: BackgroundTasks) -> Response:
    headers = dict(request.headers)
    store, box, cache = _store(request), _box(request), _cache(request, "google_channels")
    channel_id = headers.get("x-goog-channel-id")
    if channel_id:  # warm the cache (a miss reads the store in a thread)
        await cache.fetch(channel_id, lambda key: watched_channel(store, box, key))
    verdict = verify_google_notification(store, box, headers, lookup=cache.peek)
    if not verdict.accepted:
        if not verdict.known_channel:
            _count(request, "google", "unknown_channel")
            if headers.get("x-goog-resource-state") != "sync":
                background.add_task(_stop_later, request, headers)
            return JSONResponse({"detail": "unknown channel"}, status_code=404)
        _count(request, "google", "forged")
        return JSONResponse({"detail": "notification refused"}, status_code=403)
    _count(request, "google")
    if verdict.state in ("exists", "not_exists") and verdict.calendar_id is not None:
        await _enqueue_push(request, verdict.calendar_id)
    return Response(status_code=200)


MAX_STRAYS = 100  # channels waiting to be stopped at once: a flood of forged ids stays cheap


def _stop_later(request: Request, headers: dict[str, str]) -> None:
    """Stop a channel no calendar uses that notifies about one of our calendars (replaced,
    left over) — a little later, unless it turns out to be a brand-new one of ours (a channel
    notifies before we have stored it). Channels naming none of our calendars are ignored."""
    store, box = _store(request), _box(request)
    channel_id = headers.get("x-goog-channel-id", "")
    resource_id = headers.get("x-goog-resource-id", "")
    state = request.app.state
    if getattr(state, "stray_channels", None) is None:
        state.stray_channels = set()
    strays: set[str] = state.stray_channels
    if not resource_id or channel_id in strays or len(strays) >= MAX_STRAYS:
        return
    if not watches_resource(store, resource_id):
        return
    strays.add(channel_id)

    def stop() -> None:
        try:
            if verify_google_notification(store, box, headers).known_channel:
                return  # it was ours after all (stored after its first notification)
            if stop_stray_channel(store, box, channel_id, resource_id):
                log.info("stray channel stopped", extra={"channel": channel_id[:80]})
        except CalbridgeError as exc:
            log.warning("stray channel not stopped", extra={"error": str(exc)})
        finally:
            strays.discard(channel_id)

    from calbridge.service.channels import PushSettings

    timer = threading.Timer(PushSettings().stray_stop_seconds, stop)
    timer.daemon = True
    timer.start()


# ------------------------------------------------------------------ Microsoft Graph


@router.post("/graph")
@router.post("/graph/lifecycle")
async def graph_notification(request: Request, background: BackgroundTasks) -> Response:
    answer = validation_response(dict(request.query_params))
    if answer is not None:  # the handshake: echo the token as plain text, nothing else
        return PlainTextResponse(answer.body, status_code=answer.status)
    raw = await request.body()
    try:
        payload: Any = json.loads(raw) if len(raw) <= MAX_BODY else None
    except ValueError:
        payload = None
    store, box, cache = _store(request), _box(request), _cache(request, "graph_subscriptions")
    for subscription_id in _subscription_ids(payload):  # warm the cache (misses: a thread)
        await cache.fetch(subscription_id, lambda key: subscribed_calendar(store, box, key))

    def lookup(subscription_id: str) -> SubscribedCalendar | None:
        found = cache.peek(subscription_id)
        return found if isinstance(found, SubscribedCalendar) else None

    verdict = verify_graph_notification(store, box, payload, lookup=lookup)
    if not verdict.notes:
        _count(request, "graph", "forged" if payload is not None else "malformed")
        return JSONResponse({"detail": "notification refused"}, status_code=403)
    _count(request, "graph")
    jobs = request.app.state.jobs
    for calendar_id, notes in verdict.notes.items():
        lifecycle = {n.lifecycle_event for n in notes if n.lifecycle_event}
        if "subscriptionRemoved" in lifecycle or "reauthorizationRequired" in lifecycle:
            recreate = "subscriptionRemoved" in lifecycle
            background.add_task(_renew, request, calendar_id, recreate)
        if "missed" in lifecycle:
            await run_in_threadpool(jobs.sync_calendar, calendar_id, trigger="resync", full=True)
        elif _changes(notes):
            await _enqueue_push(request, calendar_id)
    return Response(status_code=202)


def _subscription_ids(payload: Any) -> set[str]:
    entries = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        return set()
    found = {str(e.get("subscriptionId") or "") for e in entries[:100] if isinstance(e, dict)}
    return {sid for sid in found if sid}


def _changes(notes: list[Notification]) -> bool:
    return any(n.lifecycle_event is None for n in notes)


def _renew(request: Request, calendar_id: int, recreate: bool) -> None:
    """After the answer: renew (or re-create) the subscription, then catch up with a sync
    when it was re-created (notifications may have been lost meanwhile)."""
    from calbridge.service.channels import PushSettings

    lifetime = timedelta(seconds=PushSettings().graph_lifetime_seconds)
    try:
        done = renew_subscription(
            _store(request), _box(request), calendar_id, recreate=recreate, lifetime=lifetime
        )
    except CalbridgeError as exc:
        log.warning(
            "subscription renewal failed", extra={"calendar_id": calendar_id, "error": str(exc)}
        )
        return
    log.info(
        "subscription %s",
        "re-created" if recreate else "renewed",
        extra={"calendar_id": calendar_id, "done": done},
    )
    if done and recreate:
        request.app.state.jobs.sync_calendar(calendar_id, trigger="push")
