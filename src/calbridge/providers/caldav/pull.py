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
import logging
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from calbridge.domain.remote import (
    ChangePage,
    DeferredPage,
    RemoteItem,
    RemoteRef,
    RemoteRejection,
    Window,
)
from calbridge.errors import ProviderError, TokenExpired
from calbridge.providers.caldav import xml as dav
from calbridge.providers.caldav.http import DavSession

logger = logging.getLogger(__name__)

ETAG_TOKEN = "etag:"  # our own listing; any other token is the server's sync-token
VALID_SYNC_TOKEN = dav.tag("D:valid-sync-token")
#: multigets requested at once during a pull. Two: while we read one answer (our reading takes
#: turns with the apply for the interpreter lock) the server already prepares the next, so it
#: never waits on us; more only queue up at a server that serves one at a time.
MULTIGETS_IN_FLIGHT = 2
MAX_TRUNCATED_ROUNDS = 1000  # a server that truncates forever must not hold the sync forever
_UID = re.compile(r"^UID:(.*)$", re.MULTILINE)

Getter = Callable[[str, Window], "RemoteItem | RemoteRejection | None"]


class Puller:
    """Change listings for the collection at ``collection`` (a path) over ``http``; ``get``
    fetches a single object when a multiget answer leaves one out."""

    def __init__(self, http: DavSession, collection: str, batch: int, get: Getter) -> None:
        self._http, self._collection, self._batch, self._get = http, collection, batch, get
        self._source = f"{http.label}: the server at {http.server}"

    def _relative(self, href: str) -> str:
        return href[len(self._collection) :] if href.startswith(self._collection) else href

    def sync_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        """RFC 6578: what changed since ``token`` (all when None). A server that truncates its
        answer (507 on the collection) is asked again from the token it gave, until complete;
        only then are pages produced, so the token is never ahead of what was delivered.

        An answer without a ``D:sync-token`` (or an empty one) is never stored as a token:
        after an incremental request it raises :class:`TokenExpired`, so the engine does a
        full resync (a marked full listing, swept for deletions); after a full request the
        calendar is listed by etags instead (:meth:`etag_changes`), whose ``etag:`` token
        makes the next pull compare etags — correct on such a server, at one PROPFIND."""
        states: dict[str, bool] = {}  # href → still there (False: removed)
        current = token or ""
        for _round in range(MAX_TRUNCATED_ROUNDS):
            truncated, given = False, ""
            for entry in self._report_sync(current):
                if isinstance(entry, dav.SyncToken):
                    given = entry.value
                elif isinstance(entry, dav.Truncated):
                    truncated = True
                elif not entry.href.endswith("/"):
                    states[entry.href] = entry.status not in (404, 410)
            if not given:
                yield from self._without_token(token, window)
                return
            if truncated and given == current:
                raise ProviderError(
                    f"{self._http.label}: the server at {self._http.server} truncated its "
                    "change listing (507) without a token to continue from; try again later"
                )
            current = given
            if not truncated:
                break
        else:
            raise ProviderError(
                f"{self._http.label}: the server at {self._http.server} truncated its change "
                f"listing {MAX_TRUNCATED_ROUNDS} times in a row; try again later"
            )
        changed = [href for href, present in states.items() if present]
        deleted = [href for href, present in states.items() if not present]
        yield from self._pages(changed, deleted, current, window, full=token is None)

    def _without_token(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        problem = (
            f"{self._http.label}: the server at {self._http.server} answered the sync report "
            "without a sync-token"
        )
        if token is not None:
            raise TokenExpired(f"{problem}; a full resync follows")
        logger.warning("%s; listing the calendar by etags instead", problem)
        return self.etag_changes(None, window)

    def _report_sync(
        self, token: str | None
    ) -> Iterator[dav.DavResponse | dav.SyncToken | dav.Truncated]:
        body = dav.sync_collection_body(token)
        with self._http.stream(
            "REPORT", self._http.url, body, {"Depth": "0"}, ok={207, 403, 409, 412}
        ) as response:
            if response.status_code != 207:
                conditions = dav.error_conditions(response.read())
                if VALID_SYNC_TOKEN in conditions:
                    raise TokenExpired(
                        f"{self._http.label}: the server no longer knows our sync token; "
                        "a full resync follows"
                    )
                self._http.fail(response)
            yield from dav.read_multistatus(
                response.iter_bytes(), self._collection, source=self._source
            )

    def etag_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        """Without sync-collection: compare a fresh (href, etag) listing with the one in the
        token. Costs one PROPFIND plus a multiget per batch of changed objects."""
        previous = _decode_listing(token, self._http.label) if token else {}
        listing: dict[str, str] = {}
        body = dav.propfind_body("D:getetag", "D:resourcetype")
        with self._http.stream(
            "PROPFIND", self._http.url, body, {"Depth": "1"}, ok={207}
        ) as response:
            for entry in dav.read_multistatus(
                response.iter_bytes(), self._collection, source=self._source
            ):
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
        """One page per multiget batch, requested :data:`MULTIGETS_IN_FLIGHT` at a time on
        helper threads, so the server prepares the next answers while we read one. Each page
        carries its batch's raw answer and is parsed by whoever reads its items
        (:class:`DeferredPage`): the thread that applies it. At most the batches in flight
        and the pages the consumer holds are in memory."""
        batches = [changed[i : i + self._batch] for i in range(0, len(changed), self._batch)]
        if not batches:
            yield ChangePage(deleted=deleted, token=token, done=True, full=full)
            return
        with ThreadPoolExecutor(
            max_workers=MULTIGETS_IN_FLIGHT, thread_name_prefix="calbridge-multiget"
        ) as pool:
            ahead = deque(
                pool.submit(self._fetch_multiget, batch) for batch in batches[:MULTIGETS_IN_FLIGHT]
            )
            for number, batch in enumerate(batches, start=1):
                chunks = ahead.popleft().result()
                following = number - 1 + MULTIGETS_IN_FLIGHT
                if following < len(batches):
                    ahead.append(pool.submit(self._fetch_multiget, batches[following]))
                last = number == len(batches)
                yield DeferredPage(
                    partial(self._read_multiget, batch, chunks, window),
                    list(deleted) if number == 1 else [],
                    token if last else None,
                    done=last,
                    full=full,
                )
                del chunks

    def _fetch_multiget(self, hrefs: list[str]) -> list[bytes]:
        """The raw multistatus answer for ``hrefs`` (read whole: parsed by the consumer)."""
        body = dav.multiget_body(hrefs)
        with self._http.stream("REPORT", self._http.url, body, {}, ok={207}) as response:
            return list(response.iter_bytes())

    def _read_multiget(
        self, hrefs: list[str], chunks: list[bytes], window: Window
    ) -> tuple[list[RemoteItem | RemoteRejection], list[str]]:
        from calbridge.providers.ical.parse import parse_item  # not needed when nothing changed

        items: list[RemoteItem | RemoteRejection] = []
        gone: list[str] = []
        answered: set[str] = set()
        for entry in dav.read_multistatus(chunks, self._collection, source=self._source):
            if not isinstance(entry, dav.DavResponse):
                continue
            answered.add(entry.href)
            data = entry.text("C:calendar-data")
            if entry.status in (404, 410):
                gone.append(entry.href)
            elif entry.damaged:
                items.append(_damaged(entry, data))
            elif data is None:
                items.append(_without_data(entry))
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


def _damaged(entry: dav.DavResponse, data: str | None) -> RemoteRejection:
    uid = _UID.search(data or "")
    return RemoteRejection(
        entry.href,
        uid.group(1).strip().replace(dav.DAMAGED, "?") if uid else None,
        "the server sent this object with bytes that are not UTF-8 or with control "
        "characters XML cannot carry; it was not imported — correct the event in a calendar "
        "client (or on the server) and it is read again at the next sync",
    )


def _without_data(entry: dav.DavResponse) -> RemoteRejection:
    status = entry.missing_status("C:calendar-data")
    said = f"answered {status} for it" if status else "left it out"
    return RemoteRejection(
        entry.href,
        None,
        f"the server listed this object but {said} instead of sending its calendar-data; it "
        "was not imported — check the object on the server (it is read again when it changes)",
    )


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
