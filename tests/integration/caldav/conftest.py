"""A real Radicale for the CalDAV provider tests, and a fault-injecting proxy in front of it.

One Radicale serves the whole session (it starts in a fraction of a second, but hundreds of
starts add up); every test gets its own fresh calendar, so tests never see each other's data.

The proxy is a real HTTP server forwarding to Radicale. Tests script faults into it — a 500, a
429 with Retry-After, a dropped connection before or *after* Radicale handled the request (the
"response lost" case that makes idempotent creates necessary) — so retries are exercised over
real sockets against the real server, not against a mock that agrees with the code.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from calbridge.domain.remote import Window
from calbridge.providers.caldav.provider import CalDAVProvider
from calbridge.providers.retry import RetryPolicy
from calbridge_emulators.radicale import RadicaleServer, running_radicale

USERS = {"ann": "ann-secret", "bob": "bob-secret"}
WINDOW = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))
FAST_RETRY = RetryPolicy(attempts=4, base=0.001, cap=0.05, jitter=0.5)
_names = itertools.count(1)


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with running_radicale(tmp_path_factory.mktemp("radicale"), USERS) as server:
        yield server


@dataclass
class Calendar:
    """A fresh calendar of user ann, and a way to build providers for it."""

    server: RadicaleServer
    url: str

    def provider(self, **options: Any) -> CalDAVProvider:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("name", "work")
        return CalDAVProvider(self.url, "ann", USERS["ann"], **options)

    def href(self, name: str) -> str:
        return httpx.URL(self.url).path + name

    def put(self, name: str, ics: str) -> str | None:
        """Store an object the way a person's calendar client would."""
        return self.server.put_ics(self.url + name, ics)

    def text(self, name: str) -> str | None:
        return self.server.get_ics(self.url + name)


@pytest.fixture
def calendar(radicale: RadicaleServer) -> Calendar:
    return Calendar(radicale, radicale.make_calendar("ann", f"cal{next(_names)}"))


class FaultProxy:
    """Forwards every request to ``upstream`` unless a scripted fault is due.

    Faults (consumed in order, for requests whose method matches, or any method when None):
    ``"500"``/``"503"``/…: answer that status; ``"429:N"``: 429 with ``Retry-After: N``;
    ``"drop"``: close the connection without answering; ``"drop-after"``: forward the request
    to Radicale, then close the connection without relaying the answer; ``"no-etag"``: relay
    the answer without its ETag header (as some servers do after a PUT).

    Rewrites (:meth:`rewrite`) change the body of a relayed answer — to play a server that
    answers in a way Radicale never does (no sync-token, damaged bytes, cut XML).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: deque[tuple[str | None, str]] = deque()
        self.log: list[tuple[str, str, int | None]] = []  # method, path, status relayed
        self.rewrites: list[tuple[str, bytes, Callable[[bytes], bytes], bool]] = []
        self._client = httpx.Client(timeout=30)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, *faults: str, method: str | None = None) -> None:
        self.faults.extend((method, fault) for fault in faults)

    def rewrite(
        self,
        change: Callable[[bytes], bytes],
        method: str,
        when: bytes = b"",
        *,
        keep: bool = False,
    ) -> None:
        """Pass the answer body of the next ``method`` request whose body contains ``when``
        through ``change`` (every such request when ``keep``)."""
        self.rewrites.append((method, when, change, keep))

    def _rewrite(self, method: str, body: bytes, content: bytes) -> bytes:
        for index, (wanted, when, change, keep) in enumerate(self.rewrites):
            if wanted == method and when in body:
                if not keep:
                    del self.rewrites[index]
                return change(content)
        return content

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def _next_fault(self, method: str) -> str | None:
        for index, (wanted, fault) in enumerate(self.faults):
            if wanted is None or wanted == method:
                del self.faults[index]
                return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):
                    return self._relay
                raise AttributeError(name)

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._next_fault(self.command)
                if fault == "drop":
                    proxy.log.append((self.command, self.path, None))
                    self.close_connection = True
                    return
                if fault is not None and fault not in ("drop-after", "no-etag"):
                    status, _, wait = fault.partition(":")
                    proxy.log.append((self.command, self.path, int(status)))
                    self.send_response(int(status))
                    if wait:
                        self.send_header("Retry-After", wait)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "connection", "content-length", "accept-encoding")
                }
                answer = proxy._client.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers
                )
                if fault == "drop-after":
                    proxy.log.append((self.command, self.path, None))
                    self.close_connection = True
                    return
                proxy.log.append((self.command, self.path, answer.status_code))
                content = proxy._rewrite(self.command, body, answer.content)
                self.send_response(answer.status_code)
                hidden = {"content-length", "content-encoding", "connection"}
                if fault == "no-etag":
                    hidden.add("etag")
                for key, value in answer.headers.items():
                    if key.lower() not in hidden:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        return Handler


@pytest.fixture
def proxy(radicale: RadicaleServer) -> Iterator[FaultProxy]:
    faulty = FaultProxy(radicale.url)
    yield faulty
    faulty.close()


@pytest.fixture
def proxied(calendar: Calendar, proxy: FaultProxy) -> Calendar:
    """The test's calendar, reached through the fault proxy."""
    return Calendar(calendar.server, calendar.url.replace(calendar.server.url, proxy.url))


@pytest.fixture
def unused_port() -> int:
    from calbridge_emulators.dav_server import free_port

    return free_port()
