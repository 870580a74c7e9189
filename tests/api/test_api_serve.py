"""The API of a real ``calbridge serve`` subprocess: tokens made with the CLI, auth enforced,
a booking created through the API reaches its CalDAV calendar (a real Radicale) without a
manual sync, and the token appears in no response and no log line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from api_client import RADICALE_USERS

import waits
from calbridge.ops.directory import import_directory
from calbridge.store.db import open_store
from calbridge_emulators.radicale import RadicaleServer
from postgres_server import free_port

CALBRIDGE = str(Path(sys.executable).parent / "calbridge")
T = TypeVar("T")


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy (``waits.wait_until``, argument order
    of these service tests)."""
    return waits.wait_until(check, what, timeout=timeout, interval=0.1)


@pytest.fixture
def env(tmp_path: Path, example_directory_text: str) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'calbridge.db'}"
    store = open_store(url)
    with store.session() as s:
        import_directory(s, example_directory_text, actor="test")
    store.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    return env | {
        "CALBRIDGE_DATA_DIR": str(tmp_path / "data"),
        "CALBRIDGE_DATABASE_URL": url,
        "CALBRIDGE_SECRET_KEY": "serve-api-test-key",
        "CALBRIDGE_SCHEDULER_TICK_SECONDS": "0.2",
        "CALBRIDGE_POLL_CALDAV_SECONDS": "3600",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALBRIDGE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def serve(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CALBRIDGE, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError("calbridge serve exited:\n" + log.read_text()[-3000:])
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, 60, "calbridge serve to answer /healthz")
        yield url, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_api_of_the_running_service(
    env: dict[str, str], serve: tuple[str, Path], radicale: RadicaleServer
) -> None:
    url, log = serve
    made = cli(env, "tokens", "create", "booking-site", "--json")
    assert made.returncode == 0, made.stderr
    token = made.stdout.split('"token": "')[1].split('"')[0]
    reader = cli(env, "tokens", "create", "wallboard", "--read-only", "--json")
    read_token = reader.stdout.split('"token": "')[1].split('"')[0]
    listed = cli(env, "tokens", "list")
    assert "booking-site" in listed.stdout and token not in listed.stdout
    rw = {"Authorization": f"Bearer {token}"}
    ro = {"Authorization": f"Bearer {read_token}"}

    with httpx.Client(base_url=url, timeout=30) as http:
        refused = http.get("/api/bookings")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")

        collection = radicale.make_calendar("ann", "served")
        add = {
            "name": "front",
            "connection": {
                "kind": "caldav",
                "url": collection,
                "username": "ann",
                "password": RADICALE_USERS["ann"],
            },
        }
        added = http.post("/api/calendars", json=add, headers=rw)
        assert added.status_code == 201, added.text

        booking: dict[str, Any] = {
            "name": "Gala via API",
            "start": "2027-06-01T18:00:00",
            "end": "2027-06-01T23:00:00",
            "timezone": "Europe/Berlin",
            "booker": "ann.lee@acme.example",
            "calendars": ["front"],
        }
        assert http.post("/api/bookings", json=booking, headers=ro).status_code == 403
        created = http.post("/api/bookings", json=booking, headers=rw)
        assert created.status_code == 201, created.text
        booking_id = created.json()["id"]

        def on_calendar() -> bool:
            links = http.get(f"/api/bookings/{booking_id}", headers=ro).json()["links"]
            return bool(links) and links[0]["in_sync"]

        wait_until(on_calendar, 60, "the API booking to be written to the CalDAV calendar")
        objects = radicale.client("ann").request("PROPFIND", collection, headers={"Depth": "1"})
        assert objects.text.count(".ics") == 1
        runs = http.get("/api/runs?calendar=front", headers=ro).json()["items"]
        assert any(run["result"] == "ok" for run in runs)  # the test asked for no sync itself

    assert cli(env, "tokens", "revoke", "booking-site").returncode == 0
    assert httpx.get(f"{url}/api/bookings", headers=rw, timeout=10).status_code == 401
    assert token not in log.read_text(encoding="utf-8", errors="replace")
