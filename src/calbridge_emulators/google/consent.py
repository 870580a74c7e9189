"""OAuth 2.0 for installed apps: the authorization endpoint and the ``authorization_code`` grant.

Emulated documented behaviour (Google Identity, "OAuth 2.0 for iOS & Desktop Apps", loopback IP
address flow; RFC 6749 §4.1, RFC 7636 PKCE, RFC 8252 §7.3):

* ``GET /o/oauth2/auth`` (also ``/o/oauth2/v2/auth``) with ``client_id``, ``redirect_uri``,
  ``response_type=code``, ``scope``, and optionally ``state``, ``code_challenge`` +
  ``code_challenge_method`` (``S256``, or ``plain``, the default), ``login_hint``,
  ``access_type``, ``prompt``.
* A bad request is never redirected (RFC 6749 §4.1.2.1): Google shows the person an error page -
  "Error 401: invalid_client" (unknown client), "Error 400: redirect_uri_mismatch" (not a
  loopback URI: ``http`` to ``127.0.0.1``, ``[::1]`` or ``localhost``, any port), "Error 400:
  invalid_request" (a missing parameter, a malformed PKCE challenge, the blocked out-of-band
  ``urn:ietf:wg:oauth:2.0:oob``), "Error 400: invalid_scope", "unsupported_response_type".
* Otherwise the person signed in at the browser answers: the one named by ``login_hint`` when
  an answer is configured for them, else the last one configured (:meth:`ConsentPage.set`).
  Allow: 302 to ``redirect_uri`` with ``code``, ``scope`` and ``state``; Cancel: 302 with
  ``error=access_denied`` and ``state``.
* ``POST /token`` with ``grant_type=authorization_code``: the client authenticates with
  ``client_id`` + ``client_secret`` in the form or HTTP Basic (``requests-oauthlib``'s default);
  unknown client or wrong secret -> 401 ``invalid_client``, no secret -> ``invalid_request``
  (Google wants it from desktop clients even with PKCE).  The code must be this client's, unused
  and at most 10 minutes old on the emulator's clock (``invalid_grant``), the ``redirect_uri``
  the same as on the consent request (``redirect_uri_mismatch``), and the ``code_verifier``
  match the challenge when one was sent (``invalid_grant``).  The answer holds
  ``access_token``, ``expires_in``, ``refresh_token``, ``scope`` and ``token_type``; the refresh
  token then works with the ``refresh_token`` grant until its user is revoked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from .auth import ANY_CALENDAR, Authenticator
from .errors import OAuthError
from .model import AuthCode, Consent, OAuthClient
from .store import Store

CODE_GRANT = "authorization_code"
CODE_LIFETIME = 600
OOB_REDIRECT = "urn:ietf:wg:oauth:2.0:oob"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
SIGN_IN_SCOPES = frozenset(
    {
        "openid",
        "email",
        "profile",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
    }
)
KNOWN_SCOPES = ANY_CALENDAR | SIGN_IN_SCOPES
PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


@dataclass(frozen=True)
class Authorization:
    """The authorization endpoint's answer: a redirect to ``location``, or an error ``page``."""

    status: int
    location: str | None = None
    page: str = ""


