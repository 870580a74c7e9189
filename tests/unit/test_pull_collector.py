"""While pulls run, the cyclic collector's first threshold is raised; afterwards it is what it
was — also when pulls overlap on threads, when one fails, and when collection was switched off
(threshold 0 stays 0)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from calbridge.sync.collector import PULL_THRESHOLD, fewer_collections


@pytest.fixture(autouse=True)
def _thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_restored_after_even_on_failure() -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold() == (PULL_THRESHOLD, 10, 10)
        raise RuntimeError("the pull failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_pulls_restore_the_threshold_only_when_the_last_one_ends() -> None:
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first() -> None:
        with fewer_collections():
            first_in.set()
            assert second_done.wait(10)
            seen.append(gc.get_threshold())  # the other pull ended: still raised

    worker = threading.Thread(target=first)
    worker.start()
    assert first_in.wait(10)
    with fewer_collections():
        seen.append(gc.get_threshold())
    second_done.set()
    worker.join(10)
    assert seen == [(PULL_THRESHOLD, 10, 10), (PULL_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)


def test_collection_switched_off_by_threshold_zero_stays_off() -> None:
    gc.set_threshold(0, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, 10, 10)
