"""Real CalDAV servers besides Radicale, started for the contract tests and benchmarks.

* **Xandikos** (PyPI ``xandikos``, in the ``dev`` extra): ``python -m xandikos serve`` on a free
  loopback port over a temporary folder. It asks for no authentication (any credentials are
  accepted), and every calendar collection is a git repository: each PUT is a commit.
* **DAViCal** (Debian ``davical``; ``scripts/setup-davical.sh`` installs it and points its
  configuration at ``CALBRIDGE_DAVICAL_PG``): a throwaway database is created on a PostgreSQL
  server with DAViCal's own ``create-database.sh``, users are added to it, and DAViCal runs
  under PHP's built-in web server on a free loopback port with that database in its
  environment. :func:`davical_missing` says why DAViCal cannot be started here, if it cannot.

Both handles offer what :class:`calbridge_emulators.radicale.RadicaleServer` offers
(``make_calendar``, ``put_ics``, ``get_ics``, ``delete``, ``client``) so tests and benchmarks
treat every server alike; :func:`running_server` starts any of the three by name. As with
Radicale, the helpers change a calendar "as a person would", with plain PUT/DELETE.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import httpx
from sqlalchemy.engine import make_url

from calbridge_emulators.radicale import free_port, running_radicale

STARTUP_TIMEOUT = 30.0
SERVER_NAMES = ("radicale", "xandikos", "davical")
DAVICAL_HTDOCS = Path("/usr/share/davical/htdocs")
DAVICAL_DBA = Path("/usr/share/davical/dba/create-database.sh")
DAVICAL_CONFIG = Path("/etc/davical/config.php")
DAVICAL_MARKER = "calbridge contract tests"  # written by scripts/setup-davical.sh


class ServerStartError(RuntimeError):
    """A CalDAV server did not come up; the message carries the tail of its log."""


class CalDAVTestServer(Protocol):
    """What tests and benchmarks use of a running server (Radicale's handle fits too)."""

    url: str
    users: dict[str, str]

    def client(self, user: str) -> httpx.Client: ...

    def make_calendar(self, user: str, name: str, displayname: str = "") -> str: ...

    def put_ics(self, url: str, ics: str | bytes) -> str | None: ...

    def get_ics(self, url: str) -> str | None: ...

    def delete(self, url: str) -> None: ...

    def stop(self) -> None: ...


def _mkcalendar_body(displayname: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"<D:set><D:prop><D:displayname>{escape(displayname)}</D:displayname>"
        "<C:supported-calendar-component-set><C:comp name='VEVENT'/>"
        "</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"
    )


@dataclass
class _DavServer:
    """Shared helpers: one kept-alive client per user, the user read from the URL's path."""

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
            "MKCALENDAR", url, content=_mkcalendar_body(displayname or name)
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
        _stop(self.process, group=self.own_group)

    def _client_for(self, url: str) -> httpx.Client:
        path = urlsplit(url).path[len(self.prefix) :]
        return self.client(path.strip("/").split("/", 1)[0])


@dataclass
class XandikosServer(_DavServer):
    """A running Xandikos. No authentication: the users only name the folders."""

    def make_calendar(self, user: str, name: str, displayname: str = "") -> str:
        home = f"{self.url}/{quote(user)}/"
        made = self.client(user).request("MKCOL", home)  # Xandikos wants the parent first
        if made.status_code not in (201, 405):
            raise RuntimeError(f"MKCOL {home}: {made.status_code} {made.text[:200]}")
        return super().make_calendar(user, name, displayname)


@dataclass
class DavicalServer(_DavServer):
    """A running DAViCal on its own throwaway database (dropped by :meth:`stop`)."""

    database: str = ""
    pg_env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        super().stop()
        if self.database:
            subprocess.run(
                ["dropdb", "--if-exists", "--force", self.database],
                env=self.pg_env,
                capture_output=True,
                check=False,
                timeout=60,
            )


def _stop(process: subprocess.Popen[bytes], *, group: bool = False) -> None:
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


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(
                f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            httpx.request("OPTIONS", url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    _stop(process)
    raise ServerStartError(
        f"{what} did not answer on {url} within {STARTUP_TIMEOUT:.0f} s: {log.read_text()[-2000:]}"
    )


@contextlib.contextmanager
def running_xandikos(data_dir: Path, users: dict[str, str]) -> Iterator[XandikosServer]:
    """Start Xandikos on 127.0.0.1 (a free port) serving ``data_dir``; stop it on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-xandikos.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xandikos",
                "serve",
                "-d",
                str(data_dir),
                "-l",
                "127.0.0.1",
                "-p",
                str(port),
                "--no-detect-systemd",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = XandikosServer(f"http://127.0.0.1:{port}", dict(users), process)
        try:
            _wait_until_up(process, server.url + "/", log_path, "Xandikos")
            yield server
        finally:
            server.stop()


def davical_missing() -> str | None:
    """Why DAViCal cannot be started here (None when it can)."""
    if not (DAVICAL_HTDOCS / "caldav.php").is_file() or not DAVICAL_DBA.is_file():
        return "Debian's davical package is not installed (scripts/setup-davical.sh installs it)"
    for tool in ("php", "psql", "createdb", "dropdb"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH (scripts/setup-davical.sh installs what DAViCal needs)"
    try:
        configured = DAVICAL_MARKER in DAVICAL_CONFIG.read_text(encoding="utf-8")
    except OSError:
        configured = False
    if not configured:
        return f"{DAVICAL_CONFIG} was not written by scripts/setup-davical.sh; run it (as root)"
    return None


@contextlib.contextmanager
def running_davical(
    data_dir: Path, users: dict[str, str], postgres_url: str
) -> Iterator[DavicalServer]:
    """Create a DAViCal database on the PostgreSQL server at ``postgres_url`` (a superuser
    URL, as the test suite's), add ``users``, serve DAViCal on a free loopback port; on exit
    stop it and drop the database."""
    problem = davical_missing()
    if problem:
        raise ServerStartError(f"DAViCal cannot start: {problem}")
    data_dir.mkdir(parents=True, exist_ok=True)
    server_url = make_url(postgres_url)
    pg_env = {
        **os.environ,
        "PGHOST": server_url.host or "127.0.0.1",
        "PGPORT": str(server_url.port or 5432),
        "PGUSER": server_url.username or "postgres",
        "PGOPTIONS": "--client-min-messages=warning",
    }
    if server_url.password:
        pg_env["PGPASSWORD"] = server_url.password
    database = f"davical_{uuid.uuid4().hex[:10]}"
    created = subprocess.run(
        ["sh", str(DAVICAL_DBA), database, users.get("admin", uuid.uuid4().hex)],
        env=pg_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if created.returncode != 0 or "ERROR" in created.stdout + created.stderr:
        subprocess.run(["dropdb", "--if-exists", database], env=pg_env, check=False)
        raise ServerStartError(
            f"DAViCal's create-database.sh failed: {(created.stdout + created.stderr)[-2000:]}"
        )
    _add_davical_users(database, users, pg_env)
    port = free_port()
    env = {
        **os.environ,
        "CALBRIDGE_DAVICAL_PG": (
            f"host={pg_env['PGHOST']} port={pg_env['PGPORT']} dbname={database} user=davical_app"
            + (f" password={server_url.password}" if server_url.password else "")
        ),
        "PHP_CLI_SERVER_WORKERS": "4",
    }
    log_path = data_dir / "davical.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["php", "-S", f"127.0.0.1:{port}", "-t", str(DAVICAL_HTDOCS)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=data_dir,
            start_new_session=True,  # its workers share its process group: stopped together
        )
        server = DavicalServer(
            f"http://127.0.0.1:{port}",
            dict(users),
            process,
            prefix="/caldav.php",
            own_group=True,
            database=database,
            pg_env=pg_env,
        )
        try:
            _wait_until_up(process, server.url + "/caldav.php/", log_path, "DAViCal")
            yield server
        finally:
            server.stop()


def _add_davical_users(database: str, users: dict[str, str], pg_env: dict[str, str]) -> None:
    """Each user as DAViCal's admin pages would create them: a ``usr`` row (``**`` marks a
    plain-text password) and its ``principal``."""
    statements = []
    for user, password in users.items():
        if user == "admin":
            continue
        name, secret = _sql_text(user), _sql_text("**" + password)
        statements.append(
            "INSERT INTO usr (active, email_ok, updated, username, password, fullname, email) "
            f"VALUES (TRUE, current_date, current_date, {name}, {secret}, {name}, "
            f"{_sql_text(user + '@example.invalid')});"
            "INSERT INTO principal (type_id, user_no, displayname, default_privileges) "
            f"VALUES (1, currval('usr_user_no_seq'), {name}, 0::BIT(24));"
        )
    done = subprocess.run(
        ["psql", "-qXAt", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", "".join(statements)],
        env=pg_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise ServerStartError(f"adding DAViCal users failed: {done.stderr[-1000:]}")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@contextlib.contextmanager
def running_server(
    name: str, data_dir: Path, users: dict[str, str], postgres_url: str | None = None
) -> Iterator[CalDAVTestServer]:
    """Start the server called ``name`` (one of :data:`SERVER_NAMES`); DAViCal needs
    ``postgres_url``."""
    if name == "radicale":
        with running_radicale(data_dir, users) as radicale:
            yield radicale
    elif name == "xandikos":
        with running_xandikos(data_dir, users) as xandikos:
            yield xandikos
    elif name == "davical":
        if postgres_url is None:
            raise ServerStartError("DAViCal needs a PostgreSQL server URL")
        with running_davical(data_dir, users, postgres_url) as davical:
            yield davical
    else:
        raise ValueError(f"unknown CalDAV server {name!r}; choose from {', '.join(SERVER_NAMES)}")