class PageError(Exception):
    """A consent request Google refuses on its own error page (never redirected)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def page(self) -> str:
        title = f"Error {self.status}: {self.error}"
        return (
            f"<!doctype html><title>{title}</title><h1>Access blocked: authorization error</h1>"
            f"<p>{html.escape(self.description)}</p><p>{title}</p>"
        )


def is_loopback_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and not parts.fragment


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def installed_client_file(client: OAuthClient, base_url: str) -> dict[str, Any]:
    """A client-secrets file as the Cloud console downloads it for a "Desktop app" client,
    with its endpoints on the emulator."""
    return {
        "installed": {
            "client_id": client.client_id,
            "project_id": "calbridge-emulator",
            "auth_uri": f"{base_url}/o/oauth2/auth",
            "token_uri": f"{base_url}/token",
            "auth_provider_x509_cert_url": f"{base_url}/oauth2/v1/certs",
            "client_secret": client.client_secret,
            "redirect_uris": ["http://localhost"],
        }
    }


class ConsentPage:
    """Google's consent page and the code exchange, bound to a :class:`Store`."""

    def __init__(self, store: Store, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth

    def set(self, email: str, granted: bool = True, scopes: list[str] | None = None) -> None:
        """``email`` is signed in at the browser and answers Allow (``granted``) or Cancel.

        ``scopes``, when given, is what the grant holds instead of what was asked: a test's way
        to get a grant without a scope the app needs, as unticking a box on Google's granular
        consent screen does (Google shows those boxes only when an app asks for several)."""
        email = email.lower()
        with self.store.lock:
            self.store.consents[email] = Consent(email, granted, scopes)
            self.store.signed_in = email

    # -- the authorization endpoint ----------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> Authorization:
        with self.store.lock:
            try:
                client, redirect_uri, scopes = self._validate(query)
            except PageError as exc:
                return Authorization(exc.status, page=exc.page())
            person = self._person(query.get("login_hint"))
            if person is None:
                error = PageError(
                    "emulator_no_user",
                    "Nobody is signed in at the emulator's browser: call set_consent(email) "
                    "(POST /_emulator/consent) before opening the consent page.",
                )
                return Authorization(error.status, page=error.page())
            answer: dict[str, str]
            if person.granted:
                if person.scopes is not None:
                    scopes = list(person.scopes)
                code = self._new_code(client, person.email, scopes, redirect_uri, query)
                answer = {"code": code, "scope": " ".join(scopes)}
            else:
                answer = {"error": "access_denied"}
        if "state" in query:
            answer["state"] = query["state"]
        joiner = "&" if urlsplit(redirect_uri).query else "?"
        return Authorization(302, location=f"{redirect_uri}{joiner}{urlencode(answer)}")

    def _validate(self, query: dict[str, str]) -> tuple[OAuthClient, str, list[str]]:
        def missing(name: str) -> PageError:
            return PageError("invalid_request", f"Missing required parameter: {name}")

        if not query.get("client_id"):
            raise missing("client_id")
        client = self.store.oauth_clients.get(query["client_id"])
        if client is None:
            raise PageError("invalid_client", "The OAuth client was not found.", status=401)
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri:
            raise missing("redirect_uri")
        if redirect_uri == OOB_REDIRECT:
            raise PageError(
                "invalid_request",
                "The out-of-band (OOB) flow has been blocked in order to keep users secure.",
            )
        if not is_loopback_redirect(redirect_uri):
            raise PageError(
                "redirect_uri_mismatch",
                "You can't sign in to this app because it doesn't comply with Google's OAuth "
                f"2.0 policy. Request details: redirect_uri={redirect_uri}",
            )
        response_type = query.get("response_type")
        if not response_type:
            raise missing("response_type")
        if response_type != "code":
            raise PageError("unsupported_response_type", f"Invalid response_type: {response_type}")
        scopes = query.get("scope", "").split()
        if not scopes:
            raise missing("scope")
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown:
            raise PageError(
                "invalid_scope", f"Some requested scopes were invalid. {{invalid={unknown}}}"
            )
        self._validate_challenge(query)
        return client, redirect_uri, scopes

    @staticmethod
    def _validate_challenge(query: dict[str, str]) -> None:
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method")
        if method and not challenge:
            raise PageError("invalid_request", "Missing required parameter: code_challenge")
        if challenge is None:
            return
        if (method or "plain") not in ("S256", "plain"):
            raise PageError("invalid_request", f"Invalid code_challenge_method: {method}")
        if not PKCE_VALUE.fullmatch(challenge):
            raise PageError("invalid_request", "Invalid code_challenge.")

    def _person(self, login_hint: str | None) -> Consent | None:
        consents = self.store.consents
        hinted = consents.get((login_hint or "").lower())
        return hinted or consents.get(self.store.signed_in or "")

    def _new_code(
        self,
        client: OAuthClient,
        email: str,
        scopes: list[str],
        redirect_uri: str,
        query: dict[str, str],
    ) -> str:
        code = "4/0A" + secrets.token_urlsafe(40)
        challenge = query.get("code_challenge")
        self.store.auth_codes[code] = AuthCode(
            code=code,
            client_id=client.client_id,
            principal=email,
            scopes=scopes,
            redirect_uri=redirect_uri,
            expires_at=self.store.clock.time() + CODE_LIFETIME,
            challenge=challenge,
            challenge_method=(query.get("code_challenge_method") or "plain") if challenge else None,
        )
        return code

    # -- the token endpoint's authorization_code grant ---------------------------------------
    def exchange(self, form: dict[str, str]) -> dict[str, Any]:
        """Redeem a code for tokens; raises :class:`OAuthError` as Google's token endpoint
        answers."""
        with self.store.lock:
            client = self._client(form)
            if not form.get("code"):
                raise OAuthError("invalid_request", "Missing required parameter: code")
            grant = self.store.auth_codes.get(form["code"])
            if grant is None:
                raise OAuthError("invalid_grant", "Malformed auth code.")
            expired = grant.expires_at <= self.store.clock.time()
            if grant.used or expired or grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "Bad Request")
            if form.get("redirect_uri") != grant.redirect_uri:
                raise OAuthError("redirect_uri_mismatch", "Bad Request")
            _check_verifier(grant, form.get("code_verifier"))
            grant.used = True
            refresh = self.store.issue_refresh_token(
                client.client_id, grant.principal, grant.scopes
            )
            tokens = self.auth.issue(grant.principal, grant.scopes)
        return {**tokens, "refresh_token": refresh, "scope": " ".join(grant.scopes)}

    def _client(self, form: dict[str, str]) -> OAuthClient:
        if not form.get("client_id"):
            raise OAuthError("invalid_request", "Could not determine client ID from request.")
        client = self.store.oauth_clients.get(form["client_id"])
        if client is None:
            raise OAuthError("invalid_client", "The OAuth client was not found.", status=401)
        secret = form.get("client_secret")
        if not secret:
            raise OAuthError("invalid_request", "client_secret is missing.")
        if not hmac.compare_digest(secret, client.client_secret):
            raise OAuthError("invalid_client", "Unauthorized", status=401)
        return client


def _check_verifier(grant: AuthCode, verifier: str | None) -> None:
    if grant.challenge is None:
        return
    if not verifier:
        raise OAuthError("invalid_grant", "Missing code verifier.")
    expected = s256(verifier) if grant.challenge_method == "S256" else verifier
    if not PKCE_VALUE.fullmatch(verifier) or not hmac.compare_digest(expected, grant.challenge):
        raise OAuthError("invalid_grant", "Invalid code verifier.")
