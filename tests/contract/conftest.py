"""The provider contract suite: the same scenarios against every calendar API.

``any_world`` runs a scenario once per backend: each CalDAV server of :data:`SERVER_NAMES` —
Radicale and Xandikos always, DAViCal when Debian's ``davical`` is installed and configured by
``scripts/setup-davical.sh`` (``.ci/run`` does both; elsewhere DAViCal is skipped with the
reason) — then Google and Microsoft Graph on the project's emulators with the real client
libraries (``gcal_server`` / ``graph_server``, tests/conftest.py), and Exchange Server on the
EWS emulator through real exchangelib (``ews_contract_server``). ``caldav_server``,
``calendar`` and ``world`` are the CalDAV-only handles of the provider-level tests
(test_contract_pull.py, test_contract_push.py) and CalDAV's own sync extras.

Each server is started once per test session; every test gets fresh calendars and a fresh
booking store, so tests never see each other's data. The calendar side of a backend is a
:class:`sides.Side`; adding an API to the suite is one more side and one more parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from contract_world import USERS, RemoteCalendar, World
from sides import AnyWorld, CalDAVSide, EwsSide, GoogleSide, GraphSide, Side

from calbridge.store.secrets import SecretBox
from calbridge_emulators.caldav_servers import (
    SERVER_NAMES,
    CalDAVTestServer,
    davical_missing,
    running_server,
)
from worlds import example_store

BACKENDS = (*SERVER_NAMES, "google", "graph", "ews")


@pytest.fixture(scope="session")
def ews_contract_server() -> Iterator[Any]:
    """The EWS emulator over real HTTP, one per session; every test links mailboxes of its own."""
    from calbridge_emulators.ews.server import running_emulator

    with running_emulator() as server:
        yield server


@pytest.fixture(scope="session")
def caldav_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], CalDAVTestServer]]:
    """The CalDAV server of a kind, started on first use and shared by the session."""
    started: dict[str, CalDAVTestServer] = {}
    with ExitStack() as stack:

        def server(name: str) -> CalDAVTestServer:
            if name not in started:
                postgres: str | None = None
                if name == "davical":
                    problem = davical_missing()
                    if problem:
                        pytest.skip(f"DAViCal not available: {problem}")
                    postgres = str(request.getfixturevalue("postgres_server_url"))
                folder = tmp_path_factory.mktemp(name)
                running = running_server(name, folder / "data", USERS, postgres)
                started[name] = stack.enter_context(running)
                started[name].kind = name  # type: ignore[attr-defined]
            return started[name]

        yield server


@pytest.fixture(params=SERVER_NAMES)
def caldav_server(
    request: pytest.FixtureRequest, caldav_servers: Callable[[str], CalDAVTestServer]
) -> CalDAVTestServer:
    """A running server of each kind."""
    return caldav_servers(str(request.param))


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


@pytest.fixture(params=BACKENDS)
def any_world(
    request: pytest.FixtureRequest,
    caldav_servers: Callable[[str], CalDAVTestServer],
    tmp_path: Path,
) -> Iterator[AnyWorld]:
    """A fresh booking store syncing with calendars on one backend (every one in turn)."""
    kind = str(request.param)
    side: Side
    cleanup: Callable[[], Any] = lambda: None  # noqa: E731
    if kind == "google":
        gcal = request.getfixturevalue("gcal_server")
        gcal.reset()
        side = GoogleSide(gcal)
    elif kind == "graph":
        graph = request.getfixturevalue("graph_server")
        side, cleanup = GraphSide(graph), graph.clear_faults
    elif kind == "ews":
        side = EwsSide(request.getfixturevalue("ews_contract_server"))
    else:
        side = CalDAVSide(caldav_servers(kind), kind)
    with example_store(tmp_path) as store:
        try:
            yield AnyWorld(side, store, SecretBox(SecretBox.generate_key()))
        finally:
            cleanup()
