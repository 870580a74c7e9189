"""What the providers that speak HTTP through httpx (CalDAV, Graph) share: one keep-alive client
per calendar, every request it sends counted (a sync's request figure is part of the spec)."""

from __future__ import annotations

from typing import Any

import httpx


class RequestCounter:
    """Counts the requests a client sends. Kept apart from the session that owns the client,
    so that a finished provider is freed at once, closing its connections, rather than by a
    later GC cycle (a bound method as the hook would tie client and session in a cycle)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, request: httpx.Request) -> None:
        self.count += 1


def counted_client(
    counter: RequestCounter, *, headers: dict[str, str] | None = None, **options: Any
) -> httpx.Client:
    """An ``httpx.Client`` (``options``: timeout, transport, auth, verify…) announcing itself
    as calbridge, each request counted by ``counter``."""
    return httpx.Client(
        headers={"User-Agent": "calbridge", **(headers or {})},
        event_hooks={"request": [counter]},
        **options,
    )
