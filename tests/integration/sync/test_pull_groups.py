"""Pages the listing has already read when the page before them is applied join that page's
transaction (``sync/pull.py``, up to ``GROUP_ITEMS`` objects); a page the listing is still
reading is not waited for: what is applied is committed first. Either way every object is
booked once and the token comes with the last page — and what the listing raises is raised
after the pages before it are committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from calbridge.demo.seed import vevent
from calbridge.domain.remote import ChangePage, RemoteRef, Window
from calbridge.errors import ProviderError
from calbridge.providers.ical.parse import parse_item
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event
from calbridge.sync import pull
from calbridge.sync.engine import sync_calendar
from waits import wait_until
from worlds import NOW

WINDOW = Window(NOW - timedelta(days=30), NOW + timedelta(days=365))


def page(number: int, size: int = 3, *, done: bool = False) -> ChangePage:
    start = NOW + timedelta(days=number)
    items = [
        parse_item(
            RemoteRef(f"/cal/p{number}-{n}.ics", f'"{number}-{n}"'),
            vevent(f"p{number}-{n}", f"Page {number} event {n}", start, start + timedelta(hours=1)),
            WINDOW,
        )
        for n in range(size)
    ]
    return ChangePage(items, token="token-1" if done else None, done=done, full=True)


class Listing:
    """A provider whose listing is ``pages`` (nothing to push: the calendar pulls only)."""

    requests = 0

    def __init__(self, pages: Iterator[ChangePage]) -> None:
        self.pages = pages

    def list_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        return self.pages

    def close(self) -> None:
        pass


@pytest.fixture
def calendar_id(world: Any) -> int:
    world.add_calendar("front", direction="pull")
    with world.store.session() as session:
        return session.scalars(select(Calendar.id).where(Calendar.name == "front")).one()


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The pages applied, as each transaction held them (their numbers of objects)."""
    groups: list[list[int]] = []
    sessions: list[object] = []
    apply = pull.PageApplier.apply

    def recorded(self: pull.PageApplier, page: ChangePage, gen: int | None) -> None:
        if not sessions or sessions[-1] is not self.session:
            sessions.append(self.session)
            groups.append([])
        groups[-1].append(len(page.items))
        apply(self, page, gen)

    monkeypatch.setattr(pull.PageApplier, "apply", recorded)
    return groups


def bookings(world: Any) -> int:
    with world.store.session() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def token(world: Any, calendar_id: int) -> str | None:
    with world.store.session() as session:
        return session.get(Calendar, calendar_id).sync_token  # type: ignore[union-attr]


