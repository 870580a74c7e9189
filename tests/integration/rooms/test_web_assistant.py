"""The admin UI's calendar page: the "Export, filters and rooms" form shows a calendar's
assistant settings and saves them through the same checks as the CLI and the API (without a
browser: the real app on an in-process client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from room_world import RoomWorld

from calbridge.service.app import create_app
from calbridge.store.models import Calendar
from calbridge.web.auth import create_admin
from web_signin import csrf, sign_in

PASSWORD = "a-long-enough-password"


@pytest.fixture
def client(
    world: RoomWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("CALBRIDGE_DATA_DIR", str(tmp_path / "data"))
    with world.store.session() as s:
        create_admin(s, "admin@venue.example", PASSWORD)
    with TestClient(create_app(world.store)) as client:
        sign_in(client, "admin@venue.example", PASSWORD)
        yield client


def test_the_calendar_form_saves_export_filters_and_room(
    world: RoomWorld, client: TestClient
) -> None:
    world.add_calendar("feed", direction="push")
    with world.store.session() as s:
        calendar_id = s.query(Calendar.id).scalar()
    page = client.get(f"/calendars/{calendar_id}").text
    assert 'id="assistant-form"' in page and "Garden Room" in page
    form = {
        "csrf_token": csrf(page),
        "export": "days",
        "title_template": "<b>{event_name}</b>",
        "only_locations": "loc-ballroom, loc-garden",
        "room": "",
    }
    client.post(f"/calendars/{calendar_id}/assistant", data=form)
    with world.store.session() as s:
        calendar = s.get(Calendar, calendar_id)
        assert calendar is not None
        assert (calendar.export_mode, calendar.title_template) == ("days", "<b>{event_name}</b>")
        assert calendar.filters == {"locations": ["loc-ballroom", "loc-garden"]}
    shown = client.get(f"/calendars/{calendar_id}").text
    assert "&lt;b&gt;{event_name}&lt;/b&gt;" in shown and "<b>{event_name}</b>" not in shown
    refused = client.post(
        f"/calendars/{calendar_id}/assistant",
        data={**form, "csrf_token": csrf(shown), "only_locations": "loc-cellar"},
    )
    assert "no location has id" in refused.text
    with world.store.session() as s:
        assert s.get(Calendar, calendar_id).filters == {  # type: ignore[union-attr]
            "locations": ["loc-ballroom", "loc-garden"]
        }


def test_the_booking_page_lists_its_booked_locations(world: RoomWorld, client: TestClient) -> None:
    from calbridge.domain.event import make_times
    from calbridge.store.events import ManualAssignment, create_event

    with world.store.session() as s:
        times = make_times("2027-03-05T09:00", "2027-03-05T10:00", all_day=False, timezone="UTC")
        event = create_event(
            s,
            name="Gala",
            times=times,
            location="Ballroom",
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )
        event_id = event.id
    page = client.get(f"/bookings/{event_id}").text
    table = page.split('id="booked-locations"')[1].split("</table>")[0]
    assert "<td>Ballroom</td>" in table and "confirmed" in table
