"""The Google Calendar v3 emulator, driven over real HTTP by the real client libraries.

``googleapiclient`` + ``google.oauth2.service_account`` / ``google.oauth2.credentials`` talk to
the emulator exactly as the connector will talk to Google.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httplib2
import httpx
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from calbridge_emulators.google.schema import validate
from calbridge_emulators.google.testing import (
    CALENDAR_SCOPE,
    EmulatorHandle,
    notification_receiver,
    running_emulator,
)
from waits import wait_until

if TYPE_CHECKING:  # the fixture's type; conftest modules are not importable by name
    from conftest import GoogleSetup

OWNER = "owner@example.com"  # the user of the ``gcal`` fixture
READONLY = "https://www.googleapis.com/auth/calendar.readonly"


def reason(exc: HttpError) -> str:
    body = json.loads(exc.content)
    return str(body["error"]["errors"][0]["reason"])


def timed(start: str, end: str, tz: str | None = None, **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"dateTime": start}
    e: dict[str, Any] = {"dateTime": end}
    if tz:
        s["timeZone"] = e["timeZone"] = tz
    return {"start": s, "end": e, **extra}


def all_pages(service: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextPageToken; returns (items, nextSyncToken, pages)."""
    items, pages, token = [], 0, None
    while True:
        resp = service.events().list(pageToken=token, **kwargs).execute()
        pages += 1
        items.extend(resp["items"])
        token = resp.get("nextPageToken")
        if token is None:
            assert "nextSyncToken" in resp
            return items, resp["nextSyncToken"], pages
        assert "nextSyncToken" not in resp


def parse(dt: str) -> datetime:
    return datetime.fromisoformat(dt.replace("Z", "+00:00"))


