"""A CalDAV listing's objects are parsed by the thread that reads a page's items, not by the
thread that fetches ahead (``DeferredPage``): parsing on the fetching thread only took turns with
the applying thread for the interpreter lock. Against Radicale, through ``read_ahead`` as the
engine reads pages."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from calbridge.domain.remote import DeferredPage, RemoteItem
from calbridge.providers.caldav.pull import Puller
from calbridge.providers.caldav.xml import MalformedReply
from calbridge.sync.readahead import read_ahead
from caldav_samples import WINDOW, meeting

if TYPE_CHECKING:
    from conftest import Calendar, FaultProxy


def test_objects_are_parsed_by_the_thread_that_reads_the_items(
    calendar: Calendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        calendar.put(f"m{n}.ics", meeting(f"m{n}", f"Meeting {n}", hour=8 + n))
    parsed_on: list[int] = []
    read = Puller._read_multiget

    def spy(self: Puller, *args: Any) -> Any:
        parsed_on.append(threading.get_ident())
        return read(self, *args)

    monkeypatch.setattr(Puller, "_read_multiget", spy)
    provider = calendar.provider(batch_size=2)
    pages = list(read_ahead(provider.list_changes(None, WINDOW)))  # fetched on another thread
    assert len(pages) == 3 and all(isinstance(p, DeferredPage) for p in pages)
    assert parsed_on == []  # nothing parsed yet: the bytes wait in the pages
    names = sorted(
        item.occurrences[0].fields.name
        for page in pages
        for item in page.items
        if isinstance(item, RemoteItem)
    )
    assert names == [f"Meeting {n}" for n in range(5)]
    assert parsed_on == [threading.get_ident()] * 3  # here, once per page
    assert [p.token is not None for p in pages] == [False, False, True]
    assert pages[-1].done and all(p.full for p in pages)


def test_an_answer_that_is_not_a_multistatus_is_reported_where_the_page_is_read(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    proxied.put("a.ics", meeting("a", "Meeting a"))
    provider = proxied.provider()
    proxy.rewrite(lambda body: b"<html>oops", "REPORT", b"calendar-multiget")
    [page] = list(provider.list_changes(None, WINDOW))
    with pytest.raises(MalformedReply, match="answered with <html> where a WebDAV multistatus"):
        page.items  # noqa: B018 - reading the items parses them
    with pytest.raises(MalformedReply):  # and again: nothing half-read is kept
        page.deleted  # noqa: B018