def test_pages_already_read_join_the_transaction_of_the_page_before_them(
    world: Any, calendar_id: int, transactions: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = 0

    def listing() -> Iterator[ChangePage]:
        nonlocal asked
        for number in range(1, 4):
            asked += 1
            yield page(number, size=number)
        asked += 1  # pages 2 and 3 were taken by the read-ahead
        yield page(4, size=0, done=True)

    apply = pull.PageApplier.apply

    def once_the_rest_is_read(self: pull.PageApplier, got: ChangePage, gen: int | None) -> None:
        wait_until(lambda: asked == 4, what="the listing to read ahead")
        apply(self, got, gen)

    monkeypatch.setattr(pull.PageApplier, "apply", once_the_rest_is_read)
    report = sync_calendar(world.store, calendar_id, lambda _c: Listing(listing()), NOW)
    assert report.ok and report.created == 6, report.error
    assert transactions[0][:3] == [1, 2, 3]  # one transaction for what was already read
    assert sum(len(group) for group in transactions) == 4 and len(transactions) <= 2
    assert bookings(world) == 6 and token(world, calendar_id) == "token-1"


def test_a_page_still_being_read_is_not_waited_for(
    world: Any, calendar_id: int, transactions: list[list[int]]
) -> None:
    commits = 0
    committed = threading.Condition()

    def counted(_connection: Any) -> None:
        nonlocal commits
        with committed:
            commits += 1
            committed.notify_all()

    event.listen(world.store.engine, "commit", counted)
    applied = len(transactions)

    def listing() -> Iterator[ChangePage]:
        for number in range(1, 5):
            with committed:
                before = commits
            yield page(number, size=2, done=number == 4)
            with committed:  # the next page only once this one is committed
                assert committed.wait_for(lambda b=before: commits > b, timeout=10)

    report = sync_calendar(world.store, calendar_id, lambda _c: Listing(listing()), NOW)
    assert report.ok and report.created == 8, report.error
    assert transactions[applied:] == [[2], [2], [2], [2]]  # one transaction each
    assert bookings(world) == 8 and token(world, calendar_id) == "token-1"


def test_what_the_listing_raises_comes_after_the_pages_before_it_are_committed(
    world: Any, calendar_id: int, transactions: list[list[int]]
) -> None:
    def listing() -> Iterator[ChangePage]:
        yield page(1)
        yield page(2)
        raise ProviderError("calendar 'front': the server at example answered 500")

    report = sync_calendar(world.store, calendar_id, lambda _c: Listing(listing()), NOW)
    assert not report.ok and "answered 500" in (report.error or "")
    assert bookings(world) == 6  # both pages are kept: the next sync reads them again
    assert token(world, calendar_id) is None
    assert sum(len(group) for group in transactions) == 2


@pytest.mark.parametrize(("objects", "asked"), [(1000, True), (10, False)])
def test_a_big_pull_has_the_log_copied_early_and_a_small_one_does_not(
    world: Any, calendar_id: int, monkeypatch: pytest.MonkeyPatch, objects: int, asked: bool
) -> None:
    """``Store.checkpoint_soon`` (``tests/integration/test_store_checkpoint.py``)."""
    calls: list[Store] = []
    monkeypatch.setattr(Store, "checkpoint_soon", lambda self: calls.append(self))
    pages = iter([page(1, size=objects), page(2, size=0, done=True)])
    report = sync_calendar(world.store, calendar_id, lambda _c: Listing(pages), NOW)
    assert report.ok and report.created == objects, report.error
    assert calls == ([world.store] if asked else [])


def item(href: str, uid: str, day: int, etag: str = '"1"') -> Any:
    start = NOW + timedelta(days=day)
    ics = vevent(uid, f"Event {href}", start, start + timedelta(hours=1))
    return parse_item(RemoteRef(href, etag), ics, WINDOW)


def test_a_first_import_finds_what_it_linked_itself_without_asking_the_store(
    world: Any, calendar_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A calendar with no links when the pull begins: the page lookups are answered from what
    this pull linked (``sync.pull.Linked``) — a UID taken by an earlier page is a duplicate,
    an object read twice is one booking, a UID freed by a move in the same page is not taken —
    and the store is asked only for the links of objects this pull linked and sees again (read
    twice, or deleted)."""
    lookups: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        looked_up = "links.remote_id IN" in statement or "links.uid IN" in statement
        if statement.lstrip().startswith("SELECT") and looked_up:
            lookups.append(len(params) if isinstance(params, list | tuple) else 1)

    event.listen(world.store.engine, "before_cursor_execute", count)
    pages = iter(
        [
            ChangePage([item("/cal/a.ics", "U", 1), item("/cal/b.ics", "V", 2)], full=True),
            ChangePage([item("/cal/c.ics", "U", 3)], full=True),  # U is a.ics's
            ChangePage([item("/cal/a.ics", "U", 1)], full=True),  # read again, same etag
            ChangePage(
                [item("/cal/d.ics", "V", 4)], ["/cal/b.ics"], token="t", done=True, full=True
            ),  # b.ics moved to d.ics: V is free
        ]
    )
    report = sync_calendar(world.store, calendar_id, lambda _c: Listing(pages), NOW)
    assert report.ok, report.error
    assert (report.created, report.rejected) == (3, 1)  # a, b and d; c is the duplicate
    with world.store.session() as session:
        names = sorted(session.scalars(select(Event.name).where(Event.status != "cancelled")))
    assert names == ["Event /cal/a.ics", "Event /cal/d.ics"]  # b.ics's booking: cancelled
    assert lookups == [2, 2]  # the calendar and one href: a.ics read again, b.ics deleted


def test_a_calendar_with_links_looks_them_up_in_the_store(world: Any, calendar_id: int) -> None:
    """The same listing for a calendar that already has links: each page asks the store."""
    first = iter([ChangePage([item("/cal/a.ics", "U", 1)], token="t", done=True, full=True)])
    assert sync_calendar(world.store, calendar_id, lambda _c: Listing(first), NOW).ok
    lookups: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "links.remote_id IN" in statement:
            lookups.append(statement)

    event.listen(world.store.engine, "before_cursor_execute", count)
    again = iter(
        [
            ChangePage([item("/cal/b.ics", "U", 2)], full=True),
            ChangePage([item("/cal/a.ics", "U", 1)], token="t2", done=True, full=True),
        ]
    )
    report = sync_calendar(world.store, calendar_id, lambda _c: Listing(again), NOW)
    assert report.ok and (report.created, report.rejected) == (0, 1), report.error
    assert len(lookups) == 2  # one per page
