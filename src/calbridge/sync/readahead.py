"""Read the provider's next page while the current one is applied to the store.

Fetching a page waits on the server and parses iCalendar/JSON; applying one writes to the
database. Overlapping the two keeps both busy. Memory stays bounded (``depth`` pages at most)
and an exception raised by the provider (``TokenExpired`` …) reaches the consumer unchanged.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(source: Iterable[T], depth: int = 2) -> Iterator[T]:
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put(exc)

    worker = threading.Thread(target=produce, name="calbridge-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            got = slots.get()
            if got is _DONE:
                return
            if isinstance(got, BaseException):
                raise got
            yield got  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=30)
