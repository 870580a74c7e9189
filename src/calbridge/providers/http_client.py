"""What the providers that speak HTTP through httpx (CalDAV, Graph) share: one keep-alive client
per calendar, every request it sends counted (a sync's request figure is part of the spec).

A calendar's ``timeout`` is how long to wait for an answer (a big REPORT may take a while); a
connection that cannot even be opened is given up after :data:`CONNECT_TIMEOUT` seconds, so a
server that is down is reported in seconds, not after the read timeout.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import httpx

from calbridge.errors import ConfigError

CONNECT_TIMEOUT = 5.0


def client_timeout(timeout: float | httpx.Timeout) -> httpx.Timeout:
    """``timeout`` seconds to read, write and wait for a pooled connection; at most
    :data:`CONNECT_TIMEOUT` to open a connection."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout, connect=min(float(timeout), CONNECT_TIMEOUT))


def check_http_url(url: str, option: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; else a :class:`ConfigError` that
    names ``option`` and shows the expected form."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"{option} '{url}' is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"{option} '{url}' has no http:// or https:// scheme; write the whole address, "
            "e.g. https://calendar.example.com/dav/calendars/user/bookings/"
        )
    if not parts.hostname:
        raise ConfigError(f"{option} '{url}' names no server (e.g. https://host/path)")
    return url.strip()


class RequestCounter:
    """Counts the requests a client sends. Kept apart from the session that owns the client,
    so that a finished provider is freed at once, closing its connections, rather than by a
    later GC cycle (a bound method as the hook would tie client and session in a cycle)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()  # a CalDAV pull sends its multigets from two threads

    def __call__(self, request: httpx.Request) -> None:
        with self._lock:
            self.count += 1


def counted_client(
    counter: RequestCounter, *, headers: dict[str, str] | None = None, **options: Any
) -> httpx.Client:
    """An ``httpx.Client`` (``options``: timeout, transport, auth, verify…) announcing itself
    as calbridge, each request counted by ``counter``."""
    if "timeout" in options:
        options["timeout"] = client_timeout(options["timeout"])
    return httpx.Client(
        headers={"User-Agent": "calbridge", **(headers or {})},
        event_hooks={"request": [counter]},
        **options,
    )
