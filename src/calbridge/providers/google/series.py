"""Reading whole recurring series from Google: the master and every exception.

A listing (``events.list`` with a sync token) holds only what changed, so a series touched by
a change is re-read whole: ``events.list(iCalUID=…, showDeleted=true, singleEvents=false)``
returns the master and all its exceptions (exceptions share the master's ``iCalUID``), the
cancelled ones included. Many series go in one HTTP batch (≤ 50 calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from calbridge.providers.google.http import GoogleApi, Json, status_of
from calbridge.providers.google.mapping import master_id_of

MAX_BATCH = 50
Series = tuple[Json | None, list[Json]]  # master (None: not in this calendar), exceptions


@dataclass
class Touched:
    """Series seen in a listing (their masters and changed exceptions), kept until it ends;
    ``gone`` holds the ids of cancelled masters and single events."""

    masters: dict[str, Json] = field(default_factory=dict)
    exceptions: dict[str, list[Json]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)

    def ids(self) -> list[str]:
        seen = dict.fromkeys([*self.masters, *self.exceptions])
        return [i for i in seen if i not in self.gone]

    def uid(self, master_id: str) -> str | None:
        for event in [self.masters.get(master_id), *self.exceptions.get(master_id, [])]:
            if event and event.get("iCalUID"):
                return str(event["iCalUID"])
        return None


def fetch_series(api: GoogleApi, ids: list[str], touched: Touched) -> dict[str, Series]:
    """Master and exceptions of each series in ``ids``; one batch per 50 series (plus one
    batch of ``events.get`` for series whose iCalUID the listing did not show)."""
    uids = {i: touched.uid(i) for i in ids}
    unknown = [i for i in ids if uids[i] is None]
    for start in range(0, len(unknown), MAX_BATCH):
        chunk = unknown[start : start + MAX_BATCH]
        gets = [api.events.get(calendarId=api.calendar_id, eventId=i) for i in chunk]
        for master_id, (event, exc) in zip(chunk, api.batch(gets), strict=True):
            _check(api, exc, master_id, missing_ok=True)
            uids[master_id] = str(event["iCalUID"]) if event and event.get("iCalUID") else None
    found: dict[str, Series] = {}
    listed = [i for i in ids if uids[i] is not None]
    for start in range(0, len(listed), MAX_BATCH):
        chunk = listed[start : start + MAX_BATCH]
        lists = [_request(api, str(uids[i])) for i in chunk]
        for master_id, (body, exc) in zip(chunk, api.batch(lists), strict=True):
            _check(api, exc, master_id)
            found[master_id] = _series_of(api, master_id, str(uids[master_id]), body or {})
    for master_id in ids:
        if master_id not in found:
            found[master_id] = (None, touched.exceptions.get(master_id, []))
    return found


def _request(api: GoogleApi, uid: str, page_token: str | None = None) -> HttpRequest:
    return api.events.list(
        calendarId=api.calendar_id,
        iCalUID=uid,
        showDeleted=True,
        singleEvents=False,
        maxResults=2500,
        pageToken=page_token,
    )


def _series_of(api: GoogleApi, master_id: str, uid: str, body: Json) -> Series:
    events = list(body.get("items", []))
    while body.get("nextPageToken"):  # more than 2,500 exceptions: rare, read on
        body = api.call(_request(api, uid, str(body["nextPageToken"])), _what(master_id)) or {}
        events.extend(body.get("items", []))
    master = next((e for e in events if e.get("id") == master_id), None)
    if master is None:  # not listed under its iCalUID: ask for it by id
        request = api.events.get(calendarId=api.calendar_id, eventId=master_id)
        master = api.call(request, _what(master_id), missing="none")
    return master, [e for e in events if master_id_of(e) == master_id]


def _check(
    api: GoogleApi, exc: HttpError | None, master_id: str, *, missing_ok: bool = False
) -> None:
    if exc is not None and not (missing_ok and status_of(exc) in (404, 410)):
        raise api.error(exc, _what(master_id))


def _what(master_id: str) -> str:
    return f"reading series {master_id}"
