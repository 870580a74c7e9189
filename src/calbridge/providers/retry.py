"""Retrying HTTP calls to calendar servers: 5xx, 429 and connection failures.

Why retries are safe: every write calbridge sends is conditional (``If-None-Match: *`` on a
create at a chosen address, ``If-Match`` on updates and deletes), so repeating a request whose
answer was lost cannot duplicate or clobber anything — at worst it turns into a 412 that the
provider resolves.

The wait is exponential with jitter (``base · 2ⁿ`` plus up to ``jitter`` of it at random, so a
fleet of workers does not retry in lock-step), or the server's ``Retry-After`` when it sends one,
never more than ``cap`` seconds. Tests pass tiny values and a fake ``sleep``; the Google and
Graph providers reuse the same policy.

A connection that cannot be opened (refused, unknown host, connect timeout) is tried at most
``connect_attempts`` times: a server that is down is reported in seconds. A URL httpx cannot
send to at all (no scheme) is never retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_retryable(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` as seconds or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry. ``attempts`` counts the first try."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5
    connect_attempts: int = 2
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    @classmethod
    def from_settings(cls, values: object) -> RetryPolicy:
        """The policy a stored calendar asks for: ``settings["retry"]`` (attempts, base, cap,
        jitter — tests use tiny ones), the defaults for whatever it leaves out."""
        if not isinstance(values, dict):
            return cls()
        default = cls()
        return cls(
            attempts=int(values.get("attempts", default.attempts)),
            base=float(values.get("base", default.base)),
            cap=float(values.get("cap", default.cap)),
            jitter=float(values.get("jitter", default.jitter)),
        )

    def wait(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        asked = retry_after(response) if response is not None else None
        if asked is not None:
            return min(self.cap, asked)
        delay = self.base * 2 ** (attempt - 1)
        return float(min(self.cap, delay + random.uniform(0, self.jitter * delay)))

    def run(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        """Call ``send`` until it gives a non-retryable response or attempts run out. Returns
        the last response (possibly still a 5xx/429: the caller turns it into an error) or
        re-raises the last ``httpx.TransportError``."""

        def wait(state: RetryCallState) -> float:
            outcome = state.outcome
            response = None
            if outcome is not None and not outcome.failed:
                response = outcome.result()
            return self.wait(state.attempt_number, response)

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, httpx.TransportError) and not isinstance(
                exc, httpx.UnsupportedProtocol
            )

        retrying = Retrying(
            stop=stop_any(
                stop_after_attempt(max(1, self.attempts)), _ConnectFailed(self.connect_attempts)
            ),
            wait=wait,
            retry=retry_if_exception(transient) | retry_if_result(is_retryable),
            sleep=self.sleep,
            retry_error_callback=_last_outcome,
            reraise=True,
        )
        return retrying(send)


class _ConnectFailed(stop_base):
    """Stop once a connection could not be opened ``attempts`` times in a row."""

    def __init__(self, attempts: int) -> None:
        self.attempts = max(1, attempts)

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        cannot_connect = isinstance(outcome.exception(), httpx.ConnectError | httpx.ConnectTimeout)
        return cannot_connect and retry_state.attempt_number >= self.attempts


def _last_outcome(state: RetryCallState) -> httpx.Response:
    """Out of attempts: hand back the last response, or raise the last connection error."""
    assert state.outcome is not None
    result: httpx.Response = state.outcome.result()
    return result
