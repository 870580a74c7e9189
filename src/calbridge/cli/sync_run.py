"""Running ``calbridge sync``: the quick path first, the engine for the rest.

``calbridge sync [--json] [NAME ...]`` is what cron and scripts run, most often with nothing
to do, so :func:`calbridge.cli.main.main` calls :func:`sync_and_print` before Typer is even
imported when the arguments are exactly that; any other form goes through Typer to the
``sync`` command (``sync_cmd.py``), which calls the same function. On SQLite a calendar with
nothing to do is finished by :mod:`calbridge.sync.quick` without loading the engine, and a
CalDAV calendar's change listing starts while the engine loads.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from calbridge.config import Settings
    from calbridge.store.db import Store
    from calbridge.sync.quick import Handover
    from calbridge.sync.report import SyncReport

#: The exit code of a ``calbridge sync`` in which a calendar failed.
SYNC_FAILED = 4


def plain_sync_args(args: list[str]) -> tuple[list[str], bool] | None:
    """``sync [--json] [NAME ...]`` as (names, as_json); None for any other command line
    (options, ``--help``, names that start with ``-``: Typer parses those)."""
    if not args or args[0] != "sync":
        return None
    names = [a for a in args[1:] if a != "--json"]
    if any(a.startswith("-") for a in names):
        return None
    return names, len(names) != len(args) - 1


def sync_and_print(names: list[str], as_json: bool) -> int:
    """Sync, print the reports (a table, or JSON), and return the exit code."""
    from calbridge.cli.common import print_json, report_rows

    reports = run_sync(names, show_progress=not as_json)
    if as_json:
        print_json([r.as_dict() for r in reports])
    else:
        report_rows(reports).print()
    return SYNC_FAILED if any(not r.ok for r in reports) else 0


def run_sync(names: list[str], show_progress: bool) -> list[SyncReport]:
    """Sync the calendars (all, by name, or the ones named), in name order. On SQLite a
    calendar with nothing to do is finished before the engine is even imported, and a CalDAV
    calendar's change listing starts while it loads (:mod:`calbridge.sync.quick`)."""
    from calbridge.config import load_settings
    from calbridge.sync.quick import QuickSync
    from calbridge.sync.report import SyncReport

    settings = load_settings()
    quick = QuickSync.open(settings)
    targets = quick.targets(names) if quick is not None else None
    with EngineRun(settings, show_progress) as engine:
        if quick is None or targets is None:
            return [engine.sync(cal_id) for cal_id in engine.calendar_ids(names)]
        reports = []
        for target in targets:
            outcome = quick.start(target, fork=not engine.loaded)
            if isinstance(outcome, SyncReport):
                reports.append(outcome)
            else:
                reports.append(engine.sync(target.id, outcome))
        return reports


class EngineRun:
    """The engine, loaded on first use: the store, the secret box, the settings check and the
    progress bars (on stderr, one per calendar the engine syncs)."""

    def __init__(self, settings: Settings, show_progress: bool) -> None:
        self.settings, self.show_progress = settings, show_progress
        self._store: Store | None = None
        self._box: Any = None
        self._progress: Any = None
        self._stack = ExitStack()

    def __enter__(self) -> EngineRun:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._stack.close()
        finally:
            if self._store is not None:
                self._store.dispose()

    @property
    def loaded(self) -> bool:
        """Whether the engine's store is open (a forked child would inherit its connections)."""
        return self._store is not None

    def store(self) -> Store:
        if self._store is None:
            from calbridge.cli.common import store
            from calbridge.errors import ConfigError
            from calbridge.store.lookup import settings_problems
            from calbridge.store.secrets import SecretBox

            self._box = SecretBox.from_settings(self.settings)
            self._store = store()
            with self._store.session() as s:
                problems = settings_problems(s)
            if problems:
                raise ConfigError("cannot sync: " + "; ".join(problems))
        return self._store

    def calendar_ids(self, names: list[str]) -> list[int]:
        """The calendars to sync (all, by name), once the stored settings allow a sync."""
        from sqlalchemy import select

        from calbridge.store.models import Calendar

        with self.store().session() as s:
            if names:
                from calbridge.sync.calendars import find_calendar

                return [find_calendar(s, n).id for n in names]
            return list(s.scalars(select(Calendar.id).order_by(Calendar.name)))

    def sync(self, cal_id: int, handover: Handover | None = None) -> SyncReport:
        try:
            opened = self.store()
        except BaseException:
            if handover is not None:
                handover.close()
            raise
        from calbridge.sync.collector import resume_after_start
        from calbridge.sync.engine import sync_calendar

        resume_after_start()  # the engine is loaded (see sync/collector.py)
        box = self._box

        def provider(calendar: Any) -> Any:
            started = (
                handover.provider_for(calendar.settings, calendar.secret) if handover else None
            )
            if started is not None:
                return started  # its settings were read and checked by the quick path
            from calbridge.sync.providers import open_provider

            return open_provider(calendar, box, opened)

        now = handover.now if handover is not None else None
        if not self.show_progress:
            return sync_calendar(opened, cal_id, provider, now, None, handover)
        progress = self._bars()
        task = progress.add_task(f"calendar #{cal_id}", total=None)

        def tick(n: int) -> None:
            progress.advance(task, n)

        report = sync_calendar(opened, cal_id, provider, now, tick, handover)
        progress.update(task, description=report.calendar, total=progress.tasks[-1].completed)
        return report

    def _bars(self) -> Any:
        """The rich progress display, started on first use (on stderr)."""
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            from calbridge.cli.common import err_console

            self._progress = self._stack.enter_context(
                Progress(
                    TextColumn("{task.description}", markup=False),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=err_console,
                    transient=False,
                )
            )
        return self._progress
