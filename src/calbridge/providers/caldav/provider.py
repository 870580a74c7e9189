"""A CalDAV calendar behind the :class:`CalendarProvider` protocol (domain/remote.py).

Pull is incremental: RFC 6578 ``sync-collection`` gives the hrefs changed or removed since our
token, then ``calendar-multiget`` fetches the changed ones in batches — one
:class:`ChangePage` per batch, so a 20,000-event calendar is never in memory at once, and a sync
with nothing changed costs exactly one request. The first pull (and a full resync) reads the
collection's token as a property, then every object with one ``calendar-query``
(``caldav.pull``). A
server without sync-collection (or a provider
built with ``sync_collection=False``) is handled by comparing etags: one PROPFIND lists
(href, etag) pairs and the previous listing travels inside the token itself
(``etag:`` + compressed JSON), so the engine needs nothing beyond ``list_changes(token, window)``.
The reading lives in ``caldav.pull``, the HTTP session (counting, retries, errors) in
``caldav.http``, the XML in ``caldav.xml``, the iCalendar mapping in ``ical.parse``/``ical.write``
(imported when an object is first read or written: a no-change sync never loads icalendar).

Writes are conditional, which is what makes every retry safe: a create is a PUT with
``If-None-Match: *`` at an href derived from our idempotency key (a retried create meets a 412,
finds its own key on the object and adopts it); updates and deletes carry ``If-Match``.

Tokens are opaque to the engine: the server's own sync-token, or ``etag:<listing>``. A token of
the other kind than the provider is set to use, or one the server rejects with the
``DAV:valid-sync-token`` precondition (Radicale answers 403, Xandikos 412), raises
:class:`TokenExpired` — a full resync follows. A sync-collection answer without a token is
never stored as one (see ``Puller.sync_changes``). Objects the server sends damaged (bytes XML
cannot carry) or without their calendar-data (a 404 propstat) are rejections with a reason;
an answer that is not XML at all is the calendar's one-line :class:`ProviderError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import overload

import httpx

from calbridge.domain.remote import (
    ChangePage,
    RemoteEvent,
    RemoteItem,
    RemoteRef,
    RemoteRejection,
    Window,
    Written,
)
from calbridge.errors import BadEvent, ConfigError, Conflict, ProviderError, TokenExpired
from calbridge.providers.caldav import xml as dav
from calbridge.providers.caldav.http import DavSession
from calbridge.providers.caldav.pull import ETAG_TOKEN, Puller
from calbridge.providers.retry import RetryPolicy

ICS = {"Content-Type": "text/calendar; charset=utf-8"}
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,120}")


@dataclass(frozen=True)
class _Stored:
    """An object as fetched: its etag and iCalendar text."""

    etag: str | None
    data: bytes


class CalDAVProvider:
    """One CalDAV calendar collection. ``sync_collection`` None detects RFC 6578 support
    (:meth:`check`, or one PROPFIND before a full listing); False forces the etag fallback."""

    kind = "CalDAV"

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        timeout: float = 30,
        name: str = "",
        retry: RetryPolicy | None = None,
        sync_collection: bool | None = None,
        batch_size: int = 200,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
        fix: str | None = None,
        url_fix: str | None = None,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.collection = dav.normalize_href(self.url)
        self.name = name or self.collection.rstrip("/").rsplit("/", 1)[-1]
        self.batch_size = max(1, batch_size)
        self._forced = sync_collection
        self._supports_sync = sync_collection
        self._clock = clock or (lambda: datetime.now(UTC).replace(microsecond=0))
        self._label = f"calendar '{self.name}' (CalDAV)"
        # Where the last write left its object (delete() of an occurrence returns nothing, but
        # the series' etag changed: an engine may refresh its sibling links from this).
        self.last_written: RemoteRef | None = None
        self._http = DavSession(
            self.url,
            username,
            password,
            label=self._label,
            fix=fix
            or (f"check them and run `calbridge calendars update {self.name} --password-env VAR`"),
            url_fix=url_fix
            or f"run `calbridge calendars update {self.name} --caldav URL` with its own address",
            timeout=timeout,
            retry=retry or RetryPolicy(),
            transport=transport,
        )
        self._source = f"{self._label}: the server at {self._http.server}"
        self._pull = Puller(self._http, self.collection, self.batch_size, self.get)

    # ----------------------------------------------------------- protocol

    def check(self) -> None:
        """Reach the server, log in, and make sure the URL is a calendar collection."""
        props = ("D:resourcetype", "D:supported-report-set")
        response = self._request(
            "PROPFIND", self.url, dav.propfind_body(*props), {"Depth": "0"}, ok={207, 404}
        )
        if response.status_code == 404:
            raise ConfigError(
                f"{self._label}: there is no collection at {self.url}; {self._http.url_fix}"
            )
        found = [
            r
            for r in dav.read_multistatus([response.content], source=self._source)
            if isinstance(r, dav.DavResponse)
        ]
        if not found or not found[0].has("D:resourcetype", "C:calendar"):
            raise ConfigError(
                f"{self._label}: {self.url} is not a calendar collection (its resourcetype "
                f"lacks C:calendar), perhaps an account or folder; {self._http.url_fix}"
            )
        if self._forced is None:
            self._supports_sync = found[0].has("D:supported-report-set", "D:sync-collection")

    @property
    def supports_sync(self) -> bool:
        """Whether pulls use RFC 6578 sync-collection (probes the server once if unknown)."""
        if self._supports_sync is None:
            self.check()
        return bool(self._supports_sync)

    def list_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        """Changed and removed objects since ``token`` (everything when None), one page per
        multiget batch. Raises TokenExpired when the token cannot be used (full resync)."""
        if token is None:
            if self._supports_sync is False:
                return self._pull.etag_changes(None, window)
            # the token, then the objects; a server not probed yet is probed first
            return self._pull.sync_changes(None, window, lambda: self.supports_sync)
        if token.startswith(ETAG_TOKEN):
            if self._forced is not True:
                return self._pull.etag_changes(token[len(ETAG_TOKEN) :], window)
        elif self._forced is not False:
            return self._pull.sync_changes(token, window)
        raise TokenExpired(f"{self._label}: the stored sync state is of another kind; full resync")

    def get(self, ref_id: str, window: Window) -> RemoteItem | RemoteRejection | None:
        stored = self._fetch(ref_id)
        if stored is None:
            return None
        from calbridge.providers.ical.parse import parse_item

        return parse_item(RemoteRef(ref_id, stored.etag), stored.data, window)

    def create(self, event: RemoteEvent) -> Written:
        href = self.collection + _file_name(event.key)
        uid = event.uid or f"{event.key}@calbridge"
        from calbridge.providers.ical.write import new_object

        body = new_object(event, uid, self._clock())
        headers = {**ICS, "If-None-Match": "*"}
        response = self._request("PUT", href, body, headers, ok={200, 201, 204, 409, 412})
        if response.status_code in (409, 412):
            return self._adopt(href, event.key, uid, response)
        self.last_written = RemoteRef(href, self._etag_after(href, response))
        return Written(self.last_written, uid)

    def update(self, ref: RemoteRef, event: RemoteEvent) -> Written:
        from calbridge.providers.ical.write import apply_event

        stored = self._current(ref)
        try:
            body = apply_event(stored.data, event, self._clock())
        except BadEvent as exc:
            raise ProviderError(f"{self._label}: cannot update {ref.id}: {exc}") from exc
        etag = self._put_if_match(ref.id, body, stored.etag)
        return Written(RemoteRef(ref.id, etag), _uid(stored.data))

    def delete(self, ref: RemoteRef, recurrence_id: str | None = None) -> None:
        if recurrence_id is None:
            self._delete(ref.id, ref.etag)
            return
        stored = self._current(ref, missing_ok=True)
        if stored is None:
            return  # the whole series is gone already
        from calbridge.providers.ical.write import exclude_occurrence

        try:
            body = exclude_occurrence(stored.data, recurrence_id, self._clock())
        except BadEvent as exc:
            raise ProviderError(f"{self._label}: cannot remove {recurrence_id}: {exc}") from exc
        if body == b"":
            self._delete(ref.id, stored.etag)
        elif body is not None:
            self._put_if_match(ref.id, body, stored.etag)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CalDAVProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ writing

    def _adopt(self, href: str, key: str, uid: str, refused: httpx.Response) -> Written:
        """A create met an existing object: ours from a retried/crashed create, or a clash."""
        from calbridge.providers.ical.parse import key_of

        stored = self._fetch(href)
        if stored is not None and key_of(stored.data) == key:
            return Written(RemoteRef(href, stored.etag), _uid(stored.data), adopted=True)
        if stored is None:
            raise Conflict(
                f"{self._label}: cannot create {href}: the server refused it "
                f"({refused.status_code}); another object probably uses UID {uid}"
            )
        raise Conflict(
            f"{self._label}: cannot create {href}: an object is already there "
            "that calbridge did not create"
        )

    @overload
    def _current(self, ref: RemoteRef) -> _Stored: ...

    @overload
    def _current(self, ref: RemoteRef, *, missing_ok: bool) -> _Stored | None: ...

    def _current(self, ref: RemoteRef, *, missing_ok: bool = False) -> _Stored | None:
        """The object as stored now; Conflict when it changed since ``ref.etag`` (or is gone,
        unless ``missing_ok``): the engine re-reads and merges before writing again."""
        stored = self._fetch(ref.id)
        if stored is None:
            if missing_ok:
                return None
            raise Conflict(f"{self._label}: {ref.id} was deleted on the calendar")
        if ref.etag and not _same_etag(ref.etag, stored.etag):
            raise Conflict(f"{self._label}: {ref.id} changed on the calendar since it was read")
        return stored

    def _put_if_match(self, href: str, body: bytes, etag: str | None) -> str | None:
        headers = {**ICS, **({"If-Match": etag} if etag else {})}
        response = self._request("PUT", href, body, headers, ok={200, 201, 204, 412})
        if response.status_code == 412:
            raise Conflict(f"{self._label}: {href} changed on the calendar while being written")
        new_etag = self._etag_after(href, response)
        self.last_written = RemoteRef(href, new_etag)
        return new_etag

    def _delete(self, href: str, etag: str | None) -> None:
        headers = {"If-Match": etag} if etag else {}
        response = self._request("DELETE", href, None, headers, ok={200, 204, 404, 412})
        if response.status_code == 412:
            raise Conflict(f"{self._label}: {href} changed on the calendar; not deleted")

    def _fetch(self, href: str) -> _Stored | None:
        response = self._request("GET", href, None, {}, ok={200, 404, 410})
        if response.status_code != 200:
            return None
        etag = response.headers.get("ETag") or self._etag_of(href)
        return _Stored(etag, response.content)

    def _etag_after(self, href: str, response: httpx.Response) -> str | None:
        return response.headers.get("ETag") or self._etag_of(href)

    def _etag_of(self, href: str) -> str | None:
        body = dav.propfind_body("D:getetag")
        response = self._request("PROPFIND", href, body, {"Depth": "0"}, ok={207, 404})
        for entry in dav.read_multistatus([response.content], source=self._source):
            if isinstance(entry, dav.DavResponse):
                return entry.text("D:getetag")
        return None

    # --------------------------------------------------------------- HTTP

    @property
    def requests(self) -> int:
        """HTTP requests made so far, retries included."""
        return self._http.counter.count

    @requests.setter
    def requests(self, value: int) -> None:
        self._http.counter.count = value

    def _request(
        self, method: str, href: str, body: bytes | None, headers: dict[str, str], *, ok: set[int]
    ) -> httpx.Response:
        return self._http.request(method, href, body, headers, ok=ok)


def _file_name(key: str) -> str:
    """The object's name for idempotency key ``key``: the key itself when it is a plain name,
    else a hash of it — deterministic either way, so a retried create meets its first try."""
    if _PLAIN_NAME.fullmatch(key):
        return key + ".ics"
    return "cb-" + hashlib.sha256(key.encode()).hexdigest()[:40] + ".ics"


def _uid(data: bytes) -> str:
    from calbridge.providers.ical.parse import events_of, load

    try:
        return str(events_of(load(data))[0].get("UID", ""))
    except BadEvent:
        return ""


def _same_etag(a: str | None, b: str | None) -> bool:
    def bare(tag: str | None) -> str:
        return (tag or "").removeprefix("W/").strip('"')

    return bare(a) == bare(b)
