"""Exchange push through the running service, with no public URL: ``calbridge serve`` keeps an
EWS streaming subscription on the calendar (providers/ews/notify.py), an edit in Outlook
becomes a booking change within seconds; a dropped stream reconnects; a subscription the
server forgot is re-created; removing the calendar ends its subscription for good.

One ``calbridge serve`` subprocess (SQLite, ``CALBRIDGE_PUBLIC_URL`` empty, polls an hour
apart) and one EWS emulator in the test process serve the module; the removal test runs last.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from push_service import Service, running_service, runs, shared_box, wait_until
from sqlalchemy import select

from calbridge.ops.calendars import unlink_calendar
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event, Link
from calbridge.sync.calendars import CalendarUpdate, add_ews_calendar, update_calendar
from calbridge_emulators.ews.server import EwsServer, running_emulator
from worlds import example_store

MAILBOX = "bookings@harbour.example"
SERVICE = ("svc-calbridge", "S3rvice!pw")
OTHER = ("svc-bookings", "0ther!pw")


@dataclass
class EwsService:
    service: Service
    store: Store
    ews: EwsServer
    calendar_id: int
    item_id: str

    @property
    def org(self) -> Any:
        return self.ews.org

    def booking(self) -> Event | None:
        with self.store.session() as session:
            return session.scalars(
                select(Event)
                .join(Link, Link.event_id == Event.id)
                .where(Link.calendar_id == self.calendar_id, Link.remote_id == self.item_id)
            ).first()

    def streamed(self) -> Any:
        """The mailbox's one subscription once a connection streams it, else None."""
        found = self.org.subscriptions_of(MAILBOX)
        return found[0] if len(found) == 1 and found[0].streams == 1 else None

    def rename_in_outlook(self, subject: str) -> None:
        self.org.external_update(MAILBOX, self.item_id, subject=subject)
        wait_until(
            lambda: (b := self.booking()) is not None and b.name == subject,
            30,
            f"the edit '{subject}' to reach the booking\n{self.service.output()}",
        )


@pytest.fixture(scope="module")
def ews_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EwsService]:
    folder = tmp_path_factory.mktemp("push-ews")
    with running_emulator() as ews, example_store(folder) as store:
        ews.org.add_mailbox(MAILBOX, "Harbour Bookings")
        ews.org.add_account(*SERVICE, impersonates=(MAILBOX,))
        ews.org.heartbeat_seconds = 1.0
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=4)
        item = ews.org.external_create(
            MAILBOX, "Patel family lunch", start, start + timedelta(hours=2)
        )
        with store.session() as session:
            ours = add_ews_calendar(
                session,
                shared_box(),
                "exchange",
                MAILBOX,
                username=f"HARBOUR\\{SERVICE[0]}",
                password=SERVICE[1],
                server=ews.ews_url,
                auth="basic",
                impersonate=True,
            )
            calendar_id = ours.id
        env = {"CALBRIDGE_PUBLIC_URL": "", "CALBRIDGE_POLL_EWS_SECONDS": "3600"}
        with running_service(folder, f"sqlite:///{folder / 'calbridge.db'}", **env) as service:
            world = EwsService(service, store, ews, calendar_id, str(item.id))
            wait_until(world.booking, 30, f"the first poll's import\n{service.output()}")
            wait_until(world.streamed, 30, f"an open stream\n{service.output()}")
            yield world


def test_outlook_edit_becomes_a_booking_change_through_the_stream_without_public_url(
    ews_service: EwsService,
) -> None:
    world = ews_service
    assert world.service.env["CALBRIDGE_PUBLIC_URL"] == ""

    world.rename_in_outlook("Patel family dinner")

    assert any(run.trigger == "push" for run in runs(world.store, world.calendar_id))
    with world.store.session() as session:
        calendar = session.get(Calendar, world.calendar_id)
        assert calendar is not None
        stored = calendar.settings["stream"]
    assert stored["subscription_id"] == world.streamed().id


def test_a_dropped_stream_reconnects(ews_service: EwsService) -> None:
    world = ews_service
    before = world.streamed()

    world.org.drop_streams()

    wait_until(world.streamed, 30, f"the stream to be open again\n{world.service.output()}")
    assert world.streamed().id == before.id  # same subscription, new connection
    world.rename_in_outlook("After the drop")


def test_a_subscription_the_server_forgot_is_recreated(ews_service: EwsService) -> None:
    world = ews_service
    old = world.streamed().id

    world.org.forget_subscriptions()  # the server restarted

    fresh = wait_until(
        lambda: (s := world.streamed()) is not None and s.id != old and s,
        30,
        f"a new subscription\n{world.service.output()}",
    )
    assert fresh.id != old
    world.rename_in_outlook("After re-subscribing")


def test_a_calendar_signing_in_as_another_account_streams_on_that_accounts_subscription(
    ews_service: EwsService,
) -> None:
    """A subscription is its creator's own (Exchange refuses it to any other account): when the
    calendar's sign-in changes, the service unsubscribes the old one and subscribes anew."""
    world = ews_service
    old = world.streamed()
    assert old is not None and old.account == SERVICE[0]
    world.org.add_account(*OTHER, impersonates=(MAILBOX,))
    with world.store.session() as session:
        update_calendar(
            session,
            shared_box(),
            "exchange",
            CalendarUpdate(connection={"username": f"HARBOUR\\{OTHER[0]}", "password": OTHER[1]}),
        )

    fresh = wait_until(
        lambda: (s := world.streamed()) is not None and s.account == OTHER[0] and s,
        30,
        f"a subscription of the new account\n{world.service.output()}",
    )
    assert [s.id for s in world.org.subscriptions_of(MAILBOX)] == [fresh.id]  # old one ended
    world.rename_in_outlook("Streamed for the new account")


def test_removing_the_calendar_closes_its_subscription(ews_service: EwsService) -> None:
    world = ews_service
    assert world.streamed() is not None

    unlink_calendar(world.store, shared_box(), "exchange", actor="test")

    assert world.org.subscriptions_of(MAILBOX) == []
    # the service's keeper passes every second: none may subscribe again
    with pytest.raises(AssertionError):
        wait_until(lambda: world.org.subscriptions_of(MAILBOX), 4, "no new subscription")
