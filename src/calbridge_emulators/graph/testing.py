"""Test helpers for code that talks to Microsoft Graph: run the emulator over real HTTP.

Typical use (pytest)::

    from calbridge_emulators.graph.testing import running_emulator

    with running_emulator(tls=True) as graph:
        app = msal.ConfidentialClientApplication(
            graph.client_id, client_credential=graph.client_secret,
            authority=graph.authority(), instance_discovery=False, verify=graph.verify)
        token = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
        http = httpx.Client(base_url=graph.graph_url, verify=graph.ssl_context, headers=...)
        graph.fail_next(2, status=429, path="calendarView/delta")
        ...
        graph.counters()["graph_operations"]

The handle exposes the in-process :class:`GraphEmulator` (``handle.emulator``) and
passthroughs for the common controls.  :class:`NotificationReceiver` is a small local webhook
endpoint for subscription tests.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from .emulator import GraphEmulator
from .faults import FaultRule
from .server import EmulatorServer
from .store import App, Calendar, Tenant, User
from .tls import ClientCertificate, make_client_certificate

GRAPH_SCOPE = "https://graph.microsoft.com/.default"

__all__ = [
    "GRAPH_SCOPE",
    "ClientCertificate",
    "GraphEmulatorHandle",
    "NotificationReceiver",
    "make_client_certificate",
    "running_emulator",
]


@dataclass
class GraphEmulatorHandle:
    """A running emulator.  URLs: ``base_url`` (scheme://127.0.0.1:port), ``graph_url``
    (``base_url + "/v1.0"``), ``login_base`` (identity root; MSAL authority =
    ``f"{login_base}/{tenant}"``).  ``verify`` (CA path) is for requests/MSAL, ``ssl_context``
    for httpx.  Note: requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override MSAL's
    ``verify``; unset them (or pass MSAL an ``http_client``) when they are set."""

    emulator: GraphEmulator
    server: EmulatorServer
    base_url: str
    graph_url: str
    login_base: str
    ca_cert_path: Path | None
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    user: str = ""
    _clients: list[httpx.Client] = field(default_factory=list)

    def link_options(self) -> dict[str, str]:
        """How calbridge signs in to this emulator: the keyword arguments of
        ``calbridge.sync.calendars.add_graph_calendar`` for the default app (tenant, client id
        and secret, API and login base, CA file)."""
        return {
            "tenant": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "api_base": self.graph_url,
            "login_base": self.login_base,
            "ca_file": str(self.ca_cert_path),
        }

    # URLs & clients -----------------------------------------------------------
    @property
    def verify(self) -> str | bool:
        """CA bundle path for requests/MSAL (``verify=``), or True for plain http."""
        return str(self.ca_cert_path) if self.ca_cert_path else True

    @property
    def ssl_context(self) -> ssl.SSLContext | bool:
        """What to pass as httpx's ``verify=`` (httpx deprecates CA paths as strings)."""
        if self.ca_cert_path is None:
            return True
        return ssl.create_default_context(cafile=str(self.ca_cert_path))

    def authority(self, tenant: str | None = None) -> str:
        return f"{self.login_base}/{tenant or self.tenant_id}"

    def token_url(self, tenant: str | None = None) -> str:
        return f"{self.authority(tenant)}/oauth2/v2.0/token"

    def acquire_token(
        self, client_id: str | None = None, secret: str | None = None, tenant: str | None = None
    ) -> str:
        """Client-credentials token via a plain POST (no MSAL needed)."""
        resp = httpx.post(
            self.token_url(tenant),
            data={
                "grant_type": "client_credentials",
                "client_id": client_id or self.client_id,
                "client_secret": secret or self.client_secret,
                "scope": GRAPH_SCOPE,
            },
            verify=self.ssl_context,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def graph_client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client with ``base_url=graph_url`` and a bearer token (closed on exit)."""
        headers = {"Authorization": f"Bearer {token or self.acquire_token()}"}
        headers.update(kwargs.pop("headers", {}))
        client = httpx.Client(
            base_url=self.graph_url, verify=self.ssl_context, headers=headers, **kwargs
        )
        self._clients.append(client)
        return client

    # control passthroughs -------------------------------------------------------
    def add_tenant(self, domain: str, tenant_id: str | None = None) -> Tenant:
        return self.emulator.add_tenant(domain, tenant_id)

    def add_app(self, tenant: str | Tenant, **kwargs: Any) -> App:
        """kwargs: client_id, secret, certificate_pem, roles, mailboxes, display_name."""
        return self.emulator.add_app(tenant, **kwargs)

    def add_user(self, tenant: str | Tenant, upn: str, display_name: str | None = None) -> User:
        return self.emulator.add_user(tenant, upn, display_name)

    def add_calendar(self, user: str, name: str) -> Calendar:
        return self.emulator.add_calendar(user, name)

    def fail_next(self, count: int = 1, status: int = 429, **kwargs: Any) -> FaultRule:
        """kwargs: method, path (regex on "/users/...?query"), retry_after, code, message,
        scope ("any" | "top" | "inner")."""
        return self.emulator.fail_next(count, status, **kwargs)

    def clear_faults(self) -> None:
        self.emulator.clear_faults()

    def set_fail_rate(self, rate: float, seed: int = 0) -> None:
        self.emulator.set_fail_rate(rate, seed)

    def invalidate_delta_tokens(self, user: str | None = None, calendar: str | None = None) -> None:
        self.emulator.invalidate_delta_tokens(user, calendar)

    def counters(self) -> dict[str, Any]:
        return self.emulator.counter_snapshot()

    def reset_counters(self) -> None:
        self.emulator.reset_counters()

    def advance_clock(self, seconds: float) -> None:
        self.emulator.advance_clock(seconds)

    def external_create(
        self, user: str, event: dict[str, Any], calendar: str | None = None
    ) -> dict[str, Any]:
        return self.emulator.external_create(user, event, calendar)

    def external_update(
        self, user: str, event_id: str, patch: dict[str, Any], is_cancelled: bool | None = None
    ) -> None:
        self.emulator.external_update(user, event_id, patch, is_cancelled)

    def external_delete(self, user: str, event_id: str) -> None:
        self.emulator.external_delete(user, event_id)

    def wait_notifications(self, timeout: float = 10.0) -> bool:
        return self.emulator.wait_notifications(timeout)

    def lifecycle(self, subscription_id: str, event: str) -> None:
        """Send a lifecycle notification (``reauthorizationRequired``, ``missed``,
        ``subscriptionRemoved``) to the subscription's lifecycle URL."""
        self.emulator.subscriptions.lifecycle(subscription_id, event)

    @property
    def notifications(self) -> list[dict[str, Any]]:
        return self.emulator.notifications

    def save(self) -> None:
        self.emulator.save()


@contextmanager
def running_emulator(
    tls: bool = False,
    data_dir: Path | None = None,
    fail_rate: float = 0.0,
    seed: int = 0,
    host: str = "127.0.0.1",
    seed_default: bool = True,
) -> Iterator[GraphEmulatorHandle]:
    """Start an emulator on a free port; yields a :class:`GraphEmulatorHandle`.

    With ``seed_default`` a tenant, an app (``Calendars.ReadWrite``, secret) and one mailbox
    are created; their ids are on the handle (``tenant_id``, ``client_id``, ``client_secret``,
    ``user``).  ``tls=True`` serves https with a throw-away CA (``handle.ca_cert_path``).
    """
    emulator = GraphEmulator(data_dir=data_dir, fail_rate=fail_rate, seed=seed)
    creds = emulator.seed_default() if seed_default else {}
    tls_dir = (data_dir / "tls") if (tls and data_dir is not None) else None
    server = EmulatorServer(emulator, host=host, tls=tls, tls_dir=tls_dir)
    server.start()
    handle = GraphEmulatorHandle(
        emulator=emulator,
        server=server,
        base_url=server.base_url,
        graph_url=f"{server.base_url}/v1.0",
        login_base=server.base_url,
        ca_cert_path=server.tls.ca_path if server.tls else None,
        tenant_id=creds.get("tenant_id", ""),
        client_id=creds.get("client_id", ""),
        client_secret=creds.get("client_secret", ""),
        user=creds.get("user", ""),
    )
    try:
        yield handle
    finally:
        for client in handle._clients:
            client.close()
        server.stop()
        emulator.close()


class NotificationReceiver:
    """A local webhook endpoint: answers Graph's validation handshake and records
    notifications.  ``mode``: "echo" (correct), "wrong" (echoes a different token),
    "error" (answers 500).  ``url`` is the notificationUrl to register."""

    def __init__(self, mode: str = "echo", host: str = "127.0.0.1") -> None:
        self.mode = mode
        self.validations: list[str] = []
        self.notifications: list[dict[str, Any]] = []
        self._event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if "validationToken" in query:
                    token = query["validationToken"][0]
                    receiver.validations.append(token)
                    if receiver.mode == "error":
                        self.send_response(500)
                        self.end_headers()
                        return
                    text = token if receiver.mode == "echo" else token + "x"
                    payload = text.encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                with receiver._event:
                    receiver.notifications.extend(json.loads(raw).get("value", []))
                    receiver._event.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/notify"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> NotificationReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` notifications arrived; returns them all."""
        with self._event:
            self._event.wait_for(lambda: len(self.notifications) >= count, timeout)
            return list(self.notifications)
