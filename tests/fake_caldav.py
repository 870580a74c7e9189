"""A small CalDAV server for tests that need a server to misbehave on purpose.

Real HTTP on a free port (``http.server`` in a thread), speaking just enough CalDAV for
calbridge's provider: PROPFIND on the collection (a calendar that supports sync-collection),
REPORT sync-collection (every object, always), REPORT calendar-multiget and GET. What it
serves is set by the test, byte for byte: objects that are not iCalendar, not UTF-8, cut short;
an object whose calendar-data comes in a 404 propstat; or a whole listing/multiget body replaced
by something that is not XML at all. Radicale is used wherever a well-behaved server is wanted;
this one exists because Radicale refuses to store the broken objects these tests need.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HREF = re.compile(rb"<(?:[A-Za-z0-9]+:)?href>([^<]*)</(?:[A-Za-z0-9]+:)?href>")
MULTISTATUS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
)


def xml_text(data: bytes) -> bytes:
    """``data`` escaped as XML character data, byte for byte (bad bytes stay bad)."""
    return data.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")


@dataclass
class Collection:
    """What the fake server holds: object name → raw bytes, and how to misbehave."""

    objects: dict[str, bytes] = field(default_factory=dict)
    data_in_404: set[str] = field(default_factory=set)  # calendar-data in a 404 propstat
    cdata: set[str] = field(default_factory=set)  # calendar-data wrapped in CDATA
    listing_body: bytes | None = None  # replaces the whole sync-collection answer
    multiget_body: bytes | None = None  # replaces every calendar-multiget answer


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha1(data).hexdigest()[:16] + '"'


class FakeCalDAV:
    """``url(path)`` is a calendar collection whose content is ``collections[path]``."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self.collections: dict[str, Collection] = {}
        self.requests = 0

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{path.strip('/')}/"

    def serve(self, path: str, collection: Collection) -> str:
        self.collections[path.strip("/")] = collection
        return self.url(path)

    # -------------------------------------------------------------- answers

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        self.requests += 1
        name, _, item = path.strip("/").partition("/")
        collection = self.collections.get(name)
        if collection is None:
            return 404, b"", {}
        base = f"/{name}/".encode()
        if method == "GET":
            data = collection.objects.get(item)
            if data is None:
                return 404, b"", {}
            return 200, data, {"ETag": etag_of(data), "Content-Type": "text/calendar"}
        if method == "PROPFIND":
            return 207, self._collection_props(base), {}
        if method == "REPORT" and b"sync-collection" in body:
            return 207, collection.listing_body or self._listing(base, collection), {}
        if method == "REPORT" and b"calendar-multiget" in body:
            if collection.multiget_body is not None:
                return 207, collection.multiget_body, {}
            hrefs = [h.decode() for h in _HREF.findall(body)]
            return 207, self._multiget(hrefs, base, collection), {}
        return 405, b"", {}

    @staticmethod
    def _collection_props(base: bytes) -> bytes:
        return (
            MULTISTATUS + b"<D:response><D:href>" + base + b"</D:href><D:propstat><D:prop>"
            b"<D:resourcetype><D:collection/><C:calendar/></D:resourcetype>"
            b"<D:supported-report-set><D:supported-report><D:report><D:sync-collection/>"
            b"</D:report></D:supported-report></D:supported-report-set>"
            b"</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
            b"</D:multistatus>"
        )

    @staticmethod
    def _listing(base: bytes, collection: Collection) -> bytes:
        parts = [MULTISTATUS]
        for name, data in collection.objects.items():
            parts.append(
                b"<D:response><D:href>" + base + name.encode() + b"</D:href><D:propstat><D:prop>"
                b"<D:getetag>" + xml_text(etag_of(data).encode()) + b"</D:getetag></D:prop>"
                b"<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
            )
        parts.append(b"<D:sync-token>http://fake/sync/1</D:sync-token></D:multistatus>")
        return b"".join(parts)

    @staticmethod
    def _multiget(hrefs: list[str], base: bytes, collection: Collection) -> bytes:
        parts = [MULTISTATUS]
        for href in hrefs:
            name = href.rsplit("/", 1)[-1]
            data = collection.objects.get(name)
            start = b"<D:response><D:href>" + base + name.encode() + b"</D:href>"
            if data is None:
                parts.append(start + b"<D:status>HTTP/1.1 404 Not Found</D:status></D:response>")
                continue
            etag = b"<D:getetag>" + xml_text(etag_of(data).encode()) + b"</D:getetag>"
            cdata = name in collection.cdata
            content = b"<![CDATA[" + data + b"]]>" if cdata else xml_text(data)
            if name in collection.data_in_404:
                props = (
                    b"<D:propstat><D:prop>" + etag + b"</D:prop><D:status>HTTP/1.1 200 OK"
                    b"</D:status></D:propstat><D:propstat><D:prop><C:calendar-data>" + content
                    + b"</C:calendar-data></D:prop><D:status>HTTP/1.1 404 Not Found</D:status>"
                    b"</D:propstat>"
                )  # fmt: skip
            else:
                props = (
                    b"<D:propstat><D:prop>" + etag + b"<C:calendar-data>" + content
                    + b"</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status>"
                    b"</D:propstat>"
                )  # fmt: skip
            parts.append(start + props + b"</D:response>")
        parts.append(b"</D:multistatus>")
        return b"".join(parts)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeCalDAV

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, content, headers = self.server.fake.answer(  # type: ignore[attr-defined]
            self.command, self.path, body
        )
        self.send_response(status)
        headers.setdefault("Content-Type", 'application/xml; charset="utf-8"')
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_PROPFIND = do_REPORT = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the outcome, not an access log."""


@contextmanager
def running_fake_caldav() -> Iterator[FakeCalDAV]:
    """A fake CalDAV server on a free port of 127.0.0.1, stopped on leaving."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    fake = FakeCalDAV(server)
    server.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="fake-caldav", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
