"""Graph change notifications (webhooks) for one calendar: subscriptions and their checks.

Graph POSTs to our ``notificationUrl`` when the calendar changes. Before it creates (and
sometimes renews) a subscription it checks the URL with ``?validationToken=...``: the service
must answer 200 with the token as ``text/plain`` within 10 seconds
(:func:`validation_response`). A notification proves nothing by itself — anyone can POST to a
public URL — so each subscription gets a random ``clientState`` that Graph repeats in every
notification; :func:`handle_notification` rejects any notification that does not carry it.

Subscriptions to Outlook events expire after at most 10,080 minutes; :class:`Subscriptions`
creates them for three days and renews them when less than a day is left.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

from calbridge.errors import CalbridgeError, ProviderAuthError
from calbridge.providers.graph.provider import GraphProvider

MAX_LIFETIME = timedelta(minutes=10080)
LIFETIME = timedelta(days=3)
RENEW_BEFORE = timedelta(days=1)
CHANGE_TYPES = "created,updated,deleted"
MAX_VALIDATION_TOKEN = 4096


class NotificationRejected(ProviderAuthError):
    """A notification that did not come from our subscription (wrong or missing clientState,
    unknown subscription, malformed payload). Answer it 2xx and do nothing."""


class SubscriptionGone(CalbridgeError):
    """Graph no longer knows the subscription (expired or removed): create a new one."""


@dataclass(frozen=True)
class Subscription:
    id: str
    expires: datetime  # naive UTC
    notification_url: str
    resource: str
    lifecycle_url: str = ""

    def due(self, now: datetime, before: timedelta = RENEW_BEFORE) -> bool:
        """True when it should be renewed (less than ``before`` left)."""
        return self.expires - now <= before

    def as_settings(self) -> dict[str, str]:
        return {
            "id": self.id,
            "expires": self.expires.isoformat(),
            "notification_url": self.notification_url,
            "resource": self.resource,
            "lifecycle_url": self.lifecycle_url,
        }

    @staticmethod
    def from_settings(data: Mapping[str, Any]) -> Subscription:
        return Subscription(
            str(data["id"]),
            datetime.fromisoformat(str(data["expires"])),
            str(data.get("notification_url") or ""),
            str(data.get("resource") or ""),
            str(data.get("lifecycle_url") or ""),
        )


def new_client_state() -> str:
    """A secret the notifications must repeat (Graph allows up to 128 characters)."""
    return secrets.token_urlsafe(48)


class Subscriptions:
    """Create, renew and delete the subscription of one provider's calendar."""

    def __init__(self, provider: GraphProvider, lifetime: timedelta = LIFETIME) -> None:
        self.provider = provider
        self.lifetime = min(lifetime, MAX_LIFETIME)

    @property
    def resource(self) -> str:
        return self.provider.base.lstrip("/") + "/events"

    def create(
        self,
        notification_url: str,
        client_state: str,
        now: datetime | None = None,
        lifecycle_url: str | None = None,
    ) -> Subscription:
        """Graph validates ``notification_url`` (and ``lifecycle_url``: where it sends
        ``reauthorizationRequired``, ``subscriptionRemoved`` and ``missed``) before answering."""
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": notification_url,
            "resource": self.resource,
            "expirationDateTime": _expiry(now, self.lifetime),
            "clientState": client_state,
            "latestSupportedTlsVersion": "v1_2",
        }
        if lifecycle_url:
            body["lifecycleNotificationUrl"] = lifecycle_url
        http = self.provider.http
        response = http.send("POST", "/subscriptions", json=body)
        if response.status_code != 201:
            http.fail(response, f"subscribing to changes (notifications to {notification_url})")
        return _subscription(response.json(), notification_url, lifecycle_url or "")

    def renew(self, subscription: Subscription, now: datetime | None = None) -> Subscription:
        http = self.provider.http
        response = http.send(
            "PATCH",
            f"/subscriptions/{quote(subscription.id)}",
            json={"expirationDateTime": _expiry(now, self.lifetime)},
        )
        if response.status_code == 404:
            raise SubscriptionGone(
                f"{self.provider.label}: the subscription expired or was removed"
            )
        if response.status_code != 200:
            http.fail(response, "renewing the change subscription")
        return _subscription(
            response.json(), subscription.notification_url, subscription.lifecycle_url
        )

    def delete(self, subscription_id: str) -> None:
        http = self.provider.http
        response = http.send("DELETE", f"/subscriptions/{quote(subscription_id)}")
        if response.status_code not in (200, 204, 404):
            http.fail(response, "deleting the change subscription")


