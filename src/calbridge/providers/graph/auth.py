"""App-only sign-in to Microsoft Graph (OAuth client credentials) through MSAL.

A venue connects every staff mailbox with one app registration: a client secret or a
certificate, admin-consented ``Calendars.ReadWrite``. MSAL does the protocol (tenant discovery,
token request, the signed client assertion for certificates) and caches the access token.

Why a process-wide cache of MSAL applications (:class:`TokenSources`): the engine opens a fresh
provider for every sync, and a new MSAL application means a tenant discovery and a token request
each time — three requests for a sync that has nothing to do, where the budget is two. MSAL's own
guidance is to keep one application object per credential for the life of the process; the
cache is keyed by authority, client id and a hash of the credential, and holds no connections.
Across processes (each CLI run is one), a source is seeded with the MSAL state kept, sealed, in
the calendar's secret (:mod:`calbridge.providers.graph.cache`): the discovery document and a
still-valid token, so a no-change sync needs only its delta request.

MSAL talks HTTP through ``requests``, which lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``
override a session's ``verify``; :class:`CountingHttp` therefore passes ``verify`` on every call
(and counts the calls: token requests are part of a sync's request figure).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from calbridge.errors import ConfigError, ProviderAuthError, ProviderError
from calbridge.providers.graph.cache import MsalState

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
LOGIN_BASE = "https://login.microsoftonline.com"
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class AppCredentials:
    """Who signs in: the tenant, the app (client id) and its secret or certificate (PEM with
    the private key and the certificate). ``ca_file`` trusts a private CA (the emulator)."""

    tenant: str
    client_id: str
    client_secret: str | None = None
    certificate_pem: str | None = None
    login_base: str = LOGIN_BASE
    ca_file: str | None = None

    @property
    def authority(self) -> str:
        return f"{self.login_base.rstrip('/')}/{self.tenant}"

    def fingerprint(self) -> str:
        blob = "\x00".join(
            (
                self.authority,
                self.client_id,
                self.client_secret or "",
                self.certificate_pem or "",
                self.ca_file or "",
            )
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def msal_credential(self) -> str | dict[str, str]:
        if self.client_secret:
            return self.client_secret
        if self.certificate_pem:
            return certificate_credential(self.certificate_pem)
        raise ConfigError("a Microsoft 365 calendar needs a client secret or a certificate")


def certificate_credential(pem: str) -> dict[str, str]:
    """MSAL's certificate credential from one PEM text holding the key and the certificate."""
    blocks = {m.group(1): m.group(0) for m in _PEM_BLOCK.finditer(pem)}
    key = next((text for kind, text in blocks.items() if kind.endswith("PRIVATE KEY")), None)
    cert = blocks.get("CERTIFICATE")
    if key is None or cert is None:
        raise ConfigError(
            "the certificate file must hold the private key and the certificate (PEM): "
            "cat key.pem cert.pem > app.pem"
        )
    try:
        serialization.load_pem_private_key(key.encode(), password=None)
        x509.load_pem_x509_certificate(cert.encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the certificate file cannot be read ({exc})") from exc
    return {"private_key": key, "public_certificate": cert}


class CountingHttp:
    """The ``http_client`` MSAL calls: a requests session with ``verify`` forced, counted."""

    def __init__(self, verify: str | bool, timeout: float) -> None:
        self.session = requests.Session()
        self.verify = verify
        self.timeout = timeout
        self.requests = 0

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("POST", url, **kwargs)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.requests += 1
        kwargs["verify"] = self.verify
        # A token lasts an hour: keeping a connection idle that long helps no one.
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "Connection": "close"}
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, url, **kwargs)

    def close(self) -> None:
        self.session.close()


