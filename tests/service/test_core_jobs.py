"""The job rules in-process (SQLite, a real Radicale): one running + one waiting per calendar,
retries of transient failures, credentials refused -> ``auth_expired`` without a retry storm,
the scheduler, and the sync controls (pause, resume, sync now, full resync)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from core_service import USERS, World, box, free_port, wait_until, world_on

from calbridge.errors import NotFound
from calbridge.ops import sync_control
from calbridge.service.jobs import JobContext, UnknownTrigger, now_utc
from calbridge.service.queue_local import LocalJobs
from calbridge.service.runs import list_runs, prune_runs, run_sync_job
from calbridge.service.scheduler import Scheduler
from calbridge.service.settings import ServiceSettings
from calbridge.store.models import Calendar
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.providers import open_provider
from calbridge_emulators.radicale import RadicaleServer, running_radicale


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with running_radicale(tmp_path_factory.mktemp("radicale"), USERS) as server:
        yield server


@pytest.fixture
def world(tmp_path: Path, radicale: RadicaleServer) -> Iterator[World]:
    with world_on(tmp_path, f"sqlite:///{tmp_path / 'calbridge.db'}", radicale) as opened:
        yield opened


def context(world: World, **settings: object) -> JobContext:
    sealed = box()
    values = {"retry_base_seconds": 0.05, "retry_attempts": 2} | settings
    return JobContext(world.store, lambda c: open_provider(c, sealed), ServiceSettings(**values))  # type: ignore[arg-type]


def add_broken(world: World, name: str, url: str, password: str = "staff-pw") -> int:
    with world.store.session() as session:
        calendar = add_caldav_calendar(session, box(), name, url, "staff", password, check=False)
        session.flush()
        return calendar.id


def test_a_burst_on_one_calendar_runs_once_and_queues_at_most_one_more(world: World) -> None:
    front = world.add_calendar("front")
    world.put("front", "a", "Tasting")
    gate = threading.Event()
    ctx = context(world)
    factory = ctx.provider_factory

    def held(calendar: Calendar) -> object:
        gate.wait(30)  # the first sync is under way while the burst arrives
        return factory(calendar)

    ctx.provider_factory = held  # type: ignore[assignment]
    jobs = LocalJobs(ctx, workers=3).start()
    try:
        jobs.sync_calendar(front, trigger="push")
        wait_until(lambda: jobs.running() == {front}, 10, "the first sync to start")
        for _ in range(50):
            jobs.sync_calendar(front, trigger="push")
        assert jobs.depth() == 1 and jobs.running() == {front}
        gate.set()
        assert jobs.wait_idle(30)
    finally:
        jobs.stop(5)
    runs = world.runs(front)
    assert [run.result for run in runs] == ["ok", "ok"]
    assert runs[0].finished_at is not None and runs[0].finished_at <= runs[1].started_at
    assert world.bookings() == {"Tasting": 1}


def test_a_full_request_upgrades_the_waiting_job(world: World) -> None:
    front = world.add_calendar("front")
    jobs = LocalJobs(context(world), workers=0)
    jobs.sync_calendar(front, trigger="poll")
    jobs.sync_calendar(front, trigger="resync", full=True)
    assert jobs.depth() == 1
    jobs.workers = 1
    jobs.start()
    try:
        assert jobs.wait_idle(30)
    finally:
        jobs.stop(5)
    assert [(run.trigger, run.full) for run in world.runs(front)] == [("poll", True)]


def test_unreachable_server_is_retried_with_backoff_then_left_for_the_next_poll(
    world: World,
) -> None:
    gone = add_broken(world, "gone", f"http://127.0.0.1:{free_port()}/staff/cal/")
    jobs = LocalJobs(context(world, retry_attempts=1), workers=1).start()
    try:
        jobs.sync_calendar(gone, trigger="poll")
        assert jobs.wait_idle(30)
    finally:
        jobs.stop(5)
    runs = world.runs(gone)
    assert [(run.result, run.attempt) for run in runs] == [("retry", 0), ("error", 1)]
    calendar = world.calendar(gone)
    assert calendar.state == "error" and calendar.last_error
    assert "it is tried again at the next poll" in (calendar.error_hint or "")


def test_refused_credentials_set_auth_expired_and_stop_polling_until_they_change(
    world: World, radicale: RadicaleServer
) -> None:
    url = radicale.make_calendar("staff", f"locked-{world.folder.name}")
    locked = add_broken(world, "locked", url, password="wrong")
    ctx = context(world)
    outcome = run_sync_job(ctx, locked, "poll")
    assert (outcome.result, outcome.retry_in) == ("auth_expired", None)
    calendar = world.calendar(locked)
    assert calendar.state == "auth_expired"
    assert "update the credentials of calendar 'locked'" in (calendar.error_hint or "")

    scheduler = Scheduler(ctx, LocalJobs(ctx, workers=0))
    world.due_now(locked)
    assert scheduler.tick() == []  # not polled: nothing changed
    assert run_sync_job(ctx, locked, "manual").result == "skipped"
    assert len(world.runs(locked)) == 1

    with world.store.session() as session:  # new credentials (sealed anew)
        stored = session.get(Calendar, locked)
        assert stored is not None
        stored.secret = box().seal({"password": USERS["staff"]})
    world.due_now(locked)
    assert scheduler.tick() == [locked]
    assert run_sync_job(ctx, locked, "poll").result == "ok"
    assert world.calendar(locked).state == "ok"


def test_scheduler_polls_due_calendars_once_and_skips_paused_ones(world: World) -> None:
    front = world.add_calendar("front")
    back = world.add_calendar("back")
    ctx = context(world, poll_caldav_seconds=120)
    jobs = LocalJobs(ctx, workers=0)
    scheduler = Scheduler(ctx, jobs)
    with world.store.session() as session:
        sync_control.pause(session, "back", actor="cli")
    assert scheduler.tick() == [front]
    assert scheduler.tick() == []  # moved one interval ahead at once
    next_run = world.calendar(front).next_run_at
    assert next_run is not None and next_run > now_utc() + timedelta(seconds=100)
    assert world.calendar(back).state == "paused"
    with world.store.session() as session:
        sync_control.resume(session, "back", actor="cli")
    assert scheduler.tick() == [back]
    assert jobs.depth() == 2


def test_sync_now_on_a_paused_calendar_says_how_to_resume(world: World) -> None:
    world.add_calendar("front")
    jobs = LocalJobs(context(world), workers=0)
    with world.store.session() as session:
        sync_control.pause(session, "front", actor="cli")
    with world.store.session() as session, pytest.raises(sync_control.CalendarPaused) as caught:
        sync_control.sync_now(session, jobs, "front", actor="cli")
    assert str(caught.value) == (
        "calendar 'front' is paused; resume it first (`calbridge calendars resume front`)"
    )
    with world.store.session() as session, pytest.raises(NotFound):
        sync_control.full_resync(session, jobs, "nope", actor="cli")
    assert jobs.depth() == 0


def test_an_unknown_trigger_is_refused(world: World) -> None:
    jobs = LocalJobs(context(world), workers=0)
    with pytest.raises(UnknownTrigger, match="unknown sync trigger 'webhook'"):
        jobs.sync_calendar(1, trigger="webhook")


def test_runs_older_than_30_days_are_pruned(world: World) -> None:
    front = world.add_calendar("front")
    ctx = context(world)
    assert run_sync_job(ctx, front, "manual").result == "ok"
    with world.store.session() as session:
        assert prune_runs(session, now_utc() + timedelta(days=29)) == 0
        assert len(list_runs(session, calendar="front")) == 1
        assert prune_runs(session, now_utc() + timedelta(days=31)) == 1
        assert list_runs(session) == []
