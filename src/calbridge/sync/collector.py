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

Start-up is the other case. Loading SQLAlchemy, the ORM models, httpx and the engine creates a
few hundred thousand objects that live as long as the process, and the collector's passes over
them while they load cost about a tenth of a 1,000-event import through the CLI. The console
script (:func:`calbridge.cli.main.run`) calls :func:`pause_while_starting` first; once a
command's modules are loaded, :func:`resume_after_start` freezes what start-up made
(``gc.freeze``: later full passes skip it too) and switches collection back on. The sync path
resumes when the engine is loaded (``cli/sync_run.py``), any other command once its module is
loaded (``cli/main.py``); a quick no-change sync never loads the engine and ends paused.
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
_paused_at_start = False


def pause_while_starting() -> None:
    """No cyclic collection until :func:`resume_after_start` (the console script only: a
    process that is about to load its modules). Nothing when collection is already off."""
    global _paused_at_start
    if gc.isenabled():
        gc.disable()
        _paused_at_start = True


def resume_after_start() -> None:
    """The command's modules are loaded: freeze what start-up made (it lives as long as the
    process) and switch collection back on. Nothing unless :func:`pause_while_starting`
    switched it off — a test calling ``main()`` in its own process keeps its collector."""
    global _paused_at_start
    if _paused_at_start:
        _paused_at_start = False
        gc.freeze()
        gc.enable()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The first threshold is :data:`PULL_THRESHOLD` (at least) inside, as before after."""
    _raised.enter()
    try:
        yield
    finally:
        _raised.leave()
