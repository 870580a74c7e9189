"""Benchmark: push through ``calbridge serve`` (a subprocess, SQLite), figures printed.

1. calendar edit → booking via push, at 10 and 100 Google calendars on the emulator (real
   client library, watch channels delivering to ``/hooks/google``): p50/p95 of single edits
   made one after another, and of a burst where every calendar is edited at once;
2. booking created through the REST API → event on a Google calendar: p50/p95;
3. webhook response time under 200 notifications/s (genuine Google and Graph notifications,
   so each one is verified and enqueued — and the syncs they cause run in the same process):
   p50/p99 and the slowest answer; for Google also with ``sync`` messages only (verified,
   nothing enqueued: the endpoint's own cost).

Polls are an hour apart, so every change here arrives through push or the API's own enqueue.

    python benchmarks/service_push.py                       # 10 and 100 calendars
    python benchmarks/service_push.py --calendars 10 --json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from calbridge.config import Settings
from calbridge.store.db import Store, open_store
from calbridge.store.directory import import_directory
from calbridge.store.models import Calendar, Event, Link
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_google_calendar, add_graph_calendar

KEY = "service-push-benchmark"
DIRECTORY = Path(__file__).resolve().parents[1] / "src" / "calbridge" / "demo" / "directory.json"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise SystemExit(f"benchmark: waited {seconds:.0f} s for {what} in vain")
        time.sleep(0.01)
    return time.monotonic() - started


@contextmanager
def service(folder: Path, store_url: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    env |= {
        "CALBRIDGE_DATABASE_URL": store_url,
        "CALBRIDGE_DATA_DIR": str(folder),
        "CALBRIDGE_SECRET_KEY": KEY,
        "CALBRIDGE_PUBLIC_URL": url,
        "CALBRIDGE_POLL_GOOGLE_SECONDS": "3600",
        "CALBRIDGE_POLL_GRAPH_SECONDS": "3600",
        "CALBRIDGE_SCHEDULER_TICK_SECONDS": "0.2",
        "CALBRIDGE_PUSH_CHECK_SECONDS": "1",
        "CALBRIDGE_WORKERS": "4",
    }
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env.pop(name, None)
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "calbridge.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:

        def answers() -> bool:
            try:
                return httpx.get(url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, 120, "the service")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()


def new_store(folder: Path) -> tuple[Store, str]:
    url = f"sqlite:///{folder / 'calbridge.db'}"
    store = open_store(url)
    with store.session() as session:
        import_directory(session, DIRECTORY.read_text(encoding="utf-8"))
    return store, url


def slot(i: int) -> dict[str, Any]:
    start = datetime.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=3, hours=i)
    return {
        "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
    }


def names_by_remote(store: Store) -> dict[str, str]:
    with store.session() as session:
        rows = session.execute(
            select(Link.remote_id, Event.name).join(Event, Event.id == Link.event_id)
        ).all()
    return {str(remote): name for remote, name in rows}


def settled(store: Store, key: str) -> bool:
    with store.session() as session:
        calendars = session.scalars(select(Calendar)).all()
        return all(c.last_success_at is not None and (c.settings or {}).get(key) for c in calendars)


# ------------------------------------------------------------------ 1 + 2 + 3 (Google)


def google_figures(calendars: int, edits: int, api_bookings: int, rate: int) -> dict[str, Any]:
    from calbridge_emulators.google.testing import running_emulator

    box = SecretBox.from_settings(Settings(secret_key=KEY))
    with tempfile.TemporaryDirectory() as tmp, running_emulator() as gcal:
        folder = Path(tmp)
        store, url = new_store(folder)
        owners: list[tuple[str, str]] = []  # (google calendar id, event id)
        with store.session() as session:
            for i in range(calendars):
                google_id = gcal.add_user(f"room{i}@harbour.example", time_zone="UTC")
                (event_id,) = gcal.seed_events(
                    google_id,
                    [{"summary": f"Booking {i}", **slot(i)}],
                    principal="tom@harbour.example",
                )
                add_google_calendar(
                    session,
                    box,
                    f"room{i}",
                    google_id,
                    service_account_info=gcal.service_account_info(),
                    subject=google_id,
                    api_base=gcal.base_url,
                    check=False,
                )
                owners.append((google_id, event_id))
        with service(folder, url) as base:
            wait_for(lambda: settled(store, "watch"), 600, "first syncs and watch channels")
            apis = {
                gid: gcal.build_service(gcal.service_account_credentials(subject=gid)).events()
                for gid, _ in owners
            }

            def edit(n: int, gid: str, eid: str) -> tuple[str, float]:
                name = f"Edited {n}"
                apis[gid].patch(calendarId=gid, eventId=eid, body={"summary": name}).execute(
                    num_retries=3
                )
                return name, time.monotonic()

            single: list[float] = []
            for n in range(edits):
                gid, eid = owners[n % len(owners)]
                name, at = edit(n, gid, eid)
                wait_for(lambda e=eid, s=name: names_by_remote(store).get(e) == s, 60, "an edit")
                single.append(time.monotonic() - at)
            burst_at: dict[str, tuple[str, float]] = {}
            with ThreadPoolExecutor(8) as pool:
                for (_gid, eid), (name, at) in zip(
                    owners,
                    pool.map(lambda o: edit(10_000 + owners.index(o), *o), owners),
                    strict=True,
                ):
                    burst_at[eid] = (name, at)
            burst: dict[str, float] = {}

            def burst_done() -> bool:
                seen = names_by_remote(store)
                now = time.monotonic()
                for eid, (name, at) in burst_at.items():
                    if eid not in burst and seen.get(eid) == name:
                        burst[eid] = now - at
                return len(burst) == len(burst_at)

            wait_for(burst_done, 600, "the burst")
            api = api_latency(store, gcal, base, owners, api_bookings)
            hooks = webhook_google(store, box, base, rate)
        store.dispose()
    return {
        "calendars": calendars,
        "edit_p50": percentile(single, 0.5),
        "edit_p95": percentile(single, 0.95),
        "burst_p50": percentile(list(burst.values()), 0.5),
        "burst_p95": percentile(list(burst.values()), 0.95),
        **api,
        **hooks,
    }


def api_latency(
    store: Store, gcal: Any, base: str, owners: list[tuple[str, str]], count: int
) -> dict[str, float]:
    from calbridge.service.tokens import create_token

    with store.session() as session:
        _info, token = create_token(session, f"bench-{time.time_ns()}")
    gid, _ = owners[0]
    latencies: list[float] = []
    for n in range(count):
        name = f"API booking {n}"
        start = datetime.now().astimezone().replace(microsecond=0) + timedelta(days=20, hours=n)
        at = time.monotonic()  # from the request: the push may finish before the answer
        answer = httpx.post(
            base + "/api/bookings",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "name": name,
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
                "booker": "ann.lee@acme.example",
                "calendars": ["room0"],
            },
            timeout=30,
        )
        answer.raise_for_status()

        def on_google(summary: str = name) -> bool:
            calendar = gcal.emulator.calendar(gid)
            with gcal.emulator.store.lock:
                return any(e.data.get("summary") == summary for e in calendar.events.values())

        wait_for(on_google, 60, "an API booking on Google")
        latencies.append(time.monotonic() - at)
    return {"api_p50": percentile(latencies, 0.5), "api_p95": percentile(latencies, 0.95)}


def webhook_google(store: Store, box: SecretBox, base: str, rate: int) -> dict[str, float]:
    headers: list[dict[str, str]] = []
    with store.session() as session:
        for calendar in session.scalars(select(Calendar)):
            watch = (calendar.settings or {})["watch"]
            secret = box.open(calendar.secret or "", calendar.name)
            headers.append(
                {
                    "X-Goog-Channel-ID": watch["channel_id"],
                    "X-Goog-Channel-Token": secret["watch_token"],
                    "X-Goog-Resource-ID": watch["resource_id"],
                    "X-Goog-Resource-State": "exists",
                }
            )
    times = fire_apart(base + "/hooks/google", rate, [{"headers": h} for h in headers])
    quiet = [{**h, "X-Goog-Resource-State": "sync"} for h in headers]  # verified, no sync
    alone = fire_apart(base + "/hooks/google", rate, [{"headers": h} for h in quiet])
    return {
        "google_hook_p50_ms": percentile(times, 0.5) * 1000,
        "google_hook_p99_ms": percentile(times, 0.99) * 1000,
        "google_hook_max_ms": max(times) * 1000,
        "google_hook_alone_p50_ms": percentile(alone, 0.5) * 1000,
        "google_hook_alone_p99_ms": percentile(alone, 0.99) * 1000,
    }


def fire_apart(url: str, rate: int, requests: list[dict[str, Any]]) -> list[float]:
    """:func:`fire` in a process of its own: the emulators in this one would otherwise slow
    the client down and inflate the figures."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fire, url, rate, requests).result()


