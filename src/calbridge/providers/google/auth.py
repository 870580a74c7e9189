"""Google credentials and the HTTP transport under ``google-api-python-client``.

Two ways to connect a calendar (issue 5):

* a **service account** with domain-wide delegation, acting as ``subject`` (how a venue connects
  every staff calendar): the key file is stored sealed in ``Calendar.secret``;
* an **OAuth installed-app client** (how a single person connects): the client's id/secret and,
  once ``calbridge calendars auth NAME`` ran the consent flow
  (:mod:`~calbridge.providers.google.consent`), the refresh token, all sealed.

:class:`CountingHttp` is the one ``httplib2.Http`` every request goes through — API calls,
batch envelopes and token requests alike. It counts them (``requests`` in sync reports and
benchmarks) and retries what is worth retrying with the shared :class:`RetryPolicy`: 5xx, 429,
403 ``rateLimitExceeded``/``userRateLimitExceeded`` and connection failures, with exponential
backoff and jitter, honouring ``Retry-After``. Every request calbridge sends to Google is
idempotent on its own (inserts carry a client-chosen id, updates and deletes an ``If-Match``
etag), so repeating one whose answer was lost cannot duplicate anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import google_auth_httplib2
import httplib2
import httpx

from calbridge.errors import ConfigError, ProviderAuthError
from calbridge.providers.retry import RetryPolicy

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def error_reason(content: bytes | str | None) -> str | None:
    """``error.errors[0].reason`` of a Google JSON error body (None when absent)."""
    try:
        data = json.loads(content or b"{}")
        errors = data.get("error", {}).get("errors") or [{}]
        reason = errors[0].get("reason")
    except (ValueError, AttributeError, TypeError):
        return None
    return str(reason) if reason else None


def should_retry(status: int, content: bytes | str | None) -> bool:
    return status in RETRY_STATUSES or (
        status == 403 and error_reason(content) in RATE_LIMIT_REASONS
    )


class CountingHttp(httplib2.Http):  # type: ignore[misc]
    """``httplib2.Http`` that counts every request sent and retries transient failures."""

    def __init__(self, retry: RetryPolicy, timeout: float = 30) -> None:
        super().__init__(timeout=timeout)
        self.retry = retry
        self.requests = 0

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        outcome: list[tuple[Any, Any]] = []

        def send() -> httpx.Response:
            self.requests += 1
            try:
                response, content = super(CountingHttp, self).request(uri, method, *args, **kwargs)
            except (OSError, httplib2.HttpLib2Error) as exc:
                raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
            outcome.append((response, content))
            # The policy decides on an httpx view of the answer: a quota 403 counts as a 429.
            status = 429 if should_retry(response.status, content) else response.status
            headers = {"Retry-After": response.get("retry-after", "")}
            return httpx.Response(status, headers={k: v for k, v in headers.items() if v})

        try:
            self.retry.run(send)
        except httpx.TransportError as exc:  # out of attempts: the connection error itself
            cause = exc.__cause__
            if isinstance(cause, Exception):
                raise cause from None
            raise
        return outcome[-1]


def route_refresh(credentials: Any, http: CountingHttp) -> None:
    """Make every token refresh of ``credentials`` go through ``http`` (counted, retried).

    ``googleapiclient``'s batch refreshes credentials on a 401 with a fresh ``httplib2.Http``
    of its own; redirecting ``refresh`` keeps those token requests in the count too."""
    original: Callable[[Any], None] = credentials.refresh
    request = google_auth_httplib2.Request(http)
    credentials.refresh = lambda _ignored: original(request)


def authorized_http(credentials: Any, http: CountingHttp) -> Any:
    route_refresh(credentials, http)
    return google_auth_httplib2.AuthorizedHttp(credentials, http=http)


@dataclass(frozen=True)
class OAuthClient:
    """An OAuth client of type "installed app" (or "web"): what the consent flow needs."""

    client_id: str
    client_secret: str
    token_uri: str = GOOGLE_TOKEN_URI
    auth_uri: str = GOOGLE_AUTH_URI

    def as_dict(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "token_uri": self.token_uri,
            "auth_uri": self.auth_uri,
        }

    def flow_config(self) -> dict[str, Any]:
        return {"installed": {**self.as_dict(), "redirect_uris": ["http://localhost"]}}


def read_oauth_client(data: dict[str, Any], source: str) -> tuple[OAuthClient, str | None]:
    """The client in a downloaded client-secrets file (``{"installed": {...}}`` / ``"web"``)
    or in an ``authorized_user`` file (which also carries a refresh token, returned second)."""
    if data.get("type") == "authorized_user":
        entry: Any = data
    else:
        entry = data.get("installed") or data.get("web")
    if not isinstance(entry, dict) or not entry.get("client_id") or not entry.get("client_secret"):
        raise ConfigError(
            f"{source} is not an OAuth client file: download the client of type 'Desktop app' "
            "from the Google Cloud console (APIs & Services → Credentials)"
        )
    client = OAuthClient(
        str(entry["client_id"]),
        str(entry["client_secret"]),
        str(entry.get("token_uri") or GOOGLE_TOKEN_URI),
        str(entry.get("auth_uri") or GOOGLE_AUTH_URI),
    )
    refresh = entry.get("refresh_token") if entry is data else None
    return client, (str(refresh) if refresh else None)


def read_service_account(data: dict[str, Any], source: str) -> dict[str, Any]:
    if data.get("type") != "service_account" or not data.get("private_key"):
        raise ConfigError(
            f'{source} is not a service-account key file (JSON with "type": '
            '"service_account" and a private key)'
        )
    return data


def make_credentials(settings: dict[str, Any], secret: dict[str, Any], name: str) -> Any:
    """google-auth credentials for a stored Google calendar (not refreshed yet: no I/O)."""
    if settings.get("auth") == "service_account":
        from google.oauth2 import service_account

        try:
            return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                secret["service_account"],
                scopes=[CALENDAR_SCOPE],
                subject=settings.get("subject") or None,
            )
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"calendar '{name}' (Google): the stored service-account key is unusable "
                f"({exc}); give it a valid key: `calbridge calendars update {name} "
                "--service-account KEY.json`"
            ) from exc
    from google.oauth2.credentials import Credentials

    client = secret.get("oauth_client") or {}
    token = secret.get("refresh_token")
    if not token:
        raise ProviderAuthError(
            f"calendar '{name}' (Google) is not authorized yet; run "
            f"`calbridge calendars auth {name}`"
        )
    return Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=token,
        client_id=client.get("client_id"),
        client_secret=client.get("client_secret"),
        token_uri=client.get("token_uri") or GOOGLE_TOKEN_URI,
        scopes=[CALENDAR_SCOPE],
    )
