"""The admin UI in a real browser: Debian's Chromium driven by pytest-playwright against a
running ``calbridge serve`` subprocess, with a real Radicale.

One world serves the whole module set (starting Chromium, Radicale and the service once keeps
the suite fast); each test makes its own calendars and bookings under its own names, so tests
never depend on one another. The world holds:

- the example directory plus two users sharing ``front-desk@harbour.example`` (so a booking
  from that address is *ambiguous*);
- admin ``admin@venue.example`` and viewer ``viewer@venue.example`` (passwords below);
- calendar ``broken`` on Radicale with a wrong password, so the service's first poll puts it
  in state ``auth_expired`` with a hint;
- a Radicale user ``ann`` with a calendar ``work`` holding one event organized by
  ann.lee@acme.example (tests add it through the UI).

Tests skip, with the reason, only when ``/usr/bin/chromium`` is absent (``.ci/run`` installs
it with apt-get). Screenshots go to ``docs/screenshots/`` when ``CALBRIDGE_SCREENSHOTS=1``
(the README's images are made that way), else to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from web_helpers import (
    ADMIN,
    CHROMIUM,
    RADICALE_USERS,
    REPO,
    SCREENSHOTS,
    START_TIMEOUT,
    VIEWER,
    WebWorld,
    add_unchecked,
    wait_until,
)

from calbridge.store.db import open_store
from calbridge.store.directory import import_directory
from calbridge.web.auth import create_admin
from calbridge_cli import CALBRIDGE
from calbridge_emulators.radicale import running_radicale
from postgres_server import free_port

if not CHROMIUM.exists():
    pytest.skip(
        "the browser tests need Debian's Chromium at /usr/bin/chromium "
        "(apt-get install -y chromium; .ci/run installs it)",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium (Playwright's download is not used)."""
    return {
        "executable_path": str(CHROMIUM),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def _directory() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / "docs" / "examples" / "directory.json").read_text())
    for uid, name in (("u-sam", "Sam Front"), ("u-sal", "Sal Front")):
        data["users"].append(
            {
                "id": uid,
                "name": name,
                "type": "named",
                "active": True,
                "email_accounts": [{"address": "front-desk@harbour.example", "primary": True}],
            }
        )
    return data


@pytest.fixture(scope="session")
def web_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    root = tmp_path_factory.mktemp("web")
    data_dir = root / "data"
    data_dir.mkdir()
    db_url = f"sqlite:///{data_dir / 'calbridge.db'}"
    store = open_store(db_url)
    with store.session() as s:
        import_directory(s, json.dumps(_directory()))
        create_admin(s, *ADMIN, role="admin")
        create_admin(s, *VIEWER, role="viewer")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    env |= {"CALBRIDGE_DATA_DIR": str(data_dir), "CALBRIDGE_DATABASE_URL": db_url}
    with running_radicale(root / "radicale", RADICALE_USERS) as radicale:
        broken_url = radicale.make_calendar("ann", "broken")
        add_unchecked(store, data_dir, "broken", broken_url, "not-the-password")
        port = free_port()
        log = (root / "serve.log").open("wb")
        process = subprocess.Popen(
            [CALBRIDGE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env | {"CALBRIDGE_POLL_CALDAV_SECONDS": "3600", "NO_COLOR": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _answers(url, process), "calbridge serve to answer", START_TIMEOUT)
            shots = SCREENSHOTS if os.environ.get("CALBRIDGE_SCREENSHOTS") == "1" else root
            shots.mkdir(parents=True, exist_ok=True)
            yield WebWorld(url, store, radicale, data_dir, shots)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
            store.dispose()


def _answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"calbridge serve exited with {process.returncode}")
    try:
        return httpx.get(url + "/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def world(web_world: WebWorld) -> WebWorld:
    return web_world
