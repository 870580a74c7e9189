"""Microsoft identity platform (v2.0) endpoints for the client-credentials flow.

Emulated (what MSAL's ``ConfidentialClientApplication`` uses):

* ``GET {login}/{tenant}/v2.0/.well-known/openid-configuration`` (tenant id or domain);
  unknown tenant -> 400 ``invalid_tenant`` / AADSTS90002.
* ``POST {login}/{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials`` and
  either ``client_secret`` (body or HTTP Basic) or a ``client_assertion`` JWT (RS256 or PS256,
  ``x5t``/``x5t#S256`` thumbprint of a registered certificate, ``aud`` = token endpoint,
  ``iss`` = ``sub`` = client id, valid ``nbf``/``exp``).  Errors use the AAD JSON shape
  (``error``, ``error_description`` "AADSTSxxxx: ...", ``error_codes``, ``timestamp``,
  ``trace_id``, ``correlation_id``, ``error_uri``): wrong secret -> 401 ``invalid_client``
  AADSTS7000215, bad signature/unknown certificate -> 401 ``invalid_client`` AADSTS700027,
  unknown app -> 400 ``unauthorized_client`` AADSTS700016, bad scope -> 400 ``invalid_scope``.
* ``GET {login}/{tenant}/discovery/v2.0/keys`` (JWKS of the emulator's token-signing key) and
  ``GET {login}/common/discovery/instance`` (instance discovery).

Access tokens are real RS256 JWTs (v1.0 app tokens: ``aud`` https://graph.microsoft.com,
``iss`` https://sts.windows.net/{tid}/, ``roles``, ``appid``, ``tid``, ``idtyp`` app) that the
Graph side verifies (signature, audience, lifetime).  Simplification: MSAL requires an https
authority, so MSAL-based clients must run the emulator with ``tls=True``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .store import App, Store, Tenant
from .util import Clock, GraphError, b64url, b64url_decode, new_guid

GRAPH_AUDIENCES = (
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000",
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = 3599


class AadError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description

    def body(self, now: datetime) -> dict[str, Any]:
        trace, corr = new_guid(), new_guid()
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace} "
            f"Correlation ID: {corr} Timestamp: {stamp}",
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def _jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("JWT is not well formed")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("JWT is not well formed")
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), b64url_decode(parts[2])


def cert_thumbprints(pem: str) -> tuple[str, str]:
    """(x5t, x5t#S256) of a PEM certificate, base64url as they appear in JWT headers."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return b64url(hashlib.sha1(der).digest()), b64url(hashlib.sha256(der).digest())


class Authority:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        pem = store.secrets.get("signing_key_pem")
        if pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            store.secrets["signing_key_pem"] = pem
        loaded = serialization.load_pem_private_key(pem.encode(), None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        self._key = loaded
        numbers = self._key.public_key().public_numbers()
        self._kid = b64url(hashlib.sha256(str(numbers.n).encode()).digest()[:20])
        self.token_lifetime = TOKEN_LIFETIME

    # discovery ---------------------------------------------------------------
    def openid_configuration(self, login_base: str, tenant_key: str) -> dict[str, Any]:
        tenant = self.store.tenant(tenant_key)
        if tenant is None:
            raise AadError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant_key}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud.",
            )
        base = f"{login_base}/{tenant.id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "nonce", "roles"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()

        def enc(n: int) -> str:
            return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self._kid,
                    "n": enc(numbers.n),
                    "e": enc(numbers.e),
                }
            ]
        }

    # token endpoint -----------------------------------------------------------
    def token(
        self, login_base: str, tenant_key: str, form: dict[str, str], basic: str | None
    ) -> dict[str, Any]:
        tenant = self.store.tenant(tenant_key)
        if tenant is None:
            raise AadError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant_key}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud.",
            )
        grant = form.get("grant_type")
        if grant != "client_credentials":
            raise AadError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = form.get("client_id", "")
        secret = form.get("client_secret")
        if basic:
            decoded = base64.b64decode(basic).decode()
            client_id, _, secret = decoded.partition(":")
        app = self.store.apps.get(client_id)
        if app is None or app.tenant_id != tenant.id:
            raise AadError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.domain}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant.",
            )
        self._check_scope(form.get("scope", ""))
        if form.get("client_assertion"):
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise AadError(
                    400, "invalid_request", 50027, "Invalid client_assertion_type parameter."
                )
            self._check_assertion(app, tenant, form["client_assertion"])
            acr = "2"
        elif secret is not None:
            if secret not in app.secrets:
                raise AadError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID, for a "
                    f"secret added to app '{app.client_id}'.",
                )
            acr = "1"
        else:
            raise AadError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": self._issue(app, tenant, acr),
        }

    @staticmethod
    def _check_scope(scope: str) -> None:
        scopes = [s for s in scope.split() if s not in ("openid", "profile", "offline_access")]
        ok = len(scopes) == 1 and scopes[0].rstrip("/").lower() in (
            "https://graph.microsoft.com/.default",
            "00000003-0000-0000-c000-000000000000/.default",
        )
        if not ok:
            raise AadError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )

    def _check_assertion(self, app: App, tenant: Tenant, assertion: str) -> None:
        try:
            header, claims, signed, signature = _jwt_parts(assertion)
        except ValueError as exc:
            raise AadError(
                401, "invalid_client", 50027, "JWT token is invalid or malformed."
            ) from exc
        by_thumb: dict[str, str] = {}
        for pem in app.certificates:
            sha1, sha256 = cert_thumbprints(pem)
            by_thumb[sha1] = by_thumb[sha256] = pem
        signer = by_thumb.get(str(header.get("x5t#S256")).rstrip("=")) or by_thumb.get(
            str(header.get("x5t")).rstrip("=")
        )
        if signer is None:
            raise AadError(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Please visit "
                f"the Azure Portal, Graph Explorer or directly use MS Graph to see configured "
                f"keys for app Id '{app.client_id}'.]",
            )
        public = x509.load_pem_x509_certificate(signer.encode()).public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        alg = header.get("alg")
        try:
            if alg == "RS256":
                public.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "PS256":
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                public.verify(signature, signed, pss, hashes.SHA256())
            else:
                raise InvalidSignature
        except InvalidSignature as exc:
            raise AadError(
                401, "invalid_client", 700027, "Client assertion contains an invalid signature."
            ) from exc
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise AadError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        aud = str(claims.get("aud", ""))
        if not aud.rstrip("/").endswith("/oauth2/v2.0/token") or not (
            f"/{tenant.id}/" in aud or f"/{tenant.domain}/".lower() in aud.lower()
        ):
            raise AadError(
                401, "invalid_client", 700212, f"Client assertion audience '{aud}' is invalid."
            )
        now = self.clock.timestamp()
        if float(claims.get("exp", 0)) < now - 300 or float(claims.get("nbf", 0)) > now + 300:
            raise AadError(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            )

    def _issue(self, app: App, tenant: Tenant, acr: str) -> str:
        now = int(self.clock.timestamp())
        header = {"typ": "JWT", "alg": "RS256", "kid": self._kid, "x5t": self._kid}
        claims = {
            "aud": "https://graph.microsoft.com",
            "iss": f"https://sts.windows.net/{tenant.id}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "aio": b64url(os.urandom(24)),
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": acr,
            "idp": f"https://sts.windows.net/{tenant.id}/",
            "idtyp": "app",
            "oid": app.client_id,
            "rh": "0.emulator.",
            "roles": sorted(app.roles),
            "sub": app.client_id,
            "tenant_region_scope": "EU",
            "tid": tenant.id,
            "uti": b64url(os.urandom(16)),
            "ver": "1.0",
        }
        signing = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        sig = self._key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{b64url(sig)}"

    # Graph side ------------------------------------------------------------------
    def validate_bearer(self, authorization: str | None) -> dict[str, Any]:
        """Validate a Graph ``Authorization`` header; returns the token claims."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        token = authorization[7:].strip()
        if "." not in token:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "IDX14100: JWT is not well formed, there are no dots (.).",
            )
        try:
            _, claims, signed, signature = _jwt_parts(token)
            self._key.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature) as exc:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure."
            ) from exc
        if claims.get("aud") not in GRAPH_AUDIENCES:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )
        if float(claims.get("exp", 0)) <= self.clock.timestamp():
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        return claims
