"""Fewer cyclic-garbage passes while a pull runs.

Python's cyclic collector makes a young-generation pass every 700 net container allocations,
and every tenth of those an older pass, now and then a full one over the whole heap. An import
allocates millions of short-lived objects (parsed objects, rows, ORM state) that reference
counting frees anyway; at the default threshold the passes took ~0.5 s of a 5,000-event
CalDAV import, mostly full passes over the long-lived heap (modules, SQLAlchemy's caches).

:func:`fewer_collections` raises the first threshold to :data:`PULL_THRESHOLD` for as long as
any pull runs (several may run on threads at once: the first to start raises it, the last to
finish puts back what was there) — the collector still runs, at most a few thousand objects'
worth of cyclic garbage later. A threshold of 0 (collection switched off) is left alone.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PULL_THRESHOLD = 10_000


class _RaisedThreshold:
    """The collector's first threshold, raised while at least one pull runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: tuple[int, int, int] | None = None

    def enter(self) -> None:
        with self._lock:
            if self._users == 0:
                self._saved = gc.get_threshold()
                first, *rest = self._saved
                if first != 0:
                    gc.set_threshold(max(PULL_THRESHOLD, first), *rest)
            self._users += 1

    def leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._saved is not None:
                gc.set_threshold(*self._saved)
                self._saved = None


_raised = _RaisedThreshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The first threshold is :data:`PULL_THRESHOLD` (at least) inside, as before after."""
    _raised.enter()
    try:
        yield
    finally:
        _raised.leave()
