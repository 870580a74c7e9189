"""Server answers Radicale never gives, played by the fault proxy rewriting Radicale's real
answers: a sync report without a sync-token, an object whose calendar-data comes in a 404
propstat, bytes XML cannot carry inside one object, a multistatus that is not XML at all.
Nothing is stored wrong, nothing is silently dropped, nothing ends in a traceback."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from calbridge.domain.remote import RemoteItem, RemoteRejection, Window
from calbridge.errors import ProviderError, TokenExpired
from calbridge.providers.caldav.provider import CalDAVProvider
from calbridge.providers.caldav.pull import ETAG_TOKEN
from calbridge.store.models import Calendar as StoredCalendar
from calbridge.store.models import Rejection
from caldav_samples import linked

if TYPE_CHECKING:
    from conftest import Calendar, FaultProxy

WINDOW = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))
SYNC = b"sync-collection"
SYNC_TOKEN = b"sync-token"  # the PROPFIND that reads a full listing's token first
# the request that reads objects: the calendar-query of a full listing, else a multiget
OBJECTS = b"calendar-data"
_TOKEN = re.compile(rb"<[^<>]*sync-token[^<>]*>[^<]*</[^<>]*sync-token>")


def meeting(uid: str, summary: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//A person//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270305T090000Z\r\n"
        f"DTEND:20270305T100000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def without_token(body: bytes) -> bytes:
    stripped = _TOKEN.sub(b"", body)
    assert stripped != body, "the answer had no sync-token to strip"
    return stripped


def listing(provider: CalDAVProvider, token: str | None) -> tuple[list[object], dict[str, object]]:
    pages = list(provider.list_changes(token, WINDOW))
    found: dict[str, object] = {}
    for page in pages:
        for entry in page.items:
            found[entry.ref.id if isinstance(entry, RemoteItem) else entry.ref_id] = entry
    return pages, found


def seed(calendar: Calendar, *names: str) -> None:
    for name in names:
        calendar.put(f"{name}.ics", meeting(name, f"Meeting {name}"))


# ---------------------------------------------------------------- no sync-token


def test_an_incremental_answer_without_a_sync_token_asks_for_a_full_resync(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    seed(proxied, "a", "b")
    provider = proxied.provider()
    token = listing(provider, None)[0][-1].token  # type: ignore[attr-defined]
    proxy.rewrite(without_token, "REPORT", SYNC)
    with pytest.raises(TokenExpired, match="without a sync-token; a full resync follows"):
        listing(provider, token)


def test_an_initial_answer_without_a_sync_token_falls_back_to_an_etag_listing(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    seed(proxied, "a", "b")
    provider = proxied.provider()
    proxy.rewrite(without_token, "PROPFIND", SYNC_TOKEN)  # no token as a property either
    proxy.rewrite(without_token, "REPORT", SYNC)
    pages, found = listing(provider, None)
    token = pages[-1].token  # type: ignore[attr-defined]
    assert token and token.startswith(ETAG_TOKEN)  # never "", never a server token
    assert all(page.full for page in pages)  # type: ignore[attr-defined]
    assert set(found) == {proxied.href("a.ics"), proxied.href("b.ics")}
    # the next pull compares etags: one request when nothing changed, deletions seen
    provider.requests = 0
    again, nothing = listing(provider, token)
    assert provider.requests == 1 and nothing == {}
    proxied.server.delete(proxied.url + "a.ics")
    later, _ = listing(provider, again[-1].token)  # type: ignore[attr-defined]
    assert [href for page in later for href in page.deleted] == [proxied.href("a.ics")]  # type: ignore[attr-defined]


def test_a_sync_without_a_token_is_a_marked_full_resync_and_stores_no_empty_token(
    proxied: Calendar, proxy: FaultProxy, tmp_path: Path
) -> None:
    seed(proxied, "a", "b", "c")
    with linked(proxied.url, tmp_path) as front:
        sync = front.sync

        def token() -> str | None:
            with front.store.session() as session:
                stored = session.get(StoredCalendar, front.cal_id)
                assert stored is not None
                return stored.sync_token

        assert sync().created == 3  # type: ignore[attr-defined]
        proxied.server.delete(proxied.url + "a.ics")
        # from now on: never a token, in a sync report or as a property
        proxy.rewrite(without_token, "REPORT", SYNC, keep=True)
        proxy.rewrite(without_token, "PROPFIND", SYNC_TOKEN, keep=True)
        report = sync()
        assert report.ok and report.full_resync, report.error  # type: ignore[attr-defined]
        assert (report.created, report.cancelled) == (0, 1)  # type: ignore[attr-defined]
        assert (token() or "").startswith(ETAG_TOKEN)
        quiet = sync()
        assert (quiet.requests, quiet.pulled, quiet.created) == (1, 0, 0)  # type: ignore[attr-defined]


def test_a_truncated_answer_that_does_not_move_its_token_is_an_error_not_a_loop(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    seed(proxied, "a")
    provider = proxied.provider()
    token = listing(provider, None)[0][-1].token  # type: ignore[attr-defined]
    assert token
    truncated = (
        f"<D:response><D:href>{proxied.href('')}</D:href>"
        "<D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>"
        f"<D:sync-token>{token}</D:sync-token></D:multistatus>"
    ).encode()

    def stuck(body: bytes) -> bytes:
        head = _TOKEN.sub(b"", body).rsplit(b"</", 1)[0]
        return re.sub(
            rb"<(\w+:)?multistatus([^>]*)>.*", rb"<\1multistatus\2>", head, flags=re.S
        ) + (truncated.replace(b"D:", b"") if b"<multistatus" in head else truncated)

    proxy.rewrite(stuck, "REPORT", SYNC, keep=True)
    with pytest.raises(ProviderError, match="truncated its change listing"):
        listing(provider, token)


# ---------------------------------------------------------------- damaged objects


def test_calendar_data_only_in_a_404_propstat_is_a_rejection_not_a_deletion(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    seed(proxied, "good", "odd")

    def hide_data(body: bytes) -> bytes:
        # the "odd" object's calendar-data leaves its 200 propstat for one of its own: 404
        data = rb"<(\w+:)?calendar-data>[^<]*UID:odd[^<]*</(\w+:)?calendar-data>"
        changed, count = re.subn(data, b"", body)
        assert count == 1
        return re.sub(
            rb"(odd\.ics</(?:\w+:)?href>)",
            rb"\1<propstat xmlns='DAV:'><prop>"
            rb"<calendar-data xmlns='urn:ietf:params:xml:ns:caldav'/></prop>"
            rb"<status>HTTP/1.1 404 Not Found</status></propstat>",
            changed,
        )

    proxy.rewrite(hide_data, "REPORT", OBJECTS)
    pages, found = listing(proxied.provider(), None)
    assert isinstance(found[proxied.href("good.ics")], RemoteItem)
    odd = found[proxied.href("odd.ics")]
    assert isinstance(odd, RemoteRejection)
    assert "answered 404 for it instead of sending its calendar-data" in odd.reason
    assert not [href for page in pages for href in page.deleted]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "damage", [b"\xff\xfe\xfa", b"bell\x07", b"&#1;"], ids=["not-utf8", "control", "char-ref"]
)
def test_bad_bytes_in_one_objects_calendar_data_reject_it_and_the_others_import(
    proxied: Calendar, proxy: FaultProxy, damage: bytes
) -> None:
    seed(proxied, "good", "bad", "fine")
    proxy.rewrite(
        lambda body: body.replace(b"Meeting bad", b"Meeting " + damage), "REPORT", OBJECTS
    )
    _, found = listing(proxied.provider(), None)
    items = {href: entry for href, entry in found.items() if isinstance(entry, RemoteItem)}
    assert set(items) == {proxied.href("good.ics"), proxied.href("fine.ics")}
    bad = found[proxied.href("bad.ics")]
    assert isinstance(bad, RemoteRejection) and bad.uid == "bad"
    assert "bytes that are not UTF-8 or with control characters" in bad.reason


@pytest.mark.parametrize(
    "damage",
    [
        lambda body: body[: len(body) // 2],
        lambda body: b"<html>oops</html>",
        lambda body: b"\x00garbage",
    ],
    ids=["cut", "html", "garbage"],
)
def test_a_multistatus_that_is_not_xml_is_one_clear_error_for_the_calendar(
    proxied: Calendar, proxy: FaultProxy, damage: object
) -> None:
    seed(proxied, "a")
    # the full listing's calendar-query answer is unreadable too: it falls back to the
    # listing and multigets (the query is an optimisation), whose answer is then the error
    proxy.rewrite(damage, "REPORT", OBJECTS, keep=True)  # type: ignore[arg-type]
    with pytest.raises(ProviderError) as error:
        listing(proxied.provider(), None)
    message = str(error.value)
    assert message.startswith("calendar 'work' (CalDAV): the server at 127.0.0.1:")
    assert "multistatus" in message or "not well-formed XML" in message


def test_a_broken_answer_is_the_calendars_error_and_rejections_are_recorded(
    proxied: Calendar, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Through the engine: a damaged object is a stored rejection while the rest import; a
    cut answer fails that sync with a one-line error and stores nothing half-read."""
    seed(proxied, "good", "bad")
    with linked(proxied.url, tmp_path) as front:
        store = front.store
        proxy.rewrite(lambda body: body.replace(b"Meeting bad", b"Meeting \xff"), "REPORT", OBJECTS)
        first = front.sync()
        assert first.ok and (first.created, first.rejected) == (1, 1), first.error
        with store.session() as session:
            [rejection] = session.query(Rejection).all()
            assert rejection.uid == "bad" and "not UTF-8" in rejection.reason
        proxied.put("later.ics", meeting("later", "Later"))
        proxy.rewrite(lambda body: body[:-30], "REPORT", OBJECTS)
        broken = front.sync()
        assert not broken.ok and "not well-formed XML" in (broken.error or "")
        assert "\n" not in (broken.error or "")
        fixed = front.sync()
        assert fixed.ok and fixed.created == 1, fixed.error


