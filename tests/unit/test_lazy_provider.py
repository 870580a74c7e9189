"""The quick path's provider made on first use (``calbridge.sync.quick.LazyProvider``): a first
pull read by a child process counts the child's requests without making one here; the engine
gets the real provider the moment it asks it anything."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from calbridge.sync.quick import LazyProvider


class Made:
    """Stands in for a CalDAVProvider: what the lazy one must pass through."""

    def __init__(self) -> None:
        self.requests = 0
        self.closed = False

    def put(self, name: str) -> str:
        self.requests += 1
        return f"written {name}"

    def close(self) -> None:
        self.closed = True


def test_requests_are_counted_before_the_provider_is_made_and_added_to_its_own() -> None:
    made: list[Made] = []

    def make() -> Any:
        made.append(Made())
        return made[-1]

    lazy = LazyProvider(make)
    lazy.count(3)  # the child's listing
    lazy.close()  # nothing made: nothing to close, and closing makes nothing
    assert (lazy.requests, made) == (3, [])
    assert lazy.put("a.ics") == "written a.ics"  # the engine pushes: now it is made, once
    assert lazy.put("b.ics") == "written b.ics"
    assert len(made) == 1 and lazy.requests == 5
    lazy.close()
    assert made[0].closed


def test_a_copy_that_was_never_initialised_does_not_make_a_provider() -> None:
    """Private names never reach the provider: a half-built object (a copy, an unpickling)
    fails plainly instead of recursing into ``open``."""
    calls: list[str] = []
    lazy = LazyProvider(lambda: calls.append("made") or Made())  # type: ignore[func-returns-value]
    clone = copy.copy(lazy)
    assert clone.requests == 0 and calls == []
    bare = LazyProvider.__new__(LazyProvider)
    with pytest.raises(AttributeError, match="_made"):
        bare.open()
    assert calls == []
