"""Push notifications: ``events.watch`` channels, delivery, ``channels.stop`` and expiry.

Emulated documented behaviour ("Push notifications" guide):

* ``events.watch`` takes a ``Channel`` (``id`` - at most 64 characters, unique; ``type``
  ``web_hook``/``webhook``; ``address``; optional ``token``, ``expiration`` in ms, ``params.ttl``)
  and answers a channel with ``kind: api#channel``, ``resourceId`` (opaque, stable per watched
  resource), ``resourceUri`` and ``expiration`` (ms since epoch, as an int64 string);
* right after creation a ``sync`` message is POSTed to ``address``, then an ``exists`` message
  per change of the watched calendar's events (``not_exists`` when the calendar is deleted).
  Headers: ``X-Goog-Channel-ID``, ``X-Goog-Channel-Token`` (when set),
  ``X-Goog-Channel-Expiration`` (RFC 1123 date), ``X-Goog-Resource-ID``, ``X-Goog-Resource-URI``,
  ``X-Goog-Resource-State`` and ``X-Goog-Message-Number`` (1 for ``sync``, then increasing);
  the body is empty;
* ``channels.stop`` with the channel's ``id`` and ``resourceId`` stops it (unknown -> 404);
  channels stop by themselves at ``expiration``.

Deliberate simplifications: ``address`` may be plain ``http://`` (Google requires HTTPS with a
valid certificate); delivery is one attempt per message, in order, from one background thread;
there is no coalescing of bursts.  Default lifetime 7 days, capped at 30 days.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import threading
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

import httpx

from .errors import ApiError, invalid, not_found, required
from .model import Calendar, Channel
from .store import Store

DEFAULT_TTL = 7 * 24 * 3600
MAX_TTL = 30 * 24 * 3600


def resource_id_for(calendar_id: str) -> str:
    digest = hashlib.sha1(f"events:{calendar_id}".encode()).digest()[:15]
    return base64.urlsafe_b64encode(digest).decode()


def channel_json(ch: Channel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "api#channel",
        "id": ch.id,
        "resourceId": ch.resource_id,
        "resourceUri": ch.resource_uri,
        "expiration": str(ch.expiration_ms),
    }
    if ch.token is not None:
        out["token"] = ch.token
    return out


class Notifier:
    """Owns delivery of notifications; channels themselves live in :attr:`Store.channels`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.deliveries: list[dict[str, Any]] = []
        self._queue: queue.Queue[tuple[str, str, int] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    def start(self) -> None:
        if self._thread is None:
            self._client = httpx.Client(timeout=5.0, trust_env=False)
            self._thread = threading.Thread(
                target=self._run, name="gcal-emulator-notify", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued message was attempted (for deterministic tests)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    # -- API operations (called with the store lock held) ----------------------------------
    def create_channel(
        self, principal: str, cal: Calendar, requested_calendar_id: str, body: Any, root: str
    ) -> Channel:
        if not isinstance(body, dict):
            raise ApiError(400, "parseError", "Parse Error")
        cid = body.get("id")
        if not cid or not isinstance(cid, str):
            raise required("Required channel id.")
        if len(cid) > 64:
            raise invalid("Channel id must be at most 64 characters.")
        existing = self.store.channels.get(cid)
        if existing is not None and not existing.stopped:
            raise ApiError(400, "channelIdNotUnique", "Channel id not unique")
        if body.get("type") not in ("web_hook", "webhook"):
            raise invalid(f"Unknown channel type: {body.get('type')}")
        address = body.get("address")
        if not isinstance(address, str) or not address.startswith(("http://", "https://")):
            raise invalid("Invalid address.")
        now_ms = int(self.store.clock.time() * 1000)
        params = body.get("params") if isinstance(body.get("params"), dict) else None
        ttl_ms = DEFAULT_TTL * 1000
        if params and str(params.get("ttl", "")).isdigit():
            ttl_ms = int(params["ttl"]) * 1000
        expiration = now_ms + ttl_ms
        if body.get("expiration") is not None:
            try:
                expiration = int(body["expiration"])
            except (TypeError, ValueError) as exc:
                raise invalid("Invalid value for: expiration") from exc
        expiration = min(expiration, now_ms + MAX_TTL * 1000)
        token = body.get("token")
        ch = Channel(
            id=cid,
            resource_id=resource_id_for(cal.id),
            resource_uri=f"{root}calendars/{quote(requested_calendar_id, safe='@')}/events"
            "?alt=json",
            calendar_id=cal.id,
            address=address,
            expiration_ms=expiration,
            principal=principal,
            token=str(token) if token is not None else None,
            params={str(k): str(v) for k, v in params.items()} if params else None,
        )
        self.store.channels[cid] = ch
        self.store.dirty = True
        self._enqueue(ch, "sync")
        return ch

    def stop_channel(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, "parseError", "Parse Error")
        ch = self.store.channels.get(str(body.get("id")))
        if ch is None or ch.stopped or ch.resource_id != body.get("resourceId"):
            raise not_found(f"Channel '{body.get('id')}' not found for project '0'")
        ch.stopped = True
        self.store.dirty = True

    def on_change(self, calendar_id: str) -> None:
        state = "exists" if calendar_id in self.store.calendars else "not_exists"
        for ch in self.store.channels.values():
            if ch.calendar_id == calendar_id and not ch.stopped:
                self._enqueue(ch, state)

    def _enqueue(self, ch: Channel, state: str) -> None:
        if self.store.clock.time() * 1000 >= ch.expiration_ms:
            ch.stopped = True
            return
        ch.message_number += 1
        self._queue.put((ch.id, state, ch.message_number))

    # -- delivery --------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, channel_id: str, state: str, number: int) -> None:
        with self.store.lock:
            ch = self.store.channels.get(channel_id)
            if ch is None or ch.stopped:
                return
            if self.store.clock.time() * 1000 >= ch.expiration_ms:
                ch.stopped = True
                return
            headers = {
                "X-Goog-Channel-ID": ch.id,
                "X-Goog-Channel-Expiration": formatdate(ch.expiration_ms / 1000, usegmt=True),
                "X-Goog-Resource-ID": ch.resource_id,
                "X-Goog-Resource-URI": ch.resource_uri,
                "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": str(number),
                "Content-Length": "0",
            }
            if ch.token is not None:
                headers["X-Goog-Channel-Token"] = ch.token
            address = ch.address
        record: dict[str, Any] = {"channel_id": channel_id, "state": state, "number": number}
        try:
            assert self._client is not None
            response = self._client.post(address, headers=headers, content=b"")
            record["status"] = response.status_code
        except httpx.HTTPError as exc:
            record["error"] = repr(exc)
        self.deliveries.append(record)
