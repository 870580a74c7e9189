"""Fixtures: a database URL on SQLite and on PostgreSQL, an opened store, and the real CLI.

``db_url`` runs a test once per database: SQLite in a temporary file, and PostgreSQL (a fresh
database per test) on the server found by ``tests/postgres_server.py``; the PostgreSQL runs are
skipped, with the reason, only when no server is configured and none can be started.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from calbridge.store.db import Store, open_store
from calbridge_cli import Cli, make_cli
from postgres_server import PostgresUnavailable, admin_engine, fresh_database, postgres_server
from worlds import GRAPH_MAILBOX

# The example directory ships inside the package (the demo uses it too): a fresh clone has
# everything the tests read.
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.fixture(scope="session")
def example_directory_text() -> str:
    """The documented example directory, ``docs/examples/directory.json``."""
    return (EXAMPLES / "directory.json").read_text(encoding="utf-8")


@pytest.fixture
def example_directory(example_directory_text: str) -> dict[str, Any]:
    """A fresh, mutable copy of the example directory."""
    data: dict[str, Any] = json.loads(example_directory_text)
    return data


@pytest.fixture(scope="session")
def gcal_server() -> Iterator[Any]:
    """The Google Calendar emulator over real HTTP, one per session (the Google tests and the
    contract suite reset it before each test)."""
    from calbridge_emulators.google.testing import running_emulator

    with running_emulator() as handle:
        yield handle


@pytest.fixture(scope="session")
def graph_server() -> Iterator[Any]:
    """The Graph emulator over https (MSAL needs it), one per session, with the venue's
    bookings mailbox; every test makes its own calendars in it."""
    from calbridge_emulators.graph.testing import running_emulator

    with running_emulator(tls=True) as handle:
        handle.add_user(handle.tenant_id, GRAPH_MAILBOX, "Harbour Bookings")
        yield handle
        gc.collect()  # finished providers' keep-alive connections would hold up the shutdown


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The PostgreSQL server for this test session; skips when there is none."""
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc}")


@pytest.fixture(scope="session")
def postgres_admin(postgres_server_url: str) -> Iterator[Engine]:
    engine = admin_engine(postgres_server_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'calbridge.db'}"


@pytest.fixture
def postgres_url(postgres_admin: Engine) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server, dropped after the test."""
    with fresh_database(postgres_admin) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database URL: the test runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """An opened (migrated) store on ``db_url``."""
    opened = open_store(db_url)
    yield opened
    opened.dispose()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    """An opened store on SQLite only, for checks that do not depend on the database."""
    opened = open_store(sqlite_url)
    yield opened
    opened.dispose()


@pytest.fixture
def cli(tmp_path: Path, sqlite_url: str) -> Cli:
    """``cli("resolve", "a@b.example", "--json") -> (exit code, stdout, stderr)`` on SQLite."""
    return make_cli(tmp_path / "data", sqlite_url)
