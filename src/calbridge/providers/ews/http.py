"""Connecting to Exchange Server over EWS with exchangelib: settings, sign-in, TLS trust,
request counting, retries and the one-line errors a person can act on.

* :class:`EwsSettings` — what a stored calendar keeps (no secret): server URL (or autodiscover),
  mailbox, username, ``ntlm``/``basic``, impersonation or the mailbox's own account, an extra CA
  file, and the server build learnt on the first connection (so later runs skip exchangelib's
  version probe and a no-change sync is one request).
* One ``requests`` adapter class is installed on exchangelib's protocol (its documented hook,
  ``BaseProtocol.HTTP_ADAPTER_CLS``): it trusts the CA file of the calendar that is calling (on
  every host, so also on the ones autodiscover tries and the server it finds; a calendar with
  none trusts the system's CAs) or, outside a calendar's call, the one registered for a server's
  origin; and it counts the EWS requests of the provider that is calling — every HTTP request
  answered with anything but 401, so the two challenge legs of an NTLM handshake on a new
  connection are not counted (they carry no EWS operation).
* :meth:`EwsConnection.call` runs one exchangelib call with calbridge's :class:`RetryPolicy`:
  ``ErrorServerBusy`` waits the ``BackOffMilliseconds`` the server asked for; 503, transient
  server errors and timeouts back off exponentially. exchangelib itself runs with ``FailFast``
  so that the wait is ours (injected ``sleep`` in tests) and bounded.
* :func:`translate` turns exchangelib's exceptions into calbridge's hierarchy with a message
  that names the calendar and the command that fixes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from shlex import quote
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from exchangelib import BASIC, DELEGATE, IMPERSONATION, NTLM, Account, Configuration, Credentials
from exchangelib import errors as ews_errors
from exchangelib.ewsdatetime import EWSTimeZone
from exchangelib.folders import Calendar, Root
from exchangelib.properties import DistinguishedFolderId, Mailbox
from exchangelib.protocol import BaseProtocol, FailFast
from exchangelib.version import Build, Version

from calbridge.errors import (
    CalbridgeError,
    ConfigError,
    Conflict,
    ProviderAuthError,
    ProviderError,
    RateLimited,
    TokenExpired,
)
from calbridge.providers.retry import RetryPolicy

R = TypeVar("R")
AUTH_TYPES = {"ntlm": NTLM, "basic": BASIC}

_local = threading.local()
_trust: dict[str, str] = {}  # origin -> CA file
_trust_lock = threading.Lock()


class _CountingAdapter(requests.adapters.HTTPAdapter):
    """Counts requests for the calling provider and trusts its CA file: the calling calendar's
    own (so autodiscover's hosts and the server it finds are trusted as the given server is,
    and a calendar without one trusts the system's CAs only), else the one registered for the
    request's origin."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        scope = getattr(_local, "ca_scope", None)  # (CA file or None,) of the calling calendar
        ca_file = scope[0] if scope is not None else _trust.get(_origin(str(request.url or "")))
        if ca_file:
            kwargs["verify"] = ca_file
        response = super().send(request, **kwargs)
        counter = getattr(_local, "counter", None)
        if counter is not None and response.status_code != 401:
            counter.count += 1  # the 401 legs of an NTLM handshake are not EWS requests
        return response


BaseProtocol.HTTP_ADAPTER_CLS = _CountingAdapter


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass
class Counter:
    count: int = 0


@dataclass(frozen=True)
class EwsSettings:
    mailbox: str
    username: str
    server: str | None = None  # the EWS URL; None: autodiscover from the mailbox's domain
    auth: str = "ntlm"
    impersonate: bool = False
    ca_file: str | None = None
    build: str | None = None  # "15.1.2507.6", learnt on the first connection
    cancellations: bool = False  # send meeting cancellations when deleting

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> EwsSettings:
        return cls(
            mailbox=str(settings["mailbox"]),
            username=str(settings["username"]),
            server=settings.get("server") or None,
            auth=str(settings.get("auth") or "ntlm"),
            impersonate=bool(settings.get("impersonate")),
            ca_file=settings.get("ca_file") or None,
            build=settings.get("build") or None,
            cancellations=bool(settings.get("cancellations")),
        )

    def as_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "mailbox": self.mailbox,
            "username": self.username,
            "auth": self.auth,
            "impersonate": self.impersonate,
        }
        for key in ("server", "ca_file", "build"):
            if getattr(self, key):
                values[key] = getattr(self, key)
        if self.cancellations:
            values["cancellations"] = True
        return values


