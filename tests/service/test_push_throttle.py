"""Notifications are rate-limited per calendar without losing the last change: the first
enqueues at once, the rest of a burst become one enqueue at the end of the interval."""

from __future__ import annotations

import threading

from push_service import wait_until

from calbridge.service.hooks import KeyCache, Throttle


def test_a_burst_for_one_calendar_is_one_enqueue_now_and_one_at_the_end_of_the_interval() -> None:
    calls: list[int] = []
    lock = threading.Lock()
    throttle = Throttle(0.3)

    def enqueue(key: int) -> None:
        with lock:
            calls.append(key)

    results = [throttle.submit(7, lambda: enqueue(7)) for _ in range(50)]

    assert results[0] is True and not any(results[1:])
    assert calls == [7]
    wait_until(lambda: len(calls) == 2, 5, "the trailing enqueue")
    assert calls == [7, 7]
    throttle.close()


def test_calendars_are_limited_independently() -> None:
    calls: list[int] = []
    throttle = Throttle(60)

    assert throttle.submit(1, lambda: calls.append(1))
    assert throttle.submit(2, lambda: calls.append(2))
    assert not throttle.submit(1, lambda: calls.append(1))

    assert calls == [1, 2]
    throttle.close()  # the pending trailing call is dropped with the service


def test_key_cache_keeps_found_keys_and_looks_again_for_unknown_ones() -> None:
    loads: list[str] = []
    cache = KeyCache(ttl=60)

    def load(key: str) -> str | None:
        loads.append(key)
        return None if key == "unknown" else key.upper()

    assert cache.get("channel", load) == "CHANNEL"
    assert cache.get("channel", load) == "CHANNEL"
    assert cache.get("unknown", load) is None
    assert cache.get("unknown", load) is None

    assert loads == ["channel", "unknown", "unknown"]
