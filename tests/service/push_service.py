"""``calbridge serve`` as a subprocess for the push tests, beside a booking store they share.

The test process opens the same database (SQLite in WAL mode) to set things up and to read
what the service did; Google and Graph emulators run in the test process and deliver their
notifications over real HTTP to the service's ``/hooks/…``. Polls are pushed far away
(an hour), so a change that arrives did so through push or through the booking watcher.
Shared by the push test modules (test directories have no ``__init__``; the name is unique
on purpose).
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import select

import waits
from calbridge.config import Settings
from calbridge.store.db import Store
from calbridge.store.models import SyncRun
from calbridge.store.secrets import SecretBox
from postgres_server import free_port

T = TypeVar("T")
SECRET_KEY = "push-tests-secret-key"
CALBRIDGE = str(Path(sys.executable).parent / "calbridge")


def shared_box() -> SecretBox:
    """The secret box the service subprocess uses too (same ``CALBRIDGE_SECRET_KEY``)."""
    return SecretBox.from_settings(Settings(secret_key=SECRET_KEY))


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy (``waits.wait_until``, argument order
    of these service tests)."""
    return waits.wait_until(check, what, timeout=timeout, interval=0.1)


@dataclass
class Service:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=10, **kwargs)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def service_env(folder: Path, database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    for key in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        env.pop(key, None)
    env |= {
        "CALBRIDGE_DATA_DIR": str(folder / "data"),
        "CALBRIDGE_DATABASE_URL": database_url,
        "CALBRIDGE_SECRET_KEY": SECRET_KEY,
        "CALBRIDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CALBRIDGE_POLL_CALDAV_SECONDS": "3600",
        "CALBRIDGE_POLL_GOOGLE_SECONDS": "3600",
        "CALBRIDGE_POLL_GRAPH_SECONDS": "3600",
        "CALBRIDGE_SCHEDULER_TICK_SECONDS": "0.2",
        "CALBRIDGE_PUSH_CHECK_SECONDS": "1",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.update(extra)
    return env


@contextmanager
def running_service(folder: Path, database_url: str, **extra_env: str) -> Iterator[Service]:
    """Start ``calbridge serve`` on a free port; stop it with SIGTERM on exit."""
    port = free_port()
    env = service_env(folder, database_url, port, **extra_env)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    log = folder / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CALBRIDGE, "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    service = Service(f"http://127.0.0.1:{port}", env, process, log)
    try:
        wait_until(lambda: _answers(service), 60, f"the service to answer\n{service.output()}")
        yield service
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _answers(service: Service) -> bool:
    if service.process.poll() is not None:
        raise AssertionError(f"the service exited early:\n{service.output()}")
    try:
        return httpx.get(service.url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def runs(store: Store, calendar_id: int) -> list[SyncRun]:
    with store.session() as session:
        return list(
            session.scalars(
                select(SyncRun).where(SyncRun.calendar_id == calendar_id).order_by(SyncRun.id)
            )
        )


def finished_runs(store: Store, calendar_id: int) -> list[SyncRun]:
    return [run for run in runs(store, calendar_id) if run.result != "running"]


class Inbox:
    """aiosmtpd handler keeping every message that arrived (parsed as a mail reader would)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"
