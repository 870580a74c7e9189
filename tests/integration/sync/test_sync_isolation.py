"""One calendar's outage is that calendar's error; the others still sync (Radicale)."""

from __future__ import annotations

from datetime import datetime

from calbridge.demo.seed import vevent
from calbridge.sync.calendars import add_caldav_calendar


def test_calendar_whose_server_is_down_is_reported_and_others_sync(world) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("front")
    start = datetime(2027, 3, 1, 9)
    world.put("front", "a.ics", vevent("a", "Still syncs", start, start.replace(hour=10)))
    with world.store.session() as session:
        add_caldav_calendar(
            session, world.box, "dead", "http://127.0.0.1:9/cal/", "x", "y", check=False
        )
    dead = world.sync("dead")
    assert not dead.ok and "127.0.0.1" in (dead.error or "")
    assert world.sync("front").created == 1
