"""``/metrics``: Prometheus figures of the service (prometheus-client, own registry).

Counted in this process as things happen:
- ``calbridge_syncs_total{kind,result}`` and ``calbridge_sync_duration_seconds{kind}``
  (a histogram) — every sync job this process ran;
- ``calbridge_push_notifications_received_total{provider}`` and
  ``calbridge_push_notifications_refused_total{provider,reason}`` — the push endpoints call
  :meth:`ServiceMetrics.notification_received` / :meth:`ServiceMetrics.notification_refused`
  (through ``app.state.metrics``).

Read from the store at scrape time (so they hold for every worker process on PostgreSQL):
- ``calbridge_queue_depth`` — jobs waiting (the transport's ``depth()``);
- ``calbridge_calendar_last_success_timestamp_seconds{calendar}``;
- ``calbridge_calendar_state{calendar,state}`` (1 for the calendar's current state);
- ``calbridge_push_channel_expiry_timestamp_seconds{calendar,kind}`` — Google watch channels
  (``settings["watch"]["expiration"]``) and Graph subscriptions
  (``settings["subscription"]["expires"]``).

Nothing secret is ever a label: calendars are named by their calbridge name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from calbridge.store.db import Store
from calbridge.store.models import Calendar

log = logging.getLogger(__name__)

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
EXPIRY_FIELDS = (
    ("google_channel", "watch", "expiration"),
    ("graph_subscription", "subscription", "expires"),
)
STATES = ("ok", "syncing", "error", "auth_expired", "paused", "needs_confirmation")


class ServiceMetrics:
    """The service's metrics on a registry of its own (no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.syncs = Counter(
            "calbridge_syncs",
            "Sync jobs run, by result",
            ["kind", "result"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "calbridge_sync_duration_seconds",
            "Duration of sync jobs",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
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

    def sync_finished(self, kind: str, result: str, seconds: float) -> None:
        self.syncs.labels(kind, result).inc()
        self.duration.labels(kind).observe(seconds)

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
        try:
            value = self.depth()
            if value is not None:
                depth.add_metric([], value)
            with self.store.session() as session:
                rows = select(
                    Calendar.name, Calendar.state, Calendar.last_success_at, Calendar.settings
                )
                for row in session.execute(rows):
                    name, current, success, settings = row
                    if success is not None:
                        last.add_metric([name], _epoch(success))
                    for each in STATES:
                        state.add_metric([name, each], 1.0 if each == current else 0.0)
                    for kind, at in _expiries(settings or {}):
                        expiry.add_metric([name, kind], at)
        except SQLAlchemyError as exc:
            log.warning("metrics: store unreachable", extra={"error": exc.__class__.__name__})
        yield from (depth, last, state, expiry)


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def _expiries(settings: dict[str, Any]) -> Iterator[tuple[str, float]]:
    for kind, key, field in EXPIRY_FIELDS:
        held = settings.get(key)
        raw = held.get(field) if isinstance(held, dict) else None
        if not raw:
            continue
        try:
            at = datetime.fromisoformat(str(raw))
        except ValueError:
            continue
        yield kind, (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
