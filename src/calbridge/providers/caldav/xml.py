"""WebDAV/CalDAV request bodies and a streaming ``multistatus`` reader.

Written by hand with :mod:`xml.etree` (not the ``caldav`` library) because the sync engine's
guarantees hang on exact control of each request: which conditional headers go out, how many
requests a sync makes, and that a 20,000-event listing is parsed as it arrives instead of being
held as one tree (:func:`read_multistatus` drops every top-level element once it has been read).

What the reader promises, whatever server is on the other end:

* the ``D:sync-token`` is read wherever it stands among the responses — after them, as RFC 6578
  shows and Xandikos and DAViCal send it, or before them, as Radicale does;
* namespaces are matched by URI, never by prefix (``D:``, ``ns0:``, a default namespace...);
* a body that is not well-formed XML (cut short, garbage, an HTML error page) raises
  :class:`MalformedReply` — a :class:`ProviderError` whose one-line message names the
  calendar and server — never an ``xml.etree`` ``ParseError``;
* bytes XML cannot carry (not UTF-8, control characters, references to them) do not make the
  whole answer unreadable: they become :data:`DAMAGED` and only the response they were in is
  marked ``damaged``, for the caller to reject that one object;
* properties the server answered with another status than 200 (a 404 propstat) are listed in
  ``DavResponse.missing`` with that status, so "no data" is never mistaken for "gone".

Hrefs are normalised by :func:`normalize_href` (path only, one canonical percent-encoding) so the
same object has the same id whether it came from a sync report, a PROPFIND or our own PUT.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import quote, unquote, urlsplit

from calbridge.errors import ProviderError

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
_NS = {"D": DAV, "C": CALDAV}
_STATUS = re.compile(r"^\S+\s+(\d{3})")
_SAFE = "/:@!$&'()*+,;=~"


@cache
def tag(name: str) -> str:
    """Clark notation for ``D:getetag`` / ``C:calendar-data``."""
    prefix, local = name.split(":", 1)
    return f"{{{_NS[prefix]}}}{local}"


# a path whose canonical form is itself: no scheme or host, nothing encoded or to encode
_PLAIN_PATH = re.compile(r"/(?!/)[A-Za-z0-9/._~-]*")


def normalize_href(href: str) -> str:
    """The path of ``href`` (which may be a full URL) with one canonical percent-encoding."""
    if _PLAIN_PATH.fullmatch(href):
        return href  # the usual case (every object of a listing): nothing to parse
    return quote(unquote(urlsplit(href.strip()).path), safe=_SAFE)


def _document(root: ET.Element) -> bytes:
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _element(name: str, parent: ET.Element | None = None, text: str | None = None) -> ET.Element:
    node = ET.Element(tag(name)) if parent is None else ET.SubElement(parent, tag(name))
    if text is not None:
        node.text = text
    return node


def propfind_body(*props: str) -> bytes:
    root = _element("D:propfind")
    prop = _element("D:prop", root)
    for name in props:
        _element(name, prop)
    return _document(root)


def sync_collection_body(token: str | None) -> bytes:
    """RFC 6578 sync-collection, sync-level 1, asking only for etags (data comes by multiget)."""
    root = _element("D:sync-collection")
    _element("D:sync-token", root, token or "")
    _element("D:sync-level", root, "1")
    _element("D:getetag", _element("D:prop", root))
    return _document(root)


def calendar_query_body() -> bytes:
    """RFC 4791 calendar-query for every object of the collection (a VCALENDAR filter and
    nothing more: no time range, as the listing has none), with its etag and data."""
    root = _element("C:calendar-query")
    prop = _element("D:prop", root)
    _element("D:getetag", prop)
    _element("C:calendar-data", prop)
    _element("C:comp-filter", _element("C:filter", root)).set("name", "VCALENDAR")
    return _document(root)


def multiget_body(hrefs: Sequence[str]) -> bytes:
    root = _element("C:calendar-multiget")
    prop = _element("D:prop", root)
    _element("D:getetag", prop)
    _element("C:calendar-data", prop)
    for href in hrefs:
        _element("D:href", root, href)
    return _document(root)


@dataclass
class DavResponse:
    """One ``D:response``: its href, the response-level status (e.g. 404 for a removed member),
    the properties found with status 200 by Clark tag, and the status of each property the
    server answered with another status (``missing``: e.g. ``C:calendar-data`` → 404).

    ``damaged`` is True when the server's bytes for this response were not valid XML text
    (bytes that are not UTF-8, control characters XML forbids): the reader replaced them with
    :data:`DAMAGED` so the rest of the answer could still be read, and the object behind this
    response must be rejected, not imported."""

    href: str
    status: int | None = None
    props: dict[str, ET.Element] = field(default_factory=dict)
    missing: dict[str, int | None] = field(default_factory=dict)
    damaged: bool = False

    def text(self, name: str) -> str | None:
        node = self.props.get(tag(name))
        return None if node is None else (node.text or "")

    def has(self, name: str, child: str) -> bool:
        node = self.props.get(tag(name))
        return node is not None and node.find(".//" + tag(child)) is not None

    def missing_status(self, name: str) -> int | None:
        """The status the server gave for property ``name`` when it did not give the
        property (404, 403…); None when it gave it or did not mention it."""
        return self.missing.get(tag(name))


@dataclass
class SyncToken:
    """The ``D:sync-token`` of a sync-collection answer (RFC 6578 puts it after the
    responses; some servers send it first: both are read)."""

    value: str


@dataclass
class Truncated:
    """RFC 6578 §3.6: the server cut the listing short (507 on the collection itself)."""


class MalformedReply(ProviderError):
    """A server's WebDAV answer that is not well-formed XML (cut short, not XML at all)."""


