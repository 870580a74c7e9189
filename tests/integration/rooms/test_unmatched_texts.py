"""Location texts that match no room, on a real CalDAV server (Radicale): the review groups them
(one row per text, compared case- and space-insensitively, with its count); a text added as a
room's alias gives its waiting bookings that room (and later arrivals); a text marked "not a
room" stops flagging them (and later arrivals), and can be unmarked; wrong requests are one-line
errors that change nothing — through the ops functions, the CLI and the admin UI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from room_world import RoomWorld
from sqlalchemy import select
from test_rooms_caldav import ORGANIZER, meeting

from calbridge.errors import NotFound, ValidationFailed
from calbridge.ops.bookings import BookingFilters, list_bookings, review_reasons
from calbridge.ops.location_texts import (
    alias_text,
    ignore_text,
    ignored_texts,
    unignore_text,
    unmatched_texts,
)
from calbridge.service.app import create_app
from calbridge.store.booked import booked_locations
from calbridge.store.models import Event, HistoryEntry
from calbridge.web.auth import create_admin
from calbridge_cli import make_inprocess_cli
from web_signin import csrf, sign_in

STAFF = "mia@harbour.example"  # Mia, linked to her contact: a booking with nothing to review
TEXTS = ["Zoom", "  zoom ", "Teams meeting", "Main hall", "Client's office", "ZOOM"]


def _arrive(world: RoomWorld, texts: list[str], prefix: str = "t") -> None:
    for n, text in enumerate(texts):
        hour = 8 + n
        world.put(
            "front",
            f"{prefix}{n}.ics",
            meeting(
                f"{prefix}{n}",
                location=text,
                start=f"20270601T{hour:02d}0000Z",
                end=f"20270601T{hour:02d}3000Z",
            ).replace(ORGANIZER, STAFF),  # a staff user: nothing else to review
        )
    world.sync("front")


def _rooms(world: RoomWorld) -> dict[str, list[tuple[str | None, str]]]:
    with world.store.session() as s:
        out = {}
        for event in s.scalars(select(Event).order_by(Event.id)):
            rows = booked_locations(s, event.id)
            out[rows[0].location_text or ""] = [(bl.location_id, bl.match) for bl in rows]
        return out


def test_unmatched_texts_are_grouped_with_their_counts(world: RoomWorld) -> None:
    world.add_calendar("front")
    _arrive(world, TEXTS)
    with world.store.session() as s:
        found = [(u.key, u.bookings) for u in unmatched_texts(s)]
        queue = list_bookings(s, BookingFilters(needs_review=True, texts_grouped=True)).items
        everything = list_bookings(s, BookingFilters(needs_review=True)).items
    assert found == [("zoom", 3), ("client's office", 1), ("main hall", 1), ("teams meeting", 1)]
    assert queue == []  # no booking is listed one by one for its text alone
    assert len(everything) == 6  # still findable as bookings needing review


def test_an_alias_matches_the_waiting_bookings_and_later_ones(world: RoomWorld) -> None:
    world.add_calendar("front")
    _arrive(world, TEXTS)
    with world.store.session() as s:
        ids = alias_text(s, " main   HALL ", "loc-ballroom", actor="admin@venue.example")
    assert len(ids) == 1
    assert _rooms(world)["Main hall"] == [("loc-ballroom", "text")]
    with world.store.session() as s:
        event = s.get(Event, ids[0])
        assert event is not None and review_reasons(s, event) == []
        history = s.scalars(
            select(HistoryEntry.details).where(HistoryEntry.subject_id == str(ids[0]))
        ).all()
        assert {"changes": {"room": ["main HALL", "Ballroom"]}} in history
        assert [u.key for u in unmatched_texts(s)] == ["zoom", "client's office", "teams meeting"]
    _arrive(world, ["MAIN hall"], prefix="later")
    assert _rooms(world)["MAIN hall"] == [("loc-ballroom", "text")]


def test_not_a_room_stops_flagging_now_and_later_and_can_be_undone(world: RoomWorld) -> None:
    world.add_calendar("front")
    _arrive(world, TEXTS)
    with world.store.session() as s:
        assert ignore_text(s, "zoom", actor="admin@venue.example") == 3
        assert [r["text"] for r in ignored_texts(s)] == ["zoom"]
    _arrive(world, ["zOOm"], prefix="later")
    rooms = _rooms(world)
    assert rooms["Zoom"] == rooms["zOOm"] == [(None, "not_room")]
    with world.store.session() as s:
        assert [u.key for u in unmatched_texts(s)] == [
            "client's office",
            "main hall",
            "teams meeting",
        ]
        later = s.scalars(select(Event).order_by(Event.id.desc())).first()
        assert later is not None and review_reasons(s, later) == []
        assert any("not a room" in t["outcome"] for t in later.trace or [])
        assert unignore_text(s, "ZOOM", actor="admin@venue.example") == 4
        assert unmatched_texts(s)[0].key == "zoom" and unmatched_texts(s)[0].bookings == 4


def test_wrong_requests_are_refused_and_change_nothing(world: RoomWorld) -> None:
    world.add_calendar("front")
    _arrive(world, ["Zoom"])
    with world.store.session() as s:
        with pytest.raises(ValidationFailed, match="already names location 'loc-garden'"):
            alias_text(s, "garden", "loc-ballroom", actor="a")
        with pytest.raises(NotFound, match="no location has id 'loc-nowhere'"):
            alias_text(s, "Zoom", "loc-nowhere", actor="a")
        with pytest.raises(ValidationFailed, match="is a name or alias of location"):
            ignore_text(s, "Grand  Ballroom", actor="a")
        with pytest.raises(ValidationFailed, match="is empty"):
            ignore_text(s, "   ", actor="a")
        with pytest.raises(ValidationFailed, match="is not marked not a room"):
            unignore_text(s, "Zoom", actor="a")
    with world.store.session() as s:
        assert [(u.key, u.bookings) for u in unmatched_texts(s)] == [("zoom", 1)]


def test_the_cli_lists_aliases_and_ignores_texts(world: RoomWorld, tmp_path: Path) -> None:
    world.add_calendar("front")
    _arrive(world, TEXTS)
    cli = make_inprocess_cli(tmp_path / "data", f"sqlite:///{tmp_path / 'calbridge.db'}")
    listed = cli("locations", "unmatched")
    assert listed.code == 0, listed.err
    assert listed.out.splitlines()[0] == "text\tbookings\tfor example"
    assert listed.out.splitlines()[1].lower().startswith("zoom\t3\t")
    ignored = cli("locations", "ignore", "Teams meeting", "--json")
    assert ignored.code == 0 and ignored.json() == {"ignored": "Teams meeting", "bookings": 1}
    aliased = cli("locations", "alias", "Main hall", "--room", "loc-garden")
    assert aliased.code == 0 and "1 booking(s) matched" in aliased.out
    refused = cli("locations", "ignore", "Garden")
    assert refused.code != 0 and refused.err.count("\n") == 1 and "Traceback" not in refused.err
    assert "loc-garden" in refused.err
    assert [u["key"] for u in cli("locations", "unmatched", "--json").json()] == [
        "zoom",
        "client's office",
    ]
    assert "Teams meeting" in cli("locations", "ignored").out


@pytest.fixture
def client(
    world: RoomWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("CALBRIDGE_DATA_DIR", str(tmp_path / "data"))
    with world.store.session() as s:
        create_admin(s, "admin@venue.example", "a-long-enough-password")
    with TestClient(create_app(world.store)) as client:
        sign_in(client, "admin@venue.example", "a-long-enough-password")
        yield client


def test_the_review_page_groups_texts_escaped_and_settles_them(
    world: RoomWorld, client: TestClient
) -> None:
    world.add_calendar("front")
    _arrive(world, ["<b>Zoom</b>", "<b>zoom</b>", "Main hall"])
    page = client.get("/review").text
    assert 'id="texts"' in page
    assert "&lt;b&gt;Zoom&lt;/b&gt;" in page and "<b>Zoom</b>" not in page
    assert page.count('action="/review/texts/ignore"') == 2
    assert "review-item" not in page  # no booking listed one by one for its text
    token = csrf(page)
    client.post("/review/texts/ignore", data={"csrf_token": token, "text": "<b>Zoom</b>"})
    answer = client.post(
        "/review/texts/alias",
        data={"csrf_token": token, "text": "Main hall", "room": "loc-board"},
    )
    assert answer.status_code == 200
    after = client.get("/review").text
    assert 'id="texts"' not in after and "Nothing to review." in after
    assert _rooms(world)["Main hall"] == [("loc-board", "text")]
    refused = client.post(
        "/review/texts/alias", data={"csrf_token": token, "text": "x", "room": "loc-nowhere"}
    )
    assert "no location has id" in refused.text


def test_the_dashboard_counts_what_the_review_page_shows(
    world: RoomWorld, client: TestClient
) -> None:
    """Bookings flagged only for a location text are grouped on the review page, so the
    dashboard counts them apart instead of announcing bookings the page does not list."""
    world.add_calendar("front")
    _arrive(world, TEXTS)
    page = client.get("/").text
    assert re.search(r'id="count-review">0<', page), page
    assert re.search(r'id="count-unmatched">6<', page)
    assert "bookings whose location matches no room" in page
    with world.store.session() as s:
        ignore_text(s, "zoom", actor="admin@venue.example")
    after = client.get("/").text
    assert re.search(r'id="count-unmatched">3<', after)