# -- CRUD --------------------------------------------------------------------------------------
def test_insert_get_update_patch_delete(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    body = timed("2024-05-01T10:00:00+02:00", "2024-05-01T11:00:00+02:00", summary="Board")
    body["extendedProperties"] = {"private": {"bookingId": "b-1"}}
    created = events.insert(calendarId="primary", body=body).execute()
    assert created["kind"] == "calendar#event"
    assert created["status"] == "confirmed" and created["sequence"] == 0
    assert created["etag"].startswith('"') and created["etag"].endswith('"')
    assert created["creator"]["email"] == OWNER and created["organizer"]["email"] == OWNER
    assert created["iCalUID"] and created["htmlLink"].startswith("https://www.google.com/calendar/")
    assert created["created"].endswith("Z") and len(created["updated"]) == len(
        "2024-01-01T00:00:00.000Z"
    )
    assert parse(created["start"]["dateTime"]) == parse("2024-05-01T08:00:00Z")

    got = events.get(calendarId=gcal.calendar_id, eventId=created["id"]).execute()
    assert got == created

    replaced = events.update(
        calendarId="primary",
        eventId=created["id"],
        body=timed("2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z", summary="Board (moved)"),
    ).execute()
    assert replaced["summary"] == "Board (moved)"
    assert replaced["etag"] != created["etag"]
    assert replaced["sequence"] == 1  # start/end changed
    assert "extendedProperties" not in replaced  # PUT replaces the whole resource
    assert replaced["created"] == created["created"]

    patched = events.patch(
        calendarId="primary",
        eventId=created["id"],
        body={"location": "Room 1", "extendedProperties": {"private": {"x": "1"}}},
    ).execute()
    assert patched["location"] == "Room 1" and patched["summary"] == "Board (moved)"
    assert patched["sequence"] == 1 and patched["etag"] != replaced["etag"]
    patched2 = events.patch(
        calendarId="primary",
        eventId=created["id"],
        body={"extendedProperties": {"private": {"y": "2"}}},
    ).execute()
    assert patched2["extendedProperties"]["private"] == {"x": "1", "y": "2"}

    assert events.delete(calendarId="primary", eventId=created["id"]).execute() == ""
    gone = events.get(calendarId="primary", eventId=created["id"]).execute()
    assert gone["status"] == "cancelled"
    with pytest.raises(HttpError) as exc:
        events.delete(calendarId="primary", eventId=created["id"]).execute()
    assert exc.value.resp.status == 410 and reason(exc.value) == "deleted"
    with pytest.raises(HttpError) as exc:
        events.get(calendarId="primary", eventId="nosuchevent1").execute()
    assert exc.value.resp.status == 404 and reason(exc.value) == "notFound"
    assert gcal.handle.request_counts()["by_method"]["calendar.events.patch"] == 2


def test_client_ids_validation_and_duplicates(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    body = {"start": {"date": "2024-06-01"}, "end": {"date": "2024-06-02"}}
    ok = events.insert(calendarId="primary", body={**body, "id": "booking0001vv"}).execute()
    assert ok["id"] == "booking0001vv"
    for bad in ("abcd", "ABCDEF", "abcdewxyz", "abc_def12", "a" * 1025):
        with pytest.raises(HttpError) as exc:
            events.insert(calendarId="primary", body={**body, "id": bad}).execute()
        assert exc.value.resp.status == 400 and reason(exc.value) == "invalid", bad
    with pytest.raises(HttpError) as exc:
        events.insert(calendarId="primary", body={**body, "id": "booking0001vv"}).execute()
    assert exc.value.resp.status == 409 and reason(exc.value) == "duplicate"
    body_json = json.loads(exc.value.content)["error"]
    assert body_json["code"] == 409 and body_json["status"] == "ALREADY_EXISTS"
    events.delete(calendarId="primary", eventId="booking0001vv").execute()
    with pytest.raises(HttpError) as exc:  # a deleted id stays taken
        events.insert(calendarId="primary", body={**body, "id": "booking0001vv"}).execute()
    assert exc.value.resp.status == 409


def test_etag_preconditions(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    ev = events.insert(
        calendarId="primary", body={"start": {"date": "2024-06-01"}, "end": {"date": "2024-06-02"}}
    ).execute()
    for build_req in (
        lambda: events.update(calendarId="primary", eventId=ev["id"], body=ev),
        lambda: events.patch(calendarId="primary", eventId=ev["id"], body={"summary": "x"}),
        lambda: events.delete(calendarId="primary", eventId=ev["id"]),
    ):
        req = build_req()
        req.headers["If-Match"] = '"123"'
        with pytest.raises(HttpError) as exc:
            req.execute()
        assert exc.value.resp.status == 412 and reason(exc.value) == "conditionNotMet"
    req = events.patch(calendarId="primary", eventId=ev["id"], body={"summary": "ok"})
    req.headers["If-Match"] = ev["etag"]
    patched = req.execute()
    assert patched["summary"] == "ok"
    req = events.get(calendarId="primary", eventId=ev["id"])
    req.headers["If-None-Match"] = patched["etag"]
    with pytest.raises(HttpError) as exc:
        req.execute()
    assert exc.value.resp.status == 304
    req = events.get(calendarId="primary", eventId=ev["id"])
    req.headers["If-None-Match"] = ev["etag"]  # stale etag: full response
    assert req.execute()["summary"] == "ok"


# -- listing, paging, sync -----------------------------------------------------------------------
def test_paging_and_page_size_limits(gcal: GoogleSetup) -> None:
    start = datetime(2024, 1, 1, 9, tzinfo=UTC)
    gcal.handle.seed_events(
        gcal.calendar_id,
        (
            timed(
                (start + timedelta(hours=i)).isoformat(),
                (start + timedelta(hours=i, minutes=30)).isoformat(),
                summary=f"e{i}",
            )
            for i in range(23)
        ),
    )
    items, _, pages = all_pages(gcal.service, calendarId="primary", maxResults=10)
    assert pages == 3 and len(items) == 23 and len({i["id"] for i in items}) == 23
    first = gcal.service.events().list(calendarId="primary").execute()
    assert len(first["items"]) == 23 and "nextSyncToken" in first  # default page size 250
    capped = gcal.service.events().list(calendarId="primary", maxResults=99999).execute()
    assert len(capped["items"]) == 23
    # list_next works too
    req = gcal.service.events().list(calendarId="primary", maxResults=20)
    resp = req.execute()
    nxt = gcal.service.events().list_next(req, resp)
    assert len(nxt.execute()["items"]) == 3
    with pytest.raises(HttpError) as exc:
        gcal.service.events().list(calendarId="primary", maxResults=0).execute()
    assert exc.value.resp.status == 400
    fields = gcal.service.events().list(
        calendarId="primary", maxResults=2, fields="items(id,etag),nextPageToken"
    )
    partial = fields.execute()
    assert set(partial) == {"items", "nextPageToken"}
    assert all(set(i) == {"id", "etag"} for i in partial["items"])


def test_sync_token_incremental_with_deletions(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    ids = gcal.handle.seed_events(
        gcal.calendar_id,
        [timed(f"2024-02-0{d}T10:00:00Z", f"2024-02-0{d}T11:00:00Z") for d in range(1, 6)],
    )
    _, token, _ = all_pages(gcal.service, calendarId="primary", maxResults=2)
    events.patch(calendarId="primary", eventId=ids[0], body={"summary": "changed"}).execute()
    events.delete(calendarId="primary", eventId=ids[1]).execute()
    new = events.insert(
        calendarId="primary", body=timed("2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z")
    ).execute()
    changed, token2, _ = all_pages(gcal.service, calendarId="primary", syncToken=token)
    by_id = {i["id"]: i for i in changed}
    assert set(by_id) == {ids[0], ids[1], new["id"]}
    assert by_id[ids[0]]["summary"] == "changed"
    assert by_id[ids[1]]["status"] == "cancelled"
    # nothing changed since -> empty page with a fresh token
    again = events.list(calendarId="primary", syncToken=token2).execute()
    assert again["items"] == [] and again["nextSyncToken"]
    # paged incremental sync: two changes, one per page
    events.patch(calendarId="primary", eventId=ids[2], body={"summary": "a"}).execute()
    events.patch(calendarId="primary", eventId=ids[3], body={"summary": "b"}).execute()
    changed, _, pages = all_pages(
        gcal.service, calendarId="primary", syncToken=token2, maxResults=1
    )
    assert pages == 2 and {i["id"] for i in changed} == {ids[2], ids[3]}
    # without showDeleted a full list hides the deleted event, with it it is there
    visible = {i["id"] for i in all_pages(gcal.service, calendarId="primary")[0]}
    assert ids[1] not in visible
    with_deleted = all_pages(gcal.service, calendarId="primary", showDeleted=True)[0]
    assert ids[1] in {i["id"] for i in with_deleted}


def test_sync_token_errors(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    token = events.list(calendarId="primary").execute()["nextSyncToken"]
    with pytest.raises(HttpError) as exc:
        events.list(calendarId="primary", syncToken=token, timeMin="2024-01-01T00:00:00Z").execute()
    assert exc.value.resp.status == 400
    with pytest.raises(HttpError) as exc:
        events.list(calendarId="primary", syncToken="1" + token).execute()
    assert exc.value.resp.status == 410 and reason(exc.value) == "fullSyncRequired"
    events.list(calendarId="primary", syncToken=token).execute()  # still fine
    gcal.handle.emulator.expire_sync_tokens()
    with pytest.raises(HttpError) as exc:
        events.list(calendarId="primary", syncToken=token).execute()
    assert exc.value.resp.status == 410 and reason(exc.value) == "fullSyncRequired"
    fresh = events.list(calendarId="primary").execute()["nextSyncToken"]
    assert events.list(calendarId="primary", syncToken=fresh).execute()["items"] == []


def test_filters(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    a = events.insert(
        calendarId="primary",
        body=timed(
            "2024-04-01T10:00:00Z",
            "2024-04-01T11:00:00Z",
            summary="Alpha meeting",
            extendedProperties={"private": {"bookingId": "1", "src": "cb"}},
        ),
    ).execute()
    gcal.handle.emulator.advance_clock(1)  # b is updated later than a, not in the same ms
    b = events.insert(
        calendarId="primary",
        body=timed(
            "2024-04-02T10:00:00Z",
            "2024-04-02T11:00:00Z",
            summary="Beta",
            extendedProperties={"private": {"bookingId": "2", "src": "cb"}},
        ),
    ).execute()

    def ids(**kw: Any) -> set[str]:
        return {i["id"] for i in events.list(calendarId="primary", **kw).execute()["items"]}

    assert ids(privateExtendedProperty="bookingId=1") == {a["id"]}
    assert ids(privateExtendedProperty=["src=cb", "bookingId=2"]) == {b["id"]}
    assert ids(privateExtendedProperty="src=nope") == set()
    assert ids(timeMin="2024-04-01T11:00:00Z") == {b["id"]}  # end is exclusive
    assert ids(timeMax="2024-04-02T10:00:00Z") == {a["id"]}  # start bound is exclusive
    assert ids(q="alpha") == {a["id"]}
    assert ids(iCalUID=b["iCalUID"]) == {b["id"]}
    assert ids(updatedMin=b["updated"]) == {b["id"]}
    with pytest.raises(HttpError) as exc:
        ids(timeMin="2024-04-02T00:00:00Z", timeMax="2024-04-01T00:00:00Z")
    assert exc.value.resp.status == 400
    with pytest.raises(HttpError):
        ids(orderBy="startTime")  # needs singleEvents
    page = events.list(calendarId="primary", maxResults=1).execute()
    with pytest.raises(HttpError) as exc:  # a page token belongs to its query
        events.list(
            calendarId="primary", singleEvents=True, pageToken=page["nextPageToken"]
        ).execute()
    assert exc.value.resp.status == 400
    by_update = events.list(calendarId="primary", orderBy="updated").execute()["items"]
    assert [i["id"] for i in by_update] == [a["id"], b["id"]]


# -- times and recurrence ------------------------------------------------------------------------
def test_all_day_and_time_zones_round_trip(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    day = events.insert(
        calendarId="primary", body={"start": {"date": "2024-07-04"}, "end": {"date": "2024-07-06"}}
    ).execute()
    assert day["start"] == {"date": "2024-07-04"} and day["end"] == {"date": "2024-07-06"}
    ny = events.insert(
        calendarId="primary",
        body=timed("2024-07-01T14:00:00Z", "2024-07-01T15:00:00Z", tz="America/New_York"),
    ).execute()
    assert ny["start"] == {"dateTime": "2024-07-01T10:00:00-04:00", "timeZone": "America/New_York"}
    local = events.insert(
        calendarId="primary",
        body=timed("2024-12-01T10:00:00", "2024-12-01T11:00:00", tz="Europe/Berlin"),
    ).execute()
    assert local["start"]["dateTime"] == "2024-12-01T10:00:00+01:00"
    got = events.get(calendarId="primary", eventId=ny["id"], timeZone="Asia/Tokyo").execute()
    assert got["start"]["dateTime"] == "2024-07-01T10:00:00-04:00"  # own zone wins
    listed = events.list(calendarId="primary", timeZone="Asia/Tokyo").execute()["items"]
    assert {i["id"]: i for i in listed}[day["id"]]["start"] == {"date": "2024-07-04"}
    bad = [
        timed("2024-12-01T10:00:00", "2024-12-01T11:00:00"),  # no offset, no zone
        timed("2024-12-01T10:00:00Z", "2024-12-01T09:00:00Z"),  # end before start
        {"start": {"date": "2024-07-04"}, "end": {"date": "2024-07-04"}},  # empty
        {"start": {"date": "2024-07-04"}, "end": {"dateTime": "2024-07-05T00:00:00Z"}},
        timed("2024-12-01T10:00:00Z", "2024-12-01T11:00:00Z", tz="Mars/Olympus"),
        {
            **timed("2024-12-01T10:00:00Z", "2024-12-01T11:00:00Z"),
            "recurrence": ["RRULE:FREQ=DAILY"],
        },
        {**timed("2024-12-01T10:00:00Z", "2024-12-01T11:00:00Z", tz="UTC"), "recurrence": ["X"]},
        {"summary": "no times"},
    ]
    for body in bad:
        with pytest.raises(HttpError) as exc:
            events.insert(calendarId="primary", body=body).execute()
        assert exc.value.resp.status == 400, body


def test_recurring_master_exceptions_and_expansion(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    master = events.insert(
        calendarId="primary",
        body={
            **timed("2024-03-21T10:00:00", "2024-03-21T11:00:00", tz="Europe/Berlin"),
            "summary": "Weekly",
            "recurrence": [
                "RRULE:FREQ=WEEKLY;COUNT=5",
                "EXDATE;TZID=Europe/Berlin:20240411T100000",
            ],
            "id": "series00001",
        },
    ).execute()
    assert master["recurrence"][0] == "RRULE:FREQ=WEEKLY;COUNT=5"
    inst = events.instances(calendarId="primary", eventId=master["id"]).execute()["items"]
    # 5 weekly instances minus the EXDATE, wall clock stable across the DST change (Mar 31)
    assert [i["start"]["dateTime"] for i in inst] == [
        "2024-03-21T10:00:00+01:00",
        "2024-03-28T10:00:00+01:00",
        "2024-04-04T10:00:00+02:00",
        "2024-04-18T10:00:00+02:00",
    ]
    assert [i["id"] for i in inst] == [
        "series00001_20240321T090000Z",
        "series00001_20240328T090000Z",
        "series00001_20240404T080000Z",
        "series00001_20240418T080000Z",
    ]
    assert all(i["recurringEventId"] == master["id"] and "recurrence" not in i for i in inst)
    assert inst[2]["originalStartTime"] == {
        "dateTime": "2024-04-04T10:00:00+02:00",
        "timeZone": "Europe/Berlin",
    }
    _, token, _ = all_pages(gcal.service, calendarId="primary")

    moved = events.patch(
        calendarId="primary",
        eventId=inst[1]["id"],
        body={
            "summary": "Weekly (moved)",
            "start": {"dateTime": "2024-03-28T15:00:00+01:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2024-03-28T16:00:00+01:00", "timeZone": "Europe/Berlin"},
        },
    ).execute()
    assert moved["id"] == inst[1]["id"] and moved["recurringEventId"] == master["id"]
    assert moved["originalStartTime"]["dateTime"] == "2024-03-28T10:00:00+01:00"
    events.delete(calendarId="primary", eventId=inst[2]["id"]).execute()
    with pytest.raises(HttpError) as exc:  # not an occurrence
        events.get(calendarId="primary", eventId="series00001_20240322T090000Z").execute()
    assert exc.value.resp.status == 404

    changed, _, _ = all_pages(gcal.service, calendarId="primary", syncToken=token)
    assert {i["id"] for i in changed} == {inst[1]["id"], inst[2]["id"]}
    cancelled = next(i for i in changed if i["status"] == "cancelled")
    assert cancelled["recurringEventId"] == master["id"] and "originalStartTime" in cancelled

    raw, _, _ = all_pages(gcal.service, calendarId="primary")
    kinds = {i["id"]: i.get("status") for i in raw}
    assert kinds == {
        master["id"]: "confirmed",
        inst[1]["id"]: "confirmed",
        inst[2]["id"]: "cancelled",
    }

    single, _, _ = all_pages(
        gcal.service, calendarId="primary", singleEvents=True, orderBy="startTime"
    )
    assert [i["id"] for i in single] == [inst[0]["id"], inst[1]["id"], inst[3]["id"]]
    assert single[1]["summary"] == "Weekly (moved)"
    assert single[1]["start"]["dateTime"] == "2024-03-28T15:00:00+01:00"
    with_deleted = events.list(
        calendarId="primary", singleEvents=True, showDeleted=True, orderBy="startTime"
    ).execute()["items"]
    assert [i.get("status") for i in with_deleted] == ["confirmed"] * 2 + ["cancelled", "confirmed"]
    windowed = events.list(
        calendarId="primary",
        singleEvents=True,
        timeMin="2024-04-10T00:00:00Z",
        timeMax="2024-05-01T00:00:00Z",
    ).execute()["items"]
    assert [i["id"] for i in windowed] == [inst[3]["id"]]

    # all-day series: instance ids use the date
    daily = events.insert(
        calendarId="primary",
        body={
            "start": {"date": "2024-05-01"},
            "end": {"date": "2024-05-02"},
            "recurrence": ["RRULE:FREQ=DAILY;UNTIL=20240503"],
        },
    ).execute()
    got = events.instances(calendarId="primary", eventId=daily["id"]).execute()["items"]
    assert [i["id"].rsplit("_", 1)[1] for i in got] == ["20240501", "20240502", "20240503"]
    assert got[1]["originalStartTime"] == {"date": "2024-05-02"}

    # incremental sync with singleEvents: a changed series comes back as its instances
    _, stoken, _ = all_pages(gcal.service, calendarId="primary", singleEvents=True)
    events.patch(calendarId="primary", eventId=inst[3]["id"], body={"summary": "last"}).execute()
    changed, stoken, _ = all_pages(
        gcal.service, calendarId="primary", singleEvents=True, syncToken=stoken
    )
    assert [(i["id"], i["summary"]) for i in changed] == [(inst[3]["id"], "last")]
    events.patch(calendarId="primary", eventId=daily["id"], body={"summary": "D"}).execute()
    changed, _, _ = all_pages(
        gcal.service, calendarId="primary", singleEvents=True, syncToken=stoken
    )
    assert [i["summary"] for i in changed] == ["D", "D", "D"]
    assert all(i["recurringEventId"] == daily["id"] for i in changed)
    one = events.instances(
        calendarId="primary", eventId=master["id"], originalStart="2024-04-18T10:00:00+02:00"
    ).execute()["items"]
    assert [i["id"] for i in one] == [inst[3]["id"]]

    events.delete(calendarId="primary", eventId=master["id"]).execute()  # whole series
    single, _, _ = all_pages(gcal.service, calendarId="primary", singleEvents=True)
    assert {i["recurringEventId"] for i in single} == {daily["id"]}


# -- batch ---------------------------------------------------------------------------------------
def test_batch_with_partial_failure(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    events.insert(
        calendarId="primary",
        body={"id": "taken00001", "start": {"date": "2024-01-01"}, "end": {"date": "2024-01-02"}},
    ).execute()
    gcal.handle.emulator.reset_counters()
    results: dict[str, Any] = {}
    batch = gcal.handle.new_batch(
        callback=lambda rid, resp, exc: results.__setitem__(rid, (resp, exc))
    )
    for i, eid in enumerate(["fresh00001", "taken00001", "fresh00002", "fresh00003"]):
        body = {"id": eid, "summary": f"b{i}", "start": {"date": "2024-01-01"}}
        body["end"] = {"date": "2024-01-02"}
        batch.add(events.insert(calendarId="primary", body=body), request_id=eid)
    batch.add(events.get(calendarId="primary", eventId="taken00001"), request_id="get")
    batch.execute()
    assert results["taken00001"][0] is None
    assert results["taken00001"][1].resp.status == 409
    assert reason(results["taken00001"][1]) == "duplicate"
    for eid in ("fresh00001", "fresh00002", "fresh00003"):
        assert results[eid][1] is None and results[eid][0]["id"] == eid
    assert results["get"][0]["id"] == "taken00001"
    counts = gcal.handle.request_counts()
    assert counts["http_requests"] == 1 and counts["batch_requests"] == 1
    assert counts["batch_inner_calls"] == 5 and counts["api_calls"] == 5

    # service built from the re-rooted discovery document: new_batch_http_request() works
    svc = gcal.handle.build_service(gcal.credentials, via="document")
    got: list[Any] = []
    b2 = svc.new_batch_http_request(callback=lambda rid, resp, exc: got.append(resp["id"]))
    b2.add(svc.events().get(calendarId="primary", eventId="fresh00001"))
    b2.execute()
    assert got == ["fresh00001"]
    # ... and so does discovery over HTTP
    svc3 = build(
        "calendar",
        "v3",
        credentials=gcal.credentials,
        discoveryServiceUrl=gcal.handle.discovery_url,
        static_discovery=False,
        cache_discovery=False,
    )
    assert (
        svc3.events().get(calendarId="primary", eventId="fresh00002").execute()["summary"] == "b2"
    )

    # expired access token: every part answers 401, the client refreshes and re-sends them
    gcal.handle.emulator.expire_access_tokens()
    seen: list[Any] = []
    b4 = gcal.handle.new_batch(callback=lambda rid, resp, exc: seen.append((resp["id"], exc)))
    b4.add(events.get(calendarId="primary", eventId="fresh00003"))
    b4.execute()
    assert seen == [("fresh00003", None)]

    too_many = gcal.handle.new_batch()
    for _ in range(51):
        too_many.add(events.get(calendarId="primary", eventId="fresh00001"))
    with pytest.raises(HttpError) as exc:
        too_many.execute()
    assert exc.value.resp.status == 400


# -- push notifications --------------------------------------------------------------------------
def test_watch_notifications_and_stop(gcal: GoogleSetup) -> None:
    events = gcal.service.events()
    with notification_receiver() as receiver:
        channel = events.watch(
            calendarId="primary",
            body={"id": "chan-1", "type": "web_hook", "address": receiver.url, "token": "t=1"},
        ).execute()
        assert channel["kind"] == "api#channel" and channel["id"] == "chan-1"
        assert channel["resourceId"] and channel["resourceUri"].startswith(gcal.handle.base_url)
        assert channel["token"] == "t=1" and int(channel["expiration"]) > time.time() * 1000
        sync = receiver.wait_for(1)[0]
        assert sync["x-goog-resource-state"] == "sync"
        assert sync["x-goog-message-number"] == "1"
        assert sync["x-goog-channel-id"] == "chan-1" and sync["x-goog-channel-token"] == "t=1"
        assert sync["x-goog-resource-id"] == channel["resourceId"]
        assert sync["x-goog-resource-uri"] == channel["resourceUri"]
        assert sync["x-goog-channel-expiration"].endswith("GMT")

        events.insert(
            calendarId="primary",
            body={"start": {"date": "2024-01-01"}, "end": {"date": "2024-01-02"}},
        ).execute()
        msgs = receiver.wait_for(2)
        assert msgs[1]["x-goog-resource-state"] == "exists"
        assert int(msgs[1]["x-goog-message-number"]) > 1

        with pytest.raises(HttpError) as exc:  # channel ids are unique
            events.watch(
                calendarId="primary",
                body={"id": "chan-1", "type": "web_hook", "address": receiver.url},
            ).execute()
        assert exc.value.resp.status == 400

        gcal.service.channels().stop(
            body={"id": "chan-1", "resourceId": channel["resourceId"]}
        ).execute()
        with pytest.raises(HttpError) as exc:
            gcal.service.channels().stop(
                body={"id": "chan-1", "resourceId": channel["resourceId"]}
            ).execute()
        assert exc.value.resp.status == 404

        # a channel that expires
        short = events.watch(
            calendarId="primary",
            body={
                "id": "chan-2",
                "type": "web_hook",
                "address": receiver.url,
                "expiration": str(int(time.time() * 1000) + 60_000),
            },
        ).execute()
        receiver.wait_for(3)
        gcal.handle.emulator.advance_clock(120)
        events.insert(
            calendarId="primary",
            body={"start": {"date": "2024-01-03"}, "end": {"date": "2024-01-04"}},
        ).execute()
        assert gcal.handle.wait_for_notifications()
        assert [m["x-goog-channel-id"] for m in receiver.messages] == ["chan-1", "chan-1", "chan-2"]
        assert short["expiration"] == str(int(short["expiration"]))


# -- auth --------------------------------------------------------------------------------------
def test_service_account_key_file_and_token_endpoint(
    google_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    google_emulator.add_user(OWNER)
    key_file = google_emulator.write_service_account_key(tmp_path / "sa.json")
    info = json.loads(key_file.read_text())
    assert info["type"] == "service_account" and info["token_uri"] == google_emulator.token_uri
    creds = service_account.Credentials.from_service_account_file(
        str(key_file), scopes=[CALENDAR_SCOPE], subject=OWNER
    )
    svc = google_emulator.build_service(creds)
    assert svc.calendars().get(calendarId="primary").execute()["id"] == OWNER
    # without subject the service account acts as itself (its own primary calendar)
    as_self = service_account.Credentials.from_service_account_file(
        str(key_file), scopes=[CALENDAR_SCOPE]
    )
    own = google_emulator.build_service(as_self).calendars().get(calendarId="primary").execute()
    assert own["id"] == info["client_email"]
    with pytest.raises(HttpError) as exc:  # the owner's calendar is not shared with it
        google_emulator.build_service(as_self).events().list(calendarId=OWNER).execute()
    assert exc.value.resp.status == 404 and reason(exc.value) == "notFound"
    # self-signed JWT access (no token endpoint round trip) is accepted as a bearer token
    tokens_before = google_emulator.request_counts()["token_requests"]
    jwt_svc = build(
        "calendar",
        "v3",
        credentials=as_self,
        static_discovery=True,
        client_options={"api_endpoint": google_emulator.api_endpoint},
        always_use_jwt_access=True,
    )
    assert jwt_svc.calendars().get(calendarId="primary").execute()["id"] == info["client_email"]
    assert google_emulator.request_counts()["token_requests"] == tokens_before

    unknown = google_emulator.service_account_info(
        "intruder@evil.iam.gserviceaccount.com", register=False, fresh_key=True
    )
    with pytest.raises(RefreshError, match="invalid_grant"):
        service_account.Credentials.from_service_account_info(
            unknown, scopes=[CALENDAR_SCOPE]
        ).refresh(_request())
    forged = dict(info, private_key=unknown["private_key"])  # right account, wrong key
    with pytest.raises(RefreshError, match="Invalid JWT Signature"):
        service_account.Credentials.from_service_account_info(
            forged, scopes=[CALENDAR_SCOPE]
        ).refresh(_request())
    with pytest.raises(RefreshError, match="invalid_scope"):
        service_account.Credentials.from_service_account_info(info, scopes=[]).refresh(_request())
    with pytest.raises(RefreshError, match="invalid_grant"):  # unknown delegated user
        service_account.Credentials.from_service_account_info(
            info, scopes=[CALENDAR_SCOPE], subject="nobody@example.com"
        ).refresh(_request())
    nodwd = google_emulator.service_account_info(
        "nodwd@calbridge-emulator.iam.gserviceaccount.com", delegation=False
    )
    with pytest.raises(RefreshError, match="unauthorized_client"):
        service_account.Credentials.from_service_account_info(
            nodwd, scopes=[CALENDAR_SCOPE], subject=OWNER
        ).refresh(_request())

    # revoking the user's grants: the live token stops working, refresh -> invalid_grant
    google_emulator.emulator.revoke(OWNER)
    with pytest.raises(RefreshError, match="invalid_grant"):
        svc.events().list(calendarId="primary").execute()
    google_emulator.emulator.restore(OWNER)
    assert svc.events().list(calendarId="primary").execute()["items"] == []


def _request() -> Any:
    import google_auth_httplib2

    return google_auth_httplib2.Request(httplib2.Http())


def test_api_authentication_and_authorization(gcal: GoogleSetup) -> None:
    handle = gcal.handle
    url = f"{handle.api_endpoint}calendars/primary/events"
    r = httpx.get(url)
    assert r.status_code == 401 and r.json()["error"]["errors"][0]["reason"] == "required"
    r = httpx.get(url, headers={"Authorization": "Bearer ya29.bogus"})
    assert r.status_code == 401 and r.json()["error"]["errors"][0]["reason"] == "authError"

    ro = handle.build_service(handle.service_account_credentials(subject=OWNER, scopes=[READONLY]))
    assert ro.events().list(calendarId="primary").execute()["items"] == []
    with pytest.raises(HttpError) as exc:
        ro.events().insert(
            calendarId="primary",
            body={"start": {"date": "2024-01-01"}, "end": {"date": "2024-01-02"}},
        ).execute()
    assert exc.value.resp.status == 403 and reason(exc.value) == "insufficientPermissions"

    with pytest.raises(HttpError) as exc:
        gcal.service.events().list(calendarId="nobody@example.com").execute()
    assert exc.value.resp.status == 404 and reason(exc.value) == "notFound"

    # a calendar of another user shared read-only with the owner
    other = handle.add_user("other@example.com")
    shared = handle.emulator.add_calendar("other@example.com", "Rooms", time_zone="Europe/Paris")
    with pytest.raises(HttpError):
        gcal.service.calendars().get(calendarId=shared).execute()
    handle.emulator.share_calendar(shared, OWNER, "reader")
    cal = gcal.service.calendars().get(calendarId=shared).execute()
    assert cal == {
        "kind": "calendar#calendar",
        "etag": cal["etag"],
        "id": shared,
        "summary": "Rooms",
        "timeZone": "Europe/Paris",
    }
    with pytest.raises(HttpError) as exc:
        gcal.service.events().insert(
            calendarId=shared, body={"start": {"date": "2024-01-01"}, "end": {"date": "2024-01-02"}}
        ).execute()
    assert exc.value.resp.status == 403 and reason(exc.value) == "requiredAccessLevel"
    entries = gcal.service.calendarList().list().execute()["items"]
    assert [(e["id"], e["accessRole"], e.get("primary", False)) for e in entries] == [
        (OWNER, "owner", True),
        (shared, "reader", False),
    ]
    assert other == "other@example.com"


def test_refresh_token_grant_and_access_token_expiry(google_emulator: EmulatorHandle) -> None:
    google_emulator.add_user(OWNER)
    creds = google_emulator.user_credentials(OWNER)
    svc = google_emulator.build_service(creds)
    assert svc.calendarList().list().execute()["items"][0]["id"] == OWNER
    before = google_emulator.request_counts()["token_requests"]
    google_emulator.emulator.expire_access_tokens()  # 401 -> the client refreshes by itself
    assert svc.events().list(calendarId="primary").execute()["items"] == []
    assert google_emulator.request_counts()["token_requests"] == before + 1
    google_emulator.emulator.revoke(OWNER)
    with pytest.raises(RefreshError, match="invalid_grant"):
        svc.events().list(calendarId="primary").execute()


# -- faults --------------------------------------------------------------------------------------
def test_scripted_faults_visible_to_client(gcal: GoogleSetup) -> None:
    emu = gcal.handle.emulator
    events = gcal.service.events()
    emu.inject_fault(429, retry_after=7, path="/events$", method="GET")
    with pytest.raises(HttpError) as exc:
        events.list(calendarId="primary").execute()
    assert exc.value.resp.status == 429 and reason(exc.value) == "rateLimitExceeded"
    assert exc.value.resp["retry-after"] == "7"
    events.list(calendarId="primary").execute()  # only the next one failed

    emu.inject_fault(403, reason="userRateLimitExceeded")
    with pytest.raises(HttpError) as exc:
        events.list(calendarId="primary").execute()
    assert exc.value.resp.status == 403 and reason(exc.value) == "userRateLimitExceeded"

    emu.reset_counters()
    emu.inject_fault(500, count=2)
    with pytest.raises(HttpError) as exc:
        events.list(calendarId="primary").execute()
    assert exc.value.resp.status == 500 and reason(exc.value) == "backendError"
    # googleapiclient's own retries get through after the remaining injected failure
    retried = events.list(calendarId="primary")
    retried._sleep = lambda seconds: None  # skip the client's back-off sleeps
    assert retried.execute(num_retries=2)["items"] == []
    counts = emu.request_counts()
    assert counts["by_status"] == {"500": 2, "200": 1} and counts["faults_injected"] == 2

    # faults via the HTTP control API, limited to calls inside batches
    r = httpx.post(f"{gcal.handle.control_url}/faults", json={"status": 503, "on": ["batch_part"]})
    assert r.status_code == 200
    out: dict[str, Any] = {}
    batch = gcal.handle.new_batch(callback=lambda rid, resp, e: out.__setitem__(rid, e))
    batch.add(events.list(calendarId="primary"), request_id="a")
    batch.add(events.list(calendarId="primary"), request_id="b")
    batch.execute()
    assert out["a"].resp.status == 503 and out["b"] is None

    # a scripted token-endpoint error surfaces as a RefreshError
    emu.inject_fault(400, reason="invalid_grant", on=["token"])
    creds = gcal.handle.service_account_credentials(subject=OWNER)
    with pytest.raises(RefreshError, match="invalid_grant"):
        creds.refresh(_request())
    creds.refresh(_request())
    assert creds.valid

    emu.set_fail_rate(1.0, seed=1)
    with pytest.raises(HttpError) as exc:
        events.list(calendarId="primary").execute()
    assert exc.value.resp.status == 503
    emu.set_fail_rate(0.3, seed=42)
    first = [_status(events) for _ in range(20)]
    emu.set_fail_rate(0.3, seed=42)
    assert [_status(events) for _ in range(20)] == first and 503 in first and 200 in first
    emu.set_fail_rate(0.0)


def _status(events: Any) -> int:
    try:
        events.list(calendarId="primary", maxResults=1).execute()
    except HttpError as exc:
        return int(exc.resp.status)
    return 200


# -- persistence, scale, CLI ---------------------------------------------------------------------
def test_persistence_round_trip(tmp_path: Path) -> None:
    data = tmp_path / "state"
    key_file = tmp_path / "sa.json"
    with running_emulator(data_dir=data) as first:
        first.add_user(OWNER)
        first.write_service_account_key(key_file)
        creds = service_account.Credentials.from_service_account_file(
            str(key_file), scopes=[CALENDAR_SCOPE], subject=OWNER
        )
        svc = first.build_service(creds)
        ev = (
            svc.events()
            .insert(
                calendarId="primary",
                body={
                    **timed("2024-03-01T10:00:00", "2024-03-01T11:00:00", tz="Europe/Berlin"),
                    "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
                },
            )
            .execute()
        )
        svc.events().delete(calendarId="primary", eventId=f"{ev['id']}_20240302T090000Z").execute()
        token = svc.events().list(calendarId="primary").execute()["nextSyncToken"]
    assert (data / "google-calendar-emulator.json").exists()
    port = int(first.base_url.rsplit(":", 1)[1])  # the key file's token_uri names this port
    with running_emulator(data_dir=data, port=port) as second:
        creds = service_account.Credentials.from_service_account_file(
            str(key_file), scopes=[CALENDAR_SCOPE], subject=OWNER
        )
        svc = second.build_service(creds)
        assert svc.events().get(calendarId="primary", eventId=ev["id"]).execute() == ev
        assert svc.events().list(calendarId="primary", syncToken=token).execute()["items"] == []
        inst = svc.events().instances(calendarId="primary", eventId=ev["id"]).execute()["items"]
        assert len(inst) == 2
        svc.events().patch(calendarId="primary", eventId=ev["id"], body={"summary": "x"}).execute()
        changed = svc.events().list(calendarId="primary", syncToken=token).execute()["items"]
        assert [c["id"] for c in changed] == [ev["id"]]


def test_large_calendar_paging_and_sync(gcal: GoogleSetup) -> None:
    n = 5000
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ids = gcal.handle.seed_events(
        gcal.calendar_id,
        (
            timed(
                (start + timedelta(minutes=30 * i)).isoformat(),
                (start + timedelta(minutes=30 * i + 20)).isoformat(),
                extendedProperties={"private": {"bookingId": str(i)}},
            )
            for i in range(n)
        ),
    )
    items, token, pages = all_pages(gcal.service, calendarId="primary", maxResults=2500)
    assert pages == 2 and len(items) == n
    singles, _, pages = all_pages(
        gcal.service, calendarId="primary", singleEvents=True, orderBy="startTime", maxResults=2500
    )
    assert pages == 2 and [i["id"] for i in singles] == ids
    gcal.service.events().delete(calendarId="primary", eventId=ids[1234]).execute()
    changed = gcal.service.events().list(calendarId="primary", syncToken=token).execute()
    assert [c["id"] for c in changed["items"]] == [ids[1234]]


def test_cli_serve_prints_base_url(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path; from calbridge.cli.emulate_google import serve; "
        f"serve(0, Path({str(tmp_path)!r}), 0.0)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        base = line.rsplit(" ", 1)[-1]
        assert base.startswith("http://127.0.0.1:")
        r = wait_until(
            lambda: httpx.get(base + "/", timeout=1),
            f"the emulator to answer at {base}",
            ignore=(httpx.TransportError,),
        )
        assert r.json()["batch_uri"] == base + "/batch/calendar/v3"
        sa = httpx.post(f"{base}/_emulator/service-accounts", json={}).json()
        assert sa["token_uri"] == base + "/token" and "PRIVATE KEY" in sa["private_key"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert (tmp_path / "google-calendar-emulator.json").exists()  # saved on shutdown


# -- schema conformance ----------------------------------------------------------------------------
RESPONSE_SCHEMAS = {
    "calendar.events.list": "Events",
    "calendar.events.instances": "Events",
    "calendar.events.get": "Event",
    "calendar.events.insert": "Event",
    "calendar.events.update": "Event",
    "calendar.events.patch": "Event",
    "calendar.events.watch": "Channel",
    "calendar.calendars.get": "Calendar",
    "calendar.calendarList.list": "CalendarList",
    "calendar.calendarList.get": "CalendarListEntry",
}


def test_every_response_matches_the_discovery_schemas(gcal: GoogleSetup) -> None:
    emu = gcal.handle.emulator
    emu.recorded.clear()
    events = gcal.service.events()
    ev = events.insert(
        calendarId="primary",
        body={
            **timed("2024-05-01T09:00:00", "2024-05-01T10:00:00", tz="Europe/London"),
            "summary": "Conference",
            "description": "d",
            "location": "Hall",
            "attendees": [{"email": "guest@example.com", "displayName": "G"}],
            "extendedProperties": {"private": {"k": "v"}, "shared": {"s": "1"}},
            "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 5}]},
            "transparency": "transparent",
            "colorId": "3",
            "notAField": {"nested": True},  # unknown input is ignored, never echoed
        },
    ).execute()
    assert "notAField" not in ev
    series = events.insert(
        calendarId="primary",
        body={
            "start": {"date": "2024-06-01"},
            "end": {"date": "2024-06-02"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=4"],
        },
    ).execute()
    inst = events.instances(calendarId="primary", eventId=series["id"]).execute()["items"]
    events.patch(calendarId="primary", eventId=inst[0]["id"], body={"summary": "exc"}).execute()
    events.delete(calendarId="primary", eventId=inst[1]["id"]).execute()
    events.update(calendarId="primary", eventId=ev["id"], body={**ev, "summary": "C2"}).execute()
    events.get(calendarId="primary", eventId=inst[2]["id"]).execute()
    token = events.list(calendarId="primary").execute()["nextSyncToken"]
    events.delete(calendarId="primary", eventId=ev["id"]).execute()
    events.list(calendarId="primary", syncToken=token).execute()
    events.list(calendarId="primary", showDeleted=True).execute()
    events.list(calendarId="primary", singleEvents=True, showDeleted=True).execute()
    events.list(calendarId="primary", maxResults=1).execute()
    with notification_receiver() as receiver:
        ch = events.watch(
            calendarId="primary", body={"id": "c", "type": "web_hook", "address": receiver.url}
        ).execute()
        gcal.service.channels().stop(body={"id": "c", "resourceId": ch["resourceId"]}).execute()
    gcal.service.calendars().get(calendarId="primary").execute()
    gcal.service.calendarList().list().execute()
    gcal.service.calendarList().get(calendarId="primary").execute()
    for call in (
        lambda: events.get(calendarId="primary", eventId="missing00"),
        lambda: events.insert(calendarId="primary", body={"id": "BAD"}),
        lambda: events.list(calendarId="primary", syncToken="garbage"),
    ):
        with pytest.raises(HttpError):
            call().execute()

    checked = 0
    for rec in emu.recorded:
        if rec["status"] >= 400:
            err = rec["body"]["error"]
            assert (
                set(err) <= {"code", "message", "errors", "status"} and err["code"] == rec["status"]
            )
            assert all(set(e) >= {"domain", "reason", "message"} for e in err["errors"])
            continue
        schema = RESPONSE_SCHEMAS.get(rec["method"])
        if schema is None:
            assert rec["body"] is None  # delete / channels.stop: empty 204
            continue
        assert validate(rec["body"], schema) == [], rec["method"]
        checked += 1
    assert checked >= 15


def test_schema_validator_catches_drift() -> None:
    good = {"kind": "calendar#event", "id": "x", "start": {"dateTime": "2024-01-01T00:00:00Z"}}
    assert validate(good, "Event") == []
    assert validate({**good, "bogus": 1}, "Event") == [
        "$: property 'bogus' is not defined by the schema"
    ]
    assert validate({"start": {"date": "2024-13-01"}}, "Event")
    assert validate({"start": {"dateTime": "2024-01-01T00:00:00"}}, "Event")  # no offset
    assert validate({"sequence": "1"}, "Event")
    assert validate({"extendedProperties": {"private": {"a": 1}}}, "Event")
    assert validate({"items": [{"id": 3}]}, "Events")
    assert validate({"expiration": "12a"}, "Channel")
    assert validate({"attendees": [{"email": "a", "nope": True}]}, "Event")
