"""The window-stamped sync token (Graph delta links, EWS sync states): a token together with the
window it was opened over."""

from __future__ import annotations

from datetime import datetime, timedelta

from calbridge.domain.remote import Window
from calbridge.providers.window_token import WINDOW_DRIFT, DeltaToken

OPENED = Window(datetime(2026, 12, 2, 3, 4, 5, 678), datetime(2027, 4, 1, 3, 4, 5, 678))
LINK = "https://graph.example/v1.0/users/a@b/calendar/calendarView/delta?$deltatoken=x|y:z"


def test_token_round_trips_its_window_to_the_second_and_its_link_exactly() -> None:
    token = DeltaToken.parse(str(DeltaToken(OPENED, LINK)))
    assert token is not None and token.link == LINK
    assert token.window == Window(datetime(2026, 12, 2, 3, 4, 5), datetime(2027, 4, 1, 3, 4, 5))


def test_bare_delta_link_or_a_garbled_window_records_no_window() -> None:
    assert DeltaToken.parse(LINK) is None
    assert DeltaToken.parse("w:20261202T030405|" + LINK) is None
    assert DeltaToken.parse("w:2026-12-02:2027-04-01|" + LINK) is None


def test_link_serves_a_window_that_moved_less_than_the_drift_either_way() -> None:
    token = DeltaToken(Window(datetime(2026, 12, 2), datetime(2027, 4, 1)), LINK)
    for days in (0, 14, -14):
        shift = timedelta(days=days)
        assert token.serves(Window(token.window.start + shift, token.window.end + shift))
    late = WINDOW_DRIFT + timedelta(seconds=1)
    assert not token.serves(Window(token.window.start + late, token.window.end + late))
    assert not token.serves(Window(token.window.start - late, token.window.end - late))
    assert token.serves(Window(token.window.start, token.window.end - timedelta(days=200)))
