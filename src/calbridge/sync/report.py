"""What one sync of one calendar did: the figures ``calbridge sync --json`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class SyncReport:
    calendar: str
    pulled: int = 0
    created: int = 0
    updated: int = 0
    cancelled: int = 0
    pushed_created: int = 0
    pushed_updated: int = 0
    pushed_deleted: int = 0
    removed: int = 0  # bookings taken off this calendar: they no longer match its filters
    conflicts: int = 0
    rejected: int = 0
    failed: int = 0  # writes the calendar refused for one booking; retried next run
    requests: int = 0
    full_resync: bool = False
    ok: bool = True
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # the error behind ``error`` (for the service to tell transient from auth failures)
    failure: BaseException | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "failure"}
        values["notes"] = list(self.notes)
        return values
