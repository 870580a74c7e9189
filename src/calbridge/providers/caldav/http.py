"""The HTTP session under the CalDAV provider: one keep-alive ``httpx.Client``, every request
counted (the sync's request budget is part of the spec), retries by :class:`RetryPolicy`, and
HTTP failures turned into the errors of ``calbridge.errors`` with messages that name the calendar
and the server and say what to do.
"""

from __future__ import annotations

import ipaddress
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

import httpx

from calbridge.errors import ProviderAuthError, ProviderError, RateLimited
from calbridge.providers.http_client import RequestCounter, counted_client
from calbridge.providers.retry import RetryPolicy, retry_after

XML = {"Content-Type": "application/xml; charset=utf-8"}


def cleartext_warning(url: str, username: str) -> str | None:
    """One line warning that Basic credentials for ``url`` would cross the network readable
    by anyone on the way (plain ``http://`` to a host that is not this machine); None when
    the URL is https or loopback (``localhost``, 127.0.0.0/8, ``::1``)."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "http" or not parts.hostname or _loopback(parts.hostname):
        return None
    return (
        f"the password of user '{username}' will be sent unencrypted (HTTP Basic over plain "
        f"http://) to {parts.hostname} on every sync; use the server's https:// URL unless "
        "this network is trusted"
    )


def _loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DavSession:
    """HTTP to one collection URL. ``label`` names the calendar in error messages."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        label: str,
        timeout: float,
        fix: str = "check them and run `calbridge calendars update NAME --password-env VAR`",
        url_fix: str = "run `calbridge calendars update NAME --caldav URL` with its own address",
        retry: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, self.username, self.label, self.retry = url, username, label, retry
        self.fix = fix  # what a person runs when the credentials are refused
        self.url_fix = url_fix  # ... when the URL is not a calendar they may use
        parts = urlsplit(url)
        default_port = 443 if parts.scheme == "https" else 80
        self.server = f"{parts.hostname}:{parts.port or default_port}"
        self.counter = RequestCounter()
        # Every request goes to this URL's own scheme and host (redirects are not followed),
        # so a plain-http calendar never needs TLS: no certificate store is loaded for it
        # (tens of milliseconds of every `calbridge sync`).
        tls: dict[str, Any] = {"verify": False} if parts.scheme == "http" else {}
        self.client = counted_client(
            self.counter,
            auth=httpx.BasicAuth(username, password),
            timeout=timeout,
            transport=transport,
            **tls,
        )

    def close(self) -> None:
        self.client.close()

    def request(
        self, method: str, href: str, body: bytes | None, headers: dict[str, str], *, ok: set[int]
    ) -> httpx.Response:
        """Send with retries; return the response if its status is in ``ok``, else raise the
        error a person can act on."""
        url = urljoin(self.url, href)
        if body is not None and "Content-Type" not in headers:
            headers = {**XML, **headers}
        try:
            response = self.retry.run(
                lambda: self.client.request(method, url, content=body, headers=headers)
            )
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        if response.status_code not in ok:
            self.fail(response)
        return response

    def stream(
        self, method: str, href: str, body: bytes, headers: dict[str, str], *, ok: set[int]
    ) -> Streamed:
        """Like :meth:`request`, but the body is read as it arrives (``iter_bytes``)."""
        request = self.client.build_request(
            method, urljoin(self.url, href), content=body, headers={**XML, **headers}
        )
        return Streamed(self, request, ok)

    def unreachable(self, exc: Exception) -> ProviderError:
        return ProviderError(
            f"{self.label}: cannot reach the server at {self.server} "
            f"({type(exc).__name__}: {exc or 'no answer'}); check the URL and that it is running"
        )

    def fail(self, response: httpx.Response) -> NoReturn:
        status, url = response.status_code, str(response.request.url)
        if status == 401:
            raise ProviderAuthError(
                f"{self.label}: the server refused the username or password for {url}; {self.fix}"
            )
        if status == 403:
            raise ProviderAuthError(
                f"{self.label}: user '{self.username}' may not access {url}; check the "
                f"calendar's sharing settings, or {self.url_fix}"
            )
        if status == 429:
            raise RateLimited(
                f"{self.label}: the server at {self.server} keeps asking us to slow down (429) "
                f"after {self.retry.attempts} attempts; the next sync will try again",
                retry_after(response),
            )
        if status >= 500:
            raise ProviderError(
                f"{self.label}: the server at {self.server} failed with {status} "
                f"{response.reason_phrase} after {self.retry.attempts} attempts; try again later"
            )
        try:
            text = " " + response.text[:200].strip()
        except httpx.ResponseNotRead:
            text = ""
        refused = ProviderError(
            f"{self.label}: the server at {self.server} refused {response.request.method} "
            f"{url} with {status} {response.reason_phrase}{text}"
        )
        refused.status = status  # a 4xx about this one object: the sync goes on without it
        raise refused


class Streamed:
    """A streamed request with retries, as a context manager yielding the open response. A
    connection lost mid-body becomes the same "cannot reach" ProviderError as before it."""

    def __init__(self, session: DavSession, request: httpx.Request, ok: set[int]) -> None:
        self._session, self._request, self._ok = session, request, ok
        self._response: httpx.Response | None = None

    def __enter__(self) -> httpx.Response:
        session = self._session

        def send() -> httpx.Response:
            response = session.client.send(self._request, stream=True)
            if response.status_code >= 429:
                response.read()  # release the connection before a retry
            return response

        try:
            self._response = session.retry.run(send)
        except httpx.TransportError as exc:
            raise session.unreachable(exc) from exc
        if self._response.status_code not in self._ok:
            self._response.read()
            self._response.close()
            session.fail(self._response)
        return self._response

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._response is not None:
            self._response.close()
        if isinstance(exc, httpx.TransportError):
            raise self._session.unreachable(exc) from exc
