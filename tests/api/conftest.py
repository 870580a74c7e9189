"""Fixtures for the REST API tests: the real application (``create_app``) on SQLite and on
PostgreSQL, with the example directory imported, two API tokens (read-write and read-only)
and an in-process job queue without workers, so a test can see which syncs a write asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_client import RADICALE_USERS, Api, bearer
from fastapi.testclient import TestClient

from calbridge.ops.directory import import_directory
from calbridge.service.app import create_app
from calbridge.service.tokens import create_token
from calbridge.store.db import Store
from calbridge_emulators.radicale import RadicaleServer, running_radicale


@pytest.fixture
def api(
    store: Store,
    example_directory_text: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Api]:
    monkeypatch.setenv("CALBRIDGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALBRIDGE_SECRET_KEY", "api-tests-secret-key")
    with store.session() as s:
        import_directory(s, example_directory_text, actor="test")
        _, rw = create_token(s, "booking-site", actor="test")
        _, ro = create_token(s, "dashboard", read_only=True, actor="test")
    app = create_app(store)
    with TestClient(app) as client:
        yield Api(client, store, app.state.jobs, bearer(rw), bearer(ro))


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """A real Radicale for the calendar endpoints (connection checks, credentials)."""
    with running_radicale(tmp_path_factory.mktemp("radicale"), RADICALE_USERS) as server:
        yield server
