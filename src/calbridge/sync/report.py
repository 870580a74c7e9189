"""What one sync of one calendar did: the figures ``calbridge sync --json`` prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    conflicts: int = 0
    rejected: int = 0
    failed: int = 0  # writes the calendar refused for one booking; retried next run
    requests: int = 0
    full_resync: bool = False
    ok: bool = True
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
