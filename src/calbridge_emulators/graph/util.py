"""Shared helpers: the Graph error envelope, date formats, ids and a controllable clock.

Formats emulated (Graph v1.0):

* ``dateTimeTimeZone.dateTime`` -> ``2027-03-05T09:00:00.0000000`` (7 fractional digits, no
  offset, the zone is in ``timeZone``).
* ``DateTimeOffset`` properties (``createdDateTime`` ...) -> ``2027-03-05T09:00:00.1234567Z``.
* ``originalStart`` / ``subscriptionExpirationDateTime`` -> ``2027-03-05T09:00:00Z`` style.
* Errors -> ``{"error": {"code", "message", "innerError": {"date", "request-id",
  "client-request-id"}}}`` (``date`` without offset, as Graph sends it).
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


class GraphError(Exception):
    """An error answered with the Graph JSON error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(
    code: str, message: str, request_id: str, client_request_id: str, now: datetime
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


class Clock:
    """Wall clock with an adjustable offset so tests can expire tokens and subscriptions."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def timestamp(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


def b64url(data: bytes, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text if pad else text.rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_guid() -> str:
    return str(uuid.uuid4())


def new_item_id() -> str:
    """An Exchange-looking REST id (URL-safe base64 with ``=`` padding, as Graph returns)."""
    return "AAMkA" + b64url(os.urandom(40), pad=True)


def new_change_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def fmt_local(dt: datetime) -> str:
    """``dateTimeTimeZone.dateTime``: wall time with 7 fractional digits."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0"


def fmt_instant(dt: datetime) -> str:
    """``DateTimeOffset`` in UTC with 7 fractional digits and ``Z``."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def fmt_instant_short(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_iso(text: str) -> tuple[datetime, bool]:
    """Parse an ISO 8601 date-time; returns (naive-or-aware datetime, had_offset)."""
    m = _DT_RE.match(text.strip())
    if not m:
        raise ValueError(text)
    year, month, day, hh, mm, ss, frac, off = m.groups()
    micro = int((frac or "0").ljust(7, "0")[:6])
    dt = datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), micro)
    if off is None:
        return dt, False
    if off == "Z":
        return dt.replace(tzinfo=UTC), True
    sign = 1 if off[0] == "+" else -1
    digits = off[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return dt.replace(tzinfo=UTC) - sign * delta, True


def parse_instant(text: str) -> datetime:
    """Parse a DateTimeOffset; values without offset are UTC (as Graph does)."""
    dt, had_offset = parse_iso(text)
    return dt.astimezone(UTC) if had_offset else dt.replace(tzinfo=UTC)
