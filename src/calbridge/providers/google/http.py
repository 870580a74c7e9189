"""One Google calendar as ``google-api-python-client`` sees it: the service, single calls, HTTP
batches, and every failure turned into the calbridge error a person can act on.

Against another root URL (``--api-base``, the emulator) the client needs three things pointed
at it: ``api_endpoint`` (``<base>/calendar/v3/``), the batch URI (``<base>/batch/calendar/v3``:
``service.new_batch_http_request()`` ignores ``api_endpoint``, googleapiclient issue #1107),
and the token URI (which comes from the key file / OAuth client).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.discovery import build_from_document
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

from calbridge.errors import (
    CalbridgeError,
    ConfigError,
    Conflict,
    ProviderAuthError,
    ProviderError,
    RateLimited,
    TokenExpired,
)
from calbridge.providers.google.auth import (
    CALENDAR_SCOPE,
    RATE_LIMIT_REASONS,
    CountingHttp,
    authorized_http,
    error_reason,
)
from calbridge.providers.retry import RetryPolicy

DEFAULT_API_BASE = "https://www.googleapis.com"
log = logging.getLogger(__name__)
T = TypeVar("T")
Json = dict[str, Any]
PartResult = tuple[Json | None, HttpError | None]


@lru_cache(maxsize=1)
def _discovery() -> str:
    document: str = get_static_doc("calendar", "v3")  # shipped with the client: no request
    return document


class GoogleApi:
    """The service, the counted/retrying transport, and the error vocabulary for one calendar.

    ``auth`` is ``service_account`` or ``oauth``; ``who`` names the identity used (the
    delegated user, the service account or the authorized person) in messages."""

    def __init__(
        self,
        calendar_id: str,
        credentials: Any,
        *,
        name: str,
        auth: str,
        who: str,
        api_base: str = DEFAULT_API_BASE,
        retry: RetryPolicy | None = None,
        timeout: float = 30,
        adding: bool = False,
    ) -> None:
        self.calendar_id = calendar_id
        self.name = name
        self.adding = adding  # messages name `calendars add` (again) rather than `update`
        self.label = f"calendar '{name}' (Google)"
        self.auth = auth
        self.who = who
        self.api_base = api_base.rstrip("/")
        self.http = CountingHttp(retry or RetryPolicy(), timeout)
        self._authorized = authorized_http(credentials, self.http)
        self._service: Any = None
        self._events: Any = None

    @property
    def service(self) -> Any:
        if self._service is None:
            self._service = build_from_document(
                _discovery(),
                http=self._authorized,
                client_options={"api_endpoint": self.api_base + "/calendar/v3/"},
            )
        return self._service

    @property
    def events(self) -> Any:
        """The ``events`` resource (built once: building it costs milliseconds)."""
        if self._events is None:
            self._events = self.service.events()
        return self._events

    @property
    def batch_uri(self) -> str:
        return self.api_base + "/batch/calendar/v3"

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------ calling

    def call(self, request: HttpRequest, what: str, *, missing: str = "error") -> Json | None:
        """Execute one request. ``missing`` says what a 404/410 means: ``error`` (raise),
        ``none`` (return None: the object is gone) or ``calendar`` (the calendar is unknown)."""
        try:
            result: Json | None = self.guard(request.execute)
        except HttpError as exc:
            if missing == "none" and exc.resp.status in (404, 410):
                return None
            raise self.error(exc, what, calendar_missing=missing == "calendar") from exc
        return result

    def batch(self, requests: list[HttpRequest]) -> list[PartResult]:
        """Up to 50 requests in one multipart/mixed HTTP request; each part answers alone."""
        results: list[PartResult] = [(None, None)] * len(requests)

        def done(request_id: str, response: Any, exception: HttpError | None) -> None:
            results[int(request_id)] = (response, exception)

        batch = BatchHttpRequest(callback=done, batch_uri=self.batch_uri)
        for index, request in enumerate(requests):
            batch.add(request, request_id=str(index))
        try:
            self.guard(batch.execute)
        except HttpError as exc:
            raise self.error(exc, "a batch of writes") from exc
        return results

    def guard(self, run: Callable[[], T]) -> T:
        """Run a client call; credential and connection failures become calbridge errors."""
        try:
            return run()
        except RefreshError as exc:
            raise self.refused(_refresh_detail(exc), retryable=_retryable(exc)) from exc
        except (OSError, httplib2.HttpLib2Error, TransportError) as exc:
            raise ProviderError(
                f"{self.label}: cannot reach {self.api_base} ({type(exc).__name__}: {exc}); "
                "the next sync tries again"
            ) from exc

    # ------------------------------------------------------------ errors

    def error(self, exc: HttpError, what: str, *, calendar_missing: bool = False) -> CalbridgeError:
        status, reason = exc.resp.status, error_reason(exc.content) or ""
        detail = f"{status} {reason}: {_message(exc)}".strip()
        if status == 401:
            return self.refused(detail)
        if status == 403 and reason == "insufficientPermissions":
            return self.missing_scope(detail)
        if status == 429 or reason in RATE_LIMIT_REASONS:
            return RateLimited(
                f"{self.label}: Google's quota is exhausted ({detail}) even after backing off; "
                "the next sync tries again",
                retry_after=_retry_after(exc),
            )
        if status == 403:
            return ProviderAuthError(
                f"{self.label}: {self.who} may not change calendar '{self.calendar_id}' "
                f"({detail}); share it with 'Make changes to events', or only read it: "
                + (
                    "add it with `--direction pull`"
                    if self.adding
                    else f"`calbridge calendars update {self.name} --direction pull`"
                )
            )
        if status == 404 and calendar_missing:
            return ConfigError(
                f"{self.label}: there is no calendar '{self.calendar_id}' that {self.who} can "
                "see; check the calendar id (Google Calendar → Settings → Integrate calendar) "
                f"or share the calendar with that account, then run {self._fix('--google ID')}"
            )
        if status == 410 and reason == "fullSyncRequired":
            return TokenExpired(f"{self.label}: Google forgot our sync token; full resync")
        if status in (409, 412) or (status == 410 and reason == "deleted"):
            return Conflict(f"{self.label}: {what}: the calendar changed meanwhile ({detail})")
        if status >= 500:
            return ProviderError(
                f"{self.label}: Google failed {what} ({detail}) after "
                f"{self.http.retry.attempts} attempts; the next sync tries again"
            )
        return ProviderError(f"{self.label}: Google refused {what} ({detail})")

    def refused(self, detail: str, *, retryable: bool = False) -> ProviderError:
        if retryable:
            return ProviderError(
                f"{self.label}: Google's sign-in service failed ({detail}); the next sync "
                "tries again"
            )
        if "invalid_scope" in detail or "unauthorized_client" in detail:
            return self.missing_scope(detail)
        if self.auth == "oauth":
            return ProviderAuthError(
                f"{self.label}: Google refused calbridge's stored authorization ({detail}): it "
                f"was revoked or has expired; run `calbridge calendars auth {self.name}` to "
                "authorize again"
            )
        return ProviderAuthError(
            f"{self.label}: Google refused the service account acting as {self.who} "
            f"({detail}): its access was revoked, its key deleted or disabled, or that user "
            "no longer exists. "
            "Restore it in the Google Admin console, or give the calendar a new key: "
            f"{self._fix('--service-account NEW_KEY.json')}"
        )

    def _fix(self, options: str) -> str:
        """The command that changes this calendar's settings, ``options`` being what to give."""
        if self.adding:
            return (
                f"`calbridge calendars add {self.name} --google CALENDAR_ID --service-account "
                "KEY.json --subject USER_EMAIL` again"
            )
        return f"`calbridge calendars update {self.name} {options}`"

    def missing_scope(self, detail: str) -> ProviderAuthError:
        if self.auth == "oauth":
            return ProviderAuthError(
                f"{self.label}: calbridge's authorization does not include calendar access "
                f"({CALENDAR_SCOPE}; {detail}); run `calbridge calendars auth {self.name}` and "
                "allow access to the calendar"
            )
        return ProviderAuthError(
            f"{self.label}: the service account may not act as {self.who} with the scope "
            f"{CALENDAR_SCOPE} ({detail}); allow that scope for its client id in the Google "
            "Admin console (Security → API controls → Domain-wide delegation), then run "
            f"`calbridge sync {self.name}`"
        )


def _message(exc: HttpError) -> str:
    try:
        data = json.loads(exc.content or b"{}")
        return str(data.get("error", {}).get("message") or "")[:300]
    except (ValueError, AttributeError, TypeError):
        return ""


def _retry_after(exc: HttpError) -> float | None:
    value = str(exc.resp.get("retry-after", "")).strip()
    return float(value) if value.isdigit() else None


def _refresh_detail(exc: RefreshError) -> str:
    first = exc.args[0] if exc.args else str(exc)
    return str(first)[:300]


def _retryable(exc: RefreshError) -> bool:
    return bool(getattr(exc, "retryable", False))


def status_of(exc: HttpError | None) -> int:
    return 0 if exc is None else int(exc.resp.status)


def reason_of(exc: HttpError) -> str:
    return error_reason(exc.content) or ""


def with_if_match(request: HttpRequest, etag: str | None) -> HttpRequest:
    if etag:
        request.headers["If-Match"] = etag
    return request


def is_retryable_part(exc: HttpError | None) -> bool:
    if exc is None:
        return False
    status = status_of(exc)
    return status in (429, 500, 502, 503, 504) or (
        status == 403 and reason_of(exc) in RATE_LIMIT_REASONS
    )
