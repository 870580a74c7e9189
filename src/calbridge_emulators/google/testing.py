"""Test helpers: run the emulator over real HTTP and get real google-auth credentials for it.

Typical use (connector tests, benchmarks)::

    with running_emulator() as gcal:
        cal_id = gcal.add_user("owner@example.com")
        key_file = gcal.write_service_account_key(tmp_path / "sa.json")
        creds = service_account.Credentials.from_service_account_file(
            key_file, scopes=[CALENDAR_SCOPE], subject="owner@example.com")
        service = build("calendar", "v3", credentials=creds, static_discovery=True,
                        client_options={"api_endpoint": gcal.api_endpoint})
        batch = BatchHttpRequest(callback=cb, batch_uri=gcal.batch_uri)

About batches: ``service.new_batch_http_request()`` derives its URI from the discovery
document's ``rootUrl`` (``https://www.googleapis.com/batch/calendar/v3``) and ignores
``client_options.api_endpoint`` (googleapiclient issue #1107).  Against the emulator either
construct ``BatchHttpRequest(batch_uri=gcal.batch_uri)`` yourself, or build the service from the
discovery document re-rooted at the emulator (:meth:`EmulatorHandle.build_service` with
``via="document"``, or ``build(..., discoveryServiceUrl=gcal.discovery_url,
static_discovery=False)``), after which ``new_batch_http_request()`` just works.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvicorn

from .app import create_app, listening_socket
from .auth import CALENDAR_SCOPE, generate_private_key
from .emulator import DEFAULT_SA_EMAIL, GoogleCalendarEmulator
from .events import insert_event
from .schema import discovery_document

__all__ = [
    "CALENDAR_SCOPE",
    "DEFAULT_SA_EMAIL",
    "EmulatorHandle",
    "NotificationReceiver",
    "notification_receiver",
    "running_emulator",
]


@lru_cache(maxsize=1)
def _shared_private_key() -> Any:
    """One RSA key reused by the helpers (key generation costs ~0.1 s)."""
    return generate_private_key()


class EmulatorHandle:
    """A running emulator: its URLs, its state/controls and credential helpers."""

    def __init__(self, emulator: GoogleCalendarEmulator, base_url: str) -> None:
        self.emulator = emulator
        self.base_url = base_url
        self._sa_infos: dict[str, dict[str, str]] = {}

    # -- URLs ------------------------------------------------------------------------------
    @property
    def api_endpoint(self) -> str:
        """``client_options={"api_endpoint": ...}`` value: ``<base>/calendar/v3/``."""
        return self.emulator.api_endpoint

    @property
    def batch_uri(self) -> str:
        return self.emulator.batch_uri

    @property
    def token_uri(self) -> str:
        return self.emulator.token_url

    @property
    def auth_uri(self) -> str:
        """The consent page of the installed-app flow (``auth_uri`` of client files)."""
        return f"{self.base_url}/o/oauth2/auth"

    @property
    def discovery_url(self) -> str:
        """``discoveryServiceUrl`` for ``build(..., static_discovery=False)``."""
        return f"{self.base_url}/discovery/v1/apis/{{api}}/{{apiVersion}}/rest"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_emulator"

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all emulator state (and the cached service-account keys)."""
        self.emulator.reset()
        self._sa_infos.clear()

    def add_user(
        self, email: str, *, display_name: str | None = None, time_zone: str = "UTC"
    ) -> str:
        """Create a user with a primary calendar; returns its id (the email)."""
        return self.emulator.add_user(email, display_name=display_name, time_zone=time_zone)

    def add_room(self, email: str, name: str, capacity: int | None = None) -> str:
        """A Workspace room resource that answers invitations (accepts when free)."""
        return self.emulator.add_room(email, name, capacity)

    def seed_events(
        self, calendar_id: str, events: Iterable[dict[str, Any]], *, principal: str | None = None
    ) -> list[str]:
        """Insert events in-process (no HTTP, not counted), e.g. 20k for a benchmark."""
        store = self.emulator.store
        ids = []
        with store.lock:
            cal = store.calendars[calendar_id]
            for body in events:
                ids.append(insert_event(store, cal, principal or cal.owner, body).id)
        return ids

    # -- credentials -----------------------------------------------------------------------
    def service_account_info(
        self,
        email: str = DEFAULT_SA_EMAIL,
        *,
        delegation: bool = True,
        register: bool = True,
        fresh_key: bool = False,
    ) -> dict[str, str]:
        """Key file content for a service account registered with the emulator.

        Cached per email; ``register=False`` gives a well-formed key the emulator does not know.
        """
        if register and not fresh_key and email in self._sa_infos:
            return self._sa_infos[email]
        info = self.emulator.create_service_account(
            email,
            delegation=delegation,
            register=register,
            private_key=None if fresh_key else _shared_private_key(),
        )
        if register:
            self._sa_infos[email] = info
        return info

    def write_service_account_key(
        self, path: Path, email: str = DEFAULT_SA_EMAIL, **kwargs: Any
    ) -> Path:
        """Write a real service-account JSON key file whose ``token_uri`` is the emulator."""
        path.write_text(json.dumps(self.service_account_info(email, **kwargs), indent=2))
        return path

    def service_account_credentials(
        self,
        *,
        subject: str | None = None,
        scopes: Iterable[str] = (CALENDAR_SCOPE,),
        email: str = DEFAULT_SA_EMAIL,
    ) -> Any:
        """``google.oauth2.service_account.Credentials`` (DWD ``subject`` optional)."""
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            self.service_account_info(email), scopes=list(scopes), subject=subject
        )

    def authorized_user_info(
        self, email: str, scopes: Iterable[str] = (CALENDAR_SCOPE,)
    ) -> dict[str, str]:
        """``authorized_user`` file content (client id/secret + refresh token) for a user."""
        return self.emulator.create_authorized_user(email, list(scopes))

    def user_credentials(self, email: str, scopes: Iterable[str] = (CALENDAR_SCOPE,)) -> Any:
        """``google.oauth2.credentials.Credentials`` using the refresh-token grant.

        Built with an explicit ``token_uri``: ``Credentials.from_authorized_user_info`` always
        uses Google's token endpoint and ignores the file's ``token_uri``.
        """
        from google.oauth2.credentials import Credentials

        info = self.authorized_user_info(email, scopes)
        return Credentials(  # type: ignore[no-untyped-call]
            token=None,
            refresh_token=info["refresh_token"],
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            token_uri=info["token_uri"],
            scopes=list(scopes),
        )

    def oauth_client_info(self) -> dict[str, Any]:
        """A new "Desktop app" OAuth client's client-secrets file content (``installed``)."""
        return self.emulator.create_oauth_client()

    def write_oauth_client(self, path: Path) -> Path:
        """Write a new client's client-secrets file, as downloaded from the Cloud console."""
        path.write_text(json.dumps(self.oauth_client_info(), indent=2))
        return path

    def set_consent(
        self, email: str, *, granted: bool = True, scopes: Iterable[str] | None = None
    ) -> None:
        """``email`` is signed in at the browser and answers Google's consent page: Allow
        (``granted``) or Cancel; ``scopes`` replaces what the grant holds."""
        self.emulator.set_consent(email, granted, None if scopes is None else list(scopes))

    # -- client objects --------------------------------------------------------------------
    def build_service(self, credentials: Any, *, via: str = "api_endpoint") -> Any:
        """A ``googleapiclient`` Calendar v3 service talking to the emulator.

        ``via="api_endpoint"``: ``build(..., client_options={"api_endpoint": ...})`` - use
        :meth:`new_batch` for batches.  ``via="document"``: ``build_from_document`` with the
        re-rooted discovery document - ``service.new_batch_http_request()`` works.
        """
        from googleapiclient.discovery import build, build_from_document

        if via == "document":
            return build_from_document(discovery_document(self.base_url), credentials=credentials)
        return build(
            "calendar",
            "v3",
            credentials=credentials,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": self.api_endpoint},
        )

    def new_batch(self, callback: Any = None) -> Any:
        """``BatchHttpRequest`` aimed at the emulator's ``/batch/calendar/v3``."""
        from googleapiclient.http import BatchHttpRequest

        return BatchHttpRequest(callback=callback, batch_uri=self.batch_uri)

    # -- observation -----------------------------------------------------------------------
    def request_counts(self) -> dict[str, Any]:
        return self.emulator.request_counts()

    def wait_for_notifications(self, timeout: float = 10.0) -> bool:
        """Wait until every queued push notification has been attempted."""
        return self.emulator.notifier.wait_idle(timeout)