def status_code(text: str | None) -> int | None:
    match = _STATUS.match((text or "").strip())
    return int(match.group(1)) if match else None


# A noncharacter (legal in XML, never meant for interchange) stands in for bytes the server
# sent that XML cannot carry, so one damaged object does not make the whole answer unreadable.
DAMAGED = "\ufdd0"
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CHAR_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8_NAMES = {"utf-8", "utf8", "us-ascii", "ascii"}


def _xml_char(code: int) -> bool:
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _mark_ref(match: re.Match[str]) -> str:
    code = int(match.group(1), 16) if match.group(1) else int(match.group(2))
    return match.group(0) if _xml_char(code) else DAMAGED


def _mark_bytes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return DAMAGED, error.end


codecs.register_error("calbridge-damaged", _mark_bytes)


class _Sanitizer:
    """Turns a UTF-8 byte stream into XML text expat accepts: bytes that are not UTF-8,
    control characters XML 1.0 forbids and character references to them become
    :data:`DAMAGED`. A body that declares another encoding (or starts with a UTF-16 BOM) is
    passed through untouched."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("calbridge-damaged")
        self._carry = ""
        self._head = b""  # held until the XML declaration (if any) has been seen
        self._raw: bool | None = None  # pass bytes through untouched (decided on the head)

    def feed(self, chunk: bytes) -> bytes:
        if self._raw is None:
            self._head += chunk
            if not _head_complete(self._head):
                return b""
            chunk, self._head = self._head, b""
            self._raw = _foreign_encoding(chunk)
        if self._raw:
            return chunk
        return self._clean(self._decoder.decode(chunk), final=False)

    def close(self) -> bytes:
        if self._raw is None:
            self._raw = _foreign_encoding(self._head)
            if self._raw:
                return self._head
            return self._clean(self._decoder.decode(self._head, final=True), True)
        return b"" if self._raw else self._clean(self._decoder.decode(b"", final=True), True)

    def _clean(self, text: str, final: bool) -> bytes:
        text = self._carry + text
        self._carry = ""
        if not final:  # keep a possibly split "&#x1;" for the next chunk
            amp = text.rfind("&", max(0, len(text) - 14))
            if amp >= 0 and ";" not in text[amp:]:
                text, self._carry = text[:amp], text[amp:]
        if "&#" in text:
            text = _CHAR_REF.sub(_mark_ref, text)
        if _ILLEGAL.search(text):
            text = _ILLEGAL.sub(DAMAGED, text)
        return text.encode("utf-8")


def _head_complete(head: bytes) -> bool:
    """Enough of the body to know its encoding: past the declaration, or sure there is none."""
    start = head.lstrip()[:5]
    if len(head) >= 256 or b"?>" in head:
        return True
    return (len(start) >= 5 and start != b"<?xml") or head[:2] in (b"\xff\xfe", b"\xfe\xff")


def _foreign_encoding(first: bytes) -> bool:
    if first[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    declared = _DECLARED.match(first[:200])
    return bool(declared and declared.group(1).decode().lower() not in _UTF8_NAMES)


def read_multistatus(
    chunks: Iterable[bytes], collection: str = "", *, source: str = "the server"
) -> Iterator[DavResponse | SyncToken | Truncated]:
    """Parse a multistatus body incrementally, yielding each response as soon as it is read,
    and the ``D:sync-token`` wherever it stands among them (before or after the responses).
    A response for ``collection`` itself is swallowed (a 507 becomes :class:`Truncated`).

    Each top-level element is dropped once read, so memory stays flat however long the
    listing. A body that is not well-formed XML raises :class:`MalformedReply` naming
    ``source``; bad bytes inside one response only mark that response ``damaged``."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    clean = _Sanitizer()
    depth = 0
    root: ET.Element | None = None

    def events(data: bytes) -> Iterator[DavResponse | SyncToken | Truncated]:
        nonlocal depth, root
        try:
            parser.feed(data)
            found = list(parser.read_events())
        except ET.ParseError as exc:
            raise _malformed(source, exc) from exc
        for pair in found:
            event, node = pair[0], pair[1]  # type: ignore[misc]
            if not isinstance(node, ET.Element):
                continue
            if event == "start":
                depth += 1
                if depth == 1:
                    root = node
                    if node.tag != tag("D:multistatus"):
                        raise MalformedReply(
                            f"{source} answered with <{_local(node.tag)}> where a WebDAV "
                            "multistatus was expected; check that the URL is the calendar's "
                            "CalDAV address"
                        )
                continue
            depth -= 1
            if depth != 1:
                continue
            entry = _top_level(node, collection)
            if root is not None:
                root.remove(node)  # the listing is never held whole
            if entry is not None:
                yield entry

    for chunk in chunks:
        yield from events(clean.feed(chunk))
    yield from events(clean.close())
    if root is None:
        raise MalformedReply(f"{source} answered with an empty body where XML was expected")
    try:
        parser.close()
    except ET.ParseError as exc:
        raise _malformed(source, exc) from exc