class TokenSource:
    """One MSAL application (and its token cache) for one set of credentials."""

    def __init__(self, creds: AppCredentials, timeout: float = 30) -> None:
        self.creds = creds
        self.http = CountingHttp(creds.ca_file or True, timeout)
        self.lock = threading.Lock()
        self.state = MsalState()
        self._seeded = False
        self._app: msal.ConfidentialClientApplication | None = None

    def seed(self, saved: Any) -> None:
        """Start from a state a previous process saved (:meth:`export_state`), unless this
        process already has one for these credentials (it is at least as fresh)."""
        with self.lock:
            if self._app is None and not self._seeded:
                self.state.load(saved)
            self._seeded = True

    def export_state(self) -> dict[str, Any]:
        """MSAL's token and discovery caches as JSON, for the calendar's sealed secret."""
        with self.lock:
            return self.state.to_json()

    def token(self, label: str, relink: str, fresh: bool = False) -> tuple[str, int]:
        """An access token for Graph and the number of HTTP requests it took (0 if cached).
        ``fresh`` drops the cached token first (after Graph refused it); ``relink`` is the
        command that links the calendar again, for the messages."""
        with self.lock:
            before = self.http.requests
            try:
                app = self._application(label)
                if fresh:
                    app.remove_tokens_for_client()
                result = app.acquire_token_for_client([GRAPH_SCOPE])
            except requests.RequestException as exc:
                raise ProviderError(
                    f"{label}: cannot reach the Microsoft identity platform at "
                    f"{self.creds.login_base} ({type(exc).__name__}); check --login-base and the "
                    "network"
                ) from exc
            made = self.http.requests - before
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            answer = result if isinstance(result, dict) else {}
            raise sign_in_error(label, self.creds, answer, relink)
        return str(token), made

    def _application(self, label: str) -> msal.ConfidentialClientApplication:
        if self._app is None:
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.creds.client_id,
                    client_credential=self.creds.msal_credential(),
                    authority=self.creds.authority,
                    instance_discovery=False,
                    http_client=self.http,
                    token_cache=self.state.tokens,
                    http_cache=self.state.http,
                )
            except ValueError as exc:  # MSAL: "Unable to get authority configuration for ..."
                raise ConfigError(
                    f"{label}: the tenant '{self.creds.tenant}' is not known at "
                    f"{self.creds.login_base} ({str(exc).split('. ')[0]}); check --tenant (the "
                    "directory id or its domain, e.g. contoso.onmicrosoft.com)"
                ) from exc
        return self._app


def relink_command(name: str, mailbox: str, creds: AppCredentials, *, adding: bool = False) -> str:
    """The command that gives a calendar new app credentials, for error messages: ``calendars
    update`` for a linked calendar, ``calendars add`` again while it is being added."""
    how = "--client-secret-env VAR" if creds.client_secret else "--certificate FILE"
    if adding:
        return (
            f"`calbridge calendars add {name} --graph {mailbox} --tenant {creds.tenant} "
            f"--client-id {creds.client_id} {how}` again"
        )
    return f"`calbridge calendars update {name} {how}`"


def sign_in_error(
    label: str, creds: AppCredentials, result: dict[str, Any], relink: str
) -> ProviderAuthError | ConfigError:
    """The error a person can act on for a refused token request (AADSTS codes)."""
    codes = set(result.get("error_codes") or [])
    description = str(result.get("error_description") or result.get("error") or "no answer")
    first_line = description.split(" Trace ID:")[0].split(". ")[0].strip()
    if codes & {7000215, 7000222}:
        return ProviderAuthError(
            f"{label}: Microsoft 365 refused the client secret of app '{creds.client_id}' "
            f"({first_line[:160]}); create a new secret for the app (Entra admin center > App "
            f"registrations > Certificates & secrets), then run {relink}"
        )
    if codes & {700027, 700021, 700024, 700212, 50027}:
        return ProviderAuthError(
            f"{label}: Microsoft 365 refused the certificate of app '{creds.client_id}' "
            f"({first_line[:160]}); upload the certificate to the app registration, or run "
            f"{relink} with the registered one"
        )
    if codes & {700016}:
        return ConfigError(
            f"{label}: there is no app '{creds.client_id}' in tenant '{creds.tenant}' "
            f"({first_line[:160]}); check --client-id and --tenant"
        )
    if codes & {90002}:
        return ConfigError(
            f"{label}: the tenant '{creds.tenant}' does not exist ({first_line[:160]}); "
            "check --tenant"
        )
    return ProviderAuthError(
        f"{label}: signing in to Microsoft 365 as app '{creds.client_id}' failed "
        f"({first_line[:200]}); check the app registration, then run {relink}"
    )


class TokenSources:
    """A bounded map credentials -> :class:`TokenSource` (see the module docstring for why)."""

    def __init__(self, size: int = 256) -> None:
        self._sources: OrderedDict[str, TokenSource] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, creds: AppCredentials) -> TokenSource:
        key = creds.fingerprint()
        with self._lock:
            source = self._sources.get(key)
            if source is None:
                source = self._sources[key] = TokenSource(creds)
                while len(self._sources) > self._size:
                    _, dropped = self._sources.popitem(last=False)
                    dropped.http.close()
            self._sources.move_to_end(key)
            return source


SHARED_TOKENS = TokenSources()
