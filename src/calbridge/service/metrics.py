"""``/metrics``: Prometheus figures of the service (prometheus-client, own registry).

Counted in this process as things happen:
- ``calbridge_push_notifications_received_total{provider}`` and
  ``calbridge_push_notifications_refused_total{provider,reason}`` — the push endpoints call
  :meth:`ServiceMetrics.notification_received` / :meth:`ServiceMetrics.notification_refused`
  (through ``app.state.metrics``).

Read from the store at scrape time (so they hold for every worker process on PostgreSQL):
- ``calbridge_syncs_total{kind,result}`` and ``calbridge_sync_duration_seconds{kind}``
  (a histogram) — every sync run of every worker: :func:`count_sync` adds each finished run
  to the ``sync_totals`` table in the transaction that records its end, so a web process
  started with ``--no-worker`` reports the runs of ``calbridge worker`` processes elsewhere;
- ``calbridge_queue_depth`` — jobs waiting (the transport's ``depth()``);
- ``calbridge_calendar_last_success_timestamp_seconds{calendar}``;
- ``calbridge_calendar_state{calendar,state}`` (1 for the calendar's current state);
- ``calbridge_push_channel_expiry_timestamp_seconds{calendar,kind}`` — the channel of every
  kind whose registry entry says where its expiry is (``channel``: Google watch channels,
  ``google_channel``; Graph subscriptions, ``graph_subscription``).

Nothing secret is ever a label: calendars are named by their calbridge name.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from calbridge.providers.registry import known_kind
from calbridge.store.db import Store
from calbridge.store.models import Calendar, SyncTotal

log = logging.getLogger(__name__)

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
STATES = ("ok", "syncing", "error", "auth_expired", "paused", "needs_confirmation")


class ServiceMetrics:
    """The service's metrics on a registry of its own (no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "calbridge_push_notifications_received",
            "Push notifications received",
            ["provider"],
            registry=self.registry,
        )
        self.refused = Counter(
            "calbridge_push_notifications_refused",
            "Push notifications refused (forged, unknown channel, rate-limited)",
            ["provider", "reason"],
            registry=self.registry,
        )

    def notification_received(self, provider: str) -> None:
        self.received.labels(provider).inc()

    def notification_refused(self, provider: str, reason: str) -> None:
        self.refused.labels(provider, reason).inc()

    def watch_store(self, store: Store, depth: Callable[[], int | None]) -> None:
        """Add the figures read from the store at scrape time."""
        self.registry.register(_StoreCollector(store, depth))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    def __init__(self, store: Store, depth: Callable[[], int | None]) -> None:
        self.store = store
        self.depth = depth

    def describe(self) -> list[Metric]:
        return []  # figures depend on the store: collected on each scrape only

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("calbridge_queue_depth", "Sync jobs waiting")
        last = GaugeMetricFamily(
            "calbridge_calendar_last_success_timestamp_seconds",
            "When each calendar last synced successfully",
            labels=["calendar"],
        )
        state = GaugeMetricFamily(
            "calbridge_calendar_state", "Run state of each calendar", labels=["calendar", "state"]
        )
        expiry = GaugeMetricFamily(
            "calbridge_push_channel_expiry_timestamp_seconds",
            "When each calendar's watch channel or subscription expires",
            labels=["calendar", "kind"],
        )
        syncs = CounterMetricFamily(
            "calbridge_syncs", "Sync runs finished, by result", labels=["kind", "result"]
        )
        durations: list[HistogramMetricFamily] = []
        try:
            for kind, totals in _sync_totals(self.store).items():
                for result, runs in sorted(totals.runs.items()):
                    syncs.add_metric([kind, result], runs)
                duration = HistogramMetricFamily(
                    "calbridge_sync_duration_seconds", "Duration of sync runs", labels=["kind"]
                )
                duration.add_metric([kind], totals.cumulative(), totals.seconds)
                durations.append(duration)
            value = self.depth()
            if value is not None:
                depth.add_metric([], value)
            with self.store.session() as session:
                rows = select(
                    Calendar.name,
                    Calendar.state,
                    Calendar.last_success_at,
                    Calendar.settings,
                    Calendar.kind,
                )
                for row in session.execute(rows):
                    name, current, success, settings, kind = row
                    if success is not None:
                        last.add_metric([name], _epoch(success))
                    for each in STATES:
                        state.add_metric([name, each], 1.0 if each == current else 0.0)
                    for channel, at in _expiries(kind, settings or {}):
                        expiry.add_metric([name, channel], at)
        except SQLAlchemyError as exc:
            log.warning("metrics: store unreachable", extra={"error": exc.__class__.__name__})
        yield from (syncs, *durations, depth, last, state, expiry)


@dataclass
class _KindTotals:
    runs: dict[str, int] = field(default_factory=dict)  # by result
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    seconds: float = 0.0

    def cumulative(self) -> list[tuple[str, float]]:
        bounds = [*(str(float(b)) for b in DURATION_BUCKETS), "+Inf"]
        return list(zip(bounds, accumulate(self.buckets), strict=True))


def _sync_totals(store: Store) -> dict[str, _KindTotals]:
    totals: dict[str, _KindTotals] = {}
    with store.session() as session:
        rows = session.execute(
            select(SyncTotal.kind, SyncTotal.result, SyncTotal.bucket, SyncTotal.runs,
                   SyncTotal.seconds).order_by(SyncTotal.kind)
        )  # fmt: skip
        for kind, result, bucket, runs, seconds in rows:
            each = totals.setdefault(kind, _KindTotals())
            each.runs[result] = each.runs.get(result, 0) + runs
            each.buckets[min(bucket, len(DURATION_BUCKETS))] += runs
            each.seconds += seconds
    return totals


def count_sync(session: Session, kind: str, result: str, seconds: float) -> None:
    """Add one finished sync run to the totals (in the caller's transaction)."""
    bucket = bisect_left(DURATION_BUCKETS, seconds)
    keys = {"kind": kind, "result": result, "bucket": bucket}
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(SyncTotal).values(**keys, runs=1, seconds=seconds)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["kind", "result", "bucket"],
            set_={"runs": SyncTotal.runs + 1, "seconds": SyncTotal.seconds + seconds},
        )
    )


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def _expiries(kind: str, settings: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """The calendar's push channel expiry, labelled by the registry's channel name
    (``google_channel``, ``graph_subscription``); none for kinds whose channel never expires."""
    entry = known_kind(kind)
    channel = entry.channel if entry is not None else None
    if channel is not None:
        raw = channel.expiry(settings)
        if raw:
            try:
                at = datetime.fromisoformat(raw)
            except ValueError:
                return
            label = channel.name.replace("-", "_")
            yield label, (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
