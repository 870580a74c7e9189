"""The Google Calendar emulator over real HTTP and a fresh booking store per test.

One emulator serves the whole session and is reset before each test (data, faults, counters);
every test links its own calendars, so nothing leaks from one test into another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google_world import EXAMPLE, GoogleWorld

from calbridge.emulators.google.testing import EmulatorHandle, running_emulator
from calbridge.store.db import open_store
from calbridge.store.directory import import_directory
from calbridge.store.secrets import SecretBox


@pytest.fixture(scope="session")
def gcal_server() -> Iterator[EmulatorHandle]:
    with running_emulator() as handle:
        yield handle


@pytest.fixture
def gcal(gcal_server: EmulatorHandle) -> EmulatorHandle:
    gcal_server.reset()
    return gcal_server


@pytest.fixture
def world(gcal: EmulatorHandle, tmp_path: Path) -> Iterator[GoogleWorld]:
    store = open_store(f"sqlite:///{tmp_path / 'calbridge.db'}")
    with store.session() as session:
        import_directory(session, EXAMPLE.read_text(encoding="utf-8"))
    try:
        yield GoogleWorld(store, gcal, SecretBox(SecretBox.generate_key()))
    finally:
        store.dispose()
