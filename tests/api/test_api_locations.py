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


def _arrived_with(api: Api, *texts: str) -> list[int]:
    """Bookings as they arrive from a calendar whose location text matches no room."""
    from sqlalchemy import update

    from calbridge.store.models import BookedLocation

    ids = []
    for n, text in enumerate(texts):
        made = api.post(
            "/api/bookings",
            json={
                "name": f"Call {n}",
                "start": f"{DAY}T0{n}:00:00",
                "end": f"{DAY}T0{n}:30:00",
                "booker": "mia@harbour.example",
                "location": text,
            },
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    with api.store.session() as s:
        s.execute(
            update(BookedLocation).where(BookedLocation.event_id.in_(ids)).values(match="none")
        )
    return ids


def test_unmatched_texts_are_grouped_aliased_and_ignored_through_the_api(api: Api) -> None:
    zoom, other_zoom, hall = _arrived_with(api, "Zoom", "ZOOM ", "Main hall")
    found = api.get("/api/locations/unmatched", headers=api.reader).json()["items"]
    assert [(u["key"], u["bookings"]) for u in found] == [("zoom", 2), ("main hall", 1)]
    assert (
        api.post("/api/locations/ignored", json={"text": "zoom"}, headers=api.reader).status_code
        == 403
    )
    ignored = api.post("/api/locations/ignored", json={"text": "zoom"})
    assert ignored.status_code == 200 and ignored.json()["bookings"] == 2
    assert [i["text"] for i in api.get("/api/locations/ignored").json()["items"]] == ["zoom"]
    aliased = api.post("/api/locations/loc-garden/aliases", json={"text": "Main  hall"})
    assert aliased.status_code == 200, aliased.text
    assert aliased.json() == {"room": "loc-garden", "alias": "Main hall", "bookings": [hall]}
    booking = api.get(f"/api/bookings/{hall}").json()
    assert booking["booked_locations"][0]["location"]["id"] == "loc-garden"
    assert booking["needs_review"] is False
    assert "Main hall" in api.get("/api/locations").json()["items"][1]["aliases"]
    assert api.get("/api/locations/unmatched").json()["items"] == []
    clash = api.post("/api/locations/loc-ballroom/aliases", json={"text": "main hall"})
    assert clash.status_code in (400, 422) and "loc-garden" in clash.json()["detail"]
    missing = api.post("/api/locations/loc-nowhere/aliases", json={"text": "x"})
    assert missing.status_code == 404
    back = api.post("/api/locations/ignored/remove", json={"text": "Zoom"})
    assert back.status_code == 200 and back.json()["bookings"] == 2
    assert api.get(f"/api/bookings/{zoom}").json()["needs_review"] is True
    assert other_zoom != zoom
