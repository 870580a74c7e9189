"""The in-process job queue of the one-process service (SQLite).

:class:`LocalJobs` implements :class:`calbridge.service.jobs.Jobs` with a few worker threads
and the same rule as procrastinate's ``lock`` + ``queueing_lock``: per calendar at most one
sync runs and at most one waits; enqueueing a calendar that is already waiting merges into
that job (``full`` upgrades it). Retries of transient failures wait on a timer list and join
the queue when due (a calendar already waiting absorbs them).

Shutdown (:meth:`LocalJobs.stop`): no new job starts; running syncs stop at the engine's next
committed step; threads are joined within the grace period. Jobs still waiting are not lost:
the scheduler polls every calendar again on the next start (``next_run_at``), and the engine
is incremental.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from calbridge.service.jobs import JobContext, calendars_for_booking, check_trigger
from calbridge.service.runs import run_sync_job

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    trigger: str
    full: bool
    attempt: int = 0


class LocalJobs:
    """In-process queue; ``workers=0`` accepts jobs but runs none (the web side alone)."""

    def __init__(self, ctx: JobContext, workers: int = 2, *, name: str | None = None) -> None:
        self.ctx = ctx
        self.workers = workers
        self.name = name or f"local-{uuid.uuid4().hex[:8]}"
        self._cond = threading.Condition()
        self._waiting: dict[int, _Pending] = {}  # insertion order = FIFO
        self._delayed: list[tuple[float, int, int, _Pending]] = []  # (due, seq, calendar, job)
        self._seq = 0
        self._running: set[int] = set()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # -- the Jobs interface -------------------------------------------------------------
    def sync_calendar(self, calendar_id: int, *, trigger: str, full: bool = False) -> None:
        check_trigger(trigger)
        with self._cond:
            self._add(calendar_id, _Pending(trigger, full))
            self._cond.notify()

    def push_booking(self, event_id: int, *, trigger: str = "booking_change") -> None:
        check_trigger(trigger)
        with self.ctx.store.session() as session:
            ids = calendars_for_booking(session, event_id)
        for calendar_id in ids:
            self.sync_calendar(calendar_id, trigger=trigger)

    # -- inspection (health, metrics, tests) ----------------------------------------------
    def depth(self) -> int:
        """Jobs waiting (including retries waiting for their time)."""
        with self._cond:
            return len(self._waiting) + len(self._delayed)

    def running(self) -> set[int]:
        with self._cond:
            return set(self._running)

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing runs or waits (retries not yet due count as waiting)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._waiting or self._running or self._delayed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> LocalJobs:
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._work, name=f"calbridge-sync-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, grace: float = 25.0) -> bool:
        """Stop taking work and wait (up to ``grace`` s) for running syncs to reach their
        next committed step. True when every worker finished in time."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- internals ----------------------------------------------------------------------
    def _add(self, calendar_id: int, job: _Pending) -> None:
        waiting = self._waiting.get(calendar_id)
        if waiting is None:
            self._waiting[calendar_id] = job
        else:  # queueing lock: the waiting job will see this change too
            waiting.full = waiting.full or job.full

    def _take(self) -> tuple[int, _Pending] | None:
        """Next runnable job (caller holds the lock); due retries join the queue first."""
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _due, _seq, calendar_id, job = heapq.heappop(self._delayed)
            self._add(calendar_id, job)
        for calendar_id in self._waiting:
            if calendar_id not in self._running:
                return calendar_id, self._waiting.pop(calendar_id)
        return None

    def _next_wait(self) -> float:
        if self._delayed:
            return max(0.01, min(1.0, self._delayed[0][0] - time.monotonic()))
        return 1.0

    def _work(self) -> None:
        while True:
            with self._cond:
                picked = None
                while not self._stopping:
                    picked = self._take()
                    if picked is not None:
                        break
                    self._cond.wait(self._next_wait())
                if picked is None:
                    return
                calendar_id, job = picked
                self._running.add(calendar_id)
            try:
                outcome = run_sync_job(
                    self.ctx,
                    calendar_id,
                    job.trigger,
                    job.full,
                    attempt=job.attempt,
                    worker=self.name,
                    should_stop=lambda: self._stopping,
                )
            except Exception:
                log.exception("sync job failed", extra={"calendar_id": calendar_id})
                outcome = None
            with self._cond:
                self._running.discard(calendar_id)
                if outcome is not None and outcome.retry_in is not None and not self._stopping:
                    retry = _Pending(job.trigger, job.full, job.attempt + 1)
                    self._seq += 1
                    heapq.heappush(
                        self._delayed,
                        (time.monotonic() + outcome.retry_in, self._seq, calendar_id, retry),
                    )
                self._cond.notify_all()
