"""What every CalDAV test server handle shares (Radicale, Xandikos, DAViCal): a kept-alive
HTTP client per user, a person's changes as plain MKCALENDAR/PUT/GET/DELETE, starting on a
free loopback port and waiting — with a deadline — until the server answers, and stopping
it (with its workers) again. :mod:`.radicale` and :mod:`.caldav_servers` build on it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import httpx

STARTUP_TIMEOUT = 30.0


class ServerStartError(RuntimeError):
    """A CalDAV server did not come up; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mkcalendar_body(displayname: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"<D:set><D:prop><D:displayname>{escape(displayname)}</D:displayname>"
        "<C:supported-calendar-component-set><C:comp name='VEVENT'/>"
        "</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"
    )


@dataclass
class DavServer:
    """A running CalDAV server: one kept-alive client per user (the user read from the URL's
    path), and what a person's client does — MKCALENDAR, PUT, GET, DELETE — unconditionally."""

    url: str
    users: dict[str, str]
    process: subprocess.Popen[bytes]
    prefix: str = ""  # the path under which users' homes live ("/caldav.php" for DAViCal)
    own_group: bool = False  # started in its own process group (stopped as a whole)
    _clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, user: str) -> httpx.Client:
        if user not in self._clients:
            self._clients[user] = httpx.Client(auth=(user, self.users[user]), timeout=60)
        return self._clients[user]

    def calendar_url(self, user: str, name: str) -> str:
        return f"{self.url}{self.prefix}/{quote(user)}/{quote(name)}/"

    def make_calendar(self, user: str, name: str, displayname: str = "") -> str:
        url = self.calendar_url(user, name)
        response = self.client(user).request(
            "MKCALENDAR", url, content=mkcalendar_body(displayname or name)
        )
        if response.status_code != 201:
            raise RuntimeError(f"MKCALENDAR {url}: {response.status_code} {response.text[:200]}")
        return url

    def put_ics(self, url: str, ics: str | bytes) -> str | None:
        response = self._client_for(url).put(
            url, content=ics, headers={"Content-Type": "text/calendar; charset=utf-8"}
        )
        if response.status_code not in (200, 201, 204):
            raise RuntimeError(f"PUT {url}: {response.status_code} {response.text[:200]}")
        etag: str | None = response.headers.get("ETag")
        return etag

    def get_ics(self, url: str) -> str | None:
        response = self._client_for(url).get(url)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.text

    def delete(self, url: str) -> None:
        response = self._client_for(url).delete(url)
        if response.status_code not in (200, 204, 404):
            raise RuntimeError(f"DELETE {url}: {response.status_code} {response.text[:200]}")

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        stop_process(self.process, group=self.own_group)

    def _client_for(self, url: str) -> httpx.Client:
        path = urlsplit(url).path[len(self.prefix) :]
        return self.client(path.strip("/").split("/", 1)[0])


def stop_process(process: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """Stop ``process``; with ``group``, its whole process group (PHP's built-in server forks
    worker processes that outlive their parent when only the parent is stopped)."""

    def signal_it(number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, number)
            else:
                process.send_signal(number)

    if process.poll() is None or group:
        signal_it(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            signal_it(signal.SIGKILL)
            process.wait()
        if group:  # the workers, whatever the parent did
            signal_it(signal.SIGKILL)


def wait_until_up(
    process: subprocess.Popen[bytes],
    url: str,
    log: Path,
    what: str,
    *,
    timeout: float = STARTUP_TIMEOUT,
    error: type[ServerStartError] = ServerStartError,
    group: bool = False,
) -> None:
    """Poll ``url`` until the server answers; an error carrying its log when it exits or
    does not answer within ``timeout`` seconds (then it is stopped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise error(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            httpx.request("OPTIONS", url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    stop_process(process, group=group)
    raise error(f"{what} did not answer on {url} within {timeout:.0f} s: {log.read_text()[-2000:]}")
