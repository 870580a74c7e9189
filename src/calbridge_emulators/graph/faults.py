"""Scripted faults, a seeded random failure rate and request counters.

Fault bodies follow what Graph/Exchange answer: 429 ``TooManyRequests`` (or
``ApplicationThrottled`` "Application is over its MailboxConcurrency limit." for the batch
mailbox-concurrency rule) with a ``Retry-After`` header in seconds, 503 ``ServiceNotAvailable``
(with ``Retry-After``), 500 ``UnknownError``, 504 ``UnknownError``, and for delta requests 410
``SyncStateNotFound``.  Rules apply to Graph requests only (top-level and each ``$batch`` inner
request, which Graph also throttles individually); token and control requests are not faulted.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .util import GraphError

DEFAULT_ERRORS = {
    429: ("TooManyRequests", "Too many requests."),
    500: ("UnknownError", ""),
    502: ("UnknownError", ""),
    503: ("ServiceNotAvailable", "The service is temporarily unavailable. Try again later."),
    504: ("UnknownError", "Gateway timeout."),
    410: ("SyncStateNotFound", "The sync state generation is not found; generation=1;"),
}


@dataclass
class FaultRule:
    """Answer the next ``count`` matching Graph requests with ``status``.

    ``method``: HTTP method to match (None = any); ``path``: regular expression searched in
    the Graph path after ``/v1.0`` including the query string (None = any); ``scope``:
    "any", "top" (top-level HTTP requests only) or "inner" ($batch inner requests only).
    """

    status: int = 429
    count: int = 1
    method: str | None = None
    path: str | None = None
    retry_after: int | None = 1
    code: str | None = None
    message: str | None = None
    scope: str = "any"
    id: int = 0

    def matches(self, method: str, path: str, inner: bool) -> bool:
        if self.count <= 0:
            return False
        if (self.scope == "top" and inner) or (self.scope == "inner" and not inner):
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path and not re.search(self.path, path, re.IGNORECASE))

    def error(self) -> GraphError:
        code, message = DEFAULT_ERRORS.get(self.status, ("UnknownError", ""))
        headers = {}
        if self.retry_after is not None and self.status in (429, 503):
            headers["Retry-After"] = str(self.retry_after)
        return GraphError(self.status, self.code or code, self.message or message, headers)


@dataclass
class FaultInjector:
    rules: list[FaultRule] = field(default_factory=list)
    fail_rate: float = 0.0
    random_statuses: tuple[int, ...] = (429, 503, 500)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1

    def add(self, rule: FaultRule) -> FaultRule:
        with self.lock:
            rule.id = self._next_id
            self._next_id += 1
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def set_fail_rate(
        self, rate: float, seed: int = 0, statuses: tuple[int, ...] = (429, 503, 500)
    ) -> None:
        with self.lock:
            self.fail_rate = rate
            self.rng = random.Random(seed)
            self.random_statuses = statuses

    def check(self, method: str, path: str, inner: bool) -> GraphError | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path, inner):
                    rule.count -= 1
                    return rule.error()
            self.rules = [r for r in self.rules if r.count > 0]
            if self.fail_rate > 0 and self.rng.random() < self.fail_rate:
                status = self.rng.choice(self.random_statuses)
                return FaultRule(status=status, retry_after=1).error()
        return None


class Counters:
    """Request counters (benchmarks read "requests made" from here).

    Keys: ``total`` (every non-control HTTP request), ``token``, ``discovery``, ``graph``
    (top-level Graph HTTP requests, ``$batch`` included), ``batch`` (top-level ``$batch``
    requests), ``batch_inner`` (requests inside batches), ``graph_operations`` (``graph`` minus
    ``batch`` plus ``batch_inner``: logical Graph calls), ``faulted``, plus ``routes`` (per
    ``"METHOD template"``) and ``status`` (per HTTP status of Graph operations).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[str] = Counter()
        self._routes: Counter[str] = Counter()
        self._status: Counter[str] = Counter()

    def inc(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._c[key] += n

    def route(self, name: str, status: int) -> None:
        with self._lock:
            self._routes[name] += 1
            self._status[str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {
                k: self._c.get(k, 0)
                for k in (
                    "total",
                    "token",
                    "discovery",
                    "graph",
                    "batch",
                    "batch_inner",
                    "graph_operations",
                    "faulted",
                    "notifications",
                )
            }
            out["routes"] = dict(self._routes)
            out["status"] = dict(self._status)
            return out

    def reset(self) -> None:
        with self._lock:
            self._c.clear()
            self._routes.clear()
            self._status.clear()
