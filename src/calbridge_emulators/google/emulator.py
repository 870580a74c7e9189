"""The emulator core: request handling pipeline and the control surface.

:class:`GoogleCalendarEmulator` is transport-independent; ``app.py`` exposes it over ASGI and
``testing.py`` runs it with uvicorn in a thread.  Request pipeline of one API call: route
(from the discovery document) -> scripted/random fault -> bearer-token authentication -> scope
check -> handler (under the store lock) -> ``fields`` partial response -> counters.
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path
from typing import Any

from .api import HANDLERS, SERVICE_PREFIX, ApiRequest, ApiResponse, Call, build_routes, match_route
from .auth import (
    Authenticator,
    generate_private_key,
    private_key_pem,
    public_key_pem,
    require_scope,
    service_account_info,
)
from .batch import MAX_CALLS, BatchFormatError, format_batch, parse_batch
from .consent import CODE_GRANT, Authorization, ConsentPage, installed_client_file
from .errors import ApiError, OAuthError
from .faults import DEFAULT_KINDS, Counters, FaultInjector, FaultRule
from .fields import apply_fields, parse_fields
from .model import Calendar
from .notify import Notifier
from .resources import lookup, render_target
from .store import Store
from .timeutil import Clock

DEFAULT_SA_EMAIL = "calbridge-sync@calbridge-emulator.iam.gserviceaccount.com"
log = logging.getLogger(__name__)


class GoogleCalendarEmulator:
    """State, behaviour and controls of one emulated Google Calendar API deployment."""

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        fail_rate: float = 0.0,
        seed: int = 0,
        base_url: str = "http://127.0.0.1",
        record_responses: bool = False,
        flush_interval: float = 2.0,
    ) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.notifier = Notifier(self.store)
        self.store.on_change = self.notifier.on_change
        self.faults = FaultInjector(fail_rate, seed)
        self.counters = Counters()
        self.auth = Authenticator(self.store, "")
        self.consent = ConsentPage(self.store, self.auth)
        self.base_url = base_url
        self.routes = build_routes()
        self.data_dir = data_dir
        self.flush_interval = flush_interval
        self.record_responses = record_responses
        self.recorded: list[dict[str, Any]] = []
        self._stop_flusher = threading.Event()
        self._flusher: threading.Thread | None = None
        if data_dir is not None:
            self.store.load(data_dir)

    # -- URLs ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self._base_url = value.rstrip("/")
        self.auth.token_url = self.token_url

    @property
    def token_url(self) -> str:
        return f"{self._base_url}/token"

    @property
    def api_endpoint(self) -> str:
        return f"{self._base_url}{SERVICE_PREFIX}"

    @property
    def batch_uri(self) -> str:
        return f"{self._base_url}/batch/calendar/v3"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.notifier.start()
        if self.data_dir is not None and self._flusher is None:
            self._stop_flusher.clear()
            self._flusher = threading.Thread(target=self._flush_loop, daemon=True)
            self._flusher.start()

    def close(self) -> None:
        if self._flusher is not None:
            self._stop_flusher.set()
            self._flusher.join(timeout=10)
            self._flusher = None
        self.save()
        self.notifier.stop()

    def _flush_loop(self) -> None:
        while not self._stop_flusher.wait(self.flush_interval):
            if self.store.dirty:
                self.save()

    def save(self) -> Path | None:
        """Persist the state now (no-op without a data dir)."""
        if self.data_dir is None:
            return None
        return self.store.save(self.data_dir)

    # -- request handling ------------------------------------------------------------------
    def handle_api(self, req: ApiRequest) -> ApiResponse:
        inner = req.kind == "batch_part"
        if not inner:
            self.counters.count("http_requests")
        method_id, route_key = "unknown", f"{req.method} {req.raw_path}"
        try:
            route, params = match_route(self.routes, req.method, req.raw_path)
            method_id = route.method_id
            route_key = f"{route.http_method} {SERVICE_PREFIX}{route.template}"
            rule = self.faults.check(req.kind, req.method, req.raw_path)
            if rule is not None:
                self.counters.count("faults_injected")
                raise rule.api_error()
            principal = self.auth.authenticate(req.headers, req.query)
            entry = HANDLERS.get(method_id)
            if entry is None:
                raise ApiError(501, "notImplemented", f"{method_id} is not emulated.")
            handler, scopes = entry
            require_scope(principal, scopes)
            with self.store.lock:
                resp = handler(Call(self, req, principal, params))
            specs = req.query.get("fields")
            spec = specs[-1] if specs else None
            if spec and resp.body is not None and resp.status < 300:
                try:
                    resp.body = apply_fields(resp.body, parse_fields(spec))
                except ValueError as exc:
                    raise ApiError(400, "invalidParameter", "Invalid field selection") from exc
        except ApiError as exc:
            resp = ApiResponse(exc.code, exc.to_json(), dict(exc.headers))
        except Exception:  # an emulator bug: answer like Google's backend, but say so loudly
            log.exception("emulator failure handling %s %s", req.method, req.raw_path)
            err = ApiError(500, "backendError", "Backend Error")
            resp = ApiResponse(500, err.to_json())
        self.counters.count_call(method_id, route_key, resp.status, inner=inner)
        if self.record_responses:
            self.recorded.append({"method": method_id, "status": resp.status, "body": resp.body})
        return resp

    def handle_batch(
        self, content_type: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes | dict[str, Any]]:
        self.counters.count("http_requests")
        self.counters.count("batch_requests")
        rule = self.faults.check("batch", "POST", "/batch/calendar/v3")
        if rule is not None:
            self.counters.count("faults_injected")
            err = rule.api_error()
            return err.code, err.headers, err.to_json()
        try:
            calls = parse_batch(content_type, body)
        except BatchFormatError as exc:
            return 400, {}, ApiError(400, "badRequest", str(exc)).to_json()
        if not calls or len(calls) > MAX_CALLS:
            msg = f"A batch request must contain between 1 and {MAX_CALLS} calls."
            return 400, {}, ApiError(400, "badRequest", msg).to_json()
        outer_auth = headers.get("authorization")
        parts = []
        for content_id, req in calls:
            if "authorization" not in req.headers and outer_auth:
                req.headers["authorization"] = outer_auth
            parts.append((content_id, self.handle_api(req)))
        payload, content_type_out = format_batch(parts)
        return 200, {"Content-Type": content_type_out}, payload

    def handle_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.counters.count("http_requests")
        self.counters.count("token_requests")
        rule = self.faults.check("token", "POST", "/token")
        try:
            if rule is not None:
                self.counters.count("faults_injected")
                raise rule.oauth_error()
            if form.get("grant_type") == CODE_GRANT:
                return 200, self.consent.exchange(form)
            return 200, self.auth.token_endpoint(form)
        except OAuthError as exc:
            return exc.status, exc.to_json()

    def handle_authorize(self, query: dict[str, str]) -> Authorization:
        """Google's consent page (``/o/oauth2/auth``), as a browser meets it (browser
        traffic, not the connector's: not counted)."""
        return self.consent.authorize(query)

    # -- principals and calendars ----------------------------------------------------------
    def add_user(
        self, email: str, *, display_name: str | None = None, time_zone: str = "UTC"
    ) -> str:
        """Create a user with a primary calendar; returns the calendar id (= email)."""
        return self.store.add_user(email, display_name=display_name, time_zone=time_zone).id

    def add_room(self, email: str, name: str, capacity: int | None = None) -> str:
        """A Workspace room resource (resource calendar + rooms listing); returns its email."""
        return self.store.add_room(email, name, capacity).id

    def rooms_listing(self, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The Admin SDK Directory API's ``resources/calendars`` list (any signed-in caller)."""
        try:
            self.auth.authenticate(headers, {})
        except ApiError as exc:
            return exc.code, exc.to_json()
        with self.store.lock:
            items = [room.as_resource() for room in self.store.rooms.values()]
        return 200, {
            "kind": "admin#directory#resources#calendars#calendarResourcesList",
            "items": items,
        }

    def add_calendar(
        self,
        owner: str,
        summary: str,
        *,
        time_zone: str = "UTC",
        calendar_id: str | None = None,
        description: str | None = None,
    ) -> str:
        return self.store.add_calendar(
            owner, summary, time_zone=time_zone, calendar_id=calendar_id, description=description
        ).id

    def share_calendar(self, calendar_id: str, email: str, role: str = "writer") -> None:
        self.store.share_calendar(calendar_id, email, role)

    def delete_calendar(self, calendar_id: str) -> None:
        self.store.delete_calendar(calendar_id)

    def create_service_account(
        self,
        email: str = DEFAULT_SA_EMAIL,
        *,
        delegation: bool = True,
        delegation_scopes: list[str] | None = None,
        private_key: Any = None,
        register: bool = True,
    ) -> dict[str, str]:
        """Generate an RSA key and return a service-account key file's JSON content.

        With ``register=False`` the key is *not* registered (to test signature rejection).
        ``private_key`` (a ``cryptography`` RSA private key) avoids generating a new one.
        """
        key = private_key or generate_private_key()
        key_id = secrets.token_hex(20)
        client_id = str(10**20 + secrets.randbelow(10**20))
        if register:
            client_id = self.store.add_service_account(
                email,
                key_id=key_id,
                public_key_pem=public_key_pem(key),
                delegation=delegation,
                delegation_scopes=delegation_scopes,
            ).client_id
        return service_account_info(
            email=email,
            key_id=key_id,
            private_pem=private_key_pem(key),
            client_id=client_id,
            token_uri=self.token_url,
        )

    def register_service_account_key(
        self, email: str, key_id: str, public_key: str, *, delegation: bool = True
    ) -> None:
        self.store.add_service_account(
            email, key_id=key_id, public_key_pem=public_key, delegation=delegation
        )

    def create_authorized_user(
        self, email: str, scopes: list[str], *, client_id: str | None = None
    ) -> dict[str, str]:
        """Emulate a finished consent: returns an ``authorized_user`` credentials file JSON."""
        client = self.store.oauth_clients.get(client_id or "") or self.store.add_oauth_client(
            client_id
        )
        token = self.store.issue_refresh_token(client.client_id, email, scopes)
        return {
            "type": "authorized_user",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "refresh_token": token,
            "token_uri": self.token_url,
        }

    def create_oauth_client(self, client_id: str | None = None) -> dict[str, Any]:
        """Register a "Desktop app" OAuth client; returns its client-secrets file content."""
        return installed_client_file(self.store.add_oauth_client(client_id), self.base_url)

    def set_consent(
        self, email: str, granted: bool = True, scopes: list[str] | None = None
    ) -> None:
        """``email`` is signed in at the browser and answers the consent page: Allow or
        Cancel (``granted``); see :meth:`ConsentPage.set` for ``scopes``."""
        self.consent.set(email, granted, scopes)

    def revoke(self, principal: str) -> None:
        """Revoke every grant of ``principal`` (user or service account)."""
        self.store.revoke(principal)

    def restore(self, principal: str) -> None:
        self.store.restore(principal)

    # -- time, tokens, faults, counters ----------------------------------------------------
    def expire_sync_tokens(self, calendar_id: str | None = None) -> None:
        """Invalidate sync tokens (all calendars, or one): their next use is a 410."""
        with self.store.lock:
            for cal in self.store.calendars.values():
                if calendar_id is None or cal.id == calendar_id:
                    cal.sync_epoch += 1
            self.store.dirty = True

    def expire_access_tokens(self) -> None:
        """Make every issued access token expire now (clients then refresh after a 401)."""
        with self.store.lock:
            for token in self.store.access_tokens.values():
                token.expires_at = min(token.expires_at, self.clock.time())

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def inject_fault(
        self,
        status: int,
        *,
        count: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        reason: str | None = None,
        message: str | None = None,
        retry_after: int | None = None,
        on: tuple[str, ...] | list[str] = DEFAULT_KINDS,
    ) -> FaultRule:
        """Answer the next ``count`` matching requests with ``status`` (see ``faults.py``)."""
        return self.faults.add(
            FaultRule(
                status=status,
                count=count,
                method=method,
                path=path,
                reason=reason,
                message=message,
                retry_after=retry_after,
                on=tuple(on),
            )
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_fail_rate(self, rate: float, seed: int | None = None) -> None:
        self.faults.set_fail_rate(rate, seed)

    def request_counts(self) -> dict[str, Any]:
        return self.counters.snapshot()

    def reset_counters(self) -> None:
        self.counters.reset()

    def reset(self) -> None:
        """Forget all data, faults, counters and recorded responses (keeps the clock)."""
        self.store.reset()
        self.faults.clear()
        self.faults.set_fail_rate(0.0)
        self.counters.reset()
        self.recorded.clear()
        self.notifier.deliveries.clear()

    # -- inspection ------------------------------------------------------------------------
    def calendar(self, calendar_id: str) -> Calendar:
        return self.store.calendars[calendar_id]

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """The ``Event`` resource as events.get would return it (raises ``KeyError``)."""
        with self.store.lock:
            cal = self.store.calendars[calendar_id]
            try:
                return render_target(cal, lookup(cal, event_id), cal.time_zone)
            except ApiError as exc:
                raise KeyError(event_id) from exc

    def event_count(self, calendar_id: str, *, include_cancelled: bool = False) -> int:
        with self.store.lock:
            evs = self.store.calendars[calendar_id].events.values()
            return sum(1 for e in evs if include_cancelled or not e.cancelled)
