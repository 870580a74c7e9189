"""Google push notifications: ``events.watch`` channels on a calendar's events.

A channel tells Google to POST to our address whenever the calendar's events change; the POST
carries headers only (``X-Goog-Channel-ID``, ``X-Goog-Channel-Token``, ``X-Goog-Resource-ID``,
``X-Goog-Resource-State``: ``sync`` right after opening, then ``exists``). It says *that*
something changed, never what: the answer is an incremental sync of that calendar.

Anyone can POST those headers to a public address, so every notification is checked against
the channel's **token** — a random secret chosen when the channel was opened, compared in
constant time. Channels expire (Google's default is a week, at most about a month): they are
renewed — a new channel opened, the old one stopped — a while before they do.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from calbridge.errors import ProviderError
from calbridge.providers.google.provider import GoogleProvider

DEFAULT_TTL = timedelta(days=7)
RENEW_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Channel:
    """An open channel. ``expiration`` is naive UTC; ``token`` is the secret to verify."""

    id: str
    resource_id: str
    expiration: datetime
    token: str
    address: str


@dataclass(frozen=True)
class Notification:
    """The headers of one push notification (names are case-insensitive)."""

    channel_id: str | None
    token: str | None
    resource_id: str | None
    state: str | None
    message_number: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Notification:
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        number = lower.get("x-goog-message-number", "")
        return cls(
            channel_id=lower.get("x-goog-channel-id"),
            token=lower.get("x-goog-channel-token"),
            resource_id=lower.get("x-goog-resource-id"),
            state=lower.get("x-goog-resource-state"),
            message_number=int(number) if number.isdigit() else None,
        )


def token_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a channel without a token never matches."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def open_channel(
    provider: GoogleProvider, address: str, *, ttl: timedelta = DEFAULT_TTL
) -> Channel:
    """Open a channel on the calendar's events, delivering to ``address`` (HTTPS on Google)."""
    api = provider.api
    channel_id = "calbridge-" + uuid.uuid4().hex
    token = secrets.token_urlsafe(32)
    body = {
        "id": channel_id,
        "type": "web_hook",
        "address": address,
        "token": token,
        "params": {"ttl": str(int(ttl.total_seconds()))},
    }
    request = api.events.watch(calendarId=api.calendar_id, body=body)
    answer = api.call(request, "opening a notification channel", missing="calendar") or {}
    try:
        expires_ms = int(answer["expiration"])
        resource_id = str(answer["resourceId"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(
            f"{api.label}: Google's answer to events.watch lacks resourceId/expiration"
        ) from exc
    expiration = datetime.fromtimestamp(expires_ms / 1000, tz=UTC).replace(tzinfo=None)
    return Channel(channel_id, resource_id, expiration, token, address)


def stop_channel(provider: GoogleProvider, channel_id: str, resource_id: str) -> None:
    """Stop a channel; one Google no longer knows (expired, stopped) is fine."""
    api = provider.api
    request = api.service.channels().stop(body={"id": channel_id, "resourceId": resource_id})
    api.call(request, f"stopping notification channel {channel_id}", missing="none")


def needs_renewal(expiration: datetime, now: datetime, margin: timedelta = RENEW_MARGIN) -> bool:
    return expiration - now <= margin
