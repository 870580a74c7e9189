"""``calbridge worker``: a sync worker on PostgreSQL (procrastinate).

Any number of workers may run, on any machine, against one PostgreSQL database: procrastinate
hands each job to one worker, never two syncs of one calendar at once. Each worker writes a
heartbeat (``/readyz``) and recovers jobs of workers that died (stalled-job recovery).
SIGTERM / SIGINT: no new job; running syncs stop at their next committed step and are
re-queued; exit 0.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from calbridge.cli.common import err_console
from calbridge.cli.serve_cmd import runtime, worker_name
from calbridge.errors import ConfigError
from calbridge.service.settings import LogFormat, load_service_settings

log = logging.getLogger("calbridge.service")


def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="sync jobs this worker runs at once")
    ] = None,
    log_format: Annotated[LogFormat | None, typer.Option(help="text or json")] = None,
) -> None:
    """Run a sync worker on PostgreSQL (procrastinate); any number may run, anywhere."""
    from calbridge.service.health import Heartbeat
    from calbridge.service.queue_pg import PgJobs, conninfo_for, run_worker

    settings = load_service_settings(workers=concurrency, log_format=log_format)
    with runtime(settings) as rt:
        if not rt.on_postgres:
            raise ConfigError(
                "`calbridge worker` needs PostgreSQL (CALBRIDGE_DATABASE_URL=postgresql://…); "
                "on SQLite `calbridge serve` runs the syncs itself"
            )
        name = worker_name("worker")
        pg = PgJobs(rt.ctx, conninfo_for(rt.database_url)).open()
        heartbeat = Heartbeat(rt.store, name, "procrastinate", settings.worker_heartbeat_seconds)
        heartbeat.start()
        log.info("calbridge worker %s: %d at once", name, max(1, settings.workers))
        err_console.print(f"calbridge worker {name} started", highlight=False, markup=False)
        try:
            run_worker(rt.ctx, pg, concurrency=max(1, settings.workers), name=name)
        finally:
            heartbeat.stop()
            pg.close()
            log.info("worker stopped")
