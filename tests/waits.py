"""Waiting in tests: poll a condition until it holds or a deadline passes, then fail saying
what was awaited and what was last seen. Never a bare sleep, never a timing assertion: the
deadline only bounds how long a broken test hangs (generous, so a loaded machine is no flake)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The awaited condition did not hold before the deadline."""


def wait_until(
    probe: Callable[[], T | None],
    what: str,
    *,
    timeout: float = 30.0,
    interval: float = 0.02,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``probe`` until it returns something truthy and return that. Exceptions listed in
    ``ignore`` count as "not yet". After ``timeout`` seconds: :class:`WaitTimeout` naming
    ``what`` and the last value or exception seen."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"waited {timeout:g} s for {what}; last seen: {last!r}")
        time.sleep(interval)
