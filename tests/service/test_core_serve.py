"""``calbridge serve`` on SQLite as a subprocess: polling, health, runs, clean shutdown."""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from core_service import (
    CALBRIDGE,
    USERS,
    SlowProxy,
    World,
    box,
    owner_bookings,
    wait_until,
    world_on,
)
from push_service import Inbox

from calbridge.store.models import Calendar
from calbridge.sync.calendars import add_caldav_calendar
from calbridge_emulators.radicale import RadicaleServer, running_radicale


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with running_radicale(tmp_path_factory.mktemp("radicale"), USERS) as server:
        yield server


@pytest.fixture(scope="module")
def slow_radicale(radicale: RadicaleServer) -> Iterator[SlowProxy]:
    proxy = SlowProxy(radicale.url, delay=0.15)
    yield proxy
    proxy.close()


@pytest.fixture
def world(tmp_path: Path, radicale: RadicaleServer) -> Iterator[World]:
    with world_on(tmp_path, f"sqlite:///{tmp_path / 'calbridge.db'}", radicale) as opened:
        yield opened


def test_caldav_change_is_picked_up_by_polling_without_manual_sync(world: World) -> None:
    front = world.add_calendar("front")
    with world.store.session() as session:
        calendar = session.get(Calendar, front)
        assert calendar is not None
        calendar.poll_seconds = 1  # per-calendar interval wins over the 1-hour default
    service = world.serve()
    world.put("front", "a", "Tasting")
    wait_until(lambda: world.bookings().get("Tasting") == 1, 30, "the new event as a booking")
    world.put("front", "a", "Tasting (moved)")
    wait_until(lambda: "Tasting (moved)" in world.bookings(), 30, "the edit on the booking")
    assert world.bookings() == {"Tasting (moved)": 1}

    wait_until(  # the booking is committed page by page, the run's record at its end
        lambda: any(
            run.result == "ok" and (run.counts or {}).get("updated") == 1
            for run in world.runs(front)
        ),
        30,
        "the run that applied the edit to be recorded",
    )
    runs = [run for run in world.runs(front) if run.result != "running"]
    assert {run.trigger for run in runs} == {"poll"}
    assert world.calendar(front).state == "ok"
    assert world.calendar(front).last_success_at is not None

    ready = httpx.get(f"{service.url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["workers"] >= 1
    metrics = httpx.get(f"{service.url}/metrics", timeout=5).text
    assert 'calbridge_syncs_total{kind="caldav",result="ok"}' in metrics
    assert 'calbridge_calendar_last_success_timestamp_seconds{calendar="front"}' in metrics
    assert 'calbridge_calendar_state{calendar="front",state="ok"} 1.0' in metrics
    assert "sync run front: ok" in service.output()  # one log line per sync run
    service.stop()

    listed = run_cli(world, "runs", "list", "--calendar", "front", "--json")
    assert listed.returncode == 0, listed.stderr
    history = json.loads(listed.stdout)
    assert len(history) == len(world.runs(front)) and {r["calendar_id"] for r in history} == {front}
    created = [run for run in history if run["counts"].get("created") == 1]
    assert len(created) == 1 and (created[0]["trigger"], created[0]["result"]) == ("poll", "ok")
    assert created[0]["started_at"].endswith("Z") and created[0]["requests"] >= 1
    unknown = run_cli(world, "runs", "list", "--calendar", "nope")
    assert unknown.returncode == 1
    assert "no calendar named 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr


def run_cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALBRIDGE, *args], env=world.env(), capture_output=True, text=True, timeout=60, check=False
    )


