"""Service benchmark (core): calendars synced per minute with 1, 2 and 4 ``calbridge worker``
processes on PostgreSQL, when nothing changed (the steady state of polling).

Set-up: a real Radicale with ``--calendars`` CalDAV calendars of ``--events`` events each, one
fresh PostgreSQL database (``--postgres-url``, else the server of ``tests/postgres_server.py``:
``CALBRIDGE_TEST_POSTGRES_URL`` or a throwaway cluster), every calendar synced once so the
timed rounds are no-change syncs. For each worker count: start the workers, wait until each
has beaten its heartbeat, enqueue every calendar at once (procrastinate, one job per
calendar) and time until every run is recorded in ``sync_runs``. Prints a table and JSON.

    python benchmarks/service.py [--calendars 40] [--events 5] [--workers 1,2,4]

The figures depend on the machine's cores: a no-change CalDAV sync is one request, so the
cost is mostly the job round-trip and the worker's database work.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from sqlalchemy import func, select  # noqa: E402

from calbridge.config import Settings  # noqa: E402
from calbridge.demo.seed import vevent  # noqa: E402
from calbridge.service.jobs import JobContext  # noqa: E402
from calbridge.service.queue_pg import PgJobs, conninfo_for  # noqa: E402
from calbridge.service.runs import run_sync_job  # noqa: E402
from calbridge.store.db import Store, open_store  # noqa: E402
from calbridge.store.directory import import_directory  # noqa: E402
from calbridge.store.models import ServiceWorker, SyncRun  # noqa: E402
from calbridge.store.secrets import SecretBox  # noqa: E402
from calbridge.sync.calendars import add_caldav_calendar  # noqa: E402
from calbridge.sync.providers import open_provider  # noqa: E402
from calbridge_emulators.radicale import running_radicale  # noqa: E402
from postgres_server import admin_engine, fresh_database, postgres_server  # noqa: E402

SECRET = "service-benchmark"
CALBRIDGE = str(Path(sys.executable).parent / "calbridge")
DIRECTORY = REPO / "docs" / "examples" / "directory.json"


def seed(store: Store, radicale: Any, calendars: int, events: int, box: SecretBox) -> list[int]:
    from datetime import datetime, timedelta

    base = datetime(2027, 3, 1, 9, 0)
    ids = []
    for c in range(calendars):
        url = radicale.make_calendar("staff", f"bench{c}")
        radicale.put_collection(
            url,
            [
                vevent(
                    f"c{c}e{i}",
                    f"Event {c}/{i}",
                    base + timedelta(days=i),
                    base + timedelta(days=i, hours=1),
                )
                for i in range(events)
            ],
        )
        with store.session() as session:
            calendar = add_caldav_calendar(
                session, box, f"bench{c}", url, "staff", "staff-pw", check=False
            )
            session.flush()
            ids.append(calendar.id)
    return ids


def start_workers(count: int, env: dict[str, str], folder: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(count):
        log = (folder / f"worker-{count}-{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [CALBRIDGE, "worker", "--concurrency", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def round_for(
    store: Store, jobs: PgJobs, ids: list[int], workers: int, env: dict[str, str], folder: Path
) -> dict[str, Any]:
    with store.session() as session:
        session.query(ServiceWorker).delete()
        mark = int(session.scalar(select(func.coalesce(func.max(SyncRun.id), 0))) or 0)
    procs = start_workers(workers, env, folder)
    try:
        wait_for(
            lambda: _count(store, select(func.count()).select_from(ServiceWorker)) >= workers,
            120,
            f"{workers} workers to start",
        )
        started = time.perf_counter()
        for calendar_id in ids:
            jobs.sync_calendar(calendar_id, trigger="poll")
        done = select(func.count()).where(SyncRun.id > mark, SyncRun.finished_at.is_not(None))
        wait_for(lambda: _count(store, done) >= len(ids), 600, "every calendar's run")
        seconds = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
    with store.session() as session:
        rows = list(session.scalars(select(SyncRun).where(SyncRun.id > mark)))
    results = sorted({run.result for run in rows})
    requests = sum(run.requests for run in rows) / max(1, len(rows))
    return {
        "workers": workers,
        "calendars": len(ids),
        "seconds": round(seconds, 2),
        "calendars_per_minute": round(len(ids) / seconds * 60, 1),
        "requests_per_sync": round(requests, 2),
        "results": results,
    }


def _count(store: Store, query: Any) -> int:
    with store.session() as session:
        return int(session.scalar(query) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calendars", type=int, default=40)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    box = SecretBox.from_settings(Settings(secret_key=SECRET))
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="calbridge-bench-")))
        server = args.postgres_url or stack.enter_context(postgres_server())
        admin = admin_engine(server)
        stack.callback(admin.dispose)
        url = stack.enter_context(fresh_database(admin, "calbridge_bench"))
        radicale = stack.enter_context(running_radicale(folder / "radicale", {"staff": "staff-pw"}))
        store = open_store(url)
        stack.callback(store.dispose)
        with store.session() as session:
            import_directory(session, DIRECTORY.read_text(encoding="utf-8"))
        ids = seed(store, radicale, args.calendars, args.events, box)
        ctx = JobContext(store, lambda c: open_provider(c, box))
        for calendar_id in ids:  # the first (importing) sync, so the rounds are no-change
            run_sync_job(ctx, calendar_id, "manual")
        jobs = PgJobs(ctx, conninfo_for(url)).open()
        stack.callback(jobs.close)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
        env |= {
            "CALBRIDGE_DATABASE_URL": url,
            "CALBRIDGE_SECRET_KEY": SECRET,
            "CALBRIDGE_DATA_DIR": str(folder / "data"),
            "CALBRIDGE_WORKER_HEARTBEAT_SECONDS": "1",
        }
        figures = [round_for(store, jobs, ids, n, env, folder) for n in counts]
    print(f"no-change sync throughput, {args.calendars} CalDAV calendars x {args.events} events")
    print(f"{'workers':>8} {'seconds':>8} {'calendars/min':>14} {'requests/sync':>14}")
    for row in figures:
        print(
            f"{row['workers']:>8} {row['seconds']:>8} {row['calendars_per_minute']:>14} "
            f"{row['requests_per_sync']:>14}"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
