"""/api/bookings: create (by the rules or explicitly), get with the trace and link states,
update, cancel, reassign, accept; history with the token as actor; the calendars are asked to
follow; bad input is refused with nothing written."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from api_client import Api
from api_problem import problem

DAY = (date.today() + timedelta(days=90)).isoformat()


def booking(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Board dinner",
        "start": f"{DAY}T18:00:00",
        "end": f"{DAY}T21:00:00",
        "timezone": "Europe/Berlin",
        "booker": "ann.lee@acme.example",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def create(api: Api, **changes: Any) -> dict[str, Any]:
    response = api.post("/api/bookings", json=booking(**changes))
    assert response.status_code == 201, response.text
    return response.json()


def test_booker_is_assigned_by_the_rules_and_the_trace_is_returned(api: Api) -> None:
    data = create(api)
    assert data["client"] == {"id": "co-acme", "name": data["client"]["name"], "kind": "company"}
    assert data["client_contact"]["id"] == "ct-ann"
    assert data["booker_email"] == "ann.lee@acme.example"
    assert [step["step"] for step in data["trace"]][:1] == [1]
    assert all(step["rule"] and step["outcome"] for step in data["trace"])
    again = api.get(f"/api/bookings/{data['id']}").json()
    assert again["trace"] == data["trace"]


def test_times_carry_their_offset_and_the_iana_zone(api: Api) -> None:
    """Without a zone, times are the venue's (the example directory says Europe/London);
    with no venue zone either, they are floating."""
    winter = create(api, start="2027-01-15T09:00:00", end="2027-01-15T10:00:00")
    assert winter["start"] == "2027-01-15T09:00:00+01:00"
    assert winter["timezone"] == "Europe/Berlin" and winter["floating"] is False
    summer = create(api, start="2027-07-15T09:00:00+02:00", end="2027-07-15T10:00:00+02:00")
    assert summer["start"] == "2027-07-15T09:00:00+02:00"
    assert summer["created_at"].endswith("+00:00")
    all_day = create(api, start="2027-07-20", end="2027-07-21", all_day=True, timezone=None)
    assert (all_day["start"], all_day["end"], all_day["all_day"]) == (
        "2027-07-20",
        "2027-07-21",
        True,
    )
    venue = create(api, start="2027-07-15T09:00:00", end="2027-07-15T10:00:00", timezone=None)
    assert (venue["start"], venue["timezone"]) == ("2027-07-15T09:00:00+01:00", "Europe/London")
    cleared = api.patch("/api/settings", json={"venue_timezone": None})
    assert cleared.status_code == 200, cleared.text
    floating = create(api, timezone=None)
    assert floating["floating"] is True and "+" not in floating["start"]


def test_explicit_client_and_users(api: Api) -> None:
    data = create(
        api,
        booker=None,
        client="co-harbour",
        contact="ct-mia",
        booked_by="u-tom",
        event_manager="u-mia",
    )
    assert data["client"]["id"] == "co-harbour"
    assert data["booked_by"]["id"] == "u-tom" and data["event_manager"]["id"] == "u-mia"
    assert data["trace"][0]["rule"] == "Assigned explicitly"


def test_bad_input_is_refused_and_nothing_is_written(api: Api) -> None:
    before = api.count("events"), api.count("history")
    cases = [
        (booking(end=f"{DAY}T17:00:00"), 422, "before start"),
        (booking(timezone="Mars/Olympus"), 422, "unknown time zone"),
        (booking(start="next tuesday"), 422, "not an ISO date-time"),
        (booking(booker="not an address"), 422, ""),
        (booking(booker=None), 422, "give booker"),
        (booking(client="co-acme"), 422, "not both"),
        (booking(calendars=["no-such-calendar"]), 404, "no-such-calendar"),
        (
            booking(booker=None, client="co-nowhere", booked_by="u-tom", event_manager="u-tom"),
            404,
            "co-nowhere",
        ),
        (booking(notes="x" * (256 * 1024 + 1)), 422, "limit"),
        (booking(name="bad\x00name"), 422, "NUL"),
    ]
    for body, status, words in cases:
        detail = problem(api.post("/api/bookings", json=body), status)["detail"]
        assert words in detail, (body, detail)
    assert (api.count("events"), api.count("history")) == before


def test_request_shape_errors_point_at_the_field(api: Api) -> None:
    body = problem(api.post("/api/bookings", json=booking(colour="red", all_day="maybe")), 422)
    paths = {e["path"] for e in body["errors"]}
    assert {"$.colour", "$.all_day"} <= paths
    body = problem(api.get("/api/bookings?limit=0"), 422)
    assert body["errors"][0]["path"] == "query.limit"
    assert api.count("events") == 0


def test_unknown_booking_is_404(api: Api) -> None:
    assert "no event has id 999" in problem(api.get("/api/bookings/999"), 404)["detail"]
    problem(api.patch("/api/bookings/999", json={"name": "x"}), 404)
    problem(api.post("/api/bookings/999/cancel"), 404)


def test_a_booking_write_asks_its_calendars_to_follow(api: Api) -> None:
    api.add_calendar("sales")
    assert api.jobs.depth() == 0
    data = create(api, calendars=["sales"])
    assert api.jobs.depth() == 1
    assert [link["calendar"] for link in data["links"]] == ["sales"]
    assert data["links"][0]["state"] == "pending" and data["links"][0]["in_sync"] is False


def test_update_changes_fields_and_records_who_did_it(api: Api) -> None:
    data = create(api)
    response = api.patch(f"/api/bookings/{data['id']}", json={"location": "Room 2", "notes": None})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["location"] == "Room 2"
    assert changed["updated_at"] >= data["updated_at"]
    created, updated = changed["history"]
    assert (created["action"], created["actor"]) == ("created", "booking-site")
    assert updated["actor"] == "booking-site"
    assert updated["details"]["changes"] == {"location": [None, "Room 2"]}
    assert created["at"].endswith("+00:00")


def test_update_refuses_cancelling_nulls_and_assignment_fields(api: Api) -> None:
    data = create(api)
    url = f"/api/bookings/{data['id']}"
    problem(api.patch(url, json={"status": "cancelled"}), 422)
    problem(api.patch(url, json={"client": "co-harbour"}), 422)
    assert "cannot be null" in problem(api.patch(url, json={"name": None}), 422)["detail"]
    problem(api.patch(url, json={"end": "2000-01-01T00:00:00"}), 422)
    assert api.get(url).json()["history"][-1]["action"] == "created"


def test_cancel_keeps_the_booking(api: Api) -> None:
    data = create(api)
    cancelled = api.post(f"/api/bookings/{data['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["history"][-1]["details"]["changes"] == {"status": ["confirmed", "cancelled"]}
    assert api.get(f"/api/bookings/{data['id']}").json()["status"] == "cancelled"


def test_unknown_booker_goes_to_review_and_is_reassigned_to_a_chosen_contact(api: Api) -> None:
    data = create(api, booker="stranger@nowhere.example")
    assert data["client"]["id"] == "co-walkin"
    assert data["needs_review"] is True
    assert any("Default Account" in reason for reason in data["review_reasons"])
    response = api.post(f"/api/bookings/{data['id']}/reassign", json={"contact": "ct-ann"})
    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["client"]["id"] == "co-acme" and moved["client_contact"]["id"] == "ct-ann"
    last = moved["history"][-1]
    assert last["action"] == "reassigned" and last["actor"] == "booking-site"
    assert last["details"]["before"]["client"] == "co-walkin"
    assert last["details"]["after"]["client"] == "co-acme"
    assert moved["trace"][-1]["rule"] == "Re-assigned by hand"


def test_reassign_by_the_rules_and_refused_choices(api: Api) -> None:
    data = create(api, booker="stranger@nowhere.example")
    url = f"/api/bookings/{data['id']}/reassign"
    again = api.post(url, json={"booker": "mia@harbour.example"}).json()
    assert again["booked_by"]["id"] == "u-mia"
    assert again["booker_email"] == "mia@harbour.example"
    problem(api.post(url, json={"booked_by": "u-nobody"}), 404)
    problem(api.post(url, json={"booker": "x@y.example", "client": "co-acme"}), 422)
    assert api.get(f"/api/bookings/{data['id']}").json()["booked_by"]["id"] == "u-mia"


def test_accept_takes_a_booking_out_of_the_review_queue(api: Api) -> None:
    stranger = create(api, booker="stranger@nowhere.example")
    create(api, booker="mia@harbour.example")  # a staff user: nothing to review
    queue = api.get("/api/bookings?needs_review=true").json()["items"]
    assert [b["id"] for b in queue] == [stranger["id"]]
    accepted = api.post(f"/api/bookings/{stranger['id']}/accept").json()
    assert accepted["needs_review"] is False
    assert accepted["history"][-1]["action"] == "review_accepted"
    assert api.get("/api/bookings?needs_review=true").json()["items"] == []
    # a new assignment is reviewed on its own merits
    api.post(f"/api/bookings/{stranger['id']}/reassign", json={})
    assert len(api.get("/api/bookings?needs_review=true").json()["items"]) == 1
