"""Reading a provider's pages ahead (``sync/readahead.py``): in order, bounded, started at once
by ``ReadAhead``, the source's exception raised where the consumer reads, and stoppable."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from calbridge.errors import TokenExpired
from calbridge.sync.readahead import ReadAhead, read_ahead
from waits import wait_until


def test_pages_arrive_in_order_and_at_most_depth_ahead() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(10):
            produced.append(i)
            yield i

    ahead = ReadAhead(source(), depth=2)
    wait_until(lambda: len(produced) >= 3, what="the thread to read ahead")
    assert len(produced) <= 4  # two queued, one waiting to be queued, one being made
    assert list(ahead) == list(range(10))


def test_a_read_ahead_starts_reading_before_anything_is_asked_for() -> None:
    started = threading.Event()

    def source() -> Iterator[str]:
        started.set()
        yield "page"

    ahead = ReadAhead(source())
    assert started.wait(10)
    assert ahead.peek() == "page"
    assert ahead.peek() == "page"  # peeking does not take it
    assert list(ahead) == ["page"]
    assert not ahead._worker.is_alive()  # closed at the end: no thread left
    lazy_started = threading.Event()

    def lazy() -> Iterator[str]:
        lazy_started.set()
        yield "x"

    pages = read_ahead(lazy())
    assert not lazy_started.wait(0.2)  # read_ahead starts on the first page asked for
    assert list(pages) == ["x"]


def test_the_sources_exception_is_raised_by_peek_and_by_iteration() -> None:
    def source() -> Iterator[str]:
        raise TokenExpired("stale token")
        yield "never"

    ahead = ReadAhead(source())
    with pytest.raises(TokenExpired, match="stale token"):
        ahead.peek()
    with pytest.raises(TokenExpired, match="stale token"):
        list(ahead)


def test_close_stops_a_reader_waiting_on_a_full_queue() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            i += 1
            yield i

    ahead = ReadAhead(endless(), depth=1)
    assert ahead.peek() == 1
    ahead.close()
    assert not ahead._worker.is_alive()
    assert list(ahead) == []  # a closed read-ahead yields nothing more
    assert list(read_ahead(ahead)) == []


def test_ready_says_whether_the_next_item_is_already_here_and_never_for_an_end() -> None:
    release = threading.Event()

    def source() -> Iterator[str]:
        yield "first"
        assert release.wait(10)
        yield "second"
        raise TokenExpired("stale token")

    ahead = ReadAhead(source())
    wait_until(ahead.ready, what="the first item")
    taken = iter(ahead)
    assert next(taken) == "first"
    assert not ahead.ready()  # the source has not made the second yet
    release.set()
    wait_until(ahead.ready, what="the second item")
    assert next(taken) == "second"
    wait_until(lambda: not ahead._worker.is_alive(), what="the source to raise")
    assert not ahead.ready()  # an exception is not an item: taking it would raise
    with pytest.raises(TokenExpired):
        next(taken)
    ended = ReadAhead(iter(["only"]))
    assert list(ended) == ["only"] and not ended.ready()
