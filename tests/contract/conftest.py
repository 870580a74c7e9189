"""The provider contract suite: the same scenarios against every CalDAV server.

``caldav_server`` is parametrized over :data:`SERVER_NAMES` — Radicale and Xandikos always,
DAViCal when Debian's ``davical`` is installed and configured by ``scripts/setup-davical.sh``
(``.ci/run`` does both; elsewhere DAViCal is skipped with the reason). Each server is started
once per test session; every test gets a fresh calendar (``calendar``) or a fresh booking store
with its own calendars (``world``), so tests never see each other's data.

The handles in ``contract_world`` speak in neutral terms — a person changes the calendar,
calbridge syncs, the test reads what the calendar and the store hold — so a Google or Graph
provider can later join the suite by adding a server fixture that yields the same handles.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contract_world import USERS, RemoteCalendar, World

from calbridge.store.secrets import SecretBox
from calbridge_emulators.caldav_servers import (
    SERVER_NAMES,
    CalDAVTestServer,
    davical_missing,
    running_server,
)
from worlds import example_store


@pytest.fixture(scope="session", params=SERVER_NAMES)
def caldav_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CalDAVTestServer]:
    """A running server of each kind, shared by the session."""
    name = str(request.param)
    postgres: str | None = None
    if name == "davical":
        problem = davical_missing()
        if problem:
            pytest.skip(f"DAViCal not available: {problem}")
        postgres = str(request.getfixturevalue("postgres_server_url"))
    folder = tmp_path_factory.mktemp(name)
    with running_server(name, folder / "data", USERS, postgres) as server:
        server.kind = name  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def server_kind(caldav_server: CalDAVTestServer) -> str:
    return str(caldav_server.kind)  # type: ignore[attr-defined]


@pytest.fixture
def calendar(caldav_server: CalDAVTestServer, server_kind: str) -> RemoteCalendar:
    """A fresh calendar of user ``staff`` on the server."""
    return RemoteCalendar.fresh(caldav_server, server_kind, "staff")


@pytest.fixture
def world(caldav_server: CalDAVTestServer, server_kind: str, tmp_path: Path) -> Iterator[World]:
    """A fresh booking store (the example directory) syncing with calendars on the server."""
    with example_store(tmp_path) as store:
        yield World(server_kind, caldav_server, store, SecretBox(SecretBox.generate_key()))
