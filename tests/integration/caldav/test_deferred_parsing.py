"""A CalDAV listing's objects are parsed by the thread that reads a page's items, not by the
thread that fetches ahead (``DeferredPage``): parsing on the fetching thread only took turns with
the applying thread for the interpreter lock. Against Radicale, through ``read_ahead`` as the
engine reads pages."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import calbridge.providers.caldav.pull as pull_module
from calbridge.config import Settings
from calbridge.domain.remote import DeferredPage, RemoteItem
from calbridge.providers.caldav.pull import Puller
from calbridge.providers.caldav.xml import MalformedReply
from calbridge.sync.quick import Handover, QuickSync
from calbridge.sync.readahead import read_ahead
from caldav_samples import WINDOW, linked, meeting

if TYPE_CHECKING:
    from conftest import Calendar, FaultProxy


def test_objects_are_parsed_by_the_thread_that_reads_the_items(
    calendar: Calendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed_on: list[int] = []
    read = Puller._read_entries

    def spy(self: Puller, *args: Any) -> Any:
        parsed_on.append(threading.get_ident())
        return read(self, *args)

    monkeypatch.setattr(Puller, "_read_entries", spy)
    provider = calendar.provider(batch_size=2)

    def listed(token: str | None, label: str) -> str | None:
        for n in range(5):
            calendar.put(f"m{n}.ics", meeting(f"m{n}", f"Meeting {n} {label}", hour=8 + n))
        parsed_on.clear()
        pages = list(read_ahead(provider.list_changes(token, WINDOW)))  # fetched elsewhere
        assert len([p for p in pages if isinstance(p, DeferredPage)]) == 3
        assert parsed_on == []  # nothing parsed yet: the bytes wait in the pages
        names = sorted(
            item.occurrences[0].fields.name
            for page in pages
            for item in page.items
            if isinstance(item, RemoteItem)
        )
        assert names == [f"Meeting {n} {label}" for n in range(5)]
        assert parsed_on == [threading.get_ident()] * 3  # here, once per page
        assert pages[-1].done and pages[-1].token
        return pages[-1].token

    token = listed(None, "read by the full listing's query")
    listed(token, "read by multigets")


def test_an_answer_that_is_not_a_multistatus_is_reported_where_the_page_is_read(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    provider = proxied.provider()
    token = list(provider.list_changes(None, WINDOW))[-1].token
    proxied.put("a.ics", meeting("a", "Meeting a"))
    proxy.rewrite(lambda body: b"<html>oops", "REPORT", b"calendar-multiget")
    [page] = list(provider.list_changes(token, WINDOW))
    with pytest.raises(MalformedReply, match="answered with <html> where a WebDAV multistatus"):
        page.items  # noqa: B018 - reading the items parses them
    with pytest.raises(MalformedReply):  # and again: nothing half-read is kept
        page.deleted  # noqa: B018


def test_a_quiet_calendar_whose_change_cannot_be_read_goes_to_the_engine_which_reports_it(
    proxied: Calendar, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The quick path never parses a page: one that carries objects is the engine's, so an
    answer that cannot be read is reported as the engine reports it — not raised out of
    ``calbridge sync`` before the other calendars ran."""
    proxied.put("a.ics", meeting("a", "Meeting a"))
    with linked(proxied.url, tmp_path) as front:
        assert front.sync().ok
        quick = QuickSync(tmp_path / "calbridge.db", Settings(data_dir=tmp_path), front.box)
        [target] = quick.targets(["front"]) or []
        assert target.mark  # quiet: the quick path may answer it
        proxied.put("b.ics", meeting("b", "Meeting b"))
        proxy.rewrite(lambda body: b"<html>oops", "REPORT", b"calendar-multiget")
        handover = quick.start(target)
        assert isinstance(handover, Handover)
        report = front.sync(handover=handover)
        assert not report.ok and "where a WebDAV multistatus" in (report.error or "")
        again = front.sync()  # the answers mended
        assert again.ok and again.created == 1, again.error


def test_the_listing_is_asked_for_before_the_querys_answer_is_parsed(
    calendar: Calendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full listing's two requests: the server computes the listing (for the token) while
    the query's answer is parsed, not after — here the parse waits until the listing has
    started, which it would wait for in vain if the listing came after it. (A server that
    gives its token as a property is asked for it first, and lists nothing: here it gives
    none.)"""
    monkeypatch.setattr(Puller, "_token_now", lambda self: "")
    for n in range(3):
        calendar.put(f"m{n}.ics", meeting(f"m{n}", f"Meeting {n}", hour=8 + n))
    started = threading.Event()
    order: list[str] = []
    listing, read = Puller._full_listing, pull_module.dav.read_multistatus

    def listing_spy(self: Puller, syncs: Any = None) -> Any:
        order.append("listing asked")
        started.set()
        return listing(self, syncs)

    def read_spy(chunks: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("calbridge-listing"):
            return read(chunks, *args, **kwargs)  # the listing's own answer
        order.append("parse began, listing " + ("asked" if started.wait(10) else "not asked"))
        return read(chunks, *args, **kwargs)

    monkeypatch.setattr(Puller, "_full_listing", listing_spy)
    monkeypatch.setattr(pull_module.dav, "read_multistatus", read_spy)
    provider = calendar.provider(batch_size=2)
    pages = list(provider.list_changes(None, WINDOW))
    assert "parse began, listing asked" in order
    assert sum(len(page.items) for page in pages) == 3 and pages[-1].token


def test_the_first_page_goes_out_before_the_querys_answer_is_read_whole(
    calendar: Calendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query's answer is read a page at a time: the first page of two objects is handed
    out when about two of the five responses are read, not after all five."""
    for n in range(5):
        calendar.put(f"m{n}.ics", meeting(f"m{n}", f"Meeting {n}", hour=8 + n))
    read = pull_module.dav.read_multistatus
    responses = 0

    def counted(chunks: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal responses
        for entry in read(chunks, *args, **kwargs):
            if not threading.current_thread().name.startswith("calbridge-listing"):
                responses += 1
            yield entry

    monkeypatch.setattr(pull_module.dav, "read_multistatus", counted)
    provider = calendar.provider(batch_size=2)
    listing = provider.list_changes(None, WINDOW)
    first = next(listing)
    read_by_then = responses
    rest = list(listing)
    assert len(first.items) == 2 and read_by_then < 5 <= responses
    assert sum(len(page.items) for page in [first, *rest]) == 5 and rest[-1].token
