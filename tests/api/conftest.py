"""Fixtures for the REST API tests: the real application (``create_app``) on SQLite and on
PostgreSQL, with the example directory imported, two API tokens (read-write and read-only)
and an in-process job queue without workers, so a test can see which syncs a write asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from calbridge.config import load_settings
from calbridge.emulators.radicale import RadicaleServer, running_radicale
from calbridge.ops.directory import import_directory
from calbridge.service.app import create_app
from calbridge.service.tokens import create_token
from calbridge.store.db import Store
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar


@dataclass
class Api:
    """A client on the app, the tokens' headers, the store and the job queue."""

    client: TestClient
    store: Store
    jobs: Any
    writer: dict[str, str]
    reader: dict[str, str]

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=kw.pop("headers", self.writer), **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers=kw.pop("headers", self.writer), **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.client.patch(path, headers=kw.pop("headers", self.writer), **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.client.put(path, headers=kw.pop("headers", self.writer), **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=kw.pop("headers", self.writer), **kw)

    def count(self, table: str) -> int:
        from sqlalchemy import text

        with self.store.session() as s:
            return int(s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    def add_calendar(self, name: str) -> int:
        """A CalDAV calendar row (not contacted: these tests never sync)."""
        box = SecretBox.from_settings(load_settings())
        with self.store.session() as s:
            cal = add_caldav_calendar(
                s, box, name, f"http://127.0.0.1:9/{name}/", "u", "p", check=False
            )
            return cal.id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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


RADICALE_USERS = {"ann": "ann-secret"}


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """A real Radicale for the calendar endpoints (connection checks, credentials)."""
    with running_radicale(tmp_path_factory.mktemp("radicale"), RADICALE_USERS) as server:
        yield server