@contextmanager
def running_emulator(
    *,
    data_dir: Path | None = None,
    fail_rate: float = 0.0,
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
    record_responses: bool = False,
) -> Iterator[EmulatorHandle]:
    """Run the emulator with uvicorn in a background thread on ``host`` (free port by default).

    Yields an :class:`EmulatorHandle`; on exit the server stops and, with ``data_dir``, the
    state is saved.
    """
    sock = listening_socket(host, port)
    base_url = f"http://{host}:{sock.getsockname()[1]}"
    emulator = GoogleCalendarEmulator(
        data_dir=data_dir,
        fail_rate=fail_rate,
        seed=seed,
        base_url=base_url,
        record_responses=record_responses,
    )
    config = uvicorn.Config(
        create_app(emulator), log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="gcal-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("Google Calendar emulator did not start")
        time.sleep(0.01)
    try:
        yield EmulatorHandle(emulator, base_url)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


class NotificationReceiver:
    """Collects push notifications (their headers, lower-cased) POSTed to :attr:`url`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: list[dict[str, str]] = []
        self.status = 200
        self._cond = threading.Condition()

    def _add(self, headers: dict[str, str]) -> None:
        with self._cond:
            self.messages.append(headers)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, str]]:
        """Wait until at least ``count`` messages arrived; returns all messages so far."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)


@contextmanager
def notification_receiver(host: str = "127.0.0.1") -> Iterator[NotificationReceiver]:
    """A tiny local webhook endpoint for ``events.watch`` channels."""
    holder: list[NotificationReceiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            receiver = holder[0]
            receiver._add({k.lower(): v for k, v in self.headers.items()})
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, 0), Handler)
    holder.append(NotificationReceiver(f"http://{host}:{server.server_address[1]}/notify"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
