"""One exception hierarchy for every failure a person can act on.

Each subclass names a situation; its message says what happened, to which object and what to
do next. The CLI prints the message and exits non-zero: an expected failure never shows a
traceback.
"""

from __future__ import annotations


class CalbridgeError(Exception):
    """Base of every expected failure. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(CalbridgeError):
    """The stored or given configuration is unusable (missing default account, bad URL...)."""


class ValidationFailed(CalbridgeError):
    """Input was rejected before anything was written. ``problems`` lists every issue found."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class NotFound(CalbridgeError):
    """An id or name given by the user does not exist."""


class BadEmail(CalbridgeError):
    """An email address that cannot be an address (empty, no '@', spaces...)."""


class BadEvent(CalbridgeError):
    """Event data that the booking system will not store (end before start, unknown zone...)."""


class BadRemoteEvent(BadEvent):
    """A calendar event that cannot be imported; recorded as a rejection and skipped."""


class ProviderError(CalbridgeError):
    """A calendar server failed in a way that retrying later may fix. ``status`` is the HTTP
    status behind it when there was one (a 4xx about one object lets the sync go on)."""

    status: int | None = None


class ProviderAuthError(ProviderError):
    """Credentials were refused or revoked; a person must fix them."""


class RateLimited(ProviderError):
    """The server asked us to slow down (429, quota errors)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TokenExpired(ProviderError):
    """The provider forgot our sync token; a full resync is needed."""


class Conflict(ProviderError):
    """A conditional write failed (etag changed, or the object already exists)."""


class CalendarBusy(CalbridgeError):
    """Another process is syncing this calendar right now (``sync/locks.py``); try later."""


def credentials_hint(calendar: str, options: str) -> str:
    """The command that gives stored calendar ``calendar`` its credentials again, with its
    kind's credential ``options`` (e.g. ``--password-env VAR``)."""
    from shlex import quote

    name = quote(calendar)
    return f"give it its credentials again: `calbridge calendars update {name} {options}`"
