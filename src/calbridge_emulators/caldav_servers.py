"""Real CalDAV servers besides Radicale, started for the contract tests and benchmarks.

* **Xandikos** (PyPI ``xandikos``, in the ``dev`` extra): ``python -m xandikos serve`` on a free
  loopback port over a temporary folder. It asks for no authentication (any credentials are
  accepted), and every calendar collection is a git repository: each PUT is a commit.
* **DAViCal** (Debian ``davical``; ``scripts/setup-davical.sh`` installs it and points its
  configuration at ``CALBRIDGE_DAVICAL_PG``): a throwaway database is created on a PostgreSQL
  server with DAViCal's own ``create-database.sh``, users are added to it, and DAViCal runs
  under PHP's built-in web server on a free loopback port with that database in its
  environment. :func:`davical_missing` says why DAViCal cannot be started here, if it cannot.

Every handle, Radicale's too, is a :class:`calbridge_emulators.dav_server.DavServer`
(``make_calendar``, ``put_ics``, ``get_ics``, ``delete``, ``client``) so tests and benchmarks
treat every server alike; :func:`running_server` starts any of the three by name. As with
Radicale, the helpers change a calendar "as a person would", with plain PUT/DELETE.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import httpx
from sqlalchemy.engine import make_url

from calbridge_emulators.dav_server import (
    DavServer,
    ServerStartError,
    free_port,
    wait_until_up,
)
from calbridge_emulators.radicale import running_radicale

SERVER_NAMES = ("radicale", "xandikos", "davical")
DAVICAL_HTDOCS = Path("/usr/share/davical/htdocs")
DAVICAL_DBA = Path("/usr/share/davical/dba/create-database.sh")
DAVICAL_CONFIG = Path("/etc/davical/config.php")
DAVICAL_MARKER = "calbridge contract tests"  # written by scripts/setup-davical.sh


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


@dataclass
class XandikosServer(DavServer):
    """A running Xandikos. No authentication: the users only name the folders."""

    def make_calendar(self, user: str, name: str, displayname: str = "") -> str:
        home = f"{self.url}/{quote(user)}/"
        made = self.client(user).request("MKCOL", home)  # Xandikos wants the parent first
        if made.status_code not in (201, 405):
            raise RuntimeError(f"MKCOL {home}: {made.status_code} {made.text[:200]}")
        return super().make_calendar(user, name, displayname)


@dataclass
class DavicalServer(DavServer):
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
            wait_until_up(process, server.url + "/", log_path, "Xandikos")
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
            wait_until_up(process, server.url + "/caldav.php/", log_path, "DAViCal", group=True)
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