def _top_level(node: ET.Element, collection: str) -> DavResponse | SyncToken | Truncated | None:
    if node.tag == tag("D:sync-token"):
        return SyncToken((node.text or "").strip())
    if node.tag != tag("D:response"):
        return None  # D:responsedescription and extensions
    item = _response(node)
    if collection and item.href.rstrip("/") == collection.rstrip("/"):
        return Truncated() if item.status == 507 else None
    return item


def _malformed(source: str, exc: ET.ParseError) -> MalformedReply:
    line, column = getattr(exc, "position", (0, 0))
    reason = str(exc).split(":", 1)[0]
    return MalformedReply(
        f"{source} sent an answer that is not well-formed XML ({reason} at line {line}, "
        f"column {column}); nothing from it was used — if this persists, the server or a "
        "proxy in front of it is damaging its answers"
    )


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _response(node: ET.Element) -> DavResponse:
    raw_href = node.findtext(tag("D:href")) or ""
    item = DavResponse(normalize_href(raw_href), status_code(node.findtext(tag("D:status"))))
    item.damaged = DAMAGED in raw_href
    for propstat in node.findall(tag("D:propstat")):
        code = status_code(propstat.findtext(tag("D:status")))
        prop = propstat.find(tag("D:prop"))
        for child in prop if prop is not None else ():
            if code == 200:
                item.props[child.tag] = child
                item.damaged = item.damaged or DAMAGED in "".join(child.itertext())
            else:
                item.missing[child.tag] = code
    return item


def error_conditions(body: bytes) -> set[str]:
    """The precondition names in a ``D:error`` body (e.g. ``{DAV:}valid-sync-token``)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return set()
    if root.tag != tag("D:error"):
        return set()
    return {child.tag for child in root}
