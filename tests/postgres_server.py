"""A PostgreSQL server for the tests and the benchmark, and throwaway databases on it.

Discovery, in order: the server named by ``CALBRIDGE_TEST_POSTGRES_URL`` (CI sets it); else a
throwaway cluster started here with ``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``
(run as the ``postgres`` user when we are root, since PostgreSQL refuses to run as root), in a
temporary folder, on a free port, with its unix socket in that folder; else
:class:`PostgresUnavailable` saying why. The cluster trades durability for speed (``fsync=off``):
it only ever holds test data.

A run that is killed (SIGKILL, a CI timeout) cannot stop its cluster. Each cluster's folder
records the process that started it (``owner.pid``); starting a cluster first stops and removes
every ``calbridge-pg-*`` cluster whose owner is gone, so killed runs never pile up servers.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

ENV_URL = "CALBRIDGE_TEST_POSTGRES_URL"


class PostgresUnavailable(Exception):
    """No server is configured and none could be started; the message says why."""


def _driver_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _bindir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailable(
        f"no PostgreSQL server: set {ENV_URL}, or install PostgreSQL (initdb and pg_ctl "
        "were found neither in /usr/lib/postgresql/*/bin nor on PATH)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PostgresUnavailable(f"{what} failed: {' / '.join(tail)}")


OWNER_FILE = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphan_clusters(bindir: Path, parent: Path | None = None) -> list[Path]:
    """Stop and remove the throwaway clusters whose owning process is gone; the folders reaped."""
    reaped = []
    for folder in Path(parent or tempfile.gettempdir()).glob("calbridge-pg-*"):
        try:
            owner = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours to judge (being set up, or from before owners were recorded)
        if _alive(owner):
            continue
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "pg_ctl"),
                "-D",
                str(folder / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)
        reaped.append(folder)
    return reaped


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a private cluster; yield its server URL (the ``postgres`` database); remove it."""
    bindir = _bindir()
    reap_orphan_clusters(bindir)
    folder = Path(tempfile.mkdtemp(prefix="calbridge-pg-"))
    (folder / OWNER_FILE).write_text(str(os.getpid()))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise PostgresUnavailable("running as root and there is no 'postgres' user") from exc
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, log, port = folder / "data", folder / "server.log", free_port()
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        _run([*as_postgres, *initdb, "-E", "UTF8", "--locale=C", "--no-sync"], "initdb")
        _run([*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", options, "start"], "pg_ctl start")
        started = True
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(
                [*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True, check=False
            )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The server URL to create test databases on (see the module docstring)."""
    configured = os.environ.get(ENV_URL)
    if configured:
        yield _driver_url(configured)
        return
    with throwaway_cluster() as url:
        yield url


def admin_engine(server_url: str) -> Engine:
    """An autocommit engine on the server's maintenance database, for CREATE/DROP DATABASE."""
    return create_engine(_driver_url(server_url), isolation_level="AUTOCOMMIT")


@contextmanager
def fresh_database(admin: Engine, prefix: str = "calbridge_test") -> Iterator[str]:
    """Create an empty, uniquely named database on the server; yield its URL; drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with suppress(Exception), admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
