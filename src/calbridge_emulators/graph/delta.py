"""calendarView expansion, the calendarView ``delta`` function and its state tokens.

Emulated behaviour (Graph v1.0 ``GET /users/{id}/calendarView/delta``):

* The initial request needs ``startDateTime``/``endDateTime`` (400 ``ErrorInvalidParameter``
  otherwise); they are encoded in the state tokens, so later requests only replay the
  ``@odata.nextLink`` (``$skiptoken``) or ``@odata.deltaLink`` (``$deltatoken``) URL.
* Pages honour ``Prefer: odata.maxpagesize=N`` (default 10 here, max 1000), echoed in
  ``Preference-Applied`` together with ``odata.track-changes``.
* Items are instances: ``singleInstance``, ``occurrence`` and ``exception`` (never the
  ``seriesMaster``), each with ``@odata.type``.  Removed instances and events that changed but
  now lie outside the window are returned as ``{"@odata.type", "id", "@removed":
  {"reason": "deleted"}}`` as documented.
* Like Graph, the server keeps per-round sync state: a ``$skiptoken`` names a server-side
  round (replaying the same nextLink returns the same page; an unknown/evicted one answers 410
  ``SyncStateNotFound``).  A ``$deltatoken`` is self-contained (calendar, window, change
  sequence, generation) and HMAC-signed, so it survives restarts with persistence.  Invalidated
  tokens answer 410 ``SyncStateNotFound`` with Graph's message format.

Incremental rounds read only the calendar's change log after the token's sequence number; the
full round materialises the window once (O(n log n)) and pages are slices of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import recurrence as rec
from .store import Calendar, Item
from .util import GraphError, b64url, b64url_decode

InstanceRef = tuple[str, str | None]  # (item id, occurrence key or None)
Entry = tuple[datetime, str, InstanceRef]  # (start, event id, ref)


def _overlaps(start: datetime, end: datetime, lo: datetime, hi: datetime) -> bool:
    return start < hi and (end > lo or (start == end and start >= lo))


def item_instances(item: Item, lo: datetime, hi: datetime) -> list[Entry]:
    """Instances of one stored item overlapping [lo, hi)."""
    if item.recurrence is None:
        if _overlaps(item.start, item.end, lo, hi):
            return [(item.start, item.id, (item.id, None))]
        return []
    out: list[Entry] = []
    for start in rec.occurrence_starts(item, lo, hi):
        key = rec.occ_key(start)
        if key not in item.exceptions:
            out.append((start, rec.occurrence_id(item.id, key), (item.id, key)))
    cancelled = set(item.cancelled)
    for key, exc in item.exceptions.items():
        if key not in cancelled and _overlaps(exc.start, exc.end, lo, hi):
            out.append((exc.start, rec.occurrence_id(item.id, key), (item.id, key)))
    return out


class ViewCache:
    """Sorted instance lists per (calendar, change seq, window) so $skip paging is O(page)."""

    def __init__(self, size: int = 16) -> None:
        self._data: OrderedDict[tuple[Any, ...], list[Entry]] = OrderedDict()
        self._size = size

    def instances(self, cal: Calendar, lo: datetime, hi: datetime) -> list[Entry]:
        key = (cal.id, cal.seq, cal.generation, lo, hi)
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
            return hit
        out: list[Entry] = []
        for item in cal.items.values():
            out.extend(item_instances(item, lo, hi))
        out.sort(key=lambda e: (e[0], e[1]))
        self._data[key] = out
        if len(self._data) > self._size:
            self._data.popitem(last=False)
        return out


@dataclass
class Round:
    id: str
    user_id: str
    calendar_id: str
    lo: datetime
    hi: datetime
    generation: int
    final_seq: int
    entries: list[tuple[str, str, InstanceRef | None]] = field(default_factory=list)


def sync_state_not_found(generation: int, highest: int) -> GraphError:
    return GraphError(
        410,
        "SyncStateNotFound",
        f"The sync state generation is not found; generation={generation};"
        f"[highest={highest}][{highest}].",
    )


class DeltaManager:
    """Server-side delta rounds plus signing of state tokens."""

    MAX_ROUNDS = 4000

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._rounds: OrderedDict[str, Round] = OrderedDict()
        self._lock = threading.Lock()

    # tokens ---------------------------------------------------------------
    def _sign(self, payload: str) -> str:
        return b64url(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def _seal(self, data: dict[str, Any]) -> str:
        payload = b64url(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def _open(self, token: str) -> dict[str, Any] | None:
        payload, _, sig = token.partition(".")
        if not sig or not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            data = json.loads(b64url_decode(payload))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def delta_token(self, rnd: Round) -> str:
        return self._seal(
            {
                "u": rnd.user_id,
                "c": rnd.calendar_id,
                "s": rnd.lo.isoformat(),
                "e": rnd.hi.isoformat(),
                "q": rnd.final_seq,
                "g": rnd.generation,
            }
        )

    def open_delta_token(self, token: str) -> dict[str, Any]:
        data = self._open(token)
        if data is None:
            raise sync_state_not_found(0, 0)
        return data

    def skip_token(self, rnd: Round, offset: int) -> str:
        return self._seal({"r": rnd.id, "o": offset})

    def open_skip_token(self, token: str) -> tuple[Round, int]:
        data = self._open(token)
        rnd = self._rounds.get(str(data.get("r"))) if data else None
        if data is None or rnd is None:
            raise sync_state_not_found(0, 0)
        return rnd, int(data["o"])

    # rounds ---------------------------------------------------------------
    def new_round(
        self, user_id: str, cal: Calendar, lo: datetime, hi: datetime, since: int | None
    ) -> Round:
        rnd = Round(
            id=b64url(os.urandom(12)),
            user_id=user_id,
            calendar_id=cal.id,
            lo=lo,
            hi=hi,
            generation=cal.generation,
            final_seq=cal.seq,
        )
        if since is None:
            inst: list[Entry] = []
            for item in cal.items.values():
                inst.extend(item_instances(item, lo, hi))
            inst.sort(key=lambda e: (e[0], e[1]))
            rnd.entries = [("inst", eid, ref) for _, eid, ref in inst]
        else:
            rnd.entries = self._incremental(cal, lo, hi, since)
        with self._lock:
            self._rounds[rnd.id] = rnd
            while len(self._rounds) > self.MAX_ROUNDS:
                self._rounds.popitem(last=False)
        return rnd

    @staticmethod
    def _incremental(
        cal: Calendar, lo: datetime, hi: datetime, since: int
    ) -> list[tuple[str, str, InstanceRef | None]]:
        entries: list[tuple[str, str, InstanceRef | None]] = []
        for item_id in cal.changed_since(since):
            current = cal.items.get(item_id)
            old = cal.state_at(item_id, since)
            new = item_instances(current, lo, hi) if current else []
            new_ids = {eid for _, eid, _ in new}
            gone = {eid for _, eid, _ in item_instances(old, lo, hi)} - new_ids if old else set()
            if current is not None and current.recurrence is None and not new:
                gone.add(current.id)  # changed but outside the window -> @removed
            if current is None and (old is None or old.recurrence is None):
                gone.add(item_id)
            entries.extend(("inst", eid, ref) for _, eid, ref in sorted(new))
            entries.extend(("removed", eid, None) for eid in sorted(gone))
        return entries

    def invalidate(self, calendar_ids: set[str] | None = None) -> None:
        with self._lock:
            for rid in list(self._rounds):
                if calendar_ids is None or self._rounds[rid].calendar_id in calendar_ids:
                    del self._rounds[rid]
