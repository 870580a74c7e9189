"""The quick path of ``calbridge sync`` (``calbridge.sync.quick``) on every CalDAV server: a
calendar left quiet by the engine is finished with one REPORT and no engine, and a change on
the calendar is handed to the engine with the listing already made (no second REPORT)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from contract_world import UNKNOWN_TOKENS, World

from calbridge.config import Settings
from calbridge.demo.seed import vevent
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.quick import Handover, QuickSync
from calbridge.sync.report import SyncReport


def _soon(day: int, hour: int) -> datetime:
    """A time ``day`` days after a date 20 days from today: the quick path syncs with the
    real clock, so its window is around today."""
    base = date.today() + timedelta(days=20 + day)
    return datetime(base.year, base.month, base.day, hour)


def test_a_quiet_calendar_takes_one_request_and_a_change_goes_to_the_engine_once_listed(
    world: World, tmp_path: Path
) -> None:
    world.add_calendar("front")
    world.put("front", "a.ics", vevent("a", "Acme offsite", _soon(0, 9), _soon(0, 17)))
    cal_id = world.calendar_id("front")
    imported = sync_calendar(world.store, cal_id, lambda c: open_provider(c, world.box))
    assert (imported.ok, imported.created) == (True, 1), imported.error
    database = world.store.engine.url.database
    assert database is not None
    quick = QuickSync(Path(database), Settings(data_dir=tmp_path), box=world.box)
    token = world.token("front")

    [target] = quick.targets(["front"]) or []
    quiet = quick.start(target)
    assert isinstance(quiet, SyncReport), quiet
    assert (quiet.ok, quiet.requests, quiet.pulled) == (True, 1, 0)
    assert world.token("front") is not None and token is not None

    world.put("front", "b.ics", vevent("b", "Board dinner", _soon(1, 19), _soon(1, 22)))
    [target] = quick.targets(["front"]) or []
    handover = quick.start(target)
    assert isinstance(handover, Handover), handover
    report = sync_calendar(
        world.store, cal_id, lambda c: handover.provider, handover.now, None, handover
    )
    assert (report.ok, report.created, report.updated) == (True, 1, 0), report.error
    assert report.requests == 2  # the REPORT the quick path made, and one multiget
    assert sorted(e.name for e in world.events()) == ["Acme offsite", "Board dinner"]


def test_a_token_the_server_no_longer_knows_is_resynced_in_full_by_the_engine(
    world: World, server_kind: str, tmp_path: Path
) -> None:
    """The quick path's REPORT is refused (the token is unknown): the engine takes over and
    lists everything again, without duplicates and with the deletion made meanwhile. (DAViCal
    answers an unknown token with every member instead: nothing is duplicated there either.)"""
    world.add_calendar("front")
    for i in range(3):
        world.put("front", f"e{i}.ics", vevent(f"e{i}", f"Event {i}", _soon(i, 9), _soon(i, 10)))
    cal_id = world.calendar_id("front")
    assert sync_calendar(world.store, cal_id, lambda c: open_provider(c, world.box)).ok
    world.set_token("front", UNKNOWN_TOKENS[server_kind])
    world.delete("front", "e0.ics")
    database = world.store.engine.url.database
    assert database is not None
    quick = QuickSync(Path(database), Settings(data_dir=tmp_path), box=world.box)
    [target] = quick.targets([]) or []
    handover = quick.start(target)
    assert isinstance(handover, Handover), handover
    report = sync_calendar(
        world.store, cal_id, lambda c: handover.provider, handover.now, None, handover
    )
    assert report.ok and report.created == 0, report.error
    assert len(world.events()) == 3
    if server_kind != "davical":
        assert report.full_resync and report.cancelled == 1


def test_a_calendar_re_pointed_before_the_engine_locked_it_is_read_from_its_new_address(
    world: World, tmp_path: Path
) -> None:
    """The listing the quick path started belongs to the settings it read: when the calendar
    was pointed elsewhere meanwhile, the engine drops it and reads the new address."""
    from calbridge.store.models import Calendar

    old = world.add_calendar("front")
    new = world.add_calendar("other")
    world.put("front", "a.ics", vevent("a", "Old address event", _soon(0, 9), _soon(0, 10)))
    world.put("other", "b.ics", vevent("b", "New address event", _soon(1, 9), _soon(1, 10)))
    cal_id = world.calendar_id("front")
    database = world.store.engine.url.database
    assert database is not None
    quick = QuickSync(Path(database), Settings(data_dir=tmp_path), box=world.box)
    [target] = quick.targets(["front"]) or []
    handover = quick.start(target)
    assert isinstance(handover, Handover) and handover.provider.url == old.url
    with world.store.session() as session:
        calendar = session.get(Calendar, cal_id)
        assert calendar is not None
        calendar.settings = {**calendar.settings, "url": new.url}

    def provider(calendar: Calendar) -> object:
        return handover.provider_for(calendar.settings, calendar.secret) or open_provider(
            calendar, world.box
        )

    report = sync_calendar(world.store, cal_id, provider, handover.now, None, handover)
    assert report.ok, report.error
    assert [e.name for e in world.events()] == ["New address event"]