def _expiry(now: datetime | None, lifetime: timedelta = LIFETIME) -> str:
    moment = (now or datetime.now(UTC).replace(tzinfo=None)) + lifetime
    return moment.replace(microsecond=0).isoformat() + "Z"


def _subscription(
    raw: Mapping[str, Any], notification_url: str, lifecycle_url: str = ""
) -> Subscription:
    expires = str(raw["expirationDateTime"]).rstrip("Z")
    moment = datetime.fromisoformat(expires[:26] if "." in expires else expires)
    resource = str(raw.get("resource") or "")
    return Subscription(str(raw["id"]), moment, notification_url, resource, lifecycle_url)


# ------------------------------------------------------------------ the service's side


@dataclass(frozen=True)
class ValidationAnswer:
    """What to answer Graph's validation request: status, body and content type."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


def validation_response(query: Mapping[str, str] | str) -> ValidationAnswer | None:
    """The answer to a validation request, or None when ``query`` (the decoded query
    parameters, or the raw query string) is not one. The token goes back as plain text, exactly
    as received: never as HTML, so it cannot be used to inject a page."""
    if isinstance(query, str):
        parsed = parse_qs(query.lstrip("?"), keep_blank_values=True)
        params = {key: values[0] for key, values in parsed.items() if values}
    else:
        params = dict(query)
    token = params.get("validationToken")
    if token is None:
        return None
    if len(token) > MAX_VALIDATION_TOKEN:
        return ValidationAnswer(400, "validationToken is too long")
    return ValidationAnswer(200, token)


@dataclass(frozen=True)
class Notification:
    """One verified change notification."""

    subscription_id: str
    change_type: str
    resource: str
    event_id: str | None
    lifecycle_event: str | None = None


def notifications_of(payload: Mapping[str, Any] | Any) -> list[Mapping[str, Any]]:
    """The entries of a notification POST body (``{"value": [...]}``); raises if malformed."""
    entries = payload.get("value") if isinstance(payload, Mapping) else None
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise NotificationRejected("the notification is not a Graph change notification")
    return entries


def handle_notification(
    payload: Mapping[str, Any] | Any, expected_client_state: str
) -> list[Notification]:
    """Verify every entry of ``payload`` against our ``clientState`` (constant-time) and return
    them; one forged entry rejects the whole POST."""
    out: list[Notification] = []
    for entry in notifications_of(payload):
        state = entry.get("clientState")
        if not isinstance(state, str) or not hmac.compare_digest(
            state.encode(), expected_client_state.encode()
        ):
            raise NotificationRejected(
                f"a notification for subscription '{str(entry.get('subscriptionId'))[:60]}' "
                "carries a wrong clientState: it did not come from our subscription; ignored"
            )
        data = entry.get("resourceData")
        event_id = data.get("id") if isinstance(data, Mapping) else None
        out.append(
            Notification(
                subscription_id=str(entry.get("subscriptionId") or ""),
                change_type=str(entry.get("changeType") or ""),
                resource=str(entry.get("resource") or ""),
                event_id=str(event_id) if event_id else None,
                lifecycle_event=str(entry["lifecycleEvent"])
                if entry.get("lifecycleEvent")
                else None,
            )
        )
    return out
