"""Listing bookings with booked locations costs the same number of SQL statements for 4 or 40
bookings (no query per booking): ``calbridge events list --json`` and ``GET /api/bookings``.
The counts themselves are printed by benchmarks/rooms_queries.py; here only that they do not
grow with N (behaviour, not timing)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from room_world import RoomWorld
from sqlalchemy import event
from sqlalchemy.engine import Engine

from calbridge.domain.event import make_times
from calbridge.ops.bookings import book_location
from calbridge.service.app import create_app
from calbridge.service.tokens import create_token
from calbridge.store.booked import PlaceRequest
from calbridge.store.events import ManualAssignment, create_event
from calbridge_cli import make_inprocess_cli


@contextlib.contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def add_bookings(world: RoomWorld, n: int, first: int = 0) -> None:
    """Bookings holding two rooms each; the first two clash in the Ballroom (doubles shown)."""
    start = datetime(2027, 7, 1, 8)
    with world.store.session() as s:
        for i in range(first, first + n):
            at = start + timedelta(days=i // 8, hours=i % 8 if i > 1 else 0)
            times = make_times(at, at + timedelta(hours=1), all_day=False, timezone="UTC")
            made = create_event(
                s, name=f"Booking {i}", times=times, location="loc-ballroom",
                manual=ManualAssignment("co-acme", "ct-ann", "u-tom", "u-tom"),
            )  # fmt: skip
            book_location(s, made.id, PlaceRequest("loc-garden", None), actor="test")


def test_events_list_and_the_api_listing_do_not_query_per_booking(
    world: RoomWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALBRIDGE_DATA_DIR", str(tmp_path / "data"))
    cli = make_inprocess_cli(tmp_path / "data", f"sqlite:///{tmp_path / 'calbridge.db'}")
    with world.store.session() as s:
        _, token = create_token(s, "t", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    counts: dict[str, list[int]] = {"cli": [], "api": []}
    with TestClient(create_app(world.store)) as client:
        client.get("/api/bookings", headers=headers)  # the token's first use is recorded
        for first, n in ((0, 4), (4, 36)):
            add_bookings(world, n, first)
            with statements() as seen:
                listed = cli("events", "list", "--json")
            assert listed.code == 0 and len(listed.json()) == first + n  # type: ignore[arg-type]
            counts["cli"].append(len(seen))
            with statements() as seen:
                page = client.get("/api/bookings", params={"limit": "200"}, headers=headers)
            assert len(page.json()["items"]) == first + n
            assert page.json()["items"][0]["double_bookings"]  # the clash is shown
            counts["api"].append(len(seen))
    assert counts["cli"][0] == counts["cli"][1], counts
    assert counts["api"][0] == counts["api"][1], counts
