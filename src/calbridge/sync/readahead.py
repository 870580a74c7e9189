"""Read the provider's next page while the current one is applied to the store.

Fetching a page waits on the server and parses iCalendar/JSON; applying one writes to the
database. Overlapping the two keeps both busy. Memory stays bounded (``depth`` pages at most)
and an exception raised by the provider (``TokenExpired`` …) reaches the consumer unchanged.

:class:`ReadAhead` starts reading at once, when it is made: ``calbridge sync`` makes one for a
CalDAV calendar before it imports the engine (``calbridge.sync.quick``), so the server answers
while the process starts. :func:`read_ahead` starts on the first page asked for.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()


class ReadAhead(Generic[T]):
    """Iterate ``source`` in a thread, ``depth`` items ahead of the consumer, from now on.
    :meth:`peek` waits for the next item without taking it, :meth:`ready` says whether it is
    already here; :meth:`close` stops the thread (iterating to the end, or an exception, closes
    it too), first calling the source's ``interrupt()`` if it has one
    (:class:`calbridge.sync.forked.ChildPages`)."""

    def __init__(self, source: Iterable[T], depth: int = 2) -> None:
        self._slots: queue.Queue[object] = queue.Queue(maxsize=depth)
        # a source that can be told to stop from another thread (a child process's pages)
        self._interrupt = getattr(source, "interrupt", None)
        self._stop = threading.Event()
        self._peeked: list[object] = []
        self._closed = False
        self._worker = threading.Thread(
            target=self._produce, args=(source,), name="calbridge-read-ahead", daemon=True
        )
        self._worker.start()

    @classmethod
    def of(cls, source: Iterable[T], depth: int = 2) -> ReadAhead[T]:
        """``source`` read ahead: the :class:`ReadAhead` it already is (started before the
        engine loaded, by ``calbridge sync``), or one started now."""
        return source if isinstance(source, ReadAhead) else cls(source, depth)

    def _produce(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                while not self._stop.is_set():
                    try:
                        self._slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._slots.put(exc)

    def _next_slot(self) -> object:
        return self._peeked.pop() if self._peeked else self._slots.get()

    def peek(self) -> T | None:
        """The next item, left to be iterated (None at the end); the source's exception is
        raised here, and again by iteration."""
        got = self._next_slot()
        self._peeked.append(got)
        if isinstance(got, BaseException):
            raise got
        return None if got is _DONE else got  # type: ignore[return-value]

    def ready(self) -> bool:
        """Whether the next item is already here, so taking it does not wait: False at the end
        and when the source raised (the caller then finishes what it holds before it learns)."""
        if not self._peeked:
            try:
                self._peeked.append(self._slots.get_nowait())
            except queue.Empty:
                return False
        got = self._peeked[-1]
        return got is not _DONE and not isinstance(got, BaseException)

    def __iter__(self) -> Iterator[T]:
        try:
            while not self._closed:
                got = self._next_slot()
                if got is _DONE:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield got  # type: ignore[misc]
        finally:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if callable(self._interrupt):
            self._interrupt()  # the producer may be waiting on it: end that wait now
        while True:  # unblock a producer waiting on a full queue
            try:
                self._slots.get_nowait()
            except queue.Empty:
                break
        self._worker.join(timeout=30)


def read_ahead(source: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``source`` read ahead in a thread from the first item asked for (an already started
    :class:`ReadAhead` is used as it is)."""
    yield from ReadAhead.of(source, depth)
