"""Jobs on PostgreSQL through procrastinate: any number of ``calbridge worker`` processes.

- :class:`PgJobs` implements :class:`calbridge.service.jobs.Jobs` by deferring the task
  ``calbridge.sync_calendar`` with ``lock`` and ``queueing_lock`` = the calendar's id:
  procrastinate never runs two jobs with one lock at once, and refuses a second *waiting* job
  with one queueing lock (``AlreadyEnqueued``, which we treat as "already coming"). So per
  calendar one sync runs and at most one waits, across every worker on every machine. A
  ``full`` request is also remembered on the calendar (``calendars.full_requested``), so a
  waiting job that was enqueued as incremental still runs the full resync.
- The job body is :func:`calbridge.service.runs.run_sync_job`, as on SQLite. A transient
  failure defers the next attempt itself (``schedule_in`` = backoff with jitter, at least
  Retry-After) instead of using procrastinate's retry, so a retry never collides with a
  waiting job's queueing lock. A run interrupted by shutdown defers itself again.
- :func:`run_worker` runs a procrastinate worker (``--concurrency N`` jobs at once, sync job
  bodies in threads) plus stalled-job recovery: a job left ``doing`` by a worker whose
  heartbeat stopped (killed) is put back to ``todo`` (or failed when a newer job for that
  calendar already waits); the engine being crash-safe, the re-run duplicates nothing.
- :func:`ensure_schema` applies procrastinate's schema once (under an advisory lock, so
  several workers starting together do not race); workers and ``serve`` call it at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as pexc
from procrastinate.jobs import Status
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import make_url

from calbridge.errors import ConfigError
from calbridge.service.jobs import JobContext, calendars_for_booking, check_trigger
from calbridge.service.runs import request_full, run_sync_job

log = logging.getLogger(__name__)

TASK = "calbridge.sync_calendar"
SCHEMA_LOCK = 0x0CA1B1D6E


def conninfo_for(database_url: str) -> str:
    """A libpq connection string for the store's SQLAlchemy URL."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            f"the job queue needs PostgreSQL, not '{url.get_backend_name()}' "
            "(set CALBRIDGE_DATABASE_URL=postgresql://…, or run `calbridge serve` on SQLite)"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_schema(conninfo: str) -> bool:
    """Apply procrastinate's schema when missing; True when it was applied now."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
            if row is not None and row[0] is not None:
                return False
            conn.execute(SchemaManager.get_schema())
            log.info("procrastinate schema applied")
            return True
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


def _register(app: procrastinate.App, ctx: JobContext | None, jobs: PgJobs | None) -> None:
    @app.task(name=TASK, pass_context=True)
    def sync_calendar_job(
        context: procrastinate.JobContext,
        calendar_id: int,
        trigger: str,
        full: bool = False,
        attempt: int = 0,
    ) -> str:
        assert ctx is not None and jobs is not None, "job bodies run in workers only"
        outcome = run_sync_job(
            ctx,
            calendar_id,
            trigger,
            full,
            attempt=attempt,
            worker=context.worker_name,
            should_stop=context.should_abort,
        )
        if outcome.retry_in is not None:
            jobs.defer(calendar_id, trigger, full, attempt + 1, schedule_in=outcome.retry_in)
        elif outcome.result == "interrupted":
            jobs.defer(calendar_id, trigger, full, attempt)
        return outcome.result


class PgJobs:
    """The Jobs front on procrastinate (deferring side; usable from any thread)."""

    def __init__(self, ctx: JobContext, conninfo: str) -> None:
        self.ctx = ctx
        self.conninfo = conninfo
        self.app = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=conninfo, max_size=4)
        )
        _register(self.app, ctx, self)
        self._opened = False
        self._lock = threading.Lock()

    def open(self) -> PgJobs:
        ensure_schema(self.conninfo)
        self.app.open()
        self._opened = True
        return self

    def close(self) -> None:
        if self._opened:
            self.app.close()
            self._opened = False

    # -- the Jobs interface -------------------------------------------------------------
    def sync_calendar(self, calendar_id: int, *, trigger: str, full: bool = False) -> None:
        check_trigger(trigger)
        if full:
            with self.ctx.store.session() as session:
                request_full(session, calendar_id)
        self.defer(calendar_id, trigger, full, 0)

    def push_booking(self, event_id: int, *, trigger: str = "booking_change") -> None:
        check_trigger(trigger)
        with self.ctx.store.session() as session:
            ids = calendars_for_booking(session, event_id)
        for calendar_id in ids:
            self.sync_calendar(calendar_id, trigger=trigger)

    # -- transport ------------------------------------------------------------------------
    def defer(
        self,
        calendar_id: int,
        trigger: str,
        full: bool,
        attempt: int,
        *,
        schedule_in: float | None = None,
    ) -> bool:
        """Defer one job; False when one is already waiting for that calendar."""
        options: dict[str, Any] = {"lock": str(calendar_id), "queueing_lock": str(calendar_id)}
        if schedule_in is not None:
            options["schedule_in"] = {"seconds": max(0.0, schedule_in)}
        try:
            with self._lock:
                self.app.configure_task(TASK, **options).defer(
                    calendar_id=calendar_id, trigger=trigger, full=full, attempt=attempt
                )
        except pexc.AlreadyEnqueued:
            return False
        return True

    def depth(self) -> int | None:
        """Jobs waiting in the queue."""
        try:
            with psycopg.connect(self.conninfo) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' "
                    "AND task_name = %s",
                    (TASK,),
                ).fetchone()
        except psycopg.Error:
            return None
        return int(row[0]) if row else 0


async def recover_stalled(app: procrastinate.App, seconds_since_heartbeat: float) -> int:
    """Put jobs of workers that stopped beating back in the queue; returns how many."""
    recovered = 0
    stalled = await app.job_manager.get_stalled_jobs(
        task_name=TASK, seconds_since_heartbeat=seconds_since_heartbeat
    )
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
            recovered += 1
            log.warning(
                "stalled sync job retried",
                extra={"job_id": job.id, "calendar_id": job.task_kwargs.get("calendar_id")},
            )
        except Exception:  # a newer job for that calendar waits already: it covers this one
            with contextlib.suppress(Exception):
                await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
    return recovered


async def _recovery_loop(app: procrastinate.App, ctx: JobContext, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await recover_stalled(app, ctx.settings.stalled_after_seconds)
        except Exception:
            log.exception("stalled-job recovery failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ctx.settings.stalled_check_seconds)


def run_worker(
    ctx: JobContext,
    jobs: PgJobs,
    *,
    concurrency: int,
    name: str,
    install_signal_handlers: bool = True,
    stop_event: threading.Event | None = None,
) -> None:
    """Run a procrastinate worker until SIGTERM/SIGINT (or ``stop_event``).

    On a stop request the worker takes no new job; running syncs are asked to stop at their
    next committed step (and re-defer themselves), within the shutdown grace.
    """
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=jobs.conninfo))
    _register(app, ctx, jobs)

    async def main() -> None:
        async with app.open_async():
            worker_task = asyncio.create_task(
                app.run_worker_async(
                    concurrency=concurrency,
                    name=name,
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=0,
                    update_heartbeat_interval=ctx.settings.worker_heartbeat_seconds,
                    stalled_worker_timeout=ctx.settings.stalled_after_seconds,
                    fetch_job_polling_interval=1.0,
                    delete_jobs="successful",
                )
            )
            stop = asyncio.Event()
            recovery = asyncio.create_task(_recovery_loop(app, ctx, stop))
            loop = asyncio.get_running_loop()
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, stop.set)
            if stop_event is not None:
                loop.run_in_executor(None, _wait_then_set, stop_event, loop, stop)
            await stop.wait()
            log.info("worker stopping: no new jobs; running syncs stop at their next step")
            worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
            await recovery

    asyncio.run(main())


def _wait_then_set(
    event: threading.Event, loop: asyncio.AbstractEventLoop, stop: asyncio.Event
) -> None:
    event.wait()
    loop.call_soon_threadsafe(stop.set)


@contextlib.contextmanager
def opened(ctx: JobContext, database_url: str) -> Iterator[PgJobs]:
    jobs = PgJobs(ctx, conninfo_for(database_url)).open()
    try:
        yield jobs
    finally:
        jobs.close()
