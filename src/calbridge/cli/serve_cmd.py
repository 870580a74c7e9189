"""``calbridge serve``: the always-on service in one process.

``serve`` runs the ASGI app (uvicorn), the scheduler and the sync workers:
- on SQLite (the embedded default) the workers are threads of an in-process queue;
- on PostgreSQL, jobs go through procrastinate; ``serve`` runs one procrastinate worker
  in-process unless ``--no-worker`` (then ``calbridge worker`` processes do the syncing).

SIGTERM / SIGINT: stop taking work, let running syncs reach their next committed step, stop
the web server, exit 0 — within ``shutdown_grace_seconds`` (25 s). Nothing is lost: a job
that did not run is polled again at the next start (its calendar is due), and the engine is
incremental and crash-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from calbridge.cli.common import err_console
from calbridge.config import load_settings
from calbridge.errors import ConfigError
from calbridge.service.jobs import JobContext, Jobs
from calbridge.service.metrics import ServiceMetrics
from calbridge.service.settings import LogFormat, ServiceSettings, load_service_settings
from calbridge.store.db import Store, open_store
from calbridge.store.secrets import SecretBox
from calbridge.sync.providers import open_provider

log = logging.getLogger("calbridge.service")


def worker_name(kind: str) -> str:
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Runtime:
    """What serve/worker open: the store, settings, job context and database URL."""

    store: Store
    settings: ServiceSettings
    ctx: JobContext
    database_url: str

    @property
    def on_postgres(self) -> bool:
        return self.store.engine.dialect.name == "postgresql"


@contextlib.contextmanager
def runtime(settings: ServiceSettings) -> Iterator[Runtime]:
    from calbridge.service.logging import configure_logging

    configure_logging(settings.log_format)
    base = load_settings()
    url = base.resolved_database_url()
    store = open_store(url)
    box = SecretBox.from_settings(base)
    ctx = JobContext(store, lambda c: open_provider(c, box), settings, metrics=ServiceMetrics())
    try:
        yield Runtime(store, settings, ctx, url)
    finally:
        store.dispose()


def serve(
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
    workers: Annotated[
        int | None, typer.Option(help="sync jobs run at once by this process")
    ] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="web side only (PostgreSQL + calbridge worker)")
    ] = False,
    public_url: Annotated[
        str | None, typer.Option(help="base URL Google/Microsoft call back (enables push)")
    ] = None,
    log_format: Annotated[LogFormat | None, typer.Option(help="text or json")] = None,
) -> None:
    """Run the service: web app, API, push endpoints, scheduler and sync workers."""
    settings = load_service_settings(
        host=host, port=port, workers=workers, public_url=public_url, log_format=log_format
    )
    with runtime(settings) as rt:
        if no_worker and not rt.on_postgres:
            raise ConfigError(
                "--no-worker needs PostgreSQL: on SQLite the syncs run inside `calbridge serve` "
                "(set CALBRIDGE_DATABASE_URL=postgresql://… to run `calbridge worker` apart)"
            )
        _serve(rt, run_workers=not no_worker)


def _serve(rt: Runtime, *, run_workers: bool) -> None:
    import uvicorn

    from calbridge.service.app import create_app
    from calbridge.service.health import Heartbeat
    from calbridge.service.scheduler import Scheduler

    settings = rt.settings
    stopping = threading.Event()
    jobs, stop_jobs = _start_jobs(rt, run_workers, stopping)
    heartbeat = (
        Heartbeat(
            rt.store, worker_name("serve"), "local", settings.worker_heartbeat_seconds
        ).start()
        if run_workers
        else None
    )
    scheduler = Scheduler(rt.ctx, jobs)
    _schedule_push_side(scheduler, rt, jobs)
    scheduler.start()
    app = create_app(rt.store, settings, jobs, metrics=rt.ctx.metrics)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=int(settings.keep_alive_seconds),
        timeout_graceful_shutdown=3,
        lifespan="off",
    )
    server = _QuietServer(config)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("stopping (%s): no new work", signal.Signals(signum).name)
        stopping.set()
        server.should_exit = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _announce(rt, run_workers)
    try:
        asyncio.run(server.serve())
    finally:
        stopping.set()
        scheduler.stop()
        finished = stop_jobs(settings.shutdown_grace_seconds)
        if heartbeat is not None:
            heartbeat.stop()
        log.info("stopped" if finished else "stopped; a sync did not reach its next step in time")
    if not server.started:
        raise ConfigError(
            f"could not listen on {settings.host}:{settings.port} "
            "(in use? choose another with --port)"
        )


class _QuietServer:
    """uvicorn's server without its own signal capture (it re-raises the signal on exit,
    which would turn a clean stop into a death by SIGTERM)."""

    def __init__(self, config: Any) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        self._server = Server(config)

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    @property
    def should_exit(self) -> bool:
        return bool(self._server.should_exit)

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._server.should_exit = value

    async def serve(self) -> None:
        await self._server.serve()


def _start_jobs(rt: Runtime, run_workers: bool, stopping: threading.Event) -> tuple[Jobs, Any]:
    """The jobs front and a ``stop(grace) -> bool`` for it."""
    settings = rt.settings
    if not rt.on_postgres:
        from calbridge.service.queue_local import LocalJobs

        local = LocalJobs(rt.ctx, settings.workers if run_workers else 0, name=worker_name("serve"))
        return local.start(), local.stop
    from calbridge.service.queue_pg import PgJobs, conninfo_for, run_worker

    pg = PgJobs(rt.ctx, conninfo_for(rt.database_url)).open()
    if not run_workers or settings.workers == 0:

        def close_only(_grace: float) -> bool:
            pg.close()
            return True

        return pg, close_only
    thread = threading.Thread(
        target=run_worker,
        args=(rt.ctx, pg),
        kwargs={
            "concurrency": settings.workers,
            "name": worker_name("serve"),
            "install_signal_handlers": False,
            "stop_event": stopping,
        },
        name="calbridge-procrastinate",
        daemon=True,
    )
    thread.start()

    def stop(grace: float) -> bool:
        stopping.set()
        thread.join(grace)
        pg.close()
        return not thread.is_alive()

    return pg, stop


def _schedule_push_side(scheduler: Any, rt: Runtime, jobs: Jobs) -> None:
    """Let the push side (channel/subscription renewal) register its periodic work."""
    import importlib

    try:
        channels: Any = importlib.import_module("calbridge.service.channels")
    except ModuleNotFoundError:
        return
    schedule = getattr(channels, "schedule", None)
    if callable(schedule):
        schedule(scheduler, rt.ctx, jobs)


def _announce(rt: Runtime, run_workers: bool) -> None:
    settings = rt.settings
    where = f"http://{settings.host}:{settings.port}"
    queue = "procrastinate (PostgreSQL)" if rt.on_postgres else "in-process queue (SQLite)"
    workers = f"{settings.workers} sync workers" if run_workers else "no sync worker (--no-worker)"
    log.info("calbridge serving on %s — %s, %s", where, queue, workers)
    if settings.push_enabled:
        log.info("push notifications on: Google and Microsoft call %s/hooks/…", settings.public_url)
    else:
        log.info(
            "push is off (no CALBRIDGE_PUBLIC_URL): Google and Microsoft calendars are polled "
            "every %.0f s instead of %.0f s",
            settings.poll_interval("google"),
            settings.poll_google_seconds,
        )
    err_console.print(f"calbridge serving on {where}", highlight=False, markup=False)
