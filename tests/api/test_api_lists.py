"""Lists: cursor pagination visits every row once in order, filters narrow the bookings, and
conflicts / rejections / history page the same way."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from api_client import Api
from api_problem import problem

from calbridge.store.models import ConflictRecord, Rejection

BASE = date.today() + timedelta(days=30)


def make(api: Api, day: int, **extra: object) -> int:
    start = BASE + timedelta(days=day)
    body = {
        "name": f"Event {day:02d}",
        "start": f"{start}T10:00:00",
        "end": f"{start}T11:00:00",
        "timezone": "UTC",
        "booker": "ann.lee@acme.example",
        **extra,
    }
    response = api.post("/api/bookings", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_cursor_pagination_visits_every_booking_once_in_start_order(api: Api) -> None:
    ids = [make(api, day) for day in (5, 1, 3, 3, 2, 4, 0)]
    seen, url, pages = [], "/api/bookings?limit=3", 0
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [(b["start"], b["id"]) for b in body["items"]]
        pages += 1
        if body["next_cursor"]:
            assert 'rel="next"' in response.headers["link"]
            url = f"/api/bookings?limit=3&cursor={body['next_cursor']}"
        else:
            assert "link" not in response.headers
            url = ""
    assert pages == 3
    assert sorted(i for _, i in seen) == sorted(ids)
    assert seen == sorted(seen)


def test_a_cursor_from_elsewhere_is_refused(api: Api) -> None:
    make(api, 1)
    for cursor in ("garbage", "WyJydW5zIiwxXQ"):  # the second is a /api/runs cursor
        body = problem(api.get(f"/api/bookings?cursor={cursor}"), 400)
        assert body["errors"][0]["path"] == "query.cursor"


def test_filters_narrow_the_list(api: Api) -> None:
    api.add_calendar("sales")
    first = make(api, 1, calendars=["sales"])
    second = make(api, 2, booker="mia@harbour.example", status="tentative")
    third = make(api, 3)
    api.post(f"/api/bookings/{third}/cancel")

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/bookings?{query}")
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["items"]]

    assert ids("calendar=sales") == [first]
    assert ids("status=tentative") == [second]
    assert ids("status=cancelled") == [third]
    assert ids("client=co-acme") == [first, third]
    assert ids("client=ct-ann") == [first, third]
    day2 = BASE + timedelta(days=2)
    assert ids(f"start_from={day2}T00:00:00%2B00:00&start_to={day2}T23:59:00Z") == [second]
    assert ids(f"start_from={BASE + timedelta(days=2)}") == [second, third]
    assert ids("q=event 0") == [first, second, third]
    problem(api.get("/api/bookings?calendar=nope"), 404)
    detail = problem(api.get(f"/api/bookings?start_from={day2}T10:00:00"), 422)["detail"]
    assert "no offset" in detail
    problem(api.get("/api/bookings?status=lost"), 422)


def test_conflicts_rejections_and_history_are_paginated_newest_first(api: Api) -> None:
    calendar_id = api.add_calendar("sales")
    event_id = make(api, 1)
    at = datetime(2027, 1, 1, 12, 0)
    with api.store.session() as s:
        for i in range(5):
            s.add(
                ConflictRecord(
                    calendar_id=calendar_id,
                    event_id=event_id,
                    field="location",
                    booking_value=f"Room {i}",
                    calendar_value="Hall",
                    winner="booking",
                    policy="booking-wins",
                    at=at,
                )
            )
            s.add(
                Rejection(
                    calendar_id=calendar_id,
                    remote_id=f"r{i}.ics",
                    uid=f"u{i}",
                    reason="end before start",
                    at=at,
                )
            )
    for path in ("/api/conflicts", "/api/rejections"):
        first = api.get(f"{path}?limit=3").json()
        rest = api.get(f"{path}?limit=3&cursor={first['next_cursor']}").json()
        ids = [row["id"] for row in first["items"] + rest["items"]]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
        assert rest["next_cursor"] is None
        assert first["items"][0]["calendar"] == "sales"
        assert first["items"][0]["at"] == "2027-01-01T12:00:00+00:00"
        assert api.get(f"{path}?calendar=sales").json()["items"]
        problem(api.get(f"{path}?calendar=nope"), 404)
    history = api.get("/api/history?subject=booking").json()["items"]
    assert [(h["action"], h["actor"]) for h in history] == [("created", "booking-site")]
    assert problem(api.get("/api/runs?since=yesterday"), 422)
    assert api.get("/api/runs?calendar=sales").json() == {"items": [], "next_cursor": None}