def fire(url: str, rate: int, requests: list[dict[str, Any]]) -> list[float]:
    """POST at ``rate`` per second for 5 s from a few threads; the answers' durations. A
    notification that got no answer (connection reset, timeout) is counted and printed, as a
    sender would see it, instead of ending the run."""
    total = rate * 5
    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    started = time.monotonic()

    def one(n: int, client: httpx.Client) -> None:
        due = started + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.monotonic()
        try:
            answer = client.post(url, **requests[n % len(requests)])
        except httpx.TransportError as exc:  # counted and shown, never the end of the run
            with lock:
                failures.append(f"{exc.__class__.__name__}: {exc}")
            return
        took = time.monotonic() - t0
        if answer.status_code >= 300:
            raise SystemExit(f"benchmark: the hook answered {answer.status_code}: {answer.text}")
        with lock:
            times.append(took)

    workers = 16
    clients = [httpx.Client(timeout=30) for _ in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda n: one(n, clients[n % workers]), range(total)))
    for client in clients:
        client.close()
    if failures:
        print(f"  {len(failures)} of {total} notifications got no answer, e.g. {failures[0]}")
    return times


# ------------------------------------------------------------------ 3 (Graph)


def graph_webhook(rate: int, calendars: int = 10) -> dict[str, float]:
    from calbridge_emulators.graph.testing import running_emulator

    box = SecretBox.from_settings(Settings(secret_key=KEY))
    with tempfile.TemporaryDirectory() as tmp, running_emulator(tls=True) as graph:
        folder = Path(tmp)
        store, url = new_store(folder)
        with store.session() as session:
            for i in range(calendars):
                mailbox = f"room{i}@harbour.example"
                graph.add_user(graph.tenant_id, mailbox, f"Room {i}")
                add_graph_calendar(
                    session,
                    box,
                    f"room{i}",
                    mailbox,
                    **graph.link_options(),
                    check=False,
                )
        with service(folder, url) as base:
            wait_for(lambda: settled(store, "subscription"), 600, "first syncs and subscriptions")
            bodies: list[dict[str, Any]] = []
            with store.session() as session:
                for calendar in session.scalars(select(Calendar)):
                    subscription = (calendar.settings or {})["subscription"]
                    secret = box.open(calendar.secret or "", calendar.name)
                    note = {
                        "subscriptionId": subscription["id"],
                        "changeType": "updated",
                        "resource": "Users/x/Events/y",
                        "clientState": secret["client_state"],
                    }
                    bodies.append({"value": [note]})
            times = fire_apart(base + "/hooks/graph", rate, [{"json": b} for b in bodies])
        store.dispose()
    return {
        "graph_hook_p50_ms": percentile(times, 0.5) * 1000,
        "graph_hook_p99_ms": percentile(times, 0.99) * 1000,
        "graph_hook_max_ms": max(times) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calendars", default="10,100")
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--api-bookings", type=int, default=10)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=True)
    rows = []
    for count in [int(c) for c in args.calendars.split(",")]:
        console.print(f"{count} Google calendars…")
        rows.append(google_figures(count, args.edits, args.api_bookings, args.rate))
        console.print(rows[-1])
    console.print("Graph webhook…")
    graph = graph_webhook(args.rate)
    if args.json:
        print(json.dumps({"google": rows, "graph": graph}, indent=2))
        return
    table = Table(title="calbridge serve: push (seconds unless stated)")
    for column in (
        "calendars",
        "edit p50/p95",
        "burst p50/p95",
        "API→Google p50/p95",
        "hook p50/p99/max ms",
        "hook alone p50/p99 ms",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["calendars"]),
            f"{r['edit_p50']:.2f} / {r['edit_p95']:.2f}",
            f"{r['burst_p50']:.2f} / {r['burst_p95']:.2f}",
            f"{r['api_p50']:.2f} / {r['api_p95']:.2f}",
            f"{r['google_hook_p50_ms']:.0f} / {r['google_hook_p99_ms']:.0f} / "
            f"{r['google_hook_max_ms']:.0f}",
            f"{r['google_hook_alone_p50_ms']:.0f} / {r['google_hook_alone_p99_ms']:.0f}",
        )
    console.print(table)
    console.print(
        f"Graph webhook at {args.rate}/s: p50 {graph['graph_hook_p50_ms']:.0f} ms, "
        f"p99 {graph['graph_hook_p99_ms']:.0f} ms, max {graph['graph_hook_max_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
