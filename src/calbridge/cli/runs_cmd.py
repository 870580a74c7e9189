"""``calbridge runs list`` and the calendar sync controls of the CLI.

``runs list`` prints the sync-run history (newest first, kept 30 days): calendar, trigger,
start, duration, result, counts, requests, error. ``calendars pause|resume|sync-now|resync``
call :mod:`calbridge.ops.sync_control` as the API and the admin UI do (actor ``cli``).

From the CLI there is no queue in this process: ``sync-now`` / ``resync`` on PostgreSQL defer
the job through procrastinate like the API; on SQLite they mark the calendar due (and, for a
resync, request a full one) so the running ``calbridge serve`` picks it up within a second.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from calbridge.cli.common import console, print_json, session, store
from calbridge.ops import sync_control
from calbridge.service.jobs import JobContext, check_trigger, now_utc
from calbridge.service.runs import list_runs, request_full, run_as_dict
from calbridge.service.settings import ServiceSettings

app = typer.Typer(help="Sync-run history.")
PUSHED = ("pushed_created", "pushed_updated", "pushed_deleted")


@app.command("list")
def runs_list(
    calendar: Annotated[str | None, typer.Option(help="only this calendar")] = None,
    days: Annotated[int, typer.Option(help="runs started in the last N days")] = 30,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="at most N runs")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
) -> None:
    """Sync runs, newest first."""
    with session() as s:
        runs = [
            run_as_dict(run)
            for run in list_runs(
                s, calendar=calendar, since=now_utc() - timedelta(days=days), limit=limit
            )
        ]
    if as_json:
        print_json(runs)
        return
    table = Table(title="sync runs")
    for column in ("#", "calendar", "trigger", "started", "result", "pulled", "pushed", "requests"):
        table.add_column(column)
    table.add_column("error", overflow="fold")
    for run in runs:
        counts = run["counts"]
        pushed = sum(int(counts.get(k, 0)) for k in PUSHED)
        table.add_row(
            str(run["id"]),
            Text(run["calendar"]),
            run["trigger"] + (" (full)" if run["full"] else ""),
            run["started_at"] or "",
            run["result"],
            str(counts.get("pulled", 0)),
            str(pushed),
            str(run["requests"]),
            Text(run["error"] or ""),
        )
    console.print(table)


class _MarkDue:
    """The CLI's jobs front on SQLite: mark the calendar due for the running service."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def sync_calendar(self, calendar_id: int, *, trigger: str, full: bool = False) -> None:
        check_trigger(trigger)
        from calbridge.store.models import Calendar

        calendar = self.session.get(Calendar, calendar_id)
        calendar.next_run_at = now_utc()
        if full:
            request_full(self.session, calendar_id)

    def push_booking(self, event_id: int, *, trigger: str = "booking_change") -> None:
        raise NotImplementedError  # the CLI never pushes a single booking through here


def _control(name: str, full: bool) -> str:
    opened = store()
    try:
        with opened.session() as s:
            if opened.engine.dialect.name == "postgresql":
                from calbridge.config import load_settings
                from calbridge.service.queue_pg import PgJobs, conninfo_for

                ctx = JobContext(opened, _no_provider, ServiceSettings())
                url = load_settings().resolved_database_url()
                pg = PgJobs(ctx, conninfo_for(url)).open()
                try:
                    do = sync_control.full_resync if full else sync_control.sync_now
                    do(s, pg, name, actor="cli")
                finally:
                    pg.close()
                return "queued"
            do = sync_control.full_resync if full else sync_control.sync_now
            do(s, _MarkDue(s), name, actor="cli")
            return "due now (the running `calbridge serve` picks it up)"
    finally:
        opened.dispose()


def _no_provider(_calendar: Any) -> Any:
    raise RuntimeError("the CLI does not run syncs here")


def sync_now(name: Annotated[str, typer.Argument(help="calendar name")]) -> None:
    """Ask the service to sync a calendar now."""
    console.print(f"calendar '{name}': sync {_control(name, False)}", markup=False)


def resync(name: Annotated[str, typer.Argument(help="calendar name")]) -> None:
    """Ask the service for a full resync of a calendar (no duplicates)."""
    console.print(f"calendar '{name}': full resync {_control(name, True)}", markup=False)


def pause(name: Annotated[str, typer.Argument(help="calendar name")]) -> None:
    """Stop polling a calendar until it is resumed."""
    with session() as s:
        sync_control.pause(s, name, actor="cli")
    console.print(f"calendar '{name}' paused", markup=False)


def resume(name: Annotated[str, typer.Argument(help="calendar name")]) -> None:
    """Poll a paused calendar again (at once)."""
    with session() as s:
        sync_control.resume(s, name, actor="cli")
    console.print(f"calendar '{name}' resumed", markup=False)
