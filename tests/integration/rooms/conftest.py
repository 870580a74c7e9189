"""A real Radicale and a fresh booking store (the example directory, with its rooms) per test,
for the rooms tests that sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from room_world import USERS, RoomWorld

from calbridge.store.secrets import SecretBox
from calbridge_emulators.radicale import RadicaleServer, running_radicale
from worlds import example_store


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with running_radicale(tmp_path_factory.mktemp("radicale"), USERS) as server:
        yield server


@pytest.fixture
def world(radicale: RadicaleServer, tmp_path: Path) -> Iterator[RoomWorld]:
    with example_store(tmp_path) as store:
        yield RoomWorld(store, radicale, SecretBox(SecretBox.generate_key()))
