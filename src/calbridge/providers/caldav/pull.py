"""Reading what changed on a CalDAV calendar, as :class:`ChangePage` values.

With RFC 6578 ``sync-collection`` the server says which hrefs changed or went away since our
token; without it, one PROPFIND lists every (href, etag) and the previous listing — carried in
the token itself as ``etag:`` + compressed JSON of name → etag digest — tells what changed. Either
way the changed objects are then fetched by ``calendar-multiget`` in batches, one page per batch,
two requests in flight; each page carries its answer's bytes and is parsed by the thread that
reads its items (:class:`DeferredPage`).

A full listing (the first pull, a full resync) is one request where the server allows it: a
``sync-collection`` from no token that asks for each object's ``calendar-data`` beside its etag
(RFC 6578 lets a client ask for any property), so the objects and the token come in one answer,
consistent with each other, handed out in pages of the batch size as the answer is read
(:meth:`Puller._sync_first`). Radicale answers so; Xandikos and DAViCal list the objects but
leave their data out, and one ``calendar-query`` then reads them (:meth:`Puller._read_listed`).
A server that refuses that report is read by calendar-query first, with the listing for the
token asked for as soon as the query's answer is in and computed by the server while those pages
are parsed and applied; the listing's etags settle what changed in between
(:meth:`Puller._query_first`). An answer cut short or unreadable on the way keeps what it gave,
and a fresh listing settles the rest (:meth:`Puller._settled`). A query's answer is held (its
bytes, then its responses, not events) until it is handed out — about the calendar's size in
text; the sync report's is read as it arrives.

Measured on Radicale (1,000 events, ``benchmarks/sync_caldav.py``'s calendar), the one report
costs the server about 125 ms of CPU where the query and the listing after it cost about 200 ms,
and a first ``calbridge sync`` of that calendar takes 0.92× the time (16 interleaved pairs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
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
#: calendar-query answers that mean "not like this": the full listing and multigets take over
QUERY_REFUSED = frozenset({400, 403, 404, 405, 412, 415, 422, 500, 501, 502, 503, 507})
MAX_TRUNCATED_ROUNDS = 1000  # a server that truncates forever must not hold the sync forever
_UID = re.compile(r"^UID:(.*)$", re.MULTILINE)

Getter = Callable[[str, Window], "RemoteItem | RemoteRejection | None"]


@dataclass
class _Reading:
    """What reading a full listing's REPORT answer found besides the objects themselves:
    each object read (href → etag), those answered without their calendar-data, the token
    (a sync answer's) and whether the answer was whole (not cut short, not unreadable)."""

    read: dict[str, str | None] = field(default_factory=dict)
    without: dict[str, str | None] = field(default_factory=dict)
    token: str = ""
    whole: bool = True


class Puller:
    """Change listings for the collection at ``collection`` (a path) over ``http``; ``get``
    fetches a single object when a multiget answer leaves one out."""

    def __init__(self, http: DavSession, collection: str, batch: int, get: Getter) -> None:
        self._http, self._collection, self._batch, self._get = http, collection, batch, get
        self._source = f"{http.label}: the server at {http.server}"

    def _relative(self, href: str) -> str:
        return href[len(self._collection) :] if href.startswith(self._collection) else href

    def sync_changes(
        self, token: str | None, window: Window, syncs: Callable[[], bool] | None = None
    ) -> Iterator[ChangePage]:
        """RFC 6578: what changed since ``token`` (all when None). A server that truncates its
        answer (507 on the collection) is asked again from the token it gave, until complete;
        only then are pages produced, so the token is never ahead of what was delivered.

        An answer without a ``D:sync-token`` (or an empty one) is never stored as a token:
        after an incremental request it raises :class:`TokenExpired`, so the engine does a
        full resync (a marked full listing, swept for deletions); after a full request the
        calendar is listed by etags instead (:meth:`etag_changes`), whose ``etag:`` token
        makes the next pull compare etags — correct on such a server, at one PROPFIND.

        A full listing (no token) asks for the objects with the listing
        (:meth:`_sync_first`), else reads them first (:meth:`_query_first`). ``syncs``: for a
        full listing on a server not yet asked whether it has sync-collection, the question (it
        probes the server): asked on a helper thread while the server answers the first
        report, so neither waits for the other; its answer (or its error, such as a wrong
        address) counts before any object of that report is handed out, and a server without
        sync-collection is then read by query and listed by etags."""
        if token is None:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calbridge-listing") as pool:
                # the probe goes out beside the first request, on the thread that may list
                asked = pool.submit(syncs).result if syncs is not None else None
                if (yield from self._sync_first(window, pool, asked)):
                    return
                answer = self._query_all()
                if answer is not None:
                    yield from self._query_first(answer, window, pool, asked)
                    return
                if asked is not None and not asked():
                    yield from self.etag_changes(None, window)
                    return
        states, current = self._sync_states(token)
        if not current:
            yield from self._without_token(token, window)
            return
        changed = [href for href, (present, _etag) in states.items() if present]
        deleted = [href for href, (present, _etag) in states.items() if not present]
        yield from self._pages(changed, deleted, current, window, full=token is None)

    def _sync_states(self, token: str | None) -> tuple[dict[str, tuple[bool, str | None]], str]:
        """The sync-collection answer from ``token`` (all when None), asked again while the
        server truncates it: href → (still there, etag), and the new token ("" when the server
        gave none)."""
        states: dict[str, tuple[bool, str | None]] = {}
        current = token or ""
        for _round in range(MAX_TRUNCATED_ROUNDS):
            truncated, given = False, ""
            for entry in self._report_sync(current):
                if isinstance(entry, dav.SyncToken):
                    given = entry.value
                elif isinstance(entry, dav.Truncated):
                    truncated = True
                elif not entry.href.endswith("/"):
                    states[entry.href] = (
                        entry.status not in (404, 410),
                        entry.text("D:getetag"),
                    )
            if not given:
                return states, ""
            if truncated and given == current:
                raise ProviderError(
                    f"{self._http.label}: the server at {self._http.server} truncated its "
                    "change listing (507) without a token to continue from; try again later"
                )
            current = given
            if not truncated:
                return states, current
        raise ProviderError(
            f"{self._http.label}: the server at {self._http.server} truncated its change "
            f"listing {MAX_TRUNCATED_ROUNDS} times in a row; try again later"
        )

    def _sync_first(
        self, window: Window, pool: ThreadPoolExecutor, syncs: Callable[[], bool] | None
    ) -> Generator[ChangePage, None, bool]:
        """A full listing in one request: sync-collection from no token, asking for each
        object's calendar-data beside its etag (RFC 6578 lets a client ask for any property).
        The objects and the token come in one answer, as the server saw the collection at
        that token, so nothing is left to settle; each page goes out as soon as its objects
        are read. False (nothing yielded) when the server refuses the request, or the probe
        ``syncs()`` finds no sync-collection: the caller then reads by calendar-query.

        A server that leaves the calendar-data out of sync answers (Xandikos, DAViCal) has
        still given the listing: its objects are then read by one calendar-query
        (:meth:`_read_listed`), or by multiget when they fit in one. An answer cut short
        (507 on the collection), unreadable on the way, or without a token keeps what was
        read and is settled by a fresh listing (:meth:`_settled`)."""
        body = dav.sync_collection_body(None, data=True)
        reading = _Reading()
        with self._http.stream(
            "REPORT", self._http.url, body, {"Depth": "0"}, ok={207, *QUERY_REFUSED}
        ) as response:
            if response.status_code != 207:
                logger.info(
                    "%s: sync-collection with calendar-data answered %s; reading by query",
                    self._source,
                    response.status_code,
                )
                return False
            if syncs is not None and not syncs():  # its error (a wrong address) is raised
                return False
            yield from self._in_pages(self._objects(response.iter_bytes(), reading), window)
        if not (reading.whole and reading.token):
            yield from self._settled(reading.read, pool.submit(self._full_listing, syncs), window)
        elif len(reading.without) > self._batch:
            yield from self._read_listed(reading.without, reading.token, window)
        else:
            yield from self._pages(list(reading.without), [], reading.token, window, full=True)
        return True

    def _read_listed(
        self, listed: dict[str, str | None], token: str, window: Window
    ) -> Iterator[ChangePage]:
        """The objects a listing named without their data (``listed``: href → etag), read by
        one calendar-query; those it does not give as listed (another etag, not answered,
        or the query refused) by multiget. Objects the query gives that the listing did not
        name (created since the token) are left to the next pull."""
        answer = self._query_all()
        reading = _Reading()
        if answer is not None:

            def as_listed(entry: dav.DavResponse) -> bool:
                etag = listed.get(entry.href)
                return etag is not None and entry.text("D:getetag") == etag

            yield from self._in_pages(self._objects(answer, reading, as_listed), window)
            answer.clear()
        rest = [href for href in listed if href not in reading.read]
        yield from self._pages(rest, [], token, window, full=True)

    def _settled(
        self,
        read: dict[str, str | None],
        listing: Future[tuple[dict[str, str | None], str]],
        window: Window,
    ) -> Iterator[ChangePage]:
        """The rest of a full listing that read the objects in ``read`` (href → etag) before
        ``listing`` (:meth:`_full_listing`) gave the token: an object whose etag differs from
        the one read, or that was not read (created since, not answered, or after the point
        where an answer was cut short), is fetched by multiget; one read but no longer listed
        is gone. What the engine holds is then the collection as of the token."""
        etags, token = listing.result()
        changed = [h for h, etag in etags.items() if etag is None or read.get(h) != etag]
        deleted = [h for h in read if h not in etags]
        return self._pages(changed, deleted, token, window, full=True)

    def _query_all(self) -> list[bytes] | None:
        """The raw answer to one ``calendar-query`` for every object with its etag and data;
        None when the server refuses it (an error status): then the listing and multigets do
        it. Read whole before it is parsed, so the listing can be asked for at once."""
        body = dav.calendar_query_body()
        with self._http.stream(
            "REPORT", self._http.url, body, {"Depth": "1"}, ok={207, *QUERY_REFUSED}
        ) as response:
            if response.status_code != 207:
                logger.info(
                    "%s: calendar-query answered %s; listing instead",
                    self._source,
                    response.status_code,
                )
                return None
            return list(response.iter_bytes())

    def _query_first(
        self,
        answer: list[bytes],
        window: Window,
        pool: ThreadPoolExecutor,
        syncs: Callable[[], bool] | None = None,
    ) -> Iterator[ChangePage]:
        """A full listing that starts from the objects themselves (:meth:`_query_all`): the
        server is asked for the listing (sync-collection, or PROPFIND without it) for a token
        as soon as the query's answer is in, and the objects' pages go out while it lists;
        the listing then settles what changed meanwhile (:meth:`_settled`). Each page goes
        out as soon as its objects are read from the answer (the first one does not wait for
        the whole answer to be parsed); an answer found truncated or unreadable on the way
        leaves the rest to the listing and multigets. The listing runs on ``pool`` (the
        caller's one helper thread, after its probe)."""
        listing = pool.submit(self._full_listing, syncs)
        reading = _Reading()
        yield from self._in_pages(self._objects(answer, reading), window)
        answer.clear()
        yield from self._settled(reading.read, listing, window)

    def _objects(
        self,
        chunks: Iterable[bytes],
        reading: _Reading,
        wanted: Callable[[dav.DavResponse], bool] | None = None,
    ) -> Iterator[dav.DavResponse]:
        """The objects a full listing's REPORT answer gives with their data (or damaged: a
        rejection to record), each noted in ``reading`` with its etag; ``reading`` also gets
        the token, the objects answered without data, and whether the answer was whole.
        Member collections and members answered as gone are passed over; so are objects
        ``wanted`` refuses."""
        try:
            for entry in dav.read_multistatus(chunks, self._collection, source=self._source):
                if isinstance(entry, dav.SyncToken):
                    reading.token = entry.value
                elif isinstance(entry, dav.Truncated):
                    logger.info("%s: the answer was truncated; listing again", self._source)
                    reading.whole = False
                elif entry.href.endswith("/") or entry.status in (404, 410):
                    continue
                elif not entry.damaged and entry.text("C:calendar-data") is None:
                    reading.without[entry.href] = entry.text("D:getetag")
                elif wanted is None or wanted(entry):
                    reading.read[entry.href] = entry.text("D:getetag")
                    yield entry
        except dav.MalformedReply as exc:
            logger.warning("%s; listing again", exc)
            reading.whole = False

    def _in_pages(
        self, entries: Iterable[dav.DavResponse], window: Window
    ) -> Iterator[DeferredPage]:
        """``entries`` as pages of the batch size, each out as soon as its entries are read."""
        batch: list[dav.DavResponse] = []
        for entry in entries:
            batch.append(entry)
            if len(batch) == self._batch:
                yield self._entries_page(batch, window)
                batch = []
        if batch:
            yield self._entries_page(batch, window)

    def _entries_page(self, entries: list[dav.DavResponse], window: Window) -> DeferredPage:
        return DeferredPage(partial(self._read_entries, entries, window), [], full=True)

    def _full_listing(
        self, syncs: Callable[[], bool] | None = None
    ) -> tuple[dict[str, str | None], str]:
        """Every href with its etag, and the token to continue from: sync-collection's, or
        without one our own ``etag:`` listing (as :meth:`etag_changes` makes it) — also when
        ``syncs()`` says the server has no sync-collection."""
        if syncs is None or syncs():
            states, token = self._sync_states(None)
            if token:
                return {href: etag for href, (present, etag) in states.items() if present}, token
            logger.warning("%s; listing the calendar by etags instead", self._tokenless)
        listing = self._etag_listing()
        token_out = _etag_token({name: _digest(etag) for name, etag in listing.items()})
        return {self._collection + n: e for n, e in listing.items()}, token_out

    @property
    def _tokenless(self) -> str:
        return f"{self._source} answered the sync report without a sync-token"

    def _without_token(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        if token is not None:
            raise TokenExpired(f"{self._tokenless}; a full resync follows")
        logger.warning("%s; listing the calendar by etags instead", self._tokenless)
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
        listing = {name: _digest(etag) for name, etag in self._etag_listing().items()}
        changed = [self._collection + n for n, tag in listing.items() if previous.get(n) != tag]
        deleted = [self._collection + n for n in previous if n not in listing]
        token_out = _etag_token(listing)
        del previous
        yield from self._pages(changed, deleted, token_out, window, full=token is None)

    def _etag_listing(self) -> dict[str, str]:
        """One PROPFIND: each member object's name (relative to the collection) → etag."""
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
                    listing[self._relative(entry.href)] = entry.text("D:getetag") or ""
        return listing

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
        entries = [
            entry
            for entry in dav.read_multistatus(chunks, self._collection, source=self._source)
            if isinstance(entry, dav.DavResponse)
        ]
        items, gone = self._read_entries(entries, window)
        answered = {entry.href for entry in entries}
        for href in hrefs:  # a server that silently skips an href: ask for it directly
            if href not in answered:
                single = self._get(href, window)
                if single is None:
                    gone.append(href)
                else:
                    items.append(single)
        return items, gone

    def _read_entries(
        self, entries: list[dav.DavResponse], window: Window
    ) -> tuple[list[RemoteItem | RemoteRejection], list[str]]:
        """The items (or rejections) of answered objects, and the hrefs answered as gone."""
        from calbridge.providers.ical.parse import parse_item  # not needed when nothing changed

        items: list[RemoteItem | RemoteRejection] = []
        gone: list[str] = []
        for entry in entries:
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


def _etag_token(digests: dict[str, str]) -> str:
    """Our own token for a server without sync-tokens: the listing (name → etag digest)."""
    return ETAG_TOKEN + _encode_listing(digests)


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
