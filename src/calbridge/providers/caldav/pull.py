"""Reading what changed on a CalDAV calendar, as :class:`ChangePage` values.

With RFC 6578 ``sync-collection`` the server says which hrefs changed or went away since our
token; without it, one PROPFIND lists every (href, etag) and the previous listing — carried in
the token itself as ``etag:`` + compressed JSON of name → etag digest — tells what changed. Either
way the changed objects are then fetched by ``calendar-multiget`` in batches, one page per batch,
two requests in flight; each page carries its answer's bytes and is parsed by the thread that
reads its items (:class:`DeferredPage`).

A full listing (the first pull, a full resync) asks for the collection's token first, as a
property (RFC 6578 §4: a PROPFIND of ``DAV:sync-token``, what a sync-collection would answer now,
computed without listing the members), then reads every object with one ``calendar-query``,
handed out in pages of the batch size as the answer is read (:meth:`Puller._read_after`).
What is read after the token is the collection as of the token or later; the next pull, from
the token, reads again whatever changed in between — the same objects, so applying them again
changes nothing — and nothing needs settling. A query that is refused, cut short (507) or
unreadable keeps what it gave, and a PROPFIND of etags and multigets read the rest. On
Radicale the token costs about 45 ms of the server's CPU at 1,000 events where a listing costs
about 110 ms (0.85 s against 5 s at 20,000), and a first ``calbridge sync`` of 1,000 events
takes 0.91× the time of listing after the query (16 interleaved pairs).

A server that gives no token as a property is read by the query first and then listed for the
token — asked for as soon as the query's answer is in, and computed by the server while those
pages are parsed and applied; the listing's etags settle what changed in between
(:meth:`Puller._query_first`), and a refused or cut query leaves it to the listing and
multigets. A query's answer is held (its bytes, then its responses, not events) until it is
handed out — about the calendar's size in text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterator
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
#: calendar-query answers that mean "not like this": the full listing and multigets take over
QUERY_REFUSED = frozenset({400, 403, 404, 405, 412, 415, 422, 500, 501, 502, 503, 507})
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

        A full listing (no token) reads the token first, as a property, and the objects after
        it (:meth:`_read_after`); a server that gives none is read by query first
        (:meth:`_query_first`). ``syncs``: for a full listing on a server not yet asked
        whether it has sync-collection, the question (it probes the server, a small PROPFIND),
        asked before anything else, so its error (a wrong address) is raised at once; a
        server without sync-collection is read by query and listed by etags."""
        if token is None:
            syncing = syncs is None or syncs()
            start = self._token_now() if syncing else ""
            if start:
                yield from self._read_after(start, window)
                return
            answer = self._query_all()
            if answer is not None:
                yield from self._query_first(answer, window, syncing)
                return
            if not syncing:
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

    def _token_now(self) -> str:
        """The collection's current sync-token, read as a property (RFC 6578 §4: PROPFIND of
        ``DAV:sync-token``, what a sync-collection would answer now), without listing its
        members; "" when the server does not give one."""
        with self._http.stream(
            "PROPFIND",
            self._http.url,
            dav.propfind_body("D:sync-token"),
            {"Depth": "0"},
            ok={207, *QUERY_REFUSED},
        ) as response:
            if response.status_code != 207:
                return ""
            for entry in dav.read_multistatus(response.iter_bytes(), source=self._source):
                if isinstance(entry, dav.DavResponse):
                    return (entry.text("D:sync-token") or "").strip()
        return ""

    def _read_after(self, start: str, window: Window) -> Iterator[ChangePage]:
        """A full listing read after its token (``start``, :meth:`_token_now`): every object
        is read by one ``calendar-query``, or — refused, cut short or unreadable — what it
        did not give by a PROPFIND of etags and multigets. What is read is the collection as
        of the token or later, and the next pull, from that token, reads again whatever
        changed in between: the same objects, applied again to the same effect, so nothing is
        lost or doubled and nothing needs settling. The server computes the token without
        listing its members: on Radicale about a sixth of the listing's cost at 20,000 events."""
        answer = self._query_all()
        read: dict[str, str | None] = {}
        if answer is not None:
            whole = yield from self._answer_pages(answer, window, read)
            if whole:
                yield ChangePage(token=start, done=True, full=True)
                return
        listing = self._etag_listing()
        changed = [
            self._collection + name for name in listing if self._collection + name not in read
        ]
        deleted = [href for href in read if self._relative(href) not in listing]
        yield from self._pages(changed, deleted, start, window, full=True)

    def _answer_pages(
        self, answer: list[bytes], window: Window, read: dict[str, str | None]
    ) -> Generator[ChangePage, None, bool]:
        """The pages of a calendar-query's answer, each as soon as its objects are read (the
        first does not wait for the whole answer to be parsed), every object handed out noted
        in ``read`` with its etag; whether the answer was whole. An answer found truncated
        (507 on the collection) or unreadable on the way ends with the objects read before
        that point; the answer's bytes are let go once read."""
        batch: list[dav.DavResponse] = []
        whole = True
        try:
            for entry in dav.read_multistatus(answer, self._collection, source=self._source):
                if isinstance(entry, dav.Truncated):
                    logger.info("%s: calendar-query truncated; listing instead", self._source)
                    whole = False
                    break
                if isinstance(entry, dav.DavResponse) and not entry.href.endswith("/"):
                    batch.append(entry)
                if len(batch) == self._batch:
                    read.update((e.href, e.text("D:getetag")) for e in batch)
                    yield self._entries_page(batch, window)
                    batch = []
        except dav.MalformedReply as exc:
            logger.warning("%s; listing instead", exc)
            whole = False
        answer.clear()
        if batch:  # complete objects, even when the answer was cut after them
            read.update((e.href, e.text("D:getetag")) for e in batch)
            yield self._entries_page(batch, window)
        return whole

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
        self, answer: list[bytes], window: Window, syncing: bool = True
    ) -> Iterator[ChangePage]:
        """A full listing that starts from the objects themselves (:meth:`_query_all`): the
        server is asked for the listing (sync-collection, or PROPFIND without it) for a token
        as soon as the query's answer is in, and the objects' pages go out while it lists.
        The listing then settles what changed meanwhile: an object whose etag differs from the
        one read, or that was not read (created since, or not answered), is fetched by
        multiget; one read but no longer listed is gone. What the engine holds is then the
        collection as of the token. Each page goes out as soon as its objects are read from
        the answer (the first one does not wait for the whole answer to be parsed); an answer
        found truncated or unreadable on the way leaves it all to the listing and multigets,
        which read again what the pages already gave.

        On a server that computes its answers one at a time (Radicale) this also costs it less
        than listing first: no multigets, and the objects are applied while it lists. The
        listing runs on a helper thread; ``syncing``: whether the server has sync-collection
        (else it is listed by etags)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calbridge-listing") as pool:
            listing = pool.submit(self._full_listing, syncing)
            read: dict[str, str | None] = {}
            whole = yield from self._answer_pages(answer, window, read)
            etags, token = listing.result()
        if not whole:  # what was read is read again: applying it twice changes nothing
            yield from self._pages(list(etags), [], token, window, full=True)
            return
        changed = [h for h, etag in etags.items() if etag is None or read.get(h) != etag]
        deleted = [h for h in read if h not in etags]
        yield from self._pages(changed, deleted, token, window, full=True)

    def _entries_page(self, entries: list[dav.DavResponse], window: Window) -> DeferredPage:
        return DeferredPage(partial(self._read_entries, entries, window), [], full=True)

    def _full_listing(self, syncing: bool = True) -> tuple[dict[str, str | None], str]:
        """Every href with its etag, and the token to continue from: sync-collection's, or
        without one our own ``etag:`` listing (as :meth:`etag_changes` makes it) — also when
        the server has no sync-collection (``syncing`` False)."""
        if syncing:
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
