"""WebDAV/CalDAV request bodies and a streaming ``multistatus`` reader.

Written by hand with :mod:`xml.etree` (not the ``caldav`` library) because the sync engine's
guarantees hang on exact control of each request: which conditional headers go out, how many
requests a sync makes, and that a 20,000-event listing is parsed as it arrives instead of being
held as one tree (:func:`read_multistatus` clears every ``response`` once it has been read).

Hrefs are normalised by :func:`normalize_href` (path only, one canonical percent-encoding) so the
same object has the same id whether it came from a sync report, a PROPFIND or our own PUT.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
_NS = {"D": DAV, "C": CALDAV}
_STATUS = re.compile(r"^\S+\s+(\d{3})")
_SAFE = "/:@!$&'()*+,;=~"


def tag(name: str) -> str:
    """Clark notation for ``D:getetag`` / ``C:calendar-data``."""
    prefix, local = name.split(":", 1)
    return f"{{{_NS[prefix]}}}{local}"


def normalize_href(href: str) -> str:
    """The path of ``href`` (which may be a full URL) with one canonical percent-encoding."""
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
    """One ``D:response``: its href, the response-level status (e.g. 404 for a removed member)
    and the properties found with status 200, by Clark tag."""

    href: str
    status: int | None = None
    props: dict[str, ET.Element] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        node = self.props.get(tag(name))
        return None if node is None else (node.text or "")

    def has(self, name: str, child: str) -> bool:
        node = self.props.get(tag(name))
        return node is not None and node.find(".//" + tag(child)) is not None


@dataclass
class SyncToken:
    """The ``D:sync-token`` at the end of a sync-collection answer."""

    value: str


@dataclass
class Truncated:
    """RFC 6578 §3.6: the server cut the listing short (507 on the collection itself)."""


def status_code(text: str | None) -> int | None:
    match = _STATUS.match((text or "").strip())
    return int(match.group(1)) if match else None


def read_multistatus(
    chunks: Iterable[bytes], collection: str = ""
) -> Iterator[DavResponse | SyncToken | Truncated]:
    """Parse a multistatus body incrementally, yielding each response as soon as it is read.
    A response for ``collection`` itself is swallowed (a 507 becomes :class:`Truncated`)."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    root: ET.Element | None = None
    for chunk in chunks:
        parser.feed(chunk)
        for pair in parser.read_events():
            event, found = pair[0], pair[1]  # type: ignore[misc]
            node = found if isinstance(found, ET.Element) else None
            if node is None:
                continue
            if event == "start":
                root = node if root is None else root
                continue
            if node.tag == tag("D:response"):
                item = _response(node)
                if root is not None:
                    root.clear()
                if collection and item.href.rstrip("/") == collection.rstrip("/"):
                    if item.status == 507:
                        yield Truncated()
                    continue
                yield item
            elif node.tag == tag("D:sync-token") and root is not None and node in list(root):
                yield SyncToken((node.text or "").strip())
    parser.close()


def _response(node: ET.Element) -> DavResponse:
    href = normalize_href(node.findtext(tag("D:href")) or "")
    item = DavResponse(href, status_code(node.findtext(tag("D:status"))))
    for propstat in node.findall(tag("D:propstat")):
        if status_code(propstat.findtext(tag("D:status"))) != 200:
            continue
        prop = propstat.find(tag("D:prop"))
        for child in prop if prop is not None else ():
            item.props[child.tag] = child
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
