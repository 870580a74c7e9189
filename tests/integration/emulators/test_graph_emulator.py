"""Integration tests of the Microsoft Graph calendar emulator over real HTTP (httpx, MSAL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msal
import pytest

from calbridge.domain.windows_zones import (
    IANA_TO_WINDOWS,
    WINDOWS_TO_IANA,
    iana_to_windows,
    windows_to_iana,
)
from calbridge_emulators.graph.testing import (
    GRAPH_SCOPE,
    GraphEmulatorHandle,
    NotificationReceiver,
    make_client_certificate,
    running_emulator,
)

try:
    from .graph_fixtures import graph_emulator, graph_http, graph_tls_emulator, mailbox
except ImportError:  # test directory is not a package
    from graph_fixtures import graph_emulator, graph_http, graph_tls_emulator, mailbox  # type: ignore[no-redef]

__all__ = ["graph_emulator", "graph_http", "graph_tls_emulator", "mailbox"]

pytestmark = pytest.mark.timeout(60)

START = "2027-03-01T00:00:00Z"
END = "2027-04-01T00:00:00Z"
EXT_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name calbridgeKey"


def event_body(subject: str, start: str, end: str, tz: str = "UTC", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "body": {"contentType": "text", "content": f"About {subject}"},
        "start": {"dateTime": start, "timeZone": tz},
        "end": {"dateTime": end, "timeZone": tz},
        **extra,
    }


def create(client: httpx.Client, upn: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    resp = client.post(f"/users/{upn}/events", json=body, **kw)
    assert resp.status_code == 201, resp.text
    return resp.json()


def error_code(resp: httpx.Response) -> str:
    return str(resp.json()["error"]["code"])


def drain_delta(
    client: httpx.Client, url: str, page: int = 10, params: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink; returns (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    headers = {"Prefer": f"odata.maxpagesize={page}"}
    resp = client.get(url, params=params, headers=headers)
    while True:
        assert resp.status_code == 200, resp.text
        pages += 1
        data = resp.json()
        items.extend(data["value"])
        if "@odata.deltaLink" in data:
            return items, data["@odata.deltaLink"], pages
        resp = client.get(data["@odata.nextLink"], headers=headers)


# --------------------------------------------------------------------------- auth


def test_msal_client_secret_certificate_and_wrong_secret(
    graph_tls_emulator: GraphEmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests (MSAL's HTTP stack) lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override ``verify``.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    graph = graph_tls_emulator
    app = msal.ConfidentialClientApplication(
        graph.client_id,
        client_credential=graph.client_secret,
        authority=graph.authority(),
        instance_discovery=False,
        verify=graph.verify,
    )
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert result.get("token_type") == "Bearer", result
    with httpx.Client(base_url=graph.graph_url, verify=graph.ssl_context) as client:
        resp = client.get(
            f"/users/{graph.user}/calendars",
            headers={"Authorization": f"Bearer {result['access_token']}"},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["value"][0]["isDefaultCalendar"] is True

    cert = make_client_certificate()
    cert_app = graph.add_app(graph.tenant_id, certificate_pem=cert.certificate_pem)
    by_cert = msal.ConfidentialClientApplication(
        cert_app.client_id,
        client_credential={
            "private_key": cert.private_key_pem,
            "public_certificate": cert.certificate_pem,
        },
        authority=graph.authority("contoso.onmicrosoft.com"),
        instance_discovery=False,
        verify=graph.verify,
    )
    assert "access_token" in by_cert.acquire_token_for_client([GRAPH_SCOPE])
    legacy = msal.ConfidentialClientApplication(  # RS256 + SHA-1 thumbprint
        cert_app.client_id,
        client_credential={"private_key": cert.private_key_pem, "thumbprint": cert.thumbprint_sha1},
        authority=graph.authority(),
        instance_discovery=False,
        verify=graph.verify,
    )
    assert "access_token" in legacy.acquire_token_for_client([GRAPH_SCOPE])
    other = make_client_certificate()  # not registered on the app
    forged = msal.ConfidentialClientApplication(
        cert_app.client_id,
        client_credential={
            "private_key": other.private_key_pem,
            "public_certificate": other.certificate_pem,
        },
        authority=graph.authority(),
        instance_discovery=False,
        verify=graph.verify,
    )
    bad = forged.acquire_token_for_client([GRAPH_SCOPE])
    assert bad["error"] == "invalid_client" and 700027 in bad["error_codes"]

    wrong = msal.ConfidentialClientApplication(
        graph.client_id,
        client_credential="not-the-secret",
        authority=graph.authority(),
        instance_discovery=False,
        verify=graph.verify,
    )
    denied = wrong.acquire_token_for_client([GRAPH_SCOPE])
    assert denied["error"] == "invalid_client"
    assert denied["error_description"].startswith("AADSTS7000215")

    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        msal.ConfidentialClientApplication(
            graph.client_id,
            client_credential=graph.client_secret,
            authority=graph.authority("nosuchtenant.onmicrosoft.com"),
            instance_discovery=False,
            verify=graph.verify,
        )


def test_token_endpoint_and_bearer_errors(graph_emulator: GraphEmulatorHandle) -> None:
    graph = graph_emulator
    base = {
        "grant_type": "client_credentials",
        "client_id": graph.client_id,
        "client_secret": graph.client_secret,
    }
    resp = httpx.post(
        graph.token_url(), data={**base, "client_secret": "nope", "scope": GRAPH_SCOPE}
    )
    assert resp.status_code == 401 and resp.json()["error_codes"] == [7000215]
    resp = httpx.post(graph.token_url(), data={**base, "scope": "Calendars.Read"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"
    resp = httpx.post(
        graph.token_url(), data={**base, "client_id": str(uuid.uuid4()), "scope": GRAPH_SCOPE}
    )
    assert resp.status_code == 400 and resp.json()["error"] == "unauthorized_client"
    resp = httpx.post(graph.token_url("unknown-tenant"), data={**base, "scope": GRAPH_SCOPE})
    assert resp.status_code == 400 and resp.json()["error_codes"] == [90002]

    url = f"{graph.graph_url}/users/{graph.user}/events"
    resp = httpx.get(url)
    assert resp.status_code == 401 and error_code(resp) == "InvalidAuthenticationToken"
    assert resp.json()["error"]["innerError"]["request-id"] == resp.headers["request-id"]
    resp = httpx.get(url, headers={"Authorization": "Bearer garbage"})
    assert resp.status_code == 401 and error_code(resp) == "InvalidAuthenticationToken"
    token = graph.acquire_token()
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    graph.advance_clock(3600)
    try:
        resp = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert "expired" in resp.json()["error"]["message"]
    finally:
        graph.advance_clock(-3600)


def test_mailbox_access_errors(
    graph_emulator: GraphEmulatorHandle, graph_http: httpx.Client, mailbox: str
) -> None:
    graph = graph_emulator
    resp = graph_http.get("/users/nobody@contoso.onmicrosoft.com/calendar/events")
    assert resp.status_code == 404 and error_code(resp) == "ErrorInvalidUser"
    resp = graph_http.get(f"/users/{mailbox}/calendars/AAMkAnope=/events")
    assert resp.status_code == 404 and error_code(resp) == "ErrorItemNotFound"
    resp = graph_http.get(f"/users/{mailbox}/events/AAMkAnope=")
    assert resp.status_code == 404 and error_code(resp) == "ErrorItemNotFound"
    resp = graph_http.get("/me/events")
    assert resp.status_code == 400

    reader = graph.add_app(graph.tenant_id, secret="s1", roles=["Calendars.Read"])
    with graph.graph_client(graph.acquire_token(reader.client_id, "s1")) as client:
        assert client.get(f"/users/{mailbox}/events").status_code == 200
        resp = client.post(f"/users/{mailbox}/events", json=event_body("x", START, END))
        assert resp.status_code == 403 and error_code(resp) == "ErrorAccessDenied"
    scoped = graph.add_app(graph.tenant_id, secret="s2", mailboxes=[graph.user])
    with graph.graph_client(graph.acquire_token(scoped.client_id, "s2")) as client:
        assert client.get(f"/users/{graph.user}/events").status_code == 200
        resp = client.get(f"/users/{mailbox}/events")
        assert resp.status_code == 403 and error_code(resp) == "ErrorAccessDenied"
    none = graph.add_app(graph.tenant_id, secret="s3", roles=["User.Read.All"])
    with graph.graph_client(graph.acquire_token(none.client_id, "s3")) as client:
        assert client.get(f"/users/{mailbox}/calendar").status_code == 403


# --------------------------------------------------------------------------- CRUD


def test_crud_etag_and_if_match(graph_http: httpx.Client, mailbox: str) -> None:
    created = create(
        graph_http,
        mailbox,
        event_body(
            "Standup",
            "2027-03-05T09:00:00",
            "2027-03-05T09:30:00",
            "W. Europe Standard Time",
            location={"displayName": "Room 1"},
            showAs="tentative",
            categories=["Blue"],
        ),
    )
    assert created["start"] == {"dateTime": "2027-03-05T08:00:00.0000000", "timeZone": "UTC"}
    assert created["originalStartTimeZone"] == "W. Europe Standard Time"
    assert created["type"] == "singleInstance" and created["seriesMasterId"] is None
    assert created["@odata.etag"] == f'W/"{created["changeKey"]}"'
    assert created["organizer"]["emailAddress"]["address"] == mailbox
    assert created["location"]["displayName"] == "Room 1"
    assert (
        created["body"]["contentType"] == "html" and "About Standup" in created["body"]["content"]
    )
    assert created["createdDateTime"].endswith("Z") and len(created["createdDateTime"]) == 28
    assert "transactionId" not in created

    eid = created["id"]
    got = graph_http.get(f"/users/{mailbox}/calendar/events/{eid}").json()
    assert got["id"] == eid and got["changeKey"] == created["changeKey"]
    resp = graph_http.patch(
        f"/users/{mailbox}/events/{eid}",
        json={"subject": "Standup v2"},
        headers={"If-Match": created["@odata.etag"]},
    )
    assert resp.status_code == 200, resp.text
    patched = resp.json()
    assert patched["subject"] == "Standup v2" and patched["changeKey"] != created["changeKey"]
    resp = graph_http.patch(
        f"/users/{mailbox}/events/{eid}",
        json={"subject": "stale"},
        headers={"If-Match": created["@odata.etag"]},
    )
    assert resp.status_code == 412 and error_code(resp) == "ErrorIrresolvableConflict"
    resp = graph_http.delete(
        f"/users/{mailbox}/events/{eid}", headers={"If-Match": created["@odata.etag"]}
    )
    assert resp.status_code == 412
    resp = graph_http.post(
        f"/users/{mailbox}/events", json={**event_body("x", START, END), "bogus": 1}
    )
    assert resp.status_code == 400 and error_code(resp) == "RequestBodyRead"
    resp = graph_http.post(
        f"/users/{mailbox}/events", json=event_body("x", START, END, "Mars/Base")
    )
    assert resp.status_code == 400 and error_code(resp) == "TimeZoneNotSupportedException"
    listed = graph_http.get(f"/users/{mailbox}/events", params={"$select": "subject"}).json()
    assert [e["subject"] for e in listed["value"]] == ["Standup v2"]
    assert set(listed["value"][0]) == {"@odata.etag", "id", "subject"}
    assert (
        graph_http.delete(
            f"/users/{mailbox}/events/{eid}", headers={"If-Match": patched["@odata.etag"]}
        ).status_code
        == 204
    )
    assert graph_http.get(f"/users/{mailbox}/events/{eid}").status_code == 404


def test_transaction_id_retry_returns_same_event(graph_http: httpx.Client, mailbox: str) -> None:
    txn = str(uuid.uuid4())
    body = event_body("Booking 42", "2027-03-10T10:00:00", "2027-03-10T11:00:00", transactionId=txn)
    first = create(graph_http, mailbox, body)
    second = create(graph_http, mailbox, {**body, "subject": "retried"})
    assert second["id"] == first["id"] and second["subject"] == "Booking 42"
    assert second["transactionId"] == txn
    events = graph_http.get(f"/users/{mailbox}/events").json()["value"]
    assert len(events) == 1
    other = create(graph_http, mailbox, {**body, "transactionId": str(uuid.uuid4())})
    assert other["id"] != first["id"]
    resp = graph_http.patch(
        f"/users/{mailbox}/events/{first['id']}", json={"transactionId": "changed"}
    )
    assert resp.status_code == 400


def test_extended_properties_expand_and_filter(graph_http: httpx.Client, mailbox: str) -> None:
    created = create(
        graph_http,
        mailbox,
        event_body(
            "Keyed",
            "2027-03-11T10:00:00",
            "2027-03-11T11:00:00",
            singleValueExtendedProperties=[{"id": EXT_ID, "value": "booking-7"}],
        ),
    )
    create(graph_http, mailbox, event_body("Other", "2027-03-11T12:00:00", "2027-03-11T13:00:00"))
    assert "singleValueExtendedProperties" not in created
    expand = f"singleValueExtendedProperties($filter=id eq '{EXT_ID}')"
    got = graph_http.get(
        f"/users/{mailbox}/events/{created['id']}", params={"$expand": expand}
    ).json()
    assert got["singleValueExtendedProperties"] == [{"id": EXT_ID, "value": "booking-7"}]
    flt = f"singleValueExtendedProperties/Any(ep: ep/id eq '{EXT_ID}' and ep/value eq 'booking-7')"
    found = graph_http.get(f"/users/{mailbox}/events", params={"$filter": flt}).json()["value"]
    assert [e["id"] for e in found] == [created["id"]]


# --------------------------------------------------------------------------- views & delta


def test_calendar_view_and_delta_paging(
    graph_emulator: GraphEmulatorHandle, graph_http: httpx.Client, mailbox: str
) -> None:
    ids = []
    for day in range(1, 26):
        ev = create(
            graph_http,
            mailbox,
            event_body(f"E{day:02d}", f"2027-03-{day:02d}T10:00:00", f"2027-03-{day:02d}T11:00:00"),
        )
        ids.append(ev["id"])
    outside = create(
        graph_http, mailbox, event_body("May", "2027-05-02T10:00:00", "2027-05-02T11:00:00")
    )
    view = graph_http.get(
        f"/users/{mailbox}/calendarView",
        params={"startDateTime": START, "endDateTime": END, "$top": "10"},
    )
    assert view.status_code == 200 and len(view.json()["value"]) == 10
    assert "$skip=10" in view.json()["@odata.nextLink"]
    resp = graph_http.get(f"/users/{mailbox}/calendarView/delta")
    assert resp.status_code == 400 and error_code(resp) == "ErrorInvalidParameter"

    url = f"/users/{mailbox}/calendarView/delta"
    first = graph_http.get(
        url,
        params={"startDateTime": START, "endDateTime": END},
        headers={"Prefer": "odata.maxpagesize=10"},
    )
    assert "odata.maxpagesize=10" in first.headers["Preference-Applied"]
    next_link = first.json()["@odata.nextLink"]
    assert "$skiptoken=" in next_link
    page2 = graph_http.get(next_link, headers={"Prefer": "odata.maxpagesize=10"}).json()
    replay = graph_http.get(next_link, headers={"Prefer": "odata.maxpagesize=10"}).json()
    assert [e["id"] for e in page2["value"]] == [e["id"] for e in replay["value"]]
    items, delta_link, pages = drain_delta(
        graph_http, url, 10, {"startDateTime": START, "endDateTime": END}
    )
    assert pages == 3 and len(items) == 25 and "$deltatoken=" in delta_link
    assert all(i["@odata.type"] == "#microsoft.graph.event" for i in items)
    assert outside["id"] not in {i["id"] for i in items}

    empty, delta_link, _ = drain_delta(graph_http, delta_link)
    assert empty == []
    new = create(
        graph_http, mailbox, event_body("New", "2027-03-28T10:00:00", "2027-03-28T11:00:00")
    )
    graph_http.patch(f"/users/{mailbox}/events/{ids[0]}", json={"subject": "E01 renamed"})
    graph_http.delete(f"/users/{mailbox}/events/{ids[1]}")
    graph_http.patch(
        f"/users/{mailbox}/events/{ids[2]}",
        json={
            "start": {"dateTime": "2027-06-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-06-01T11:00:00", "timeZone": "UTC"},
        },
    )
    changes, delta_link, _ = drain_delta(graph_http, delta_link, 2)
    by_id = {c["id"]: c for c in changes}
    assert by_id[new["id"]]["subject"] == "New"
    assert by_id[ids[0]]["subject"] == "E01 renamed"
    assert by_id[ids[1]] == {
        "@odata.type": "#microsoft.graph.event",
        "id": ids[1],
        "@removed": {"reason": "deleted"},
    }
    assert by_id[ids[2]]["@removed"] == {"reason": "deleted"}  # moved out of the window
    assert len(changes) == 4
    again, _, _ = drain_delta(graph_http, delta_link)
    assert again == []


def test_invalidated_delta_token_answers_410(
    graph_emulator: GraphEmulatorHandle, graph_http: httpx.Client, mailbox: str
) -> None:
    create(graph_http, mailbox, event_body("A", "2027-03-02T10:00:00", "2027-03-02T11:00:00"))
    _, delta_link, _ = drain_delta(
        graph_http,
        f"/users/{mailbox}/calendarView/delta",
        10,
        {"startDateTime": START, "endDateTime": END},
    )
    graph_emulator.invalidate_delta_tokens(mailbox)
    resp = graph_http.get(delta_link)
    assert resp.status_code == 410 and error_code(resp) == "SyncStateNotFound"
    assert resp.json()["error"]["message"].startswith("The sync state generation is not found")
    items, delta_link, _ = drain_delta(
        graph_http,
        f"/users/{mailbox}/calendarView/delta",
        10,
        {"startDateTime": START, "endDateTime": END},
    )
    assert len(items) == 1
    graph_emulator.fail_next(1, 410, path=r"calendarView/delta")
    resp = graph_http.get(delta_link)
    assert resp.status_code == 410 and error_code(resp) == "SyncStateNotFound"
    assert graph_http.get(delta_link).status_code == 200


def test_recurrence_occurrences_exceptions_and_cancellations(
    graph_http: httpx.Client, mailbox: str
) -> None:
    series = create(
        graph_http,
        mailbox,
        event_body(
            "Weekly sync",
            "2027-03-01T09:00:00",
            "2027-03-01T10:00:00",
            "W. Europe Standard Time",
            recurrence={
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                "range": {"type": "numbered", "startDate": "2027-03-01", "numberOfOccurrences": 6},
            },
        ),
    )
    assert series["type"] == "seriesMaster"
    assert series["recurrence"]["pattern"]["daysOfWeek"] == ["monday"]
    url = f"/users/{mailbox}/calendarView/delta"
    items, delta_link, _ = drain_delta(
        graph_http, url, 10, {"startDateTime": START, "endDateTime": END}
    )
    assert [i["type"] for i in items] == ["occurrence"] * 5  # Mar 1, 8, 15, 22, 29
    assert {i["seriesMasterId"] for i in items} == {series["id"]}
    # DST starts in Europe on 2027-03-28: the wall-clock time stays 09:00.
    assert items[0]["start"]["dateTime"] == "2027-03-01T08:00:00.0000000"
    assert items[4]["start"]["dateTime"] == "2027-03-29T07:00:00.0000000"
    assert len({i["iCalUId"] for i in items}) == 5
    second, third = items[1], items[2]
    resp = graph_http.patch(
        f"/users/{mailbox}/events/{second['id']}",
        json={
            "subject": "Moved sync",
            "start": {"dateTime": "2027-03-09T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-09T10:00:00", "timeZone": "UTC"},
        },
    )
    assert resp.status_code == 200, resp.text
    exception = resp.json()
    assert exception["type"] == "exception" and exception["id"] == second["id"]
    assert exception["originalStart"] == "2027-03-08T08:00:00Z"
    assert graph_http.delete(f"/users/{mailbox}/events/{third['id']}").status_code == 204
    assert graph_http.get(f"/users/{mailbox}/events/{third['id']}").status_code == 404
    changes, _, _ = drain_delta(graph_http, delta_link)
    by_id = {c["id"]: c for c in changes}
    assert by_id[third["id"]]["@removed"] == {"reason": "deleted"}
    assert by_id[second["id"]]["type"] == "exception"
    assert by_id[second["id"]]["subject"] == "Moved sync"
    instances = graph_http.get(
        f"/users/{mailbox}/events/{series['id']}/instances",
        params={"startDateTime": START, "endDateTime": END},
    ).json()
    assert [i["type"] for i in instances["value"]] == [
        "occurrence",
        "exception",
        "occurrence",
        "occurrence",
    ]
    _, delta_link, _ = drain_delta(graph_http, delta_link)
    graph_http.delete(f"/users/{mailbox}/events/{series['id']}")
    removed, _, _ = drain_delta(graph_http, delta_link)
    assert sorted(r["id"] for r in removed) == sorted(i["id"] for i in instances["value"])
    assert all(r["@removed"] == {"reason": "deleted"} for r in removed)
    gone, _, _ = drain_delta(graph_http, url, 10, {"startDateTime": START, "endDateTime": END})
    assert gone == []


# --------------------------------------------------------------------------- batch & faults


def test_batch_partial_failure_depends_on_and_limit(graph_http: httpx.Client, mailbox: str) -> None:
    ct = {"Content-Type": "application/json"}
    batch = {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": f"/users/{mailbox}/events",
                "headers": ct,
                "body": event_body("From batch", "2027-03-03T10:00:00", "2027-03-03T11:00:00"),
            },
            {"id": "2", "method": "GET", "url": f"/users/{mailbox}/events/AAMkAmissing="},
            {"id": "3", "method": "GET", "url": f"/users/{mailbox}/calendar", "dependsOn": ["1"]},
            {
                "id": "4",
                "method": "DELETE",
                "url": f"/users/{mailbox}/events/AAMkAx=",
                "dependsOn": ["2"],
            },
        ]
    }
    resp = graph_http.post("/$batch", json=batch)
    assert resp.status_code == 200
    by_id = {r["id"]: r for r in resp.json()["responses"]}
    assert by_id["1"]["status"] == 201 and by_id["1"]["body"]["subject"] == "From batch"
    assert by_id["2"]["status"] == 404
    assert by_id["2"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert by_id["3"]["status"] == 200 and by_id["3"]["body"]["isDefaultCalendar"] is True
    assert by_id["4"]["status"] == 424
    too_many = {
        "requests": [
            {"id": str(i), "method": "GET", "url": f"/users/{mailbox}/calendar"} for i in range(21)
        ]
    }
    resp = graph_http.post("/$batch", json=too_many)
    assert resp.status_code == 400 and error_code(resp) == "BadRequest"
    no_ct = {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": f"/users/{mailbox}/events",
                "body": {"subject": "x"},
            }
        ]
    }
    assert graph_http.post("/$batch", json=no_ct).status_code == 400


def test_throttling_retry_after_and_counters(
    graph_emulator: GraphEmulatorHandle, graph_http: httpx.Client, mailbox: str
) -> None:
    graph_emulator.reset_counters()
    graph_emulator.fail_next(2, 429, method="GET", path=r"/calendar$", retry_after=3)
    first = graph_http.get(f"/users/{mailbox}/calendar")
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    assert error_code(first) == "TooManyRequests"
    assert graph_http.get(f"/users/{mailbox}/events").status_code == 200  # not matching
    assert graph_http.get(f"/users/{mailbox}/calendar").status_code == 429
    assert graph_http.get(f"/users/{mailbox}/calendar").status_code == 200
    graph_emulator.fail_next(1, 503, scope="inner")
    batch = {
        "requests": [
            {"id": str(i), "method": "GET", "url": f"/users/{mailbox}/calendar"} for i in range(3)
        ]
    }
    statuses = [r["status"] for r in graph_http.post("/$batch", json=batch).json()["responses"]]
    assert statuses == [503, 200, 200]
    counts = graph_emulator.counters()
    assert counts["graph"] == 5 and counts["batch"] == 1 and counts["batch_inner"] == 3
    assert counts["graph_operations"] == 7 and counts["faulted"] == 3
    assert counts["routes"]["GET /users/{u}/calendar"] == 6
    graph_emulator.emulator.batch_mailbox_limit = 2
    try:
        statuses = [r["status"] for r in graph_http.post("/$batch", json=batch).json()["responses"]]
        assert statuses == [200, 200, 429]
    finally:
        graph_emulator.emulator.batch_mailbox_limit = None
    resp = httpx.post(
        f"{graph_emulator.base_url}/_emulator/faults", json={"status": 500, "count": 1}
    )
    assert resp.status_code == 200
    assert graph_http.get(f"/users/{mailbox}/calendar").status_code == 500


def test_random_failure_rate_is_seeded() -> None:
    def run() -> list[int]:
        with running_emulator(fail_rate=0.5, seed=7) as graph:
            client = graph.graph_client()
            return [client.get(f"/users/{graph.user}/calendar").status_code for _ in range(12)]

    first = run()
    assert first == run()
    assert {200} < set(first)


# --------------------------------------------------------------------------- subscriptions


def test_subscription_handshake_notifications_renew_delete(
    graph_emulator: GraphEmulatorHandle, graph_http: httpx.Client, mailbox: str
) -> None:
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with NotificationReceiver() as receiver:
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": receiver.url,
            "resource": f"users/{mailbox}/events",
            "expirationDateTime": expires,
            "clientState": "s3cr3t",
        }
        resp = graph_http.post("/subscriptions", json=body)
        assert resp.status_code == 201, resp.text
        sub = resp.json()
        assert receiver.validations[0].startswith("Validation: Testing client application")
        ev = create(
            graph_http, mailbox, event_body("Hooked", "2027-03-04T10:00:00", "2027-03-04T11:00:00")
        )
        graph_http.patch(f"/users/{mailbox}/events/{ev['id']}", json={"subject": "Hooked 2"})
        graph_http.delete(f"/users/{mailbox}/events/{ev['id']}")
        notes = receiver.wait_for(3)
        assert [n["changeType"] for n in notes] == ["created", "updated", "deleted"]
        assert all(n["clientState"] == "s3cr3t" and n["subscriptionId"] == sub["id"] for n in notes)
        assert notes[0]["resourceData"]["id"] == ev["id"]
        assert notes[0]["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
        assert notes[0]["tenantId"] == graph_emulator.tenant_id

        later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        renewed = graph_http.patch(
            f"/subscriptions/{sub['id']}", json={"expirationDateTime": later}
        )
        assert renewed.status_code == 200
        assert renewed.json()["expirationDateTime"].startswith(later[:19])
        too_far = (datetime.now(UTC) + timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
        resp = graph_http.patch(f"/subscriptions/{sub['id']}", json={"expirationDateTime": too_far})
        assert resp.status_code == 400 and error_code(resp) == "ExtensionError"
        assert graph_http.delete(f"/subscriptions/{sub['id']}").status_code == 204
        assert graph_http.get(f"/subscriptions/{sub['id']}").status_code == 404
        create(
            graph_http, mailbox, event_body("Silent", "2027-03-04T12:00:00", "2027-03-04T13:00:00")
        )
        graph_emulator.wait_notifications()
        assert len(receiver.notifications) == 3

        soon = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        short = graph_http.post("/subscriptions", json={**body, "expirationDateTime": soon})
        short = short.json()
        graph_emulator.advance_clock(11 * 60)
        try:
            create(
                graph_http,
                mailbox,
                event_body("Late", "2027-03-04T14:00:00", "2027-03-04T15:00:00"),
            )
            graph_emulator.wait_notifications()
            assert len(receiver.notifications) == 3
            assert graph_http.get(f"/subscriptions/{short['id']}").status_code == 404
        finally:
            graph_emulator.advance_clock(-11 * 60)

    with NotificationReceiver(mode="wrong") as bad:
        resp = graph_http.post("/subscriptions", json={**body, "notificationUrl": bad.url})
        assert resp.status_code == 400 and error_code(resp) == "ValidationError"


# --------------------------------------------------------------------------- time zones


def test_prefer_timezone_windows_iana_and_all_day(graph_http: httpx.Client, mailbox: str) -> None:
    ev = create(
        graph_http,
        mailbox,
        event_body("Call", "2027-07-01T15:00:00", "2027-07-01T16:00:00", "Pacific Standard Time"),
    )
    assert ev["start"] == {"dateTime": "2027-07-01T22:00:00.0000000", "timeZone": "UTC"}
    url = f"/users/{mailbox}/events/{ev['id']}"
    resp = graph_http.get(url, headers={"Prefer": 'outlook.timezone="W. Europe Standard Time"'})
    assert resp.json()["start"] == {
        "dateTime": "2027-07-02T00:00:00.0000000",
        "timeZone": "W. Europe Standard Time",
    }
    assert 'outlook.timezone="W. Europe Standard Time"' in resp.headers["Preference-Applied"]
    iana = graph_http.get(url, headers={"Prefer": 'outlook.timezone="Asia/Tokyo"'}).json()
    assert iana["start"] == {"dateTime": "2027-07-02T07:00:00.0000000", "timeZone": "Asia/Tokyo"}
    text = graph_http.get(url, headers={"Prefer": 'outlook.body-content-type="text"'}).json()
    assert text["body"] == {"contentType": "text", "content": "About Call"}

    day = create(
        graph_http,
        mailbox,
        event_body(
            "Holiday",
            "2027-07-05T00:00:00",
            "2027-07-06T00:00:00",
            "W. Europe Standard Time",
            isAllDay=True,
            showAs="free",
        ),
    )
    assert day["isAllDay"] is True
    assert day["start"] == {"dateTime": "2027-07-05T00:00:00.0000000", "timeZone": "UTC"}
    assert day["end"] == {"dateTime": "2027-07-06T00:00:00.0000000", "timeZone": "UTC"}
    pst = graph_http.get(
        f"/users/{mailbox}/events/{day['id']}",
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    ).json()
    assert pst["start"]["dateTime"] == "2027-07-05T00:00:00.0000000"
    resp = graph_http.post(
        f"/users/{mailbox}/events",
        json=event_body("Bad", "2027-07-05T09:00:00", "2027-07-06T00:00:00", isAllDay=True),
    )
    assert resp.status_code == 400


def test_windows_zone_table_matches_cldr_defaults() -> None:
    from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

    assert WINDOWS_TO_OLSON == WINDOWS_TO_IANA
    assert windows_to_iana("w. europe standard time") == "Europe/Berlin"
    assert iana_to_windows("Europe/Amsterdam") == "W. Europe Standard Time"
    assert iana_to_windows("Europe/Kyiv") == "FLE Standard Time"
    assert iana_to_windows("Asia/Kolkata") == "India Standard Time"
    assert len(IANA_TO_WINDOWS) > 400


# --------------------------------------------------------------------------- persistence


def test_persistence_round_trip(tmp_path: Any) -> None:
    with running_emulator(data_dir=tmp_path) as graph:
        client = graph.graph_client()
        ev = create(
            client,
            graph.user,
            event_body("Kept", "2027-03-06T10:00:00", "2027-03-06T11:00:00", transactionId="t-9"),
        )
        series = create(
            client,
            graph.user,
            event_body(
                "Daily",
                "2027-03-01T08:00:00",
                "2027-03-01T08:15:00",
                "Eastern Standard Time",
                recurrence={
                    "pattern": {"type": "daily", "interval": 1},
                    "range": {
                        "type": "endDate",
                        "startDate": "2027-03-01",
                        "endDate": "2027-03-05",
                    },
                },
            ),
        )
        window = {"startDateTime": START, "endDateTime": END}
        occ = client.get(
            f"/users/{graph.user}/events/{series['id']}/instances", params=window
        ).json()["value"]
        client.patch(f"/users/{graph.user}/events/{occ[1]['id']}", json={"subject": "Special"})
        client.delete(f"/users/{graph.user}/events/{occ[2]['id']}")
        before, delta_link, _ = drain_delta(
            client, f"/users/{graph.user}/calendarView/delta", 10, window
        )
        path = delta_link.split("/v1.0", 1)[1]
    assert (tmp_path / "graph-emulator.json").exists()
    with running_emulator(data_dir=tmp_path) as graph:
        client = graph.graph_client()
        got = client.get(f"/users/{graph.user}/events/{ev['id']}")
        assert got.status_code == 200 and got.json()["subject"] == "Kept"
        assert got.json()["changeKey"] == ev["changeKey"]
        again = create(
            client,
            graph.user,
            event_body("dup", "2027-03-06T10:00:00", "2027-03-06T11:00:00", transactionId="t-9"),
        )
        assert again["id"] == ev["id"]
        after, _, _ = drain_delta(
            client,
            f"/users/{graph.user}/calendarView/delta",
            10,
            {"startDateTime": START, "endDateTime": END},
        )
        assert after == before
        client.patch(f"/users/{graph.user}/events/{ev['id']}", json={"subject": "Kept 2"})
        changes, _, _ = drain_delta(client, path)
        assert [c["subject"] for c in changes] == ["Kept 2"]


# --------------------------------------------------------------------------- scale


def test_large_calendar_pages_efficiently(
    graph_emulator: GraphEmulatorHandle, graph_http: httpx.Client, mailbox: str
) -> None:
    base = datetime(2027, 1, 1, 8, tzinfo=UTC)
    for i in range(5000):
        start = base + timedelta(hours=3 * i)
        graph_emulator.external_create(
            mailbox,
            event_body(
                f"Bulk {i}",
                start.strftime("%Y-%m-%dT%H:%M:%S"),
                (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            ),
        )
    items, delta_link, pages = drain_delta(
        graph_http,
        f"/users/{mailbox}/calendarView/delta",
        1000,
        {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2029-01-01T00:00:00Z"},
    )
    assert len(items) == 5000 and pages == 5
    view = graph_http.get(
        f"/users/{mailbox}/calendarView",
        params={
            "startDateTime": "2027-01-01T00:00:00Z",
            "endDateTime": "2029-01-01T00:00:00Z",
            "$top": "100",
            "$skip": "4900",
        },
    )
    assert len(view.json()["value"]) == 100
    graph_emulator.external_update(mailbox, items[10]["id"], {"subject": "changed"})
    changes, _, _ = drain_delta(graph_http, delta_link)
    assert [c["subject"] for c in changes] == ["changed"]


# --------------------------------------------------------------------------- model conformance

NOTIFICATION_KEYS = {  # microsoft.graph.changeNotification (not in the Python SDK)
    "changeType",
    "clientState",
    "encryptedContent",
    "id",
    "lifecycleEvent",
    "resource",
    "resourceData",
    "subscriptionExpirationDateTime",
    "subscriptionId",
    "tenantId",
}
RESOURCE_DATA_KEYS = {"@odata.type", "@odata.id", "@odata.etag", "id"}


def _model_for(method: str, path: str, status: int) -> Any:
    from msgraph.generated.models.calendar import Calendar
    from msgraph.generated.models.calendar_collection_response import CalendarCollectionResponse
    from msgraph.generated.models.event import Event
    from msgraph.generated.models.event_collection_response import EventCollectionResponse
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.subscription import Subscription
    from msgraph.generated.models.subscription_collection_response import (
        SubscriptionCollectionResponse,
    )
    from msgraph.generated.models.user import User
    from msgraph.generated.users.item.calendar_view.delta.delta_get_response import (
        DeltaGetResponse,
    )

    segs = [s.lower() for s in path.split("?")[0].split("/") if s]
    if status >= 400:
        return ODataError
    if "subscriptions" in segs:
        return (
            SubscriptionCollectionResponse
            if segs[-1] == "subscriptions" and method == "GET"
            else Subscription
        )
    if segs[-1] == "delta":
        return DeltaGetResponse
    if segs[-1] in ("calendarview", "instances") or (segs[-1] == "events" and method == "GET"):
        return EventCollectionResponse
    if "events" in segs:
        return Event
    if segs[-1] == "calendars":
        return CalendarCollectionResponse if method == "GET" else Calendar
    if segs[-1] == "calendar" or (len(segs) >= 2 and segs[-2] == "calendars"):
        return Calendar
    return User


def _unknown_properties(obj: Any, where: str) -> list[str]:
    import dataclasses

    from kiota_abstractions.serialization import Parsable

    found: list[str] = []
    if isinstance(obj, list):
        for i, value in enumerate(obj):
            found += _unknown_properties(value, f"{where}[{i}]")
    elif isinstance(obj, Parsable) and dataclasses.is_dataclass(obj):
        for key in getattr(obj, "additional_data", None) or {}:
            if not (key.startswith("@odata.") or key == "@removed"):
                found.append(f"{where}.{key}")
        for fld in dataclasses.fields(obj):
            if fld.name not in ("additional_data", "backing_store"):
                found += _unknown_properties(getattr(obj, fld.name), f"{where}.{fld.name}")
    return found


def _parse(model: Any, payload: Any) -> Any:
    import json as _json

    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

    node = JsonParseNodeFactory().get_root_parse_node(
        "application/json", _json.dumps(payload).encode()
    )
    return node.get_object_value(model)


def test_payloads_parse_with_msgraph_sdk_models(
    graph_emulator: GraphEmulatorHandle, mailbox: str
) -> None:
    pytest.importorskip("msgraph.generated.models.event")
    captured: list[tuple[str, str, int, Any]] = []

    def hook(response: httpx.Response) -> None:
        response.read()
        if response.content:
            captured.append(
                (
                    response.request.method,
                    response.request.url.path.split("/v1.0")[1],
                    response.status_code,
                    response.json(),
                )
            )

    client = graph_emulator.graph_client(event_hooks={"response": [hook]})
    ext = [{"id": EXT_ID, "value": "b-1"}]
    single = create(
        client,
        mailbox,
        event_body(
            "Full",
            "2027-03-02T09:00:00",
            "2027-03-02T10:00:00",
            "Romance Standard Time",
            location={"displayName": "HQ", "address": {"city": "Paris"}},
            attendees=[{"type": "required", "emailAddress": {"address": "a@example.com"}}],
            categories=["Red"],
            importance="high",
            sensitivity="private",
            transactionId="t-1",
            singleValueExtendedProperties=ext,
        ),
    )
    series = create(
        client,
        mailbox,
        event_body(
            "Series",
            "2027-03-01T12:00:00",
            "2027-03-01T12:30:00",
            recurrence={
                "pattern": {
                    "type": "relativeMonthly",
                    "interval": 1,
                    "daysOfWeek": ["friday"],
                    "index": "last",
                },
                "range": {"type": "noEnd", "startDate": "2027-03-01"},
            },
        ),
    )
    create(
        client,
        mailbox,
        event_body("Day", "2027-03-09T00:00:00", "2027-03-10T00:00:00", isAllDay=True),
    )
    client.post(f"/users/{mailbox}/calendars", json={"name": "Bookings"})
    client.get(f"/users/{mailbox}/calendars")
    client.get(f"/users/{mailbox}/calendar")
    client.get(f"/users/{mailbox}")
    expand = f"singleValueExtendedProperties($filter=id eq '{EXT_ID}')"
    client.get(f"/users/{mailbox}/events", params={"$expand": expand})
    client.get(f"/users/{mailbox}/events/{single['id']}", params={"$expand": expand})
    window = {"startDateTime": START, "endDateTime": "2027-06-01T00:00:00Z"}
    client.get(f"/users/{mailbox}/calendarView", params=window)
    instances = client.get(
        f"/users/{mailbox}/events/{series['id']}/instances", params=window
    ).json()["value"]
    _, delta_link, _ = drain_delta(client, f"/users/{mailbox}/calendarView/delta", 2, window)
    client.patch(f"/users/{mailbox}/events/{instances[0]['id']}", json={"subject": "Moved"})
    client.delete(f"/users/{mailbox}/events/{instances[1]['id']}")
    client.delete(f"/users/{mailbox}/events/{single['id']}")
    drain_delta(client, delta_link)
    client.get(f"/users/{mailbox}/events/{single['id']}")  # 404
    client.patch(
        f"/users/{mailbox}/events/{series['id']}",
        json={"subject": "x"},
        headers={"If-Match": 'W/"stale"'},
    )  # 412
    client.get(f"/users/{mailbox}/calendarView")  # 400
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with NotificationReceiver() as receiver:
        sub = client.post(
            "/subscriptions",
            json={
                "changeType": "created,updated",
                "notificationUrl": receiver.url,
                "resource": f"users/{mailbox}/events",
                "expirationDateTime": expires,
                "clientState": "cs",
            },
        ).json()
        client.get(f"/subscriptions/{sub['id']}")
        client.get("/subscriptions")
        client.patch(f"/subscriptions/{sub['id']}", json={"expirationDateTime": expires})
        created = create(
            client, mailbox, event_body("Ping", "2027-03-03T09:00:00", "2027-03-03T10:00:00")
        )
        notes = receiver.wait_for(1)
    batch = client.post(
        "/$batch",
        json={
            "requests": [
                {"id": "a", "method": "GET", "url": f"/users/{mailbox}/events/{created['id']}"},
                {"id": "b", "method": "GET", "url": f"/users/{mailbox}/events/AAMkAnone="},
                {
                    "id": "c",
                    "method": "GET",
                    "url": f"/users/{mailbox}/calendarView/delta?"
                    f"startDateTime={START}&endDateTime={END}",
                },
            ]
        },
    ).json()
    for response in batch["responses"]:
        url = {
            "a": "/users/x/events/1",
            "b": "/users/x/events/1",
            "c": "/users/x/calendarView/delta",
        }[response["id"]]
        captured.append(("GET", url, response["status"], response["body"]))

    problems: list[str] = []
    models_seen: set[str] = set()
    for method, path, status, payload in captured:
        if path == "/$batch":
            continue
        model = _model_for(method, path, status)
        models_seen.add(model.__name__)
        parsed = _parse(model, payload)
        problems += _unknown_properties(parsed, f"{method} {path} {status}")
    assert problems == []
    assert {
        "Event",
        "EventCollectionResponse",
        "DeltaGetResponse",
        "Calendar",
        "CalendarCollectionResponse",
        "Subscription",
        "SubscriptionCollectionResponse",
        "ODataError",
        "User",
    } <= models_seen
    for note in notes:
        assert set(note) <= NOTIFICATION_KEYS
        assert set(note["resourceData"]) <= RESOURCE_DATA_KEYS
