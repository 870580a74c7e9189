"""Microsoft Graph push through the running service: the validation handshake, a subscription
per calendar with its lifecycle URL, ``/hooks/graph`` answering 202 and enqueueing, forged
notifications refused, lifecycle events (``missed`` → full resync, ``subscriptionRemoved`` →
re-created) and renewal before expiry.

One ``calbridge serve`` subprocess and one Graph emulator (TLS, MSAL) serve the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from push_service import Service, running_service, runs, shared_box, wait_until
from sqlalchemy import select

from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event, Link
from calbridge.sync.calendars import add_graph_calendar
from calbridge_emulators.graph.testing import GraphEmulatorHandle, running_emulator
from worlds import example_store

MAILBOX = "bookings@harbour.example"
LIFETIME_SECONDS = 12  # subscriptions live 12 s here: renewed when 4 s are left


@dataclass
class GraphService:
    service: Service
    store: Store
    graph: GraphEmulatorHandle
    calendar_id: int
    event_id: str

    def subscription(self) -> dict[str, Any]:
        with self.store.session() as session:
            calendar = session.get(Calendar, self.calendar_id)
            assert calendar is not None
            return dict((calendar.settings or {}).get("subscription") or {})

    def booking(self) -> Event | None:
        with self.store.session() as session:
            return session.scalars(
                select(Event)
                .join(Link, Link.event_id == Event.id)
                .where(Link.calendar_id == self.calendar_id, Link.remote_id == self.event_id)
            ).first()

    def client_state(self) -> str:
        subscription = self.graph.emulator.store.subscriptions[self.subscription()["id"]]
        return str(subscription.client_state)


@pytest.fixture(scope="module")
def graph_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphService]:
    folder = tmp_path_factory.mktemp("push-graph")
    with running_emulator(tls=True) as graph, example_store(folder) as store:
        graph.add_user(graph.tenant_id, MAILBOX, "Harbour Bookings")
        calendar = graph.add_calendar(MAILBOX, "Bookings")
        start = datetime.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=4)
        made = graph.external_create(
            MAILBOX,
            {
                "subject": "Patel family lunch",
                "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (start + timedelta(hours=2)).isoformat(), "timeZone": "UTC"},
            },
            calendar.id,
        )
        with store.session() as session:
            ours = add_graph_calendar(
                session,
                shared_box(),
                "m365",
                MAILBOX,
                calendar_id=calendar.id,
                **graph.link_options(),
            )
            calendar_id = ours.id
        env = {"CALBRIDGE_PUSH_GRAPH_LIFETIME_SECONDS": str(LIFETIME_SECONDS)}
        with running_service(folder, f"sqlite:///{folder / 'calbridge.db'}", **env) as service:
            world = GraphService(service, store, graph, calendar_id, str(made["id"]))
            wait_until(world.subscription, 30, f"a subscription\n{service.output()}")
            wait_until(world.booking, 30, f"the first poll's import\n{service.output()}")
            yield world


def test_graph_edit_becomes_a_booking_change_through_the_subscription(
    graph_service: GraphService,
) -> None:
    world = graph_service
    held = world.graph.emulator.store.subscriptions[world.subscription()["id"]]
    assert held.lifecycle_url and held.lifecycle_url.endswith("/hooks/graph/lifecycle")

    world.graph.external_update(MAILBOX, world.event_id, {"subject": "Patel family dinner"})

    wait_until(
        lambda: (b := world.booking()) is not None and b.name == "Patel family dinner",
        30,
        f"the edit to reach the booking\n{world.service.output()}",
    )
    assert any(run.trigger == "push" for run in runs(world.store, world.calendar_id))
    delivered = [n for n in world.graph.notifications if n["subscriptionId"] == held.id]
    assert delivered and all(n["status"] == 202 for n in delivered)


def test_validation_handshake_echoes_the_token_as_plain_text(graph_service: GraphService) -> None:
    token = "Validation: <b>reachability</b> & more"
    answer = graph_service.service.post("/hooks/graph", params={"validationToken": token})

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == token


def test_forged_graph_notifications_are_refused_and_sync_nothing(
    graph_service: GraphService,
) -> None:
    world = graph_service
    before = len(runs(world.store, world.calendar_id))
    entry = {
        "subscriptionId": world.subscription()["id"],
        "changeType": "updated",
        "resource": f"Users/x/Events/{world.event_id}",
        "clientState": "guessed",
    }
    forged = world.service.post("/hooks/graph", json={"value": [entry]})
    unknown = world.service.post(
        "/hooks/graph",
        json={"value": [{**entry, "subscriptionId": "no-such", "clientState": "x"}]},
    )
    garbage = world.service.post("/hooks/graph", content=b"{not json")

    assert (forged.status_code, unknown.status_code, garbage.status_code) == (403, 403, 403)
    metrics = httpx.get(world.service.url + "/metrics").text
    assert 'calbridge_push_notifications_refused_total{provider="graph",reason="forged"}' in (
        metrics
    )
    with pytest.raises(AssertionError):  # the enqueue would have happened before the answer
        wait_until(lambda: len(runs(world.store, world.calendar_id)) > before, 2, "no run")


def test_missed_lifecycle_notification_starts_a_full_resync(graph_service: GraphService) -> None:
    world = graph_service
    before = {run.id for run in runs(world.store, world.calendar_id)}

    world.graph.lifecycle(world.subscription()["id"], "missed")

    resync = wait_until(
        lambda: [r for r in runs(world.store, world.calendar_id) if r.id not in before and r.full],
        30,
        f"a full resync\n{world.service.output()}",
    )
    assert resync[0].trigger == "resync"


def test_subscription_removed_lifecycle_notification_recreates_it(
    graph_service: GraphService,
) -> None:
    world = graph_service
    old = world.subscription()["id"]

    world.graph.lifecycle(old, "subscriptionRemoved")

    fresh = wait_until(
        lambda: (s := world.subscription()).get("id") not in (None, old) and s,
        30,
        f"a new subscription\n{world.service.output()}",
    )
    subscriptions = world.graph.emulator.store.subscriptions
    assert old not in subscriptions and fresh["id"] in subscriptions
    world.graph.external_update(MAILBOX, world.event_id, {"subject": "After re-creation"})
    wait_until(
        lambda: (b := world.booking()) is not None and b.name == "After re-creation",
        30,
        "a change through the new subscription",
    )


def test_subscription_is_renewed_before_it_expires(graph_service: GraphService) -> None:
    world = graph_service
    first = world.subscription()

    renewed = wait_until(
        lambda: (s := world.subscription())["expires"] != first["expires"] and s,
        LIFETIME_SECONDS * 2,
        f"a renewal\n{world.service.output()}",
    )

    assert renewed["id"] == first["id"]  # extended (PATCH), not re-created
    assert datetime.fromisoformat(renewed["expires"]) > datetime.fromisoformat(first["expires"])
    live = world.graph.emulator.store.subscriptions[renewed["id"]]
    assert live.expiration.replace(tzinfo=None) > datetime.fromisoformat(first["expires"])
