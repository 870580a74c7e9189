"""A CalDAV full listing (a first sync, a full resync) reads the collection's token first and
the objects after it (``caldav.pull``): what changes on the calendar in between is read as it
is now, and the next sync, from that token, reads those objects again. Through the engine,
against Radicale: the replay changes nothing — no booking created twice, none updated, the
removal of an object that was never imported passed over — and nothing is lost."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from calbridge.providers.caldav.pull import Puller
from calbridge.store.models import Event
from caldav_samples import linked, meeting

if TYPE_CHECKING:
    from conftest import Calendar


def test_changes_between_a_full_listings_token_and_its_objects_replay_without_effect(
    calendar: Calendar, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("a", "b", "c"):
        calendar.put(f"{name}.ics", meeting(name, f"Meeting {name}"))
    query = Puller._query_all

    def meanwhile(self: Puller) -> Any:  # after the token, before the objects are read
        monkeypatch.setattr(Puller, "_query_all", query)
        calendar.put("a.ics", meeting("a", "Changed"))
        calendar.put("d.ics", meeting("d", "New"))
        calendar.server.delete(calendar.url + "c.ics")
        return query(self)

    monkeypatch.setattr(Puller, "_query_all", meanwhile)
    with linked(calendar.url, tmp_path) as front:
        first = front.sync()
        assert first.ok and (first.pulled, first.created) == (3, 3), first.error
        again = front.sync()  # from the token: a and d again, and c's removal
        assert again.ok, again.error
        assert (again.pulled, again.created, again.updated, again.cancelled) == (3, 0, 0, 0)
        with front.store.session() as session:
            stored = sorted(session.scalars(select(Event.name)))
        assert stored == ["Changed", "Meeting b", "New"]
        quiet = front.sync()
        assert quiet.ok and (quiet.pulled, quiet.created, quiet.updated) == (0, 0, 0)
