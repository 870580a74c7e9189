"""/api/locations and booked locations through the API: rooms listed, a booking made with two
rooms, one more booked and one cancelled, and a double booking flagged on both bookings."""

from __future__ import annotations

from datetime import date, timedelta

from api_client import Api

DAY = (date.today() + timedelta(days=90)).isoformat()


def test_rooms_are_listed(api: Api) -> None:
    items = api.get("/api/locations", headers=api.reader).json()["items"]
    assert [i["id"] for i in items] == ["loc-ballroom", "loc-garden", "loc-board"]
    assert items[0]["aliases"] == ["Grand Ballroom"]


def test_booked_locations_and_double_bookings_through_the_api(api: Api) -> None:
    gala = api.post(
        "/api/bookings",
        json={
            "name": "Gala",
            "start": f"{DAY}T18:00:00",
            "end": f"{DAY}T23:00:00",
            "booker": "ann.lee@acme.example",
            "locations": [
                {"location": "loc-ballroom"},
                {"location": "Garden", "start": f"{DAY}T17:00:00", "end": f"{DAY}T18:30:00"},
            ],
        },
    )
    assert gala.status_code == 201, gala.text
    data = gala.json()
    assert [b["location"]["id"] for b in data["booked_locations"]] == ["loc-ballroom", "loc-garden"]
    assert data["booked_locations"][1]["start"].startswith(f"{DAY}T17:00:00")
    talk = api.post(
        "/api/bookings",
        json={
            "name": "Talk",
            "start": f"{DAY}T09:00:00",
            "end": f"{DAY}T10:00:00",
            "booker": "ann.lee@acme.example",
        },
    ).json()
    clash = api.post(
        f"/api/bookings/{talk['id']}/locations",
        json={"location": "Ballroom", "start": f"{DAY}T20:00:00", "end": f"{DAY}T21:00:00"},
    )
    assert clash.status_code == 201, clash.text
    assert clash.json()["needs_review"] is True
    assert clash.json()["double_bookings"][0]["other_event"]["id"] == data["id"]
    found = api.get("/api/locations/double-bookings").json()["items"]
    assert {d["event"] for d in found} == {data["id"], talk["id"]}
    booked = clash.json()["booked_locations"][-1]["id"]
    freed = api.post(f"/api/bookings/{talk['id']}/locations/{booked}/cancel").json()
    assert freed["status"] == "confirmed" and freed["double_bookings"] == []
    assert api.get("/api/locations/double-bookings").json()["items"] == []
