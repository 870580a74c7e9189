"""EWS streaming subscriptions (providers/ews/notify.py) against the emulator with real
exchangelib: a change in Outlook reaches ``on_change`` down an open ``GetStreamingEvents``
connection; a connection the server closes (timeout) or that drops is reopened; a
subscription the server forgot is re-created (with a catch-up); removing the calendar ends
the subscription for good; two keepers (two service processes) never stream one calendar
twice; and exchangelib parses every streaming envelope with no fallback."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

import waits
from calbridge.ops import calendars as ops_calendars
from calbridge.ops.calendars import unlink_calendar
from calbridge.providers.ews.notify import SETTINGS_KEY, StreamKeeper
from calbridge.store.models import Calendar
from calbridge.sync.providers import open_provider

World = Any  # conftest.EwsWorld
START = datetime(2027, 3, 1, 9, tzinfo=UTC)


class Changes:
    """What the streams reported, by calendar id (the service enqueues a sync here)."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, calendar_id: int) -> None:
        with self.lock:
            self.seen.append(calendar_id)

    def count(self) -> int:
        with self.lock:
            return len(self.seen)


def keeper_for(world: World, changes: Changes) -> StreamKeeper:
    def connect(calendar_id: int) -> Any:
        with world.store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            return open_provider(calendar, world.box).conn

    return StreamKeeper(world.store, connect, changes, minutes=1)


def keep(world: World, keeper: StreamKeeper, name: str) -> str | None:
    calendar_id = world.calendar_id(name)
    with world.store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        settings = dict(calendar.settings)
    return keeper.keep(calendar_id, name, settings, "ews front", datetime.now(UTC))


@pytest.fixture
def streaming(world: World) -> Iterator[tuple[World, StreamKeeper, Changes]]:
    world.org.heartbeat_seconds = 0.2
    world.add_calendar("front")
    changes = Changes()
    keeper = keeper_for(world, changes)
    try:
        yield world, keeper, changes
    finally:
        keeper.close()


def outlook_edit(world: World, subject: str) -> None:
    world.org.external_create(world.mailbox, subject, START, START + timedelta(hours=1))


def wait_for_change(changes: Changes, more_than: int, what: str) -> None:
    waits.wait_until(lambda: changes.count() > more_than, what, timeout=30, interval=0.05)


def test_an_outlook_change_arrives_down_the_open_stream(
    streaming: tuple[World, StreamKeeper, Changes], caplog: pytest.LogCaptureFixture
) -> None:
    world, keeper, changes = streaming
    caplog.set_level(logging.DEBUG, logger="exchangelib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert keep(world, keeper, "front") == "opened"
        [subscription] = world.org.subscriptions_of(world.mailbox)
        waits.wait_until(lambda: subscription.streams == 1, "the stream to be open", timeout=30)
        outlook_edit(world, "Board lunch")
        wait_for_change(changes, 0, "the created item to be notified")
        box = world.org.mailbox(world.mailbox)
        world.org.external_update(world.mailbox, next(iter(box.items)), subject="Board dinner")
        wait_for_change(changes, 1, "the modified item to be notified")
    assert set(changes.seen) == {world.calendar_id("front")}
    stored = _stored(world, "front")
    assert stored["subscription_id"] == subscription.id
    assert stored["owner"] == keeper.owner
    problems = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("exchangelib")
    ]
    assert problems == []


def test_a_stream_the_server_closes_or_that_drops_is_reopened(
    streaming: tuple[World, StreamKeeper, Changes],
) -> None:
    world, keeper, changes = streaming
    world.org.stream_cap_seconds = 0.5  # the server ends every connection after 0.5 s
    keep(world, keeper, "front")
    stream = keeper.streams[world.calendar_id("front")]
    waits.wait_until(lambda: stream.reconnects >= 2, "the closed stream to reopen", timeout=30)
    world.org.stream_cap_seconds = None
    [subscription] = world.org.subscriptions_of(world.mailbox)
    waits.wait_until(lambda: subscription.streams == 1, "a long stream to be open", timeout=30)
    before = stream.reconnects
    world.org.drop_streams()  # cut without a closing message
    waits.wait_until(lambda: stream.reconnects > before, "the dropped stream to reopen")
    outlook_edit(world, "After the drop")
    wait_for_change(changes, 0, "a change after the drop to be notified")
    assert [s.id for s in world.org.subscriptions_of(world.mailbox)] == [subscription.id]