@dataclass
class EwsConnection:
    """One mailbox's calendar on one server, opened lazily (no request until first use)."""

    settings: EwsSettings
    password: str
    name: str
    adding: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    counter: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.label = f"calendar '{self.name}' (Exchange)"
        self._account: Account | None = None
        self._calendar: Calendar | None = None
        if self.settings.auth not in AUTH_TYPES:
            raise ConfigError(
                f"{self.label}: unknown sign-in '{self.settings.auth}'; use --auth ntlm or "
                "--auth basic"
            )
        if self.settings.server and self.settings.ca_file:
            with _trust_lock:
                _trust[_origin(self.settings.server)] = self.settings.ca_file

    # ------------------------------------------------------------ opening
    @property
    def account(self) -> Account:
        if self._account is None:
            self._account = self.call("connecting", self._open)
        return self._account

    def _open(self) -> Account:
        s = self.settings
        credentials = Credentials(s.username, self.password)
        version = _version(s.build)
        access = IMPERSONATION if s.impersonate else DELEGATE
        tz = EWSTimeZone("UTC")
        config = Configuration(
            service_endpoint=s.server,
            credentials=credentials,
            auth_type=AUTH_TYPES[s.auth],
            version=version,
            retry_policy=FailFast(),
            max_connections=2,
        )
        if s.server is None:  # the sign-in, retries and build apply to the discovered server
            return Account(
                s.mailbox, config=config, autodiscover=True, access_type=access, default_timezone=tz
            )
        return Account(
            s.mailbox, config=config, autodiscover=False, access_type=access, default_timezone=tz
        )

    @property
    def calendar(self) -> Calendar:
        """The mailbox's calendar folder, addressed by its distinguished id (no request)."""
        if self._calendar is None:
            mailbox = Mailbox(email_address=self.settings.mailbox)
            root = Root(
                account=self.account,
                _distinguished_id=DistinguishedFolderId(id="root", mailbox=mailbox),
            )
            self._calendar = Calendar(
                root=root, _distinguished_id=DistinguishedFolderId(id="calendar", mailbox=mailbox)
            )
        return self._calendar

    def service_endpoint(self) -> str | None:
        """The EWS URL in use (the one autodiscover found, when no server was given)."""
        endpoint = self.account.protocol.service_endpoint
        return str(endpoint) if endpoint else None

    def server_build(self) -> str | None:
        build = self.account.version.build
        return str(build) if build is not None else None

    def close(self) -> None:
        if self._account is not None:
            self._account.protocol.close()

    # ------------------------------------------------------------ calling
    @contextmanager
    def counting(self) -> Iterator[None]:
        """Requests made in the block count for this calendar and trust its CA file (or the
        system's CAs when it has none) — on every host autodiscover tries, too."""
        previous = getattr(_local, "counter", None), getattr(_local, "ca_scope", None)
        _local.counter = self.counter
        _local.ca_scope = (self.settings.ca_file,)
        try:
            yield
        finally:
            _local.counter, _local.ca_scope = previous

    def call(self, what: str, run: Callable[[], R]) -> R:
        """``run()`` with retries on busy/unavailable/timeouts; errors translated."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.counting():
                    return run()
            except ews_errors.ErrorServerBusy as exc:
                wait = exc.back_off if exc.back_off else self.retry.wait(attempt, None)
                if attempt >= self.retry.attempts:
                    raise RateLimited(
                        f"{self.label}: Exchange is busy (ErrorServerBusy) while {what}; "
                        "calbridge will try again on the next sync",
                        retry_after=wait,
                    ) from None
            except (
                ews_errors.ErrorInternalServerTransientError,
                ews_errors.ErrorTimeoutExpired,
                requests.Timeout,
                requests.ConnectionError,
            ) as exc:
                wait = self.retry.wait(attempt, None)
                if attempt >= self.retry.attempts or _is_tls(exc):
                    raise translate(exc, self, what) from None
            except ews_errors.TransportError as exc:
                if _is_tls(exc) or not _transient(exc) or attempt >= self.retry.attempts:
                    raise translate(exc, self, what) from None
                wait = self.retry.wait(attempt, None)
            except CalbridgeError:
                raise
            except Exception as exc:  # exchangelib's own hierarchy: one line, no traceback
                raise translate(exc, self, what) from None
            self.retry.sleep(min(self.retry.cap, wait))

    # ------------------------------------------------------------ messages
    def fix_credentials(self) -> str:
        name = quote(self.name)
        if self.adding:
            return (
                f"check them and run `calbridge calendars add {name} --ews "
                f"{quote(self.settings.mailbox)} --server URL --username USER "
                "--password-env VAR` again"
            )
        return f"check them and run `calbridge calendars update {name} --password-env VAR`"


def _version(build: str | None) -> Version | None:
    if not build:
        return None
    try:
        parts = [int(p) for p in build.split(".")]
    except ValueError:
        return None
    return Version(build=Build(*parts[:4]))


def _is_tls(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, requests.exceptions.SSLError) or any(
        marker in text for marker in ("CERTIFICATE_VERIFY_FAILED", "SSLError", "certificate")
    )


def _transient(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in ("timed out", "timeout", "connection", "reset"))


def translate(exc: BaseException, conn: EwsConnection, what: str) -> CalbridgeError:
    """exchangelib's exception as a calbridge error with a message a person can act on."""
    s = conn.settings
    label = conn.label
    server = s.server or f"autodiscover for {s.mailbox}"
    name = quote(conn.name)
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, ews_errors.AutoDiscoverFailed | ews_errors.AutoDiscoverCircularRedirect):
        domain = s.mailbox.rpartition("@")[2]
        fix = (
            f"calbridge calendars add {name} --ews {quote(s.mailbox)} --server URL ..."
            if conn.adding
            else f"calbridge calendars update {name} --server URL"
        )
        return ConfigError(
            f"{label}: autodiscover found no Exchange server for '{s.mailbox}' (tried "
            f"https://{domain}/, https://autodiscover.{domain}/ and DNS SRV "
            f"_autodiscover._tcp.{domain}; a server whose certificate is not trusted counts as "
            f"none: add --ca-file FILE for a private CA); give the EWS address with `{fix}` "
            "(URL like https://mail.example.org/EWS/Exchange.asmx)"
        )
    if isinstance(exc, ews_errors.UnauthorizedError):
        return ProviderAuthError(
            f"{label}: {server} refused the username or password of '{s.username}'; "
            + conn.fix_credentials()
        )
    if isinstance(exc, ews_errors.ErrorNonExistentMailbox | ews_errors.ErrorInvalidSmtpAddress):
        return ConfigError(
            f"{label}: there is no mailbox '{s.mailbox}' on {server}; check the address and "
            f"run `calbridge calendars add {name} --ews MAILBOX ...` again"
        )
    if isinstance(
        exc,
        ews_errors.ErrorImpersonateUserDenied
        | ews_errors.ErrorImpersonationDenied
        | ews_errors.ErrorImpersonationFailed,
    ):
        return ProviderAuthError(
            f"{label}: the account '{s.username}' may not impersonate '{s.mailbox}'; an "
            "Exchange administrator must grant it the ApplicationImpersonation role for this "
            "mailbox (New-ManagementRoleAssignment), or sign in as the mailbox's own account"
        )
    if isinstance(exc, ews_errors.ErrorAccessDenied):
        hint = (
            "add --impersonate if the account has the ApplicationImpersonation role"
            if not s.impersonate
            else "check the account's rights on this mailbox"
        )
        return ProviderAuthError(
            f"{label}: '{s.username}' may not open the calendar of '{s.mailbox}'; {hint}"
        )
    if isinstance(exc, ews_errors.ErrorInvalidSyncStateData):
        return TokenExpired(f"{label}: Exchange no longer knows the stored sync state")
    if isinstance(exc, ews_errors.ErrorIrresolvableConflict):
        return Conflict(f"{label}: the event changed on the calendar while {what}")
    if isinstance(exc, ews_errors.ResponseMessageError):  # about this request's items only
        error = ProviderError(f"{label}: Exchange refused {what}: {text}")
        error.status = 400
        return error
    if _is_tls(exc):
        return ConfigError(
            f"{label}: the certificate of {server} is not trusted ({text[:120]}); pass the "
            f"server's CA with `calbridge calendars update {name} --ca-file FILE`"
        )
    if isinstance(
        exc,
        ews_errors.TransportError
        | ews_errors.MalformedResponseError
        | ews_errors.RedirectError
        | ews_errors.SOAPError,
    ) and not isinstance(exc, ews_errors.ErrorServerBusy):
        if isinstance(exc, ews_errors.TransportError) and _transient(exc):
            return ProviderError(f"{label}: cannot reach {server} while {what}: {text}")
        return ConfigError(
            f"{label}: {server} does not answer as Exchange Web Services ({text[:120]}); give "
            "the EWS address, e.g. https://mail.example.org/EWS/Exchange.asmx"
        )
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return ProviderError(f"{label}: cannot reach {server} while {what}: {text}")
    if isinstance(
        exc, ews_errors.ErrorInternalServerTransientError | ews_errors.ErrorTimeoutExpired
    ):
        return ProviderError(f"{label}: Exchange kept failing while {what} ({text})")
    error = ProviderError(f"{label}: Exchange refused {what}: {text}")
    error.status = 400 if isinstance(exc, ews_errors.ResponseMessageError) else None
    return error
