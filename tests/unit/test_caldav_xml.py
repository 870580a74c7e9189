"""The streaming multistatus reader (providers/caldav/xml.py) on the shapes real servers send:
the sync-token before (Radicale) or after (RFC 6578, Xandikos, DAViCal) the responses, any
namespace prefixes, a default namespace, 507 truncation, 404 propstats, and bodies that are
not well-formed XML or carry bytes XML cannot hold."""

from __future__ import annotations

import pytest

from calbridge.errors import CalbridgeError, ProviderError
from calbridge.providers.caldav import xml as dav

COLLECTION = "/cal/work/"


def response(href: str, etag: str = '"1"', data: str | None = None, d: str = "D:") -> str:
    calendar_data = "" if data is None else f"<C:calendar-data>{data}</C:calendar-data>"
    return (
        f"<{d}response><{d}href>{href}</{d}href><{d}propstat><{d}prop>"
        f"<{d}getetag>{etag}</{d}getetag>{calendar_data}</{d}prop>"
        f"<{d}status>HTTP/1.1 200 OK</{d}status></{d}propstat></{d}response>"
    )


def multistatus(*parts: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        + "".join(parts)
        + "</D:multistatus>"
    ).encode()


def read(body: bytes, chunk: int = 0) -> list[object]:
    """Every entry the reader yields; ``chunk`` > 0 feeds the body in pieces of that size."""
    pieces = [body] if chunk <= 0 else [body[i : i + chunk] for i in range(0, len(body), chunk)]
    return list(dav.read_multistatus(pieces, COLLECTION, source="calendar 'work': the server"))


def tokens(entries: list[object]) -> list[str]:
    return [e.value for e in entries if isinstance(e, dav.SyncToken)]


def hrefs(entries: list[object]) -> list[str]:
    return [e.href for e in entries if isinstance(e, dav.DavResponse)]


@pytest.mark.parametrize("chunk", [0, 1, 7, 64], ids=["whole", "bytewise", "7-bytes", "64-bytes"])
def test_the_sync_token_after_the_responses_is_read_as_rfc_6578_shows_it(chunk: int) -> None:
    body = multistatus(
        response("/cal/work/a.ics"),
        response("/cal/work/b.ics"),
        "<D:sync-token>http://example.com/sync/42</D:sync-token>",
    )
    entries = read(body, chunk)
    assert hrefs(entries) == ["/cal/work/a.ics", "/cal/work/b.ics"]
    assert tokens(entries) == ["http://example.com/sync/42"]


@pytest.mark.parametrize("chunk", [0, 1, 64], ids=["whole", "bytewise", "64-bytes"])
def test_the_sync_token_before_the_responses_is_read_as_radicale_sends_it(chunk: int) -> None:
    body = multistatus(
        "<D:sync-token>tok-1</D:sync-token>",
        response("/cal/work/a.ics"),
        response("/cal/work/b.ics"),
    )
    entries = read(body, chunk)
    assert tokens(entries) == ["tok-1"]
    assert hrefs(entries) == ["/cal/work/a.ics", "/cal/work/b.ics"]


def test_a_sync_token_inside_a_response_is_not_taken_for_the_answers_token() -> None:
    odd = response("/cal/work/a.ics").replace(
        "</D:prop>", "<D:sync-token>not-this-one</D:sync-token></D:prop>"
    )
    assert tokens(read(multistatus(odd))) == []


