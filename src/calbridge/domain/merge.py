"""Field-level three-way merge of a booking and its calendar event (SPEC §3).

Inputs are snapshots (``EventFields.snapshot()`` dicts): the booking now, the calendar event now,
and the last-synced snapshot both sides agreed on. A field changed on one side only takes that
side's value; a field changed on both sides to different values is a *conflict*, decided by the
calendar's policy:

* ``booking-wins`` (the default): the booking system's value;
* ``calendar-wins``: the calendar's value;
* ``latest-wins``: the side modified last (booking ``updated_at`` vs the server's last-modified;
  a tie or an unknown time goes to the booking system).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from calbridge.domain.remote import MERGE_FIELDS

Policy = Literal["booking-wins", "calendar-wins", "latest-wins"]
POLICIES: tuple[Policy, ...] = ("booking-wins", "calendar-wins", "latest-wins")
Side = Literal["booking", "calendar"]


@dataclass(frozen=True)
class FieldConflict:
    field: str
    booking_value: Any
    calendar_value: Any
    winner: Side


@dataclass(frozen=True)
class MergeResult:
    merged: dict[str, Any]
    conflicts: tuple[FieldConflict, ...]
    booking_changed: bool  # merged differs from the booking: write it to the booking
    calendar_changed: bool  # merged differs from the calendar: write it to the calendar


def conflict_winner(
    policy: Policy, booking_updated: datetime | None, calendar_updated: datetime | None
) -> Side:
    if policy == "calendar-wins":
        return "calendar"
    if policy == "latest-wins" and booking_updated and calendar_updated:
        return "calendar" if calendar_updated > booking_updated else "booking"
    return "booking"


def merge(
    booking: dict[str, Any],
    calendar: dict[str, Any],
    base: dict[str, Any] | None,
    policy: Policy = "booking-wins",
    booking_updated: datetime | None = None,
    calendar_updated: datetime | None = None,
) -> MergeResult:
    """Merge field by field. With no base (never synced), every difference is a conflict."""
    merged: dict[str, Any] = {}
    conflicts: list[FieldConflict] = []
    for name in MERGE_FIELDS:
        b, c = booking.get(name), calendar.get(name)
        s = base.get(name) if base is not None else _MISSING
        if b == c or c == s:
            merged[name] = b
        elif b == s:
            merged[name] = c
        else:
            winner = conflict_winner(policy, booking_updated, calendar_updated)
            merged[name] = b if winner == "booking" else c
            conflicts.append(FieldConflict(name, b, c, winner))
    return MergeResult(
        merged=merged,
        conflicts=tuple(conflicts),
        booking_changed=any(merged[n] != booking.get(n) for n in MERGE_FIELDS),
        calendar_changed=any(merged[n] != calendar.get(n) for n in MERGE_FIELDS),
    )


_MISSING = object()
