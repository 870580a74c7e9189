"""A sync token stamped with the window it was opened over, for the APIs whose listing is fixed
to a window when it starts: Graph's ``@odata.deltaLink`` and EWS's ``SyncFolderItems`` state
(whose series are expanded over that window).

Graph fixes a delta link's ``startDateTime``/``endDateTime`` when the first (full) round asks
for them, and keeps them for the link's whole life. The engine's window moves on with the clock,
so a link kept forever would never bring the events and occurrences that come into range as
time passes. The token therefore records the window the link was opened over
(``w:<start>:<end>|<deltaLink>``, naive UTC), and a link whose window no longer serves the
engine's — either end more than :data:`WINDOW_DRIFT` behind — is treated as expired: the
engine resyncs in full over its current window, which picks up what came into range without
duplicates. A token without a window (stored by an earlier version) is expired the same way,
once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from calbridge.domain.remote import Window

WINDOW_DRIFT = timedelta(days=14)
_TAG = "w:"
_STAMP = "%Y%m%dT%H%M%S"


@dataclass(frozen=True)
class DeltaToken:
    window: Window
    link: str

    def __str__(self) -> str:
        start, end = (_naive(m).strftime(_STAMP) for m in (self.window.start, self.window.end))
        return f"{_TAG}{start}:{end}|{self.link}"

    @classmethod
    def parse(cls, token: str) -> DeltaToken | None:
        """The token as stored, or None when it does not record its window."""
        head, bar, link = token.partition("|")
        if not head.startswith(_TAG) or not bar:
            return None
        try:
            start, end = (datetime.strptime(part, _STAMP) for part in head[len(_TAG) :].split(":"))
        except ValueError:
            return None
        return cls(Window(start, end), link)

    def serves(self, window: Window) -> bool:
        """Whether this link still covers ``window``, give or take :data:`WINDOW_DRIFT`."""
        return (
            _naive(window.end) <= self.window.end + WINDOW_DRIFT
            and _naive(window.start) >= self.window.start - WINDOW_DRIFT
        )


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None, microsecond=0)
