"""``/healthz`` (the process answers) and ``/readyz`` (it can do its job), plus worker
heartbeats.

``/readyz`` is ready when the database answers and a sync worker was seen within
``worker_seen_seconds`` (a minute): every worker — the in-process ones of ``calbridge serve``
and each ``calbridge worker`` process — writes its heartbeat row in ``service_workers`` every
few seconds (:class:`Heartbeat`). ``serve --no-worker`` is therefore ready only while some
``calbridge worker`` runs against the same database. Not ready → 503 with the reasons.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from calbridge.service.jobs import now_utc
from calbridge.store.db import Store
from calbridge.store.models import ServiceWorker

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

HEARTBEAT_SECONDS = 10.0


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    store: Store = request.app.state.store
    seen_within: float = request.app.state.settings.worker_seen_seconds
    body: dict[str, Any] = {"database": "ok", "workers": 0}
    problems = []
    try:
        with store.session() as session:
            session.execute(text("SELECT 1"))
            since = now_utc() - timedelta(seconds=seen_within)
            body["workers"] = int(
                session.scalar(
                    select(func.count())
                    .select_from(ServiceWorker)
                    .where(ServiceWorker.seen_at >= since)
                )
                or 0
            )
    except SQLAlchemyError as exc:
        body["database"] = f"unreachable ({exc.__class__.__name__})"
        problems.append("the database does not answer")
    if body["database"] == "ok" and body["workers"] == 0:
        problems.append(
            f"no sync worker seen in the last {seen_within:.0f} s "
            "(start `calbridge worker`, or `calbridge serve` without --no-worker)"
        )
    body["status"] = "ready" if not problems else "not ready"
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=200 if not problems else 503)


class Heartbeat:
    """Writes ``name``'s heartbeat now and every ``interval`` s until :meth:`stop`."""

    def __init__(self, store: Store, name: str, kind: str, interval: float = HEARTBEAT_SECONDS):
        self.store, self.name, self.kind, self.interval = store, name, kind, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        now = now_utc()
        try:
            with self.store.session() as session:
                row = session.get(ServiceWorker, self.name)
                if row is None:
                    session.add(
                        ServiceWorker(name=self.name, kind=self.kind, started_at=now, seen_at=now)
                    )
                else:
                    row.seen_at = now
        except SQLAlchemyError as exc:
            log.warning("heartbeat not written", extra={"error": exc.__class__.__name__})

    def start(self) -> Heartbeat:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="calbridge-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        """Stop beating and remove the row (a stopped worker is not a worker)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 1)
        try:
            with self.store.session() as session:
                session.execute(delete(ServiceWorker).where(ServiceWorker.name == self.name))
        except SQLAlchemyError:
            pass
