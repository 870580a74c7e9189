"""Scripted faults, random failures and request counters.

Emulated documented behaviour (Calendar "Handle API errors" guide):

* 403 ``usageLimits``/``rateLimitExceeded`` or ``userRateLimitExceeded`` and 429
  ``rateLimitExceeded`` for quota exhaustion, 500 ``backendError``, 503 (service unavailable);
  optionally with a ``Retry-After`` header.  (``googleapiclient``'s ``num_retries`` retries
  exactly these: 429, 5xx, and 403 with the rate-limit reasons.)

Fault rules target request *kinds*: ``api`` (a direct REST call), ``batch_part`` (one call inside
a batch - it fails alone, in its own part), ``batch`` (the whole multipart envelope) and
``token`` (the OAuth token endpoint).  ``--fail-rate`` injects seeded random 503s into ``api``
and ``batch_part`` requests.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ApiError, OAuthError

DEFAULT_KINDS = ("api", "batch_part")
_DEFAULTS: dict[int, tuple[str, str]] = {
    403: ("usageLimits", "rateLimitExceeded"),
    429: ("usageLimits", "rateLimitExceeded"),
    500: ("global", "backendError"),
    502: ("global", "backendError"),
    503: ("global", "backendError"),
}
_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
    "backendError": "Backend Error",
}
_ids = itertools.count(1)


@dataclass
class FaultRule:
    """Answer the next ``count`` matching requests (``None`` = until cleared) with an error."""

    status: int
    count: int | None = 1
    method: str | None = None
    path: str | None = None
    reason: str | None = None
    message: str | None = None
    retry_after: int | None = None
    on: tuple[str, ...] = DEFAULT_KINDS
    id: int = field(default_factory=lambda: next(_ids))
    hits: int = 0

    def matches(self, kind: str, method: str, path: str) -> bool:
        if kind not in self.on:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path and not re.search(self.path, path):
            return False
        return self.count is None or self.hits < self.count

    def api_error(self) -> ApiError:
        domain, default_reason = _DEFAULTS.get(self.status, ("global", "backendError"))
        reason = self.reason or default_reason
        if reason == "userRateLimitExceeded":
            domain = "usageLimits"
        message = self.message or _MESSAGES.get(reason, "Error")
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return ApiError(self.status, reason, message, domain=domain, headers=headers)

    def oauth_error(self) -> OAuthError:
        """The token-endpoint form: ``reason`` becomes the RFC 6749 ``error`` code."""
        default = "temporarily_unavailable" if self.status >= 500 else "rate_limit_exceeded"
        error = self.reason or default
        return OAuthError(error, self.message or "Injected fault", status=self.status)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["on"] = list(self.on)
        return out


class FaultInjector:
    def __init__(self, fail_rate: float = 0.0, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def set_fail_rate(self, rate: float, seed: int | None = None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fail rate must be within [0, 1]")
        with self._lock:
            self.fail_rate = rate
            if seed is not None:
                self._rng = random.Random(seed)

    def check(self, kind: str, method: str, path: str) -> FaultRule | None:
        """Consume and return the first matching rule (or a random 503), else ``None``."""
        with self._lock:
            for rule in self.rules:
                if rule.matches(kind, method, path):
                    rule.hits += 1
                    return rule
            self.rules = [r for r in self.rules if r.count is None or r.hits < r.count]
            if self.fail_rate and kind in DEFAULT_KINDS and self._rng.random() < self.fail_rate:
                return FaultRule(status=503, count=1, id=0)
        return None


class Counters:
    """Request counters for benchmarks ("how many requests did the connector make")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.http_requests = 0
            self.api_calls = 0
            self.batch_requests = 0
            self.batch_inner_calls = 0
            self.token_requests = 0
            self.faults_injected = 0
            self.by_method: Counter[str] = Counter()
            self.by_route: Counter[str] = Counter()
            self.by_status: Counter[int] = Counter()

    def count(self, field_name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, field_name, getattr(self, field_name) + amount)

    def count_call(self, method_id: str, route: str, status: int, *, inner: bool) -> None:
        with self._lock:
            self.api_calls += 1
            if inner:
                self.batch_inner_calls += 1
            self.by_method[method_id] += 1
            self.by_route[route] += 1
            self.by_status[status] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "http_requests": self.http_requests,
                "api_calls": self.api_calls,
                "batch_requests": self.batch_requests,
                "batch_inner_calls": self.batch_inner_calls,
                "token_requests": self.token_requests,
                "faults_injected": self.faults_injected,
                "by_method": dict(self.by_method),
                "by_route": dict(self.by_route),
                "by_status": {str(k): v for k, v in self.by_status.items()},
            }
