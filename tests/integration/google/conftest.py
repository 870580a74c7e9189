"""The Google Calendar emulator over real HTTP and a fresh booking store per test.

One emulator serves the whole session (``gcal_server``, tests/conftest.py) and is reset before
each test (data, faults, counters); every test links its own calendars, so nothing leaks from
one test into another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google_world import GoogleWorld

from calbridge.store.secrets import SecretBox
from calbridge_emulators.google.testing import EmulatorHandle
from worlds import example_store


@pytest.fixture
def gcal(gcal_server: EmulatorHandle) -> EmulatorHandle:
    gcal_server.reset()
    return gcal_server


@pytest.fixture
def world(gcal: EmulatorHandle, tmp_path: Path) -> Iterator[GoogleWorld]:
    with example_store(tmp_path) as store:
        yield GoogleWorld(store, gcal, SecretBox(SecretBox.generate_key()))
