"""Reading what changed on a CalDAV calendar, as :class:`ChangePage` values.

With RFC 6578 ``sync-collection`` the server says which hrefs changed or went away since our
token; without it, one PROPFIND lists every (href, etag) and the previous listing — carried in
the token itself as ``etag:`` + compressed JSON of name → etag digest — tells what changed. Either
way the changed objects are then fetched by ``calendar-multiget`` in batches, one page per batch,
so the calendar is never held in memory at once; responses are parsed as they stream in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator

from calbridge.domain.remote import ChangePage, RemoteItem, RemoteRef, RemoteRejection, Window
from calbridge.errors import TokenExpired
from calbridge.providers import caldav_xml as dav
from calbridge.providers.caldav_http import DavSession
from calbridge.providers.ical import parse_item

ETAG_TOKEN = "etag:"  # our own listing; any other token is the server's sync-token
VALID_SYNC_TOKEN = dav.tag("D:valid-sync-token")

Getter = Callable[[str, Window], "RemoteItem | RemoteRejection | None"]


class Puller:
    """Change listings for the collection at ``collection`` (a path) over ``http``; ``get``
    fetches a single object when a multiget answer leaves one out."""

    def __init__(self, http: DavSession, collection: str, batch: int, get: Getter) -> None:
        self._http, self._collection, self._batch, self._get = http, collection, batch, get

    def _relative(self, href: str) -> str:
        return href[len(self._collection) :] if href.startswith(self._collection) else href

    def sync_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        """RFC 6578: what changed since ``token`` (all when None). A server that truncates its
        answer (507 on the collection) is asked again from the token it gave, until complete;
        only then are pages produced, so the token is never ahead of what was delivered."""
        states: dict[str, bool] = {}  # href → still there (False: removed)
        current = new_token = token or ""
        while True:
            truncated = False
            for entry in self._report_sync(current):
                if isinstance(entry, dav.SyncToken):
                    new_token = entry.value
                elif isinstance(entry, dav.Truncated):
                    truncated = True
                elif not entry.href.endswith("/"):
                    states[entry.href] = entry.status != 404
            current = new_token
            if not truncated:
                break
        changed = [href for href, present in states.items() if present]
        deleted = [href for href, present in states.items() if not present]
        yield from self._pages(changed, deleted, current, window, full=token is None)

    def _report_sync(
        self, token: str | None
    ) -> Iterator[dav.DavResponse | dav.SyncToken | dav.Truncated]:
        body = dav.sync_collection_body(token)
        with self._http.stream(
            "REPORT", self._http.url, body, {"Depth": "0"}, ok={207, 403, 409}
        ) as response:
            if response.status_code != 207:
                conditions = dav.error_conditions(response.read())
                if VALID_SYNC_TOKEN in conditions:
                    raise TokenExpired(
                        f"{self._http.label}: the server no longer knows our sync token; "
                        "a full resync follows"
                    )
                self._http.fail(response)
            yield from dav.read_multistatus(response.iter_bytes(), self._collection)

    def etag_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        """Without sync-collection: compare a fresh (href, etag) listing with the one in the
        token. Costs one PROPFIND plus a multiget per batch of changed objects."""
        previous = _decode_listing(token, self._http.label) if token else {}
        listing: dict[str, str] = {}
        body = dav.propfind_body("D:getetag", "D:resourcetype")
        with self._http.stream(
            "PROPFIND", self._http.url, body, {"Depth": "1"}, ok={207}
        ) as response:
            for entry in dav.read_multistatus(response.iter_bytes(), self._collection):
                if isinstance(entry, dav.DavResponse) and not entry.has(
                    "D:resourcetype", "D:collection"
                ):
                    listing[self._relative(entry.href)] = _digest(entry.text("D:getetag") or "")
        changed = [self._collection + n for n, tag in listing.items() if previous.get(n) != tag]
        deleted = [self._collection + n for n in previous if n not in listing]
        token_out = ETAG_TOKEN + _encode_listing(listing)
        del previous
        yield from self._pages(changed, deleted, token_out, window, full=token is None)

    def _pages(
        self, changed: list[str], deleted: list[str], token: str, window: Window, *, full: bool
    ) -> Iterator[ChangePage]:
        batches = [changed[i : i + self._batch] for i in range(0, len(changed), self._batch)]
        if not batches:
            yield ChangePage(deleted=deleted, token=token, done=True, full=full)
            return
        for number, batch in enumerate(batches, start=1):
            items, gone = self._multiget(batch, window)
            page = ChangePage(items=items, deleted=gone, full=full)
            if number == 1:
                page.deleted = deleted + gone
            if number == len(batches):
                page.token, page.done = token, True
            yield page

    def _multiget(
        self, hrefs: list[str], window: Window
    ) -> tuple[list[RemoteItem | RemoteRejection], list[str]]:
        items: list[RemoteItem | RemoteRejection] = []
        gone: list[str] = []
        answered: set[str] = set()
        body = dav.multiget_body(hrefs)
        with self._http.stream("REPORT", self._http.url, body, {}, ok={207}) as response:
            for entry in dav.read_multistatus(response.iter_bytes(), self._collection):
                if not isinstance(entry, dav.DavResponse):
                    continue
                answered.add(entry.href)
                data = entry.text("C:calendar-data")
                if data is None:
                    gone.append(entry.href)
                else:
                    ref = RemoteRef(entry.href, entry.text("D:getetag"))
                    items.append(parse_item(ref, data, window))
        for href in hrefs:  # a server that silently skips an href: ask for it directly
            if href not in answered:
                single = self._get(href, window)
                if single is None:
                    gone.append(href)
                else:
                    items.append(single)
        return items, gone


def _digest(etag: str) -> str:
    """8 bytes of the etag's hash: enough to notice a change, small enough to keep in a token."""
    return base64.b64encode(hashlib.sha256(etag.encode()).digest()[:8]).decode()[:11]


def _encode_listing(listing: dict[str, str]) -> str:
    blob = json.dumps(listing, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(zlib.compress(blob, 9)).decode()


def _decode_listing(token: str, label: str) -> dict[str, str]:
    problem = f"{label}: the stored etag listing is unreadable; a full resync follows"
    try:
        data = json.loads(zlib.decompress(base64.urlsafe_b64decode(token.encode())))
    except (ValueError, zlib.error) as exc:
        raise TokenExpired(problem) from exc
    if not isinstance(data, dict):
        raise TokenExpired(problem)
    return {str(k): str(v) for k, v in data.items()}
