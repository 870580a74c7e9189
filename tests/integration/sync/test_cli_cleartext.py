"""`calbridge calendars add` warns on stderr, in one line, when the password would go over
plain http:// to another host — and not for https or this machine.

The "other host" is a name that never leaves this machine: the CLI runs with ``HTTP_PROXY``
pointing at a small local forward proxy that relays every request to the test Radicale, as a
company proxy would relay it to the real server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sync_helpers import USERS

from calbridge_emulators.radicale import RadicaleServer
from worlds import EXAMPLE

FAR_HOST = "dav.calendars.example"


@pytest.fixture
def forward_proxy(radicale: RadicaleServer) -> Iterator[tuple[str, list[str]]]:
    """A forward proxy on 127.0.0.1 relaying to Radicale; yields its URL and the hosts asked."""
    asked: list[str] = []
    client = httpx.Client(timeout=30)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def __getattr__(self, name: str) -> Any:
            if name.startswith("do_"):
                return self._relay
            raise AttributeError(name)

        def _relay(self) -> None:
            target = urlsplit(self.path)  # a forward proxy gets the absolute URL
            asked.append(target.hostname or "")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "connection", "content-length", "proxy-connection")
            }
            answer = client.request(
                self.command, radicale.url + target.path, content=body, headers=headers
            )
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in ("content-length", "content-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()
    client.close()


def calbridge(tmp_path: Path, *args: str, proxy: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env = {k: v for k, v in env.items() if not k.startswith("CALBRIDGE_")}
    env.update(CALBRIDGE_DATA_DIR=str(tmp_path / "data"), CALBRIDGE_PW=USERS["staff"])
    if proxy:
        env.update(HTTP_PROXY=proxy, NO_PROXY="")
    return subprocess.run(
        [sys.executable, "-m", "calbridge.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def add(tmp_path: Path, name: str, url: str, proxy: str = "") -> subprocess.CompletedProcess[str]:
    return calbridge(
        tmp_path,
        "calendars",
        "add",
        name,
        "--caldav",
        url,
        "--username",
        "staff",
        "--password-env",
        "CALBRIDGE_PW",
        proxy=proxy,
    )


def test_calendars_add_warns_once_when_the_password_would_cross_the_network_in_clear(
    radicale: RadicaleServer, forward_proxy: tuple[str, list[str]], tmp_path: Path
) -> None:
    proxy, asked = forward_proxy
    assert calbridge(tmp_path, "directory", "import", str(EXAMPLE)).returncode == 0
    path = urlsplit(radicale.make_calendar("staff", "far-away")).path
    added = add(tmp_path, "far", f"http://{FAR_HOST}{path}", proxy)
    assert added.returncode == 0, added.stderr
    assert FAR_HOST in asked  # the CLI really talked to the far host (through the proxy)
    warnings = [line for line in added.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: the password of user 'staff' will be sent unencrypted (HTTP Basic over "
        f"plain http://) to {FAR_HOST} on every sync; use the server's https:// URL unless "
        "this network is trusted"
    ]
    assert "Added calendar 'far'" in added.stdout


def test_calendars_add_on_this_machine_gives_no_warning(
    radicale: RadicaleServer, tmp_path: Path
) -> None:
    assert calbridge(tmp_path, "directory", "import", str(EXAMPLE)).returncode == 0
    added = add(tmp_path, "near", radicale.make_calendar("staff", "near-by"))
    assert added.returncode == 0, added.stderr
    assert "warning" not in added.stderr


def test_calendars_update_to_a_far_plain_http_url_warns_too(
    radicale: RadicaleServer, forward_proxy: tuple[str, list[str]], tmp_path: Path
) -> None:
    proxy, _ = forward_proxy
    assert calbridge(tmp_path, "directory", "import", str(EXAMPLE)).returncode == 0
    url = radicale.make_calendar("staff", "moving")
    assert add(tmp_path, "moving", url).returncode == 0
    moved = calbridge(
        tmp_path,
        "calendars",
        "update",
        "moving",
        "--caldav",
        f"http://{FAR_HOST}{urlsplit(url).path}",
        proxy=proxy,
    )
    assert moved.returncode == 0, moved.stderr
    assert [line for line in moved.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: the password of user 'staff' will be sent unencrypted (HTTP Basic over "
        f"plain http://) to {FAR_HOST} on every sync; use the server's https:// URL unless "
        "this network is trusted"
    ]