def test_namespace_prefixes_are_whatever_the_server_chose() -> None:
    body = (
        b'<?xml version="1.0"?>'
        b'<ns0:multistatus xmlns:ns0="DAV:" xmlns:cal="urn:ietf:params:xml:ns:caldav">'
        b"<ns0:response><ns0:href>/cal/work/a.ics</ns0:href><ns0:propstat><ns0:prop>"
        b'<ns0:getetag>"e1"</ns0:getetag><cal:calendar-data>BEGIN:VCALENDAR</cal:calendar-data>'
        b"</ns0:prop><ns0:status>HTTP/1.1 200 OK</ns0:status></ns0:propstat></ns0:response>"
        b"<ns0:sync-token>t</ns0:sync-token></ns0:multistatus>"
    )
    [item, token] = read(body, 5)
    assert isinstance(item, dav.DavResponse)
    assert item.text("D:getetag") == '"e1"' and item.text("C:calendar-data") == "BEGIN:VCALENDAR"
    assert token == dav.SyncToken("t")


def test_a_default_namespace_is_read_as_davical_sends_it() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8" ?>\n<multistatus xmlns="DAV:">\n <response>\n'
        b"  <href>/caldav.php/staff/work/a.ics</href>\n  <propstat>\n   <prop>\n"
        b'    <getetag>"abc"</getetag>\n'
        b'    <calendar-data xmlns="urn:ietf:params:xml:ns:caldav">BEGIN:VCALENDAR</calendar-data>'
        b"\n   </prop>\n   <status>HTTP/1.1 200 OK</status>\n  </propstat>\n </response>\n"
        b" <sync-token>data:,2</sync-token>\n</multistatus>\n"
    )
    [item, token] = read(body, 3)
    assert isinstance(item, dav.DavResponse) and item.href == "/caldav.php/staff/work/a.ics"
    assert item.text("C:calendar-data") == "BEGIN:VCALENDAR"
    assert token == dav.SyncToken("data:,2")


def test_a_507_on_the_collection_is_a_truncation_and_its_own_responses_still_come() -> None:
    truncated = (
        "<D:response><D:href>/cal/work/</D:href>"
        "<D:status>HTTP/1.1 507 Insufficient Storage</D:status>"
        "<D:error><D:number-of-matches-within-limits/></D:error>"
        "<D:responsedescription>Only 1 of 2 members</D:responsedescription></D:response>"
    )
    entries = read(
        multistatus(response("/cal/work/a.ics"), truncated, "<D:sync-token>t2</D:sync-token>")
    )
    assert hrefs(entries) == ["/cal/work/a.ics"]
    assert any(isinstance(e, dav.Truncated) for e in entries) and tokens(entries) == ["t2"]


def test_a_response_for_the_collection_itself_is_not_an_object() -> None:
    entries = read(multistatus(response("http://host:8080/cal/work"), response("/cal/work/a.ics")))
    assert hrefs(entries) == ["/cal/work/a.ics"]
    assert not any(isinstance(e, dav.Truncated) for e in entries)


def test_a_404_propstat_leaves_the_property_out_and_says_what_the_server_answered() -> None:
    split = (
        "<D:response><D:href>/cal/work/a.ics</D:href>"
        '<D:propstat><D:prop><D:getetag>"1"</D:getetag></D:prop>'
        "<D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
        "<D:propstat><D:prop><C:calendar-data/></D:prop>"
        "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>"
    )
    [item] = read(multistatus(split))
    assert isinstance(item, dav.DavResponse) and item.status is None
    assert item.text("C:calendar-data") is None and item.text("D:getetag") == '"1"'
    assert item.missing_status("C:calendar-data") == 404
    assert item.missing_status("D:getetag") is None


