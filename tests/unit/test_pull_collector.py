"""While pulls run, the cyclic collector's first threshold is raised; afterwards it is what it
was — also when pulls overlap on threads, when one fails, and when collection was switched off
(threshold 0 stays 0). While the console script starts, collection is paused; resuming freezes
what start-up made and switches it back on — and does nothing where start-up did not pause."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from calbridge.sync import collector
from calbridge.sync.collector import (
    PULL_THRESHOLD,
    fewer_collections,
    pause_while_starting,
    resume_after_start,
)


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


@pytest.fixture
def _collector_restored() -> Iterator[None]:
    """These tests switch the collector off and freeze objects: put both back afterwards."""
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    yield
    collector._paused_at_start = False
    if gc.get_freeze_count() > frozen:
        gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


@pytest.mark.usefixtures("_collector_restored")
def test_start_up_pauses_collection_and_resuming_freezes_what_it_made() -> None:
    gc.enable()
    pause_while_starting()
    assert not gc.isenabled()
    made_while_starting = [[n] for n in range(1000)]  # containers the collector tracks
    frozen_before = gc.get_freeze_count()
    resume_after_start()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(made_while_starting)
    gc.disable()  # once resumed, a second call changes nothing: it does not switch it on
    resume_after_start()
    assert not gc.isenabled()


@pytest.mark.usefixtures("_collector_restored")
def test_resuming_without_a_paused_start_changes_nothing() -> None:
    """A test calling ``main()`` in its own process, or a command run twice: no freeze, and
    the collector stays as its owner left it. (Frozen objects that are freed leave the count,
    so the check is that the new ones were not frozen, not that the count stood still.)"""
    gc.enable()
    made = [[n] for n in range(1000)]
    frozen = gc.get_freeze_count()
    resume_after_start()
    assert gc.isenabled() and gc.get_freeze_count() < frozen + len(made)
    gc.disable()  # someone switched collection off on purpose
    pause_while_starting()
    resume_after_start()
    assert not gc.isenabled() and gc.get_freeze_count() < frozen + len(made)