# ------------------------------------------------------- the full listing's calendar-query


@pytest.mark.parametrize(
    ("refusal", "token_first", "requests"),
    [
        ("501", True, 4),
        ("403", True, 4),
        ("truncated", True, 3),
        ("not-xml", True, 4),
        ("501", False, 4),
        ("truncated", False, 4),
        ("not-xml", False, 4),
    ],
)
def test_a_server_that_will_not_answer_the_query_whole_is_listed_and_read_by_multigets(
    proxied: Calendar, proxy: FaultProxy, refusal: str, token_first: bool, requests: int
) -> None:
    """The calendar-query that reads a full listing's objects is an optimisation: refused,
    cut short by the server (507 on the collection) or unreadable, nothing is lost or
    doubled. After the token (a property): what it gave stands, and a PROPFIND of etags and
    multigets read the rest — the token, the query, the PROPFIND and a multiget for what the
    answer did not give. On a server without the property (asked for it in vain): the
    query, the sync report for the token and a multiget read the calendar as before."""
    seed(proxied, "a", "b")
    if not token_first:
        proxy.rewrite(without_token, "PROPFIND", SYNC_TOKEN)
    if refusal == "truncated":
        limit = (
            f"<response xmlns='DAV:'><href>{proxied.href('')}</href>"
            "<status>HTTP/1.1 507 Insufficient Storage</status></response>"
        ).encode()
        proxy.rewrite(lambda body: re.sub(rb"(</(\w+:)?multistatus>)", limit + rb"\1", body),
                      "REPORT", b"calendar-query")  # fmt: skip
    elif refusal == "not-xml":
        proxy.rewrite(lambda body: body[: len(body) // 2], "REPORT", b"calendar-query")
    else:
        proxy.inject(refusal, method="REPORT")
    provider = proxied.provider()
    provider.check()
    before = provider.requests
    pages, found = listing(provider, None)
    assert set(found) == {proxied.href("a.ics"), proxied.href("b.ics")}
    assert all(isinstance(entry, RemoteItem) for entry in found.values())
    assert not [href for page in pages for href in page.deleted]  # type: ignore[attr-defined]
    assert provider.requests - before == requests
    token = pages[-1].token  # type: ignore[attr-defined]
    assert token and not token.startswith(ETAG_TOKEN)
    assert listing(provider, token)[1] == {}
