"""The scheduler: polls each calendar when its time comes, and runs periodic maintenance.

Every ``scheduler_tick_seconds`` it enqueues (trigger ``poll``) each calendar whose
``next_run_at`` is due (or unset) and moves that ``next_run_at`` one interval ahead at once,
so a slow queue is not flooded; the job itself sets the real next time when it ends
(:func:`calbridge.service.runs.next_poll`: the calendar's own ``poll_seconds``, else the
default of its kind, doubled up to 4x while idle if ``idle_backoff`` is on; a retry's
backoff). Calendars that are paused, waiting for a person (``needs_confirmation``) or whose
refused credentials have not changed (``auth_expired``) are not polled.

Maintenance tasks run every N seconds on the same thread (:meth:`Scheduler.every`): pruning
``sync_runs`` older than 30 days here; the push side registers channel/subscription renewal.
A task that fails is logged and tried again at its next turn: the scheduler never dies.

Time comes from the job context's clock; :meth:`Scheduler.tick` is one pass (for tests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from calbridge.service.jobs import JobContext, Jobs
from calbridge.service.runs import prune_runs, secret_digest
from calbridge.store.models import Calendar

log = logging.getLogger(__name__)

NOT_POLLED = ("needs_confirmation",)


@dataclass
class _Periodic:
    name: str
    seconds: float
    run: Callable[[], object]
    due: float = 0.0


class Scheduler:
    """Enqueues due polls through ``jobs``; start() runs it on a daemon thread."""

    def __init__(self, ctx: JobContext, jobs: Jobs) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._periodic: list[_Periodic] = []
        self.every(3600, "prune sync runs", self._prune)

    def every(self, seconds: float, name: str, run: Callable[[], object]) -> None:
        """Run ``run()`` every ``seconds`` (first turn at the first tick)."""
        self._periodic.append(_Periodic(name, seconds, run))

    def tick(self) -> list[int]:
        """One pass: enqueue the due calendars and run due maintenance; returns the ids."""
        due = self._enqueue_due(self.ctx.clock())
        monotonic = time.monotonic()
        for task in self._periodic:
            if task.due <= monotonic:
                task.due = monotonic + task.seconds
                try:
                    task.run()
                except Exception:
                    log.exception("scheduled task failed", extra={"task": task.name})
        return due

    def _enqueue_due(self, now: datetime) -> list[int]:
        with self.ctx.store.session() as session:
            rows = session.scalars(
                select(Calendar)
                .where(Calendar.paused.is_(False), Calendar.state.not_in(NOT_POLLED))
                .where(or_(Calendar.next_run_at.is_(None), Calendar.next_run_at <= now))
                .order_by(Calendar.next_run_at)
            ).all()
            due = []
            for calendar in rows:
                if calendar.state == "auth_expired" and calendar.auth_failed_secret == (
                    secret_digest(calendar.secret)
                ):
                    continue
                interval = calendar.poll_seconds or self.ctx.settings.poll_interval(calendar.kind)
                calendar.next_run_at = now + timedelta(seconds=float(interval))
                due.append(calendar.id)
        for calendar_id in due:
            try:
                self.jobs.sync_calendar(calendar_id, trigger="poll")
            except Exception:
                log.exception("could not enqueue a poll", extra={"calendar_id": calendar_id})
        return due

    def _prune(self) -> None:
        with self.ctx.store.session() as session:
            gone = prune_runs(session, self.ctx.clock(), self.ctx.settings.runs_keep_days)
        if gone:
            log.info("pruned %d sync runs", gone, extra={"pruned": gone})

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._run, name="calbridge-scheduler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the database may be away for a moment: try again next tick
                log.exception("scheduler tick failed")
            self._stop.wait(self.ctx.settings.scheduler_tick_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
