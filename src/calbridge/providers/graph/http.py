"""HTTP to Microsoft Graph for one calendar: bearer tokens, counting, retries, JSON batching,
and Graph's error envelope turned into the errors of ``calbridge.errors``.

Retries (429, 5xx, connection errors) follow :class:`RetryPolicy`, honouring ``Retry-After``.
They are safe because every write is idempotent on its own: creates carry a ``transactionId``,
updates and deletes ``If-Match``. Inside a ``$batch`` each request is throttled separately, so
only the inner requests answered 429/5xx are sent again, after the longest ``Retry-After``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx

from calbridge.errors import (
    CalbridgeError,
    ConfigError,
    Conflict,
    ProviderAuthError,
    ProviderError,
    RateLimited,
    TokenExpired,
)
from calbridge.providers.graph.auth import AppCredentials, TokenSources
from calbridge.providers.http_client import RequestCounter, counted_client
from calbridge.providers.retry import RETRY_STATUSES, RetryPolicy, retry_after

GRAPH_API = "https://graph.microsoft.com/v1.0"
MAX_BATCH = 20
SYNC_STATE_CODES = {"syncstatenotfound", "syncstateinvalid", "resyncrequired"}


class InnerResponse:
    """One response of a ``$batch``: status, headers, JSON body."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.status = int(raw.get("status") or 0)
        self.headers = {str(k): str(v) for k, v in (raw.get("headers") or {}).items()}
        body = raw.get("body")
        self.body: dict[str, Any] = body if isinstance(body, dict) else {}

    def as_httpx(self) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers)


def error_code(body: Mapping[str, Any]) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


class GraphSession:
    """``label`` names the calendar in every message; ``mailbox`` is the user it belongs to."""

    def __init__(
        self,
        creds: AppCredentials,
        tokens: TokenSources,
        *,
        label: str,
        mailbox: str,
        relink: str = "`calbridge calendars add`",
        api_base: str = GRAPH_API,
        retry: RetryPolicy | None = None,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.creds, self.label, self.mailbox, self.relink = creds, label, mailbox, relink
        self.api_base = api_base.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.tokens = tokens.get(creds)
        self.counter = RequestCounter()
        verify: ssl.SSLContext | bool = True
        if creds.ca_file:
            verify = ssl.create_default_context(cafile=creds.ca_file)
        self.client = counted_client(
            self.counter,
            headers={"Accept": "application/json"},
            timeout=timeout,
            verify=verify,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.api_base}{path}"

    def token(self, fresh: bool = False) -> str:
        token, made = self.tokens.token(self.label, self.relink, fresh)
        self.counter.count += made
        return token

    # ------------------------------------------------------------ requests

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send with retries and a fresh token after a 401; return the final response."""
        url = self.url(path)
        response = self._send(method, url, json, headers, self.token())
        if response.status_code == 401:
            response = self._send(method, url, json, headers, self.token(fresh=True))
        return response

    def _send(
        self,
        method: str,
        url: str,
        body: Any,
        headers: Mapping[str, str] | None,
        token: str,
    ) -> httpx.Response:
        all_headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        try:
            return self.retry.run(
                lambda: self.client.request(method, url, json=body, headers=all_headers)
            )
        except httpx.TransportError as exc:
            host = urlsplit(url).netloc
            raise ProviderError(
                f"{self.label}: cannot reach Microsoft Graph at {host} "
                f"({type(exc).__name__}: {exc or 'no answer'}); check --api-base and the network, "
                "the next sync will try again"
            ) from exc

    def batch(self, requests: list[dict[str, Any]]) -> dict[str, InnerResponse]:
        """Send up to 20 requests as one ``$batch``; inner 429/5xx are sent again (only them)
        within the retry policy. Returns the final response of each request by id."""
        done: dict[str, InnerResponse] = {}
        pending = list(requests)
        attempt = 0
        while pending:
            attempt += 1
            response = self.send("POST", "/$batch", json={"requests": pending})
            if response.status_code != 200:
                self.fail(response, "a batch of writes")
            answers = {
                str(raw.get("id")): InnerResponse(raw)
                for raw in response.json().get("responses") or []
            }
            retry: list[dict[str, Any]] = []
            waits: list[float] = []
            for request in pending:
                answer = answers.get(str(request["id"]))
                if answer is None:
                    answer = InnerResponse({"status": 502, "body": {}})
                done[str(request["id"])] = answer
                if answer.status in RETRY_STATUSES and attempt < self.retry.attempts:
                    retry.append(request)
                    waits.append(self.retry.wait(attempt, answer.as_httpx()))
            if retry:
                self.retry.sleep(max(waits))
            pending = retry
        return done

    # ------------------------------------------------------------ errors

    def fail(self, response: httpx.Response, what: str, *, delta: bool = False) -> NoReturn:
        try:
            body = response.json()
        except ValueError:
            body = {}
        raise self.error(response.status_code, body, response, what, delta=delta)

    def error(
        self,
        status: int,
        body: Mapping[str, Any],
        response: httpx.Response | None,
        what: str,
        *,
        delta: bool = False,
    ) -> CalbridgeError:
        """The error a person can act on for a Graph failure while doing ``what``."""
        code, message = error_code(body)
        detail = f"{status} {code}: {message[:200]}".rstrip(": ")
        if delta and (status == 410 or code.lower() in SYNC_STATE_CODES):
            return TokenExpired(f"{self.label}: the delta link expired ({detail})")
        if status == 401:
            return ProviderAuthError(
                f"{self.label}: Microsoft Graph refused the app's access token ({detail}); "
                f"check the app registration, then run {self.relink}"
            )
        if status == 403:
            return ProviderAuthError(
                f"{self.label}: app '{self.creds.client_id}' may not access mailbox "
                f"'{self.mailbox}' ({detail}); grant it the Calendars.ReadWrite application "
                "permission with admin consent, and include the mailbox in any application "
                "access policy (New-ApplicationAccessPolicy)"
            )
        if status == 404 and code == "ErrorInvalidUser":
            return ConfigError(
                f"{self.label}: there is no mailbox '{self.mailbox}' in tenant "
                f"'{self.creds.tenant}' ({detail}); check the address given to --graph"
            )
        if status in (409, 412):
            return Conflict(f"{self.label}: {what} conflicts with a change on the calendar")
        if status == 429:
            wait = retry_after(response) if response is not None else None
            return RateLimited(
                f"{self.label}: Microsoft Graph keeps throttling {what} (429) after "
                f"{self.retry.attempts} attempts; the next sync will try again",
                wait,
            )
        if status >= 500:
            return ProviderError(
                f"{self.label}: Microsoft Graph failed {what} with {detail} after "
                f"{self.retry.attempts} attempts; try again later"
            )
        return ProviderError(f"{self.label}: Microsoft Graph refused {what} ({detail})")

    def inner_error(self, answer: InnerResponse, what: str) -> CalbridgeError:
        return self.error(answer.status, answer.body, answer.as_httpx(), what)
