"""POST /api/calendars links an Exchange calendar with no ``server``: the EWS URL is
autodiscovered (the emulator on port 443, see ``tests/ews_autodiscover.py``; skipped, saying
why, when the port cannot be bound), checked, stored and shown; the CA file given is trusted
during discovery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_client import Api
from api_problem import problem

from calbridge_emulators.ews.server import EwsServer
from ews_autodiscover import DISCOVERED, private_cache, serve_on_443, stub_dns

MAILBOX = "bookings@localhost"


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Nothing here depends on the database: SQLite only."""
    return sqlite_url


@pytest.fixture(scope="module")
def port_443(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EwsServer]:
    with serve_on_443(tmp_path_factory.mktemp("ad-tls")) as server:
        server.org.add_mailbox(MAILBOX, "Localhost Bookings")
        server.org.add_account("bookings", "B00kings!pw", mailbox=MAILBOX)
        yield server


@pytest.fixture
def discovering(
    port_443: EwsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EwsServer]:
    with stub_dns(monkeypatch), private_cache(tmp_path, monkeypatch):
        yield port_443


def test_an_exchange_calendar_without_server_is_autodiscovered_and_its_url_kept(
    api: Api, discovering: EwsServer
) -> None:
    assert discovering.tls is not None
    connection = {
        "kind": "ews",
        "mailbox": MAILBOX,
        "username": "bookings",
        "password": "B00kings!pw",
    }
    refused = api.post("/api/calendars", json={"name": "front", "connection": connection})
    detail = problem(refused, 409)["detail"]
    assert "autodiscover found no Exchange server" in detail and "--ca-file" in detail
    assert api.count("calendars") == 0
    trusted = {**connection, "ca_file": str(discovering.tls.ca_path)}
    added = api.post("/api/calendars", json={"name": "front", "connection": trusted})
    assert added.status_code == 201, added.text
    assert "B00kings" not in added.text
    shown = api.get("/api/calendars/front").json()
    assert shown["connection"]["server"] == DISCOVERED
    assert api.post("/api/calendars/front/test").json()["ok"] is True
