"""EWS recurrence patterns as RRULEs, occurrence positions (InstanceIndex), and zones: the
mapping rules of ``providers/ews/mapping.py`` on exchangelib's own objects."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace

import pytest
from exchangelib import EWSTimeZone
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    Recurrence,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)

from calbridge.errors import BadEvent
from calbridge.providers.ews.mapping import MasterInfo, item_zone, rule_of


def _item(pattern: object, boundary: object) -> SimpleNamespace:
    return SimpleNamespace(recurrence=Recurrence(pattern=pattern, boundary=boundary))


START = date(2027, 3, 1)


@pytest.mark.parametrize(
    ("pattern", "boundary", "rule"),
    [
        (DailyPattern(interval=2), NoEndPattern(start=START), "FREQ=DAILY;INTERVAL=2"),
        (
            WeeklyPattern(interval=1, weekdays=[1, 3], first_day_of_week=1),
            NumberedPattern(start=START, number=6),
            "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE;WKST=MO;COUNT=6",
        ),
        (
            AbsoluteMonthlyPattern(interval=1, day_of_month=15),
            EndDatePattern(start=START, end=date(2027, 12, 31)),
            "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=15;UNTIL=20271231T235959",
        ),
        (
            RelativeMonthlyPattern(interval=1, weekday=2, week_number=5),
            NoEndPattern(start=START),
            "FREQ=MONTHLY;INTERVAL=1;BYDAY=-1TU",
        ),
        (
            RelativeMonthlyPattern(interval=3, weekday=9, week_number=1),
            NoEndPattern(start=START),
            "FREQ=MONTHLY;INTERVAL=3;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1",
        ),
        (
            AbsoluteYearlyPattern(day_of_month=4, month=7),
            NoEndPattern(start=START),
            "FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=4",
        ),
        (
            RelativeYearlyPattern(weekday=4, week_number=4, month=11),
            NoEndPattern(start=START),
            "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
        ),
    ],
)
def test_ews_patterns_become_the_equivalent_rrule(
    pattern: object, boundary: object, rule: str
) -> None:
    assert rule_of(_item(pattern, boundary), all_day=False) == rule


def test_all_day_series_end_on_a_date() -> None:
    item = _item(DailyPattern(interval=1), EndDatePattern(start=START, end=date(2027, 3, 9)))
    assert rule_of(item, all_day=True) == "FREQ=DAILY;INTERVAL=1;UNTIL=20270309"


def test_instance_index_counts_the_pattern_from_the_first_occurrence() -> None:
    info = MasterInfo(
        "Europe/Berlin", False, datetime(2027, 3, 1, 9), "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"
    )
    assert info.instance_index("20270301T080000Z") == 1
    assert info.instance_index("20270303T080000Z") == 2
    assert info.instance_index("20270329T070000Z") is None  # past COUNT
    assert info.instance_index("20270302T080000Z") is None  # not an occurrence
    summer = MasterInfo("Europe/Berlin", False, datetime(2027, 3, 22, 9), "FREQ=WEEKLY")
    assert summer.instance_index("20270329T070000Z") == 2  # 09:00 CEST is 07:00 UTC


def test_zone_comes_from_the_windows_id_or_our_own_property() -> None:
    berlin = SimpleNamespace(_start_timezone=EWSTimeZone("Europe/Berlin"), calbridge_zone=None)
    assert item_zone(berlin) == "Europe/Berlin"
    ours = SimpleNamespace(
        _start_timezone=EWSTimeZone("Europe/Berlin"), calbridge_zone="Europe/Amsterdam"
    )
    assert item_zone(ours) == "Europe/Amsterdam"  # same Windows zone: the booking's own
    moved = SimpleNamespace(
        _start_timezone=EWSTimeZone("Asia/Tokyo"), calbridge_zone="Europe/Amsterdam"
    )
    assert item_zone(moved) == "Asia/Tokyo"  # re-zoned in Outlook: Exchange's wins
    unknown = SimpleNamespace(
        _start_timezone=SimpleNamespace(ms_id="Mars Standard Time"), calbridge_zone=None
    )
    with pytest.raises(BadEvent, match="Mars Standard Time"):
        item_zone(unknown)
