"""A real Radicale CalDAV server in a subprocess, for tests, benchmarks and ``calbridge demo``.

Why a subprocess and not Radicale's WSGI app in a thread: the provider must be exercised over
real HTTP (keep-alive, conditional headers, request counts), and a separate process is what a
deployment looks like — it can be killed, and its storage survives it.

The generated configuration: htpasswd auth with plain passwords (bcrypt is not installed in
every environment and buys nothing for a throwaway server), ``owner_only`` rights (each user
owns ``/<user>/…``), filesystem storage under ``data_dir``, no failed-login delay (Radicale
sleeps a second by default, which would make wrong-password tests slow), and a resource-size
limit large enough to store the "10 MB description" bad event that the sync must reject.

The handle's helpers change a calendar "as a person would" — with plain PUT/DELETE — so tests
and the demo can make changes the sync engine has not seen.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from calbridge_emulators.dav_server import (
    DavServer,
    ServerStartError,
    free_port,
    wait_until_up,
)

STARTUP_TIMEOUT = 20.0
_COMPONENT = re.compile(
    r"^BEGIN:(VEVENT|VTODO|VJOURNAL|VTIMEZONE)\n.*?^END:\1\n", re.MULTILINE | re.DOTALL
)
_TZID = re.compile(r"^TZID:(.*)$", re.MULTILINE)
MAX_RESOURCE_SIZE = 64 * 1024 * 1024


class RadicaleStartError(ServerStartError):
    """Radicale did not come up; the message carries its log output."""


@dataclass
class RadicaleServer(DavServer):
    """A running Radicale. ``url`` is the server root, e.g. ``http://127.0.0.1:5232``."""

    data_dir: Path = field(default_factory=Path)

    def make_address_book(self, user: str, name: str) -> str:
        """A CardDAV address book: a collection that is not a calendar (for config checks)."""
        url = self.calendar_url(user, name)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">'
            "<D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>"
            "</D:prop></D:set></D:mkcol>"
        )
        response = self.client(user).request("MKCOL", url, content=body)
        if response.status_code != 201:
            raise RuntimeError(f"MKCOL {url}: {response.status_code} {response.text[:200]}")
        return url

    def put_collection(self, url: str, objects: Iterable[str], displayname: str = "") -> None:
        """Replace the whole calendar at ``url`` with ``objects`` in one request (Radicale's
        whole-collection PUT); each lands at ``<UID>.ics``. For seeding benchmarks and demos:
        a PUT per object costs time proportional to the calendar's size in Radicale (it checks
        the UID against every stored object), so 20,000 single PUTs would take hours. Sync
        tokens issued for the calendar before are no longer valid afterwards."""
        zones: dict[str, str] = {}
        events: list[str] = []
        for ics in objects:
            body = ics.replace("\r\n", "\n").split("\nEND:VCALENDAR", 1)[0]
            for match in _COMPONENT.finditer(body + "\n"):
                block = match.group(0)
                if block.startswith("BEGIN:VTIMEZONE"):
                    tzid = _TZID.search(block)
                    zones.setdefault(tzid.group(1) if tzid else block, block)
                else:
                    events.append(block)
        name = f"X-WR-CALNAME:{displayname}\n" if displayname else ""
        text = (
            f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//calbridge//seed//EN\n{name}"
            + "".join(zones.values())
            + "".join(events)
            + "END:VCALENDAR\n"
        ).replace("\n", "\r\n")
        response = self._client_for(url).put(
            url,
            content=text.encode(),
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            timeout=3600,
        )
        if response.status_code not in (200, 201, 204):
            raise RuntimeError(f"PUT {url}: {response.status_code} {response.text[:200]}")


def write_config(data_dir: Path, users: dict[str, str], port: int) -> Path:
    """Write htpasswd + config into ``data_dir``; return the config path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    htpasswd = data_dir / "htpasswd"
    htpasswd.write_text("".join(f"{user}:{password}\n" for user, password in users.items()))
    htpasswd.chmod(0o600)
    config = data_dir / "radicale.conf"
    config.write_text(
        "[server]\n"
        f"hosts = 127.0.0.1:{port}\n"
        f"max_resource_size = {MAX_RESOURCE_SIZE}\n"
        "delay_on_error = 0\n"
        "[auth]\n"
        "type = htpasswd\n"
        f"htpasswd_filename = {htpasswd}\n"
        "htpasswd_encryption = plain\n"
        "delay = 0\n"
        "[rights]\n"
        "type = owner_only\n"
        "[storage]\n"
        f"filesystem_folder = {data_dir / 'collections'}\n"
        "[web]\n"
        "type = none\n"
        "[logging]\n"
        "level = warning\n"
    )
    return config


@contextlib.contextmanager
def running_radicale(
    data_dir: Path, users: dict[str, str], port: int = 0
) -> Iterator[RadicaleServer]:
    """Start Radicale on 127.0.0.1 (a free port when ``port`` is 0), wait until it answers,
    yield its handle, stop it on exit. Storage in ``data_dir`` survives a restart."""
    chosen = port or free_port()
    config = write_config(data_dir, users, chosen)
    log = (data_dir / "radicale.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = RadicaleServer(f"http://127.0.0.1:{chosen}", dict(users), process, data_dir=data_dir)
    try:
        wait_until_up(
            process,
            server.url + "/",
            data_dir / "radicale.log",
            "Radicale",
            timeout=STARTUP_TIMEOUT,
            error=RadicaleStartError,
        )
        yield server
    finally:
        server.stop()
        log.close()
