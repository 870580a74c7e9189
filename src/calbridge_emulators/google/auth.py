"""OAuth 2.0: token endpoint (JWT bearer + refresh token grants) and bearer-token checks.

Emulated documented behaviour:

* ``POST /token`` with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an RS256
  ``assertion`` as ``google.oauth2.service_account.Credentials`` sends it: ``iss`` = service
  account email, ``aud`` = Google's token URI (or the emulator's), ``scope`` (space separated),
  optional ``sub`` (domain-wide delegation), ``iat``/``exp`` at most one hour apart.  The
  signature is verified against the public key registered for the header's ``kid``
  (``private_key_id``).  Errors use RFC 6749 bodies: ``invalid_grant`` (bad signature, unknown
  account, revoked grant, unknown delegated user), ``invalid_scope`` (no scope),
  ``unauthorized_client`` (delegation not allowed);
* ``grant_type=refresh_token`` (``google.oauth2.credentials.Credentials``) with a registered
  client id/secret; revoked or unknown refresh tokens give ``invalid_grant``;
* ``grant_type=authorization_code`` (the installed-app flow) is in ``consent.py``, beside the
  authorization endpoint that issues the codes;
* API calls need ``Authorization: Bearer <token>`` (or ``access_token``/``oauth_token`` query
  parameter): missing -> 401 ``required``, unknown/expired/revoked -> 401 ``authError``; a token
  without a suitable Calendar scope -> 403 ``insufficientPermissions``.  Self-signed service
  account JWTs (``always_use_jwt_access``) are accepted as bearer tokens too.

Assertion ``iat``/``exp`` are checked against the real wall clock (the client signs with it),
while access-token expiry follows the emulator's adjustable clock.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import OAuthError, auth_error, auth_required, insufficient_permissions
from .model import AccessToken, ServiceAccount
from .store import Store

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH_GRANT = "refresh_token"
GOOGLE_TOKEN_AUDIENCES = frozenset(
    {
        "https://oauth2.googleapis.com/token",
        "https://accounts.google.com/o/oauth2/token",
        "https://www.googleapis.com/oauth2/v4/token",
    }
)
ACCESS_TOKEN_LIFETIME = 3599
MAX_ASSERTION_LIFETIME = 3600
CLOCK_SKEW = 300

_S = "https://www.googleapis.com/auth/calendar"
CALENDAR_SCOPE = _S
READ_EVENTS = frozenset(
    {_S, f"{_S}.readonly", f"{_S}.events", f"{_S}.events.readonly", f"{_S}.events.owned",
     f"{_S}.events.owned.readonly"}
)  # fmt: skip
WRITE_EVENTS = frozenset({_S, f"{_S}.events", f"{_S}.events.owned"})
READ_CALENDARS = frozenset(
    {_S, f"{_S}.readonly", f"{_S}.calendars", f"{_S}.calendars.readonly", f"{_S}.app.created"}
)
WRITE_CALENDARS = frozenset({_S, f"{_S}.calendars", f"{_S}.app.created"})
CALENDAR_LIST = frozenset(
    {_S, f"{_S}.readonly", f"{_S}.calendarlist", f"{_S}.calendarlist.readonly"}
)
ANY_CALENDAR = READ_EVENTS | WRITE_EVENTS | READ_CALENDARS | CALENDAR_LIST


@dataclass(frozen=True)
class Principal:
    email: str
    scopes: frozenset[str]


def require_scope(principal: Principal, allowed: frozenset[str]) -> None:
    if not principal.scopes & allowed:
        raise insufficient_permissions()


# -- JWT -------------------------------------------------------------------------------------
def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _bad_signature() -> OAuthError:
    return OAuthError("invalid_grant", "Invalid JWT Signature.")


def verify_jwt(store: Store, token: str) -> tuple[dict[str, Any], ServiceAccount]:
    """Verify an RS256 JWT signed by a registered service-account key; returns its claims."""
    try:
        head_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(_b64url_decode(head_b64))
        claims = json.loads(_b64url_decode(claims_b64))
        signature = _b64url_decode(sig_b64)
    except (ValueError, TypeError) as exc:
        raise OAuthError("invalid_grant", "Invalid JWT: malformed assertion.") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise OAuthError("invalid_grant", "Invalid JWT: malformed assertion.")
    if header.get("alg") != "RS256":
        raise _bad_signature()
    sa = store.service_accounts.get(str(claims.get("iss", "")).lower())
    if sa is None:
        raise OAuthError("invalid_grant", "Invalid grant: account not found")
    kid = header.get("kid")
    candidates = [sa.keys[kid]] if kid in sa.keys else ([] if kid else list(sa.keys.values()))
    signing_input = f"{head_b64}.{claims_b64}".encode()
    for pem in candidates:
        key = serialization.load_pem_public_key(pem.encode())
        assert isinstance(key, rsa.RSAPublicKey)
        try:
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return claims, sa
    raise _bad_signature()


def _check_lifetime(claims: dict[str, Any]) -> None:
    now = time.time()
    try:
        iat, exp = int(claims["iat"]), int(claims["exp"])
    except (KeyError, TypeError, ValueError) as exc:
        raise OAuthError("invalid_grant", "Invalid JWT: missing iat/exp claims.") from exc
    if exp - iat > MAX_ASSERTION_LIFETIME or iat > now + CLOCK_SKEW or exp < now - CLOCK_SKEW:
        raise OAuthError(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
            "timeframe. Check your iat and exp values in the JWT claim.",
        )


class Authenticator:
    """Token endpoint and bearer-token verification bound to a :class:`Store`."""

    def __init__(self, store: Store, token_url: str) -> None:
        self.store = store
        self.token_url = token_url

    def issue(self, principal: str, scopes: list[str]) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(48)
        expires = self.store.clock.time() + ACCESS_TOKEN_LIFETIME
        self.store.access_tokens[token] = AccessToken(token, principal, scopes, expires)
        self.store.dirty = True
        return {"access_token": token, "expires_in": ACCESS_TOKEN_LIFETIME, "token_type": "Bearer"}

    def token_endpoint(self, form: dict[str, str]) -> dict[str, Any]:
        """Handle one token request; raises :class:`OAuthError` for RFC 6749 errors."""
        grant = form.get("grant_type")
        with self.store.lock:
            if grant == JWT_GRANT:
                return self._jwt_grant(form.get("assertion", ""))
            if grant == REFRESH_GRANT:
                return self._refresh_grant(form)
        raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _jwt_grant(self, assertion: str) -> dict[str, Any]:
        claims, sa = verify_jwt(self.store, assertion)
        aud = claims.get("aud")
        if aud not in GOOGLE_TOKEN_AUDIENCES and aud != self.token_url:
            raise OAuthError("invalid_grant", "Invalid JWT: Failed audience check.")
        _check_lifetime(claims)
        scopes = str(claims.get("scope") or "").split()
        if not scopes:
            raise OAuthError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        principal = sa.email
        sub = claims.get("sub")
        if sub:
            sub = str(sub).lower()
            denied = not sa.delegation or (
                sa.delegation_scopes is not None and not set(scopes) <= set(sa.delegation_scopes)
            )
            if denied:
                raise OAuthError(
                    "unauthorized_client",
                    "Client is unauthorized to retrieve access tokens using this method, or "
                    "client not authorized for any of the scopes requested.",
                    status=401,
                )
            if sub not in self.store.users:
                raise OAuthError("invalid_grant", "Invalid email or User ID")
            principal = sub
        if principal in self.store.revoked or sa.email in self.store.revoked:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        return self.issue(principal, scopes)

    def _refresh_grant(self, form: dict[str, str]) -> dict[str, Any]:
        client = self.store.oauth_clients.get(form.get("client_id", ""))
        if client is None or client.client_secret != form.get("client_secret"):
            raise OAuthError("invalid_client", "The OAuth client was not found.", status=401)
        grant = self.store.refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None or grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        if grant.principal in self.store.revoked:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        requested = form.get("scope", "").split()
        if requested and not set(requested) <= set(grant.scopes):
            raise OAuthError("invalid_scope", "Some requested scopes were invalid.")
        scopes = requested or grant.scopes
        out = self.issue(grant.principal, scopes)
        out["scope"] = " ".join(scopes)
        return out

    # -- API authentication ----------------------------------------------------------------
    def authenticate(self, headers: dict[str, str], query: dict[str, list[str]]) -> Principal:
        token = None
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
        elif query.get("access_token"):
            token = query["access_token"][-1]
        elif query.get("oauth_token"):
            token = query["oauth_token"][-1]
        if not token:
            raise auth_required()
        with self.store.lock:
            record = self.store.access_tokens.get(token)
            if record is not None:
                if record.expires_at <= self.store.clock.time():
                    raise auth_error()
                if record.principal in self.store.revoked:
                    raise auth_error()
                return Principal(record.principal, frozenset(record.scopes))
            if token.count(".") == 2:
                return self._self_signed(token)
        raise auth_error()

    def _self_signed(self, token: str) -> Principal:
        try:
            claims, sa = verify_jwt(self.store, token)
        except OAuthError as exc:
            raise auth_error() from exc
        if int(claims.get("exp", 0)) < time.time() - CLOCK_SKEW or sa.email in self.store.revoked:
            raise auth_error()
        scopes = str(claims.get("scope") or "").split()
        return Principal(sa.email, frozenset(scopes) if scopes else ANY_CALENDAR)


# -- key material helpers ----------------------------------------------------------------------
def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def service_account_info(
    *,
    email: str,
    key_id: str,
    private_pem: str,
    client_id: str,
    token_uri: str,
    project_id: str = "calbridge-emulator",
) -> dict[str, str]:
    """A service-account key file's content (``type: service_account``) for google-auth."""
    base = token_uri.rsplit("/", 1)[0]
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": client_id,
        "auth_uri": f"{base}/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": f"{base}/oauth2/v1/certs",
        "client_x509_cert_url": f"{base}/robot/v1/metadata/x509/{email}",
        "universe_domain": "googleapis.com",
    }