def test_a_removed_member_carries_its_response_level_404() -> None:
    gone = (
        "<D:response><D:href>/cal/work/gone.ics</D:href>"
        "<D:status>HTTP/1.1 404 Not Found</D:status></D:response>"
    )
    [item] = read(multistatus(gone))
    assert isinstance(item, dav.DavResponse) and item.status == 404 and not item.props


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (multistatus(response("/cal/work/a.ics"))[:-40], "not well-formed XML"),
        (b"\x00\x01garbage that is no XML at all", "not well-formed XML"),
        (b"<html><body>502 Bad Gateway</body></html>", "<html> where a WebDAV multistatus"),
        (b"", "empty body"),
        (multistatus(response("/cal/work/a.ics")) + b"<D:extra/>", "not well-formed XML"),
    ],
    ids=["cut-short", "garbage", "html", "empty", "trailing-junk"],
)
def test_a_body_that_is_not_a_multistatus_is_one_clear_error_naming_the_source(
    body: bytes, says: str
) -> None:
    with pytest.raises(dav.MalformedReply) as error:
        read(body, 16)
    assert isinstance(error.value, ProviderError) and isinstance(error.value, CalbridgeError)
    message = str(error.value)
    assert message.startswith("calendar 'work': the server") and says in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "damage",
    [b"\xff\xfe bad bytes", b"bell \x07 and NUL \x00", b"as a reference &#1; here", b"\xc3"],
    ids=["not-utf8", "control-chars", "char-reference", "cut-utf8-sequence"],
)
def test_bytes_xml_cannot_carry_damage_only_the_response_they_are_in(damage: bytes) -> None:
    good = response("/cal/work/good.ics", data="BEGIN:VCALENDAR\nSUMMARY:Fine \u00e9t\u00e9")
    bad = response("/cal/work/bad.ics", data="BEGIN:VCALENDAR\nSUMMARY:XX").encode()
    bad = bad.replace(b"XX", damage)
    body = multistatus(good, "@@", "<D:sync-token>t</D:sync-token>").replace(b"@@", bad)
    entries = read(body, 5)
    by_href = {e.href: e for e in entries if isinstance(e, dav.DavResponse)}
    assert not by_href["/cal/work/good.ics"].damaged
    assert by_href["/cal/work/good.ics"].text("C:calendar-data") == (
        "BEGIN:VCALENDAR\nSUMMARY:Fine \u00e9t\u00e9"
    )
    assert by_href["/cal/work/bad.ics"].damaged
    assert tokens(entries) == ["t"]


def test_a_legal_character_reference_is_kept() -> None:
    [item] = read(multistatus(response("/cal/work/a.ics", data="A&#x263A;&#10;B &amp; C")))
    assert isinstance(item, dav.DavResponse) and not item.damaged
    assert item.text("C:calendar-data") == "A\u263a\nB & C"


def test_a_body_in_another_declared_encoding_is_read_in_that_encoding() -> None:
    body = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>'
        '<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        + response("/cal/work/a.ics", data="Caf\u00e9")
        + "</D:multistatus>"
    ).encode("latin-1")
    [item] = read(body, 4)
    assert isinstance(item, dav.DavResponse) and item.text("C:calendar-data") == "Caf\u00e9"
    assert not item.damaged


@pytest.mark.parametrize(
    ("href", "path"),
    [
        ("/cal/work/ev1.ics", "/cal/work/ev1.ics"),  # plain: taken as it is
        ("/cal/work/a_b-c~d.ics", "/cal/work/a_b-c~d.ics"),
        ("http://dav.example:8080/cal/work/ev1.ics", "/cal/work/ev1.ics"),
        ("//dav.example/cal/x.ics", "/cal/x.ics"),  # a network-path reference names a host
        ("  /cal/work/ev1.ics\n", "/cal/work/ev1.ics"),
        ("/cal/work/a%20b.ics", "/cal/work/a%20b.ics"),
        ("/cal/work/a b.ics", "/cal/work/a%20b.ics"),
        ("/cal/work/%7Eann.ics", "/cal/work/~ann.ics"),
        ("/cal/work/ev1.ics?x=1", "/cal/work/ev1.ics"),
        ("/cal/work/caf%C3%A9.ics", "/cal/work/caf%C3%A9.ics"),
        ("/cal/work/café.ics", "/cal/work/caf%C3%A9.ics"),
    ],
)
def test_an_href_becomes_its_path_with_one_canonical_percent_encoding(href: str, path: str) -> None:
    assert dav.normalize_href(href) == path