def test_sigterm_during_a_sync_exits_cleanly_and_restart_converges(
    world: World, slow_radicale: SlowProxy
) -> None:
    """SIGTERM while a sync is pushing 30 bookings to a distant server: the service stops at
    the engine's next committed step and exits 0; the next start finishes the job with no
    duplicate on either side."""
    toms = world.add_calendar("toms", user="tom", owner="u-tom", via=slow_radicale)
    world.not_due(toms)  # starts once the service answers, so the test sees it running
    owner_bookings(world.store, 30)
    world.put("toms", "a", "From the calendar")
    service = world.serve()
    world.due_now(toms)
    wait_until(lambda: any(r.result == "running" for r in world.runs()), 60, "a running sync")
    service.signal(signal.SIGTERM)
    assert service.wait(30) == 0
    assert "stopped" in service.output() and "Traceback" not in service.output()
    assert [run.result for run in world.runs()] == ["interrupted"]
    assert len(world.radicale_uids("toms")) < 31  # it really stopped half-way

    world.serve()
    wait_until(lambda: any(r.result == "ok" for r in world.runs()), 120, "a complete sync")
    names = world.bookings()
    assert len(names) == 31 and set(names.values()) == {1}
    assert world.duplicate_links() == 0
    uids = world.radicale_uids("toms")
    assert len(uids) == 31 and len(set(uids)) == 31


def test_no_worker_on_sqlite_is_a_clear_error(world: World) -> None:
    done = run_cli(world, "serve", "--no-worker", "--port", "1")
    assert done.returncode == 1
    assert "--no-worker needs PostgreSQL" in done.stderr and "Traceback" not in done.stderr


def test_the_running_service_emails_a_refused_password_and_the_recovery(
    world: World, smtp: tuple[Inbox, int]
) -> None:
    """Alerts through `calbridge serve` itself: a calendar whose password is refused emails
    its owner and the alert address once; `calendars update` with the right one ends in one
    "syncing again" email."""
    inbox, port = smtp
    url = world.radicale.make_calendar("staff", f"alerts-{world.folder.name}")
    with world.store.session() as session:
        calendar = add_caldav_calendar(
            session, box(), "front", url, "staff", "not-the-password", check=False, owner="u-mia"
        )
        calendar.poll_seconds = 1
    world.serve(
        CALBRIDGE_SMTP_HOST="127.0.0.1",
        CALBRIDGE_SMTP_PORT=str(port),
        CALBRIDGE_ALERT_EMAILS="ops@harbour.example",
    )
    wait_until(lambda: inbox.messages, 60, "the alert email")
    to, message = inbox.messages[0]
    assert sorted(to) == ["mia@harbour.example", "ops@harbour.example"]
    assert message["Subject"].startswith("calbridge: calendar 'front' ")
    body = message.get_payload()
    assert "State: auth_expired" in body and "calendars update front" in body, body

    fixed = subprocess.run(
        [CALBRIDGE, "calendars", "update", "front", "--password-env", "RIGHT"],
        env=world.env(RIGHT=USERS["staff"]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert fixed.returncode == 0, fixed.stderr
    wait_until(lambda: len(inbox.messages) >= 2, 60, "the recovery email")
    assert inbox.messages[1][1]["Subject"] == "calbridge: calendar 'front' is syncing again"
    assert len(inbox.messages) == 2


def test_an_idle_connection_stays_open_for_the_configured_keep_alive(world: World) -> None:
    """Senders (Google, Microsoft, a proxy) reuse kept-alive connections: the service must not
    close an idle one before ``keep_alive_seconds`` (uvicorn's own default is 5 s, which races
    the sender's next request into a reset), and does close it after."""
    service = world.serve(CALBRIDGE_KEEP_ALIVE_SECONDS="7")
    address = urlsplit(service.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        assert _health_on(sock).startswith(b"HTTP/1.1 200")
        readable, _, _ = select.select([sock], [], [], 6)  # past uvicorn's own 5 s
        assert not readable, "the service closed (or wrote on) an idle connection within 6 s"
        assert _health_on(sock).startswith(b"HTTP/1.1 200")  # the same connection, reused
        idle_since = time.monotonic()
        readable, _, _ = select.select([sock], [], [], 30)
        assert readable and sock.recv(1) == b"", "the idle connection was never closed"
        assert time.monotonic() - idle_since >= 6.5
    service.stop()


def _health_on(sock: socket.socket) -> bytes:
    """``GET /healthz`` on an open connection; the whole answer (headers and body)."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: calbridge\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return answer
