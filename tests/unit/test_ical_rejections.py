"""Objects that must be rejections with a reason — never imported wrongly, never dropped
silently, never a hang or a logged traceback (issue 12 §1)."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from calbridge.domain.recurrence import MAX_STEPS, check_rule
from calbridge.domain.remote import RemoteItem, RemoteRef, RemoteRejection, Window
from calbridge.errors import BadRemoteEvent
from calbridge.providers.ical.parse import parse_item

WINDOW = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))
REF = RemoteRef("/cal/x.ics", '"1"')


def ics(*lines: str) -> str:
    body = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        "BEGIN:VEVENT",
        "UID:u1",
        "DTSTAMP:20270101T000000Z",
        "DTSTART:20270305T090000Z",
        "DTEND:20270305T100000Z",
        "SUMMARY:Board meeting",
        *lines,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(body) + "\r\n"


def rejected(data: str | bytes, caplog: pytest.LogCaptureFixture) -> str:
    """The rejection's reason; fails on an import, and on any logged traceback."""
    with caplog.at_level(logging.DEBUG, logger="calbridge"):
        parsed = parse_item(REF, data, WINDOW)
    assert isinstance(parsed, RemoteRejection), parsed
    assert parsed.reason
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged"
    return parsed.reason


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number from 1 up"),
        ("FREQ=DAILY;INTERVAL=-1", "INTERVAL must be a whole number from 1 up"),
        ("FREQ=WEEKLY;COUNT=0", "COUNT must be a whole number from 1 up"),
        ("FREQ=DAILY;UNTIL=20270301T000000Z", "ends (UNTIL) before the series starts"),
        ("FREQ=SOMETIMES", "FREQ must be one of"),
    ],
)
def test_a_malformed_recurrence_rule_is_a_rejection_without_a_logged_traceback(
    rule: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert reason in rejected(ics(f"RRULE:{rule}"), caplog)


@pytest.mark.parametrize(
    "rule",
    ["FREQ=SECONDLY;COUNT=100000000", "FREQ=MINUTELY", "FREQ=HOURLY;BYMINUTE=0,10,20,30,40,50"],
)
def test_a_rule_too_dense_for_the_window_is_refused_before_any_expansion(
    rule: str, caplog: pytest.LogCaptureFixture
) -> None:
    # "about N" is the up-front estimate; the expansion's own guards would say "more than" or
    # give the exact count, after walking through the series.
    assert "about" in rejected(ics(f"RRULE:{rule}"), caplog)
    with pytest.raises(BadRemoteEvent, match=r"too dense|about .* occurrences"):
        check_rule(rule, datetime(2027, 3, 5, 9), WINDOW)


@pytest.mark.parametrize(
    "rule", ["FREQ=MINUTELY;COUNT=30", "FREQ=DAILY", "FREQ=SECONDLY;UNTIL=20270305T090500Z"]
)
def test_a_short_or_sparse_rule_passes_the_up_front_check(rule: str) -> None:
    check_rule(rule, datetime(2027, 3, 5, 9), WINDOW, MAX_STEPS)
    parsed = parse_item(REF, ics(f"RRULE:{rule}"), WINDOW)
    assert isinstance(parsed, RemoteItem) and parsed.occurrences


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda text: text[: text.index("END:VCALENDAR") + 7], id="inside-END"),
        pytest.param(lambda text: text[: text.index("END:VCALENDAR")], id="before-END"),
        pytest.param(lambda text: text[: text.index("END:VEVENT") + 3], id="inside-VEVENT"),
    ],
)
def test_an_object_cut_short_is_a_rejection(cut, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    assert parse_item(REF, ics(), WINDOW) is not None  # the whole object imports
    reason = rejected(cut(ics()), caplog)
    assert "cut" in reason


def test_a_broken_line_fold_is_a_rejection_not_a_truncated_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = ics().replace(
        "SUMMARY:Board meeting", "SUMMARY:Board meeting with the whole\r\nexecutive team"
    )
    reason = rejected(broken, caplog)
    assert "line 10" in reason and "folded without its leading space" in reason
    good = ics().replace(
        "SUMMARY:Board meeting", "SUMMARY:Board meeting with the whole\r\n executive team"
    )
    parsed = parse_item(REF, good, WINDOW)
    assert isinstance(parsed, RemoteItem)
    assert parsed.occurrences[0].fields.name == "Board meeting with the wholeexecutive team"


def test_text_that_is_not_icalendar_is_a_rejection(caplog: pytest.LogCaptureFixture) -> None:
    assert "not valid iCalendar" in rejected("<html>Service Unavailable</html>", caplog)
    assert "cut short" in rejected("", caplog)
