"""``events.list`` / ``events.instances``: filters, paging and incremental sync.

Emulated documented behaviour:

* ``maxResults`` default 250, capped at 2500; ``nextPageToken`` while more results exist,
  ``nextSyncToken`` on the last page only;
* ``syncToken`` returns only entries changed since the token was issued, deleted ones always
  included; it cannot be combined with ``iCalUID``, ``orderBy``, ``privateExtendedProperty``,
  ``q``, ``sharedExtendedProperty``, ``timeMin``, ``timeMax`` or ``updatedMin`` (400); an
  invalid, foreign or expired token is 410 ``fullSyncRequired``;
* ``showDeleted``: cancelled events are listed only with it (or with ``syncToken`` /
  ``updatedMin``); cancelled exceptions of a live series are listed when ``showDeleted`` and
  ``singleEvents`` are both false; deleted series masters never appear with ``singleEvents``;
* ``singleEvents=true`` expands series into instances (masters are not returned);
  ``orderBy=startTime`` needs ``singleEvents=true``; ``orderBy=updated`` orders by change;
* ``timeMin`` (exclusive bound on end) / ``timeMax`` (exclusive bound on start), ``updatedMin``,
  ``iCalUID``, ``privateExtendedProperty`` / ``sharedExtendedProperty`` (``key=value``, all must
  match), ``q`` (case-insensitive substring of summary/description/location/attendees).

Scale: the sync token encodes the global change sequence; an incremental list bisects into the
calendar's change log.  Page tokens carry the last returned sort key (not an offset), so pages
stay consistent while the calendar changes and each page costs O(page) for plain listings.
Expanded (``singleEvents``) timelines are materialised once per calendar version and cached.

Deliberate simplification: list items that are cancelled are rendered minimal (``id``,
``status``, ``etag``, plus ``recurringEventId``/``originalStartTime`` for instances) unless
``showDeleted=true`` - the documented guarantee ("only the id field is guaranteed").
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .errors import invalid, not_found
from .model import Calendar, StoredEvent
from .params import (
    ListParams,
    Query,
    decode_page_token,
    decode_sync_token,
    encode_page_token,
    encode_sync_token,
    one_value,
    parse_bool,
    parse_max_results,
    parse_time,
)
from .recurrence import EXPANSION_LIMIT, instance_id
from .resources import Target, VirtualInstance, duration_of, make_etag, render_target
from .store import Store
from .timeutil import format_rfc3339_ms, is_valid_zone

# -- candidate streams -------------------------------------------------------------------------
Key = tuple[Any, ...]


def _timeline(cal: Calendar, p: ListParams) -> tuple[list[Key], list[Target]]:
    """All singles, exceptions and expanded instances overlapping the window, by start."""
    tmin, tmax = p.time_min, p.time_max
    cache_key = (tmin, tmax)
    cached = cal.expansion_cache.get(cache_key)
    if cached is not None:
        keys, items = cached
        return keys, items
    entries: list[tuple[Key, Target]] = []
    lo = tmin.timestamp() if tmin else None
    hi = tmax.timestamp() if tmax else None
    for ev in cal.events.values():
        if ev.recurring:
            for orig in ev.recurrence().iter_starts(
                after=tmin,
                before=tmax,
                duration=duration_of(ev),
                calendar_tz=cal.time_zone,
                limit=EXPANSION_LIMIT,
            ):
                iid = instance_id(ev.id, orig)
                if iid not in cal.events:
                    entries.append(
                        ((orig.timestamp(cal.time_zone), iid), VirtualInstance(ev, orig))
                    )
        elif (lo is None or ev.end_ts > lo or ev.end_ts == ev.start_ts > lo) and (
            hi is None or ev.start_ts < hi
        ):
            entries.append(((ev.start_ts, ev.id), ev))
    entries.sort(key=lambda e: e[0])
    keys = [e[0] for e in entries]
    items = [e[1] for e in entries]
    if len(cal.expansion_cache) > 8:
        cal.expansion_cache.clear()
    cal.expansion_cache[cache_key] = (keys, items)
    return keys, items


def _expand_changed(cal: Calendar, ev: StoredEvent) -> list[tuple[Key, Target]]:
    """A changed event as it appears with ``singleEvents=true`` (a master -> its instances)."""
    if not ev.recurring:
        return [((ev.seq, ev.start_ts, ev.id), ev)]
    out: list[tuple[Key, Target]] = []
    for orig in ev.recurrence().iter_starts(calendar_tz=cal.time_zone, limit=EXPANSION_LIMIT):
        iid = instance_id(ev.id, orig)
        target: Target = cal.events.get(iid) or VirtualInstance(ev, orig)
        out.append(((ev.seq, orig.timestamp(cal.time_zone), iid), target))
    return out


def _stream(
    cal: Calendar, p: ListParams, mode: str, base: int, last: Key | None
) -> Iterator[tuple[Key, Target]]:
    if mode == "order":
        start = bisect.bisect_right(cal.order_seqs, last[0]) if last else 0
        for i in range(start, len(cal.order_ids)):
            ev = cal.events[cal.order_ids[i]]
            yield (cal.order_seqs[i],), ev
    elif mode == "timeline":
        keys, items = _timeline(cal, p)
        start = bisect.bisect_right(keys, tuple(last)) if last else 0
        for i in range(start, len(keys)):
            yield keys[i], items[i]
    else:  # "log": change order, optionally expanded
        since = max(base, last[0] - 1) if last else base
        for ev in cal.changed_since(since):
            pairs = _expand_changed(cal, ev) if p.single_events else [((ev.seq, 0.0, ev.id), ev)]
            for key, target in pairs:
                if last is None or key > tuple(last):
                    yield key, target


# -- filtering ---------------------------------------------------------------------------------
def _source(target: Target) -> StoredEvent:
    return target.master if isinstance(target, VirtualInstance) else target


def _include(cal: Calendar, target: Target, p: ListParams, incremental: bool) -> bool:
    src = _source(target)
    master = cal.events.get(src.master_id) if src.master_id else None
    cancelled = src.cancelled
    series_gone = master is not None and master.cancelled
    if not incremental and not p.show_deleted and p.updated_min is None:
        if p.single_events or src.master_id is None or isinstance(target, VirtualInstance):
            if cancelled or series_gone:
                return False
        elif series_gone:
            return False
    if p.single_events and src.recurring and not isinstance(target, VirtualInstance):
        return False
    if not p.single_events and not incremental and (p.time_min or p.time_max):
        if src.recurring:
            it = src.recurrence().iter_starts(
                after=p.time_min,
                before=p.time_max,
                duration=duration_of(src),
                calendar_tz=cal.time_zone,
                limit=1,
            )
            if next(it, None) is None:
                return False
        else:
            lo = p.time_min.timestamp() if p.time_min else None
            if lo is not None and not (src.end_ts > lo or src.end_ts == src.start_ts > lo):
                return False
            if p.time_max is not None and not src.start_ts < p.time_max.timestamp():
                return False
    data = src.data
    if p.updated_min is not None and data.get("updated", "") < format_rfc3339_ms(p.updated_min):
        return False
    if p.ical_uid is not None and data.get("iCalUID") != p.ical_uid:
        return False
    ext = data.get("extendedProperties") or {}
    for key, value in p.private_props:
        if (ext.get("private") or {}).get(key) != value:
            return False
    for key, value in p.shared_props:
        if (ext.get("shared") or {}).get(key) != value:
            return False
    if p.q:
        hay = " ".join(
            [str(data.get(k, "")) for k in ("summary", "description", "location")]
            + [str(a.get("email", "")) for a in data.get("attendees", []) if isinstance(a, dict)]
        ).lower()
        if not all(word in hay for word in p.q.lower().split()):
            return False
    return True


# -- public entry points -----------------------------------------------------------------------
def envelope(cal: Calendar, role: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": make_etag(cal.last_seq),
        "summary": cal.summary,
        "updated": format_rfc3339_ms(datetime.fromtimestamp(cal.updated, tz=UTC)),
        "timeZone": cal.time_zone,
        "accessRole": role,
        "defaultReminders": [],
        "items": items,
    }
    if cal.description:
        out["description"] = cal.description
    return out


def list_events(store: Store, cal: Calendar, role: str, query: Query) -> dict[str, Any]:
    p = ListParams.parse(query)
    tz = p.time_zone or cal.time_zone
    incremental = p.sync_token is not None
    base = decode_sync_token(store, cal, p.sync_token) if p.sync_token is not None else 0
    token: dict[str, Any] = {}
    if p.page_token:
        token = decode_page_token(p.page_token)
        snapshot, last = int(token["s"]), token["k"]
        base = int(token.get("b", base))
        incremental = incremental or bool(token.get("i"))
    else:
        snapshot, last = store.seq, None
    if incremental or p.order_by == "updated":
        mode = "log"
    elif p.single_events:
        mode = "timeline"
    else:
        mode = "order"
    if token and token.get("m", mode) != mode:
        raise invalid("The page token does not match this query.", location="pageToken")
    minimal = not p.show_deleted
    items: list[dict[str, Any]] = []
    last_key: Key | None = None
    more = False
    for key, target in _stream(cal, p, mode, base, last):
        if not _include(cal, target, p, incremental):
            continue
        if len(items) >= p.max_results:
            more = True
            break
        items.append(render_target(cal, target, tz, minimal=minimal))
        last_key = key
    out = envelope(cal, role, items)
    if more:
        payload = {
            "k": list(last_key or ()),
            "s": snapshot,
            "b": base,
            "i": int(incremental),
            "m": mode,
        }
        out["nextPageToken"] = encode_page_token(payload)
    else:
        out["nextSyncToken"] = encode_sync_token(cal, snapshot)
    return out


def list_instances(
    store: Store, cal: Calendar, role: str, master_id: str, query: Query
) -> dict[str, Any]:
    p = ListParams(
        max_results=parse_max_results(query),
        page_token=one_value(query, "pageToken"),
        show_deleted=parse_bool(query, "showDeleted"),
        time_min=parse_time(query, "timeMin"),
        time_max=parse_time(query, "timeMax"),
        time_zone=one_value(query, "timeZone"),
    )
    if p.time_zone is not None and not is_valid_zone(p.time_zone):
        raise invalid("Invalid time zone definition.", location="timeZone")
    original_start = parse_time(query, "originalStart")
    master = cal.events.get(master_id)
    if master is None or master.master_id is not None:
        raise not_found()
    tz = p.time_zone or cal.time_zone
    last = decode_page_token(p.page_token)["k"][0] if p.page_token else None
    items: list[dict[str, Any]] = []
    more = False
    last_ts = 0.0
    if master.recurring:
        for orig in master.recurrence().iter_starts(
            after=p.time_min,
            before=p.time_max,
            duration=duration_of(master),
            calendar_tz=cal.time_zone,
        ):
            ts = orig.timestamp(cal.time_zone)
            if last is not None and ts <= last:
                continue
            if original_start is not None and ts != original_start.timestamp():
                continue
            iid = instance_id(master.id, orig)
            target: Target = cal.events.get(iid) or VirtualInstance(master, orig)
            if not p.show_deleted and (_source(target).cancelled or master.cancelled):
                continue
            if len(items) >= p.max_results:
                more = True
                break
            items.append(render_target(cal, target, tz, minimal=not p.show_deleted))
            last_ts = ts
    out = envelope(cal, role, items)
    if more:
        out["nextPageToken"] = encode_page_token({"k": [last_ts], "s": store.seq})
    return out