def test_a_subscription_the_server_forgot_is_recreated_and_caught_up(
    streaming: tuple[World, StreamKeeper, Changes],
) -> None:
    world, keeper, changes = streaming
    keep(world, keeper, "front")
    [first] = world.org.subscriptions_of(world.mailbox)
    stream = keeper.streams[world.calendar_id("front")]
    world.org.forget_subscriptions()  # e.g. the server restarted
    world.org.drop_streams()
    waits.wait_until(
        lambda: world.org.subscriptions_of(world.mailbox), "a new subscription", timeout=30
    )
    [second] = world.org.subscriptions_of(world.mailbox)
    assert second.id != first.id
    wait_for_change(changes, 0, "a catch-up sync after re-subscribing")
    seen = changes.count()
    outlook_edit(world, "On the new subscription")
    wait_for_change(changes, seen, "a change on the new subscription")
    keep(world, keeper, "front")  # the next keeper pass stores the new id
    assert _stored(world, "front")["subscription_id"] == second.id == stream.subscription_id


def test_an_unknown_stored_subscription_is_replaced_when_the_stream_starts(
    streaming: tuple[World, StreamKeeper, Changes],
) -> None:
    world, keeper, changes = streaming
    calendar_id = world.calendar_id("front")
    with world.store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        calendar.settings = {**calendar.settings, SETTINGS_KEY: {"subscription_id": "bogus"}}
    keep(world, keeper, "front")
    waits.wait_until(
        lambda: world.org.subscriptions_of(world.mailbox), "a real subscription", timeout=30
    )
    outlook_edit(world, "Arrives anyway")
    wait_for_change(changes, 0, "a change on the replacing subscription")


def test_removing_the_calendar_ends_its_subscription_for_good(
    streaming: tuple[World, StreamKeeper, Changes],
) -> None:
    world, keeper, _changes = streaming
    keep(world, keeper, "front")
    stream = keeper.streams[world.calendar_id("front")]
    [subscription] = world.org.subscriptions_of(world.mailbox)
    waits.wait_until(lambda: subscription.streams == 1, "the stream to be open", timeout=30)
    unlink_calendar(world.store, world.box, "front", actor="test")
    assert world.org.subscriptions_of(world.mailbox) == []
    waits.wait_until(lambda: not stream.running, "the stream to end", timeout=30)
    assert world.org.subscriptions_of(world.mailbox) == []  # not re-created
    assert keeper.retain(set()) == ["front"]


def test_a_calendar_being_removed_is_not_subscribed_again_while_it_goes(
    streaming: tuple[World, StreamKeeper, Changes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removing a calendar unsubscribes, then removes it. A stream that sees its subscription
    end in between must not make a new one for a calendar on its way out: here the removal
    waits until the stream has reacted, which it would wait for in vain if the stream
    subscribed again (it keeps running then)."""
    world, keeper, _changes = streaming
    keep(world, keeper, "front")
    stream = keeper.streams[world.calendar_id("front")]
    [subscription] = world.org.subscriptions_of(world.mailbox)
    waits.wait_until(lambda: subscription.streams == 1, "the stream to be open", timeout=30)
    remove = ops_calendars.remove_calendar

    def remove_once_the_stream_reacted(session: Any, name: str) -> int:
        waits.wait_until(lambda: not stream.running, "the stream to end", timeout=30)
        return remove(session, name)

    monkeypatch.setattr(ops_calendars, "remove_calendar", remove_once_the_stream_reacted)
    unlink_calendar(world.store, world.box, "front", actor="test")
    assert world.org.subscriptions_of(world.mailbox) == []
    with world.store.session() as session:
        assert session.scalars(select(Calendar).where(Calendar.name == "front")).all() == []


def test_two_keepers_never_stream_one_calendar_twice(
    streaming: tuple[World, StreamKeeper, Changes],
) -> None:
    world, keeper, _changes = streaming
    other = keeper_for(world, Changes())
    try:
        assert keep(world, keeper, "front") == "opened"
        assert keep(world, other, "front") is None  # the lease is the first keeper's
        assert other.streams == {}
        assert len(world.org.subscriptions_of(world.mailbox)) == 1
        assert _stored(world, "front")["owner"] == keeper.owner
    finally:
        other.close()


def _stored(world: World, name: str) -> dict[str, Any]:
    with world.store.session() as session:
        calendar = session.scalars(select(Calendar).where(Calendar.name == name)).one()
        return dict(calendar.settings[SETTINGS_KEY])
