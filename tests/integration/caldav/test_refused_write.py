"""A write the server refuses for one booking is recorded and the rest of the push goes on."""

from __future__ import annotations

from pathlib import Path

from calbridge.domain.event import make_times
from calbridge.store.events import ManualAssignment, create_event
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from worlds import example_store


def test_refused_write_is_counted_and_the_rest_is_pushed(proxied, proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    box = SecretBox(SecretBox.generate_key())
    with example_store(tmp_path) as store:
        with store.session() as session:
            calendar = add_caldav_calendar(
                session, box, "toms", proxied.url, "ann", "ann-secret", owner="u-tom", check=False
            )
            calendar.settings = {**calendar.settings, "retry": {"attempts": 2, "base": 0.001}}
            cal_id = calendar.id
            for day in (1, 2, 3):
                create_event(
                    session,
                    name=f"Meeting {day}",
                    times=make_times(
                        f"2027-05-0{day}T10:00",
                        f"2027-05-0{day}T11:00",
                        all_day=False,
                        timezone="Europe/Paris",
                    ),
                    manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
                )
        proxy.inject("400", method="PUT")  # the server refuses the first object it is sent

        first = sync_calendar(store, cal_id, lambda c: open_provider(c, box))
        assert first.ok, first.error
        assert (first.pushed_created, first.failed) == (2, 1)
        assert "400" in first.notes[0]

        second = sync_calendar(store, cal_id, lambda c: open_provider(c, box))
        assert (second.pushed_created, second.failed) == (1, 0)
