"""A Google calendar behind the :class:`BatchingProvider` protocol (domain/remote.py).

**Pull.** ``events.list`` with ``syncToken`` (none on a full sync), ``showDeleted=true``,
``singleEvents=false``, paged with ``pageToken`` (``maxResults`` = ``page_size``) — one
:class:`ChangePage` per Google page, so a big calendar is never in memory at once. A 410
``fullSyncRequired`` raises :class:`TokenExpired` and the engine starts over without a token.

Single events are emitted with their page. Recurring series are assembled at the end of the
listing, because a master and its exceptions (events carrying ``recurringEventId``) can sit on
different pages — and an incremental listing holds only what changed: a changed exception
without its master, or a changed master without its unchanged exceptions. The engine must
always get a *whole* series (it cancels the occurrences an item no longer lists), so:

* on a full listing every master and exception of the calendar is there: series are built
  from what was listed, with no extra request;
* on an incremental listing every series touched (its master or any exception changed) is
  re-read whole by iCalUID (:mod:`~calbridge.providers.google.series`), up to 50 series per
  HTTP batch — so a changed exception re-emits its whole series.

A cancelled single event or master is reported deleted; a cancelled exception is an excluded
occurrence. A series' etag is a digest over the master's and every exception's etag.

**Push** lives in :mod:`~calbridge.providers.google.writes`; credentials and the counted,
retrying transport in :mod:`~calbridge.providers.google.auth` and ``google.http``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from calbridge.domain.remote import (
    ChangePage,
    EventFields,
    RemoteEvent,
    RemoteItem,
    RemoteRef,
    RemoteRejection,
    Window,
    WriteOp,
    WriteResult,
    Written,
)
from calbridge.errors import BadEmail, BadEvent
from calbridge.providers.google.auth import make_credentials
from calbridge.providers.google.http import DEFAULT_API_BASE, GoogleApi, Json
from calbridge.providers.google.mapping import (
    is_cancelled,
    is_master,
    master_id_of,
    series_item,
    single_item,
)
from calbridge.providers.google.series import MAX_BATCH, Series, Touched, fetch_series
from calbridge.providers.google.writes import GoogleWriter
from calbridge.providers.retry import RetryPolicy

DEFAULT_PAGE = 1000


class GoogleProvider:
    """One Google calendar. Build it with :func:`open_google` (stored settings) or from a
    :class:`GoogleApi` (tests, benchmarks)."""

    kind = "Google"
    max_batch = MAX_BATCH

    def __init__(self, api: GoogleApi, *, page_size: int = DEFAULT_PAGE) -> None:
        self.api = api
        self.page_size = max(1, min(2500, page_size))
        self.access_role: str | None = None
        self._zone: str | None = None
        self._writer = GoogleWriter(api, self._zone_for)

    # ----------------------------------------------------------- protocol

    @property
    def requests(self) -> int:
        """HTTP requests made so far: API calls, batch envelopes, token requests, retries
        (calls inside a batch are not requests of their own)."""
        return self.api.http.requests

    @requests.setter
    def requests(self, value: int) -> None:
        self.api.http.requests = value

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.api.http.retry

    @retry_policy.setter
    def retry_policy(self, policy: RetryPolicy) -> None:
        self.api.http.retry = policy

    def check(self) -> None:
        """Sign in and read the calendar: a refused grant, a missing scope or an unknown
        calendar id raise an error naming the calendar and the command that fixes it."""
        request = self.api.events.list(
            calendarId=self.api.calendar_id, maxResults=1, fields="timeZone,accessRole"
        )
        body = self.api.call(request, "reading the calendar", missing="calendar") or {}
        self._zone = str(body.get("timeZone") or "UTC")
        self.access_role = body.get("accessRole")

    @property
    def calendar_zone(self) -> str:
        """The calendar's own time zone (for times that carry only an offset)."""
        if self._zone is None:
            self.check()
        return self._zone or "UTC"

    def list_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        return self._pages(token, window)

    def get(self, ref_id: str, window: Window) -> RemoteItem | RemoteRejection | None:
        request = self.api.events.get(calendarId=self.api.calendar_id, eventId=ref_id)
        event = self.api.call(request, f"reading event {ref_id}", missing="none")
        if event is None or is_cancelled(event):
            return None
        master_id = master_id_of(event) or (ref_id if is_master(event) else None)
        if master_id is None:
            return self._read(ref_id, event, lambda: single_item(event, self.calendar_zone))
        touched = Touched()
        if is_master(event):
            touched.masters[master_id] = event
        else:
            touched.exceptions[master_id] = [event]
        items, deleted = self._series_items(touched, window, complete=False)
        return None if deleted else items[0]

    def create(self, event: RemoteEvent) -> Written:
        return self._writer.create(event)

    def update(self, ref: RemoteRef, event: RemoteEvent) -> Written:
        return self._writer.update(ref, event)

    def delete(self, ref: RemoteRef, recurrence_id: str | None = None) -> None:
        self._writer.delete(ref, recurrence_id)

    def write_many(self, ops: list[WriteOp]) -> list[WriteResult]:
        """Single-event writes in HTTP batches of ≤ 50 calls; occurrence writes one by one.
        One result per op, in order: Written, None (a delete) or the op's error."""
        return self._writer.write_many(ops)

    def close(self) -> None:
        self.api.close()

    # ------------------------------------------------------------ pulling

    def _pages(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        touched = Touched()
        page_token: str | None = None
        while True:
            body = self._list_page(token, page_token)
            self._zone = str(body.get("timeZone") or self._zone or "UTC")
            page = ChangePage(full=token is None)
            for event in body.get("items", []):
                self._sort(event, page, touched)
            page_token = body.get("nextPageToken")
            if page_token:
                yield page
                continue
            items, deleted = self._series_items(touched, window, complete=token is None)
            page.items.extend(items)
            page.deleted.extend(deleted)
            page.token, page.done = body.get("nextSyncToken"), True
            yield page
            return

    def _list_page(self, token: str | None, page_token: str | None) -> Json:
        params: dict[str, Any] = {
            "calendarId": self.api.calendar_id,
            "showDeleted": True,
            "singleEvents": False,
            "maxResults": self.page_size,
        }
        if token:
            params["syncToken"] = token
        if page_token:
            params["pageToken"] = page_token
        request = self.api.events.list(**params)
        return self.api.call(request, "listing changes", missing="calendar") or {}

    def _sort(self, event: Json, page: ChangePage, touched: Touched) -> None:
        event_id = str(event["id"])
        master_id = master_id_of(event)
        if master_id is not None:
            touched.exceptions.setdefault(master_id, []).append(event)
        elif is_cancelled(event):
            page.deleted.append(event_id)
            touched.gone.add(event_id)
        elif is_master(event):
            touched.masters[event_id] = event
        else:
            page.items.append(
                self._read(event_id, event, lambda: single_item(event, self.calendar_zone))
            )

    def _series_items(
        self, touched: Touched, window: Window, *, complete: bool
    ) -> tuple[list[RemoteItem | RemoteRejection], list[str]]:
        ids = touched.ids()
        known: dict[str, Series] = {}
        if complete:  # a full listing holds every master and exception of the calendar
            known = {
                i: (touched.masters[i], touched.exceptions.get(i, []))
                for i in ids
                if i in touched.masters
            }
        known.update(fetch_series(self.api, [i for i in ids if i not in known], touched))
        items: list[RemoteItem | RemoteRejection] = []
        deleted: list[str] = []
        for master_id in ids:
            master, exceptions = known[master_id]
            live = [e for e in exceptions if not is_cancelled(e)]
            if (master is not None and is_cancelled(master)) or (master is None and not live):
                deleted.append(master_id)
                continue
            build = _series_builder(master_id, master, exceptions, window, self.calendar_zone)
            items.append(self._read(master_id, master or exceptions[0], build))
        return items, deleted

    def _read(
        self, ref_id: str, event: Json, build: Callable[[], RemoteItem]
    ) -> RemoteItem | RemoteRejection:
        try:
            return build()
        except (BadEvent, BadEmail) as exc:
            return RemoteRejection(ref_id, event.get("iCalUID"), str(exc))

    def _zone_for(self, fields: EventFields) -> str:
        floating = not fields.times.all_day and fields.times.timezone is None
        return self.calendar_zone if floating else (self._zone or "UTC")


def _series_builder(
    master_id: str, master: Json | None, exceptions: list[Json], window: Window, zone: str
) -> Callable[[], RemoteItem]:
    return lambda: series_item(master_id, master, exceptions, window, zone)


def open_google(
    name: str, settings: dict[str, Any], secret: dict[str, Any], *, adding: bool = False
) -> GoogleProvider:
    """The provider for a stored Google calendar (``Calendar.settings`` + opened secret).
    Makes no request: credentials are refreshed on first use."""
    auth = str(settings.get("auth") or "oauth")
    who = settings.get("subject") or settings.get("account")
    if not who and auth == "service_account":
        who = (secret.get("service_account") or {}).get("client_email")
    api = GoogleApi(
        str(settings["calendar_id"]),
        make_credentials(settings, secret, name),
        name=name,
        auth=auth,
        who=str(who or "the authorized account"),
        api_base=str(settings.get("api_base") or DEFAULT_API_BASE),
        retry=RetryPolicy.from_settings(settings.get("retry")),
        adding=adding,
    )
    return GoogleProvider(api, page_size=int(settings.get("page_size") or DEFAULT_PAGE))
