"""``events.list`` query parameters, sync tokens and page tokens.

* ``maxResults`` default 250, capped at 2500 (below 1 is a 400);
* ``syncToken`` cannot be combined with ``iCalUID``, ``orderBy``, ``privateExtendedProperty``,
  ``q``, ``sharedExtendedProperty``, ``timeMin``, ``timeMax`` or ``updatedMin`` (400);
* a sync token encodes the calendar, its sync epoch and the global change sequence; an invalid,
  foreign or expired token (see ``expire_sync_tokens``) is 410 ``fullSyncRequired``;
* page tokens carry the last returned sort key, the snapshot sequence (the future
  ``nextSyncToken``) and the listing mode, so a page token alone resumes its query.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import ApiError, full_sync_required, invalid
from .model import Calendar
from .store import Store
from .timeutil import is_valid_zone, parse_rfc3339

MAX_PAGE = 2500
DEFAULT_PAGE = 250
SYNC_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
Query = dict[str, list[str]]


def one_value(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def parse_bool(query: Query, name: str) -> bool:
    raw = one_value(query, name)
    if raw is None:
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise invalid(f"Invalid boolean value: '{raw}'", location=name)


def parse_time(query: Query, name: str) -> datetime | None:
    raw = one_value(query, name)
    if raw is None:
        return None
    try:
        return parse_rfc3339(raw)
    except ValueError as exc:
        raise ApiError(400, "badRequest", "Bad Request") from exc


def parse_max_results(query: Query) -> int:
    raw = one_value(query, "maxResults")
    if raw is None:
        return DEFAULT_PAGE
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid(f"Invalid value '{raw}'", location="maxResults") from exc
    if value < 1:
        raise invalid(f"Invalid value '{raw}'. Values must be >= 1", location="maxResults")
    return min(value, MAX_PAGE)


def _props(query: Query, name: str) -> list[tuple[str, str]]:
    out = []
    for raw in query.get(name, []):
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise invalid(f"Invalid {name} value: '{raw}'", location=name)
        out.append((key, value))
    return out


@dataclass
class ListParams:
    max_results: int = DEFAULT_PAGE
    page_token: str | None = None
    sync_token: str | None = None
    show_deleted: bool = False
    single_events: bool = False
    time_min: datetime | None = None
    time_max: datetime | None = None
    updated_min: datetime | None = None
    order_by: str | None = None
    ical_uid: str | None = None
    private_props: list[tuple[str, str]] = field(default_factory=list)
    shared_props: list[tuple[str, str]] = field(default_factory=list)
    q: str | None = None
    time_zone: str | None = None

    @classmethod
    def parse(cls, query: Query) -> ListParams:
        p = cls(
            max_results=parse_max_results(query),
            page_token=one_value(query, "pageToken"),
            sync_token=one_value(query, "syncToken"),
            show_deleted=parse_bool(query, "showDeleted"),
            single_events=parse_bool(query, "singleEvents"),
            time_min=parse_time(query, "timeMin"),
            time_max=parse_time(query, "timeMax"),
            updated_min=parse_time(query, "updatedMin"),
            order_by=one_value(query, "orderBy"),
            ical_uid=one_value(query, "iCalUID"),
            private_props=_props(query, "privateExtendedProperty"),
            shared_props=_props(query, "sharedExtendedProperty"),
            q=one_value(query, "q"),
            time_zone=one_value(query, "timeZone"),
        )
        if p.sync_token is not None:
            for name in SYNC_FORBIDDEN:
                if query.get(name):
                    raise invalid(
                        f"The parameter '{name}' cannot be used together with 'syncToken'.",
                        location=name,
                    )
        if p.order_by not in (None, "startTime", "updated"):
            raise invalid(f"Invalid value '{p.order_by}'", location="orderBy")
        if p.order_by == "startTime" and not p.single_events:
            raise ApiError(
                400,
                "badRequest",
                "The requested ordering is not available for the particular query.",
            )
        if p.time_min and p.time_max and p.time_min >= p.time_max:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        if p.time_zone is not None and not is_valid_zone(p.time_zone):
            raise invalid("Invalid time zone definition.", location="timeZone")
        return p


# -- tokens ------------------------------------------------------------------------------------
def _cal_hash(cal: Calendar) -> int:
    return zlib.crc32(cal.id.encode())


def encode_sync_token(cal: Calendar, seq: int) -> str:
    raw = f"gcal-emu:1:{_cal_hash(cal)}:{cal.sync_epoch}:{seq}".encode()
    return base64.b64encode(raw).decode()


def decode_sync_token(store: Store, cal: Calendar, token: str) -> int:
    """Return the sequence a sync token stands for; anything wrong is 410 fullSyncRequired."""
    try:
        decoded = base64.b64decode(token, validate=True).decode()
        magic, version, chash, epoch, seq = decoded.split(":")
        ok = (
            magic == "gcal-emu"
            and version == "1"
            and int(chash) == _cal_hash(cal)
            and int(epoch) == cal.sync_epoch
            and 0 <= int(seq) <= store.seq
        )
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise full_sync_required()
    return int(seq)


def encode_page_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str) -> dict[str, Any]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(payload, dict) or "k" not in payload or "s" not in payload:
            raise ValueError(token)
    except ValueError as exc:
        raise invalid("Invalid page token value.", location="pageToken") from exc
    return payload
