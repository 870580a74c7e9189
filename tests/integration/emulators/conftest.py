"""Fixtures for the Google Calendar emulator tests.

``google_emulator_server`` runs one emulator (uvicorn, background thread, free port on
127.0.0.1) for the session; ``google_emulator`` hands it to a test after a reset; ``gcal`` adds
a user, a domain-wide-delegated service account and a real ``googleapiclient`` service.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from calbridge_emulators.google.testing import EmulatorHandle, running_emulator

OWNER = "owner@example.com"


@pytest.fixture(scope="session")
def google_emulator_server() -> Iterator[EmulatorHandle]:
    with running_emulator(record_responses=True) as handle:
        yield handle


@pytest.fixture
def google_emulator(google_emulator_server: EmulatorHandle) -> EmulatorHandle:
    google_emulator_server.reset()
    return google_emulator_server


@dataclass
class GoogleSetup:
    handle: EmulatorHandle
    owner: str
    calendar_id: str
    credentials: Any
    service: Any


@pytest.fixture
def gcal(google_emulator: EmulatorHandle) -> GoogleSetup:
    calendar_id = google_emulator.add_user(OWNER, display_name="Venue Owner")
    credentials = google_emulator.service_account_credentials(subject=OWNER)
    service = google_emulator.build_service(credentials)
    return GoogleSetup(google_emulator, OWNER, calendar_id, credentials, service)
