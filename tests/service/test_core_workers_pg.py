"""``calbridge worker`` processes on PostgreSQL (procrastinate): one sync per calendar at a
time, bursts collapsed, stalled jobs of a killed worker retried without duplicates."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from core_service import (
    USERS,
    SlowProxy,
    World,
    overlapping,
    owner_bookings,
    wait_until,
    world_on,
)

from calbridge.service.jobs import JobContext
from calbridge.service.metrics import ServiceMetrics
from calbridge.service.queue_pg import PgJobs, conninfo_for
from calbridge_emulators.radicale import RadicaleServer, running_radicale

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with running_radicale(tmp_path_factory.mktemp("radicale"), USERS) as server:
        yield server


@pytest.fixture
def world(tmp_path: Path, radicale: RadicaleServer, postgres_url: str) -> Iterator[World]:
    with world_on(tmp_path, postgres_url, radicale) as opened:
        yield opened


@pytest.fixture
def jobs(world: World) -> Iterator[PgJobs]:
    """The jobs front as the API would use it (this process defers, workers run)."""

    def no_provider(_calendar: Any) -> Any:
        raise AssertionError("jobs run in the worker processes only")

    front = PgJobs(JobContext(world.store, no_provider), conninfo_for(world.database_url))
    yield front.open()
    front.close()


def queue_settled(world: World, jobs: PgJobs) -> bool:
    """Nothing waits in the queue and nothing runs."""
    with psycopg.connect(jobs.conninfo) as conn:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        ).fetchone()
    return bool(row and row[0] == 0) and not any(r.result == "running" for r in world.runs())


@pytest.fixture
def slow(radicale: RadicaleServer) -> Iterator[SlowProxy]:
    """Radicale 0.15 s away: a sync lasts longer than a burst of notifications takes to
    arrive, as with a real calendar server."""
    proxy = SlowProxy(radicale.url, delay=0.15)
    yield proxy
    proxy.close()


def test_bursts_on_three_workers_collapse_and_never_overlap_one_calendar(
    world: World, jobs: PgJobs, slow: SlowProxy
) -> None:
    ids = {f"cal{i}": world.add_calendar(f"cal{i}", via=slow) for i in range(10)}
    for _ in range(3):
        world.worker("--concurrency", "2")
    for burst in range(2):
        before = {run.id for run in world.runs()}
        for name in ids:
            world.put(name, "a", f"{name} v{burst}")
        for calendar_id in ids.values():
            for _ in range(20):  # a burst of 20 notifications for this calendar
                jobs.sync_calendar(calendar_id, trigger="push")
        wait_until(
            lambda burst=burst: all(world.bookings().get(f"{name} v{burst}") == 1 for name in ids),
            120,
            f"every calendar's change of burst {burst} as a booking",
        )
        wait_until(lambda: queue_settled(world, jobs), 60, "the queue to empty")
        runs = [run for run in world.runs() if run.id not in before]
        per_calendar = {cid: [r for r in runs if r.calendar_id == cid] for cid in ids.values()}
        assert all(1 <= len(each) <= 2 for each in per_calendar.values()), {
            cid: len(each) for cid, each in per_calendar.items()
        }
        assert {run.result for run in runs} == {"ok"}
    assert overlapping(world.runs()) == []
    assert len(world.bookings()) == 10  # each calendar's one event, edited once: one booking
    # /metrics of a process that ran no sync itself (as `serve --no-worker`) counts them all
    metrics = ServiceMetrics()
    metrics.watch_store(world.store, lambda: None)
    scraped = metrics.render().decode()
    done = sum(1 for run in world.runs() if run.result == "ok")
    assert f'calbridge_syncs_total{{kind="caldav",result="ok"}} {float(done)}' in scraped
    assert f'calbridge_sync_duration_seconds_count{{kind="caldav"}} {float(done)}' in scraped
    assert {run.worker.split("@")[0] for run in world.runs() if run.worker} == {"worker"}


def test_a_worker_killed_mid_sync_has_its_job_retried_without_duplicates(
    world: World, jobs: PgJobs, slow: SlowProxy
) -> None:
    toms = world.add_calendar("toms", user="tom", owner="u-tom", via=slow)
    owner_bookings(world.store, 30)
    first = world.worker()
    jobs.sync_calendar(toms, trigger="manual")
    wait_until(lambda: any(r.result == "running" for r in world.runs()), 60, "a running sync")
    wait_until(lambda: len(world.radicale_uids("toms")) >= 3, 60, "a few writes done")
    first.signal(signal.SIGKILL)
    first.wait(10)
    world.worker()  # recovers the stalled job (its worker stopped beating) and runs it
    wait_until(lambda: any(r.result == "ok" for r in world.runs()), 120, "the retried job")
    runs = world.runs(toms)
    assert [run.result for run in runs] == ["interrupted", "ok"]
    assert runs[0].error == "worker stopped during the run"
    assert overlapping(runs) == []
    names = world.bookings()
    assert len(names) == 30 and set(names.values()) == {1}
    assert world.duplicate_links() == 0
    uids = world.radicale_uids("toms")
    assert len(uids) == 30 and len(set(uids)) == 30
