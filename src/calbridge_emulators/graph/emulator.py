"""The emulator core: state, control API (used in-process and over ``/_emulator``) and the
Graph request pipeline (counters -> fault injection -> bearer validation -> routing -> Graph
error envelope with ``request-id``/``client-request-id``).

``Prefer`` handling: ``outlook.timezone="<Windows or IANA name>"`` (responses in that zone,
the name echoed in ``timeZone``; unknown names -> 400 ``TimeZoneNotSupportedException``),
``outlook.body-content-type="text"``, ``odata.maxpagesize=N``; applied preferences are echoed in
``Preference-Applied``.
"""

from __future__ import annotations

import copy
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from calbridge.domain.windows_zones import resolve_zone

from . import events as ev
from .api import GraphRequest, GraphResponse, MailboxApi, is_me, new_calendar
from .auth import Authority
from .delta import DeltaManager, ViewCache
from .faults import Counters, FaultInjector, FaultRule
from .listing import MAX_PAGE, Listing
from .render import max_page_size, output_options
from .store import App, Calendar, Store, Tenant, User
from .subscriptions import Subscriptions
from .util import Clock, GraphError, b64url, error_body, new_guid


class GraphEmulator:
    """All state and controls of one emulated Microsoft cloud (tenants, apps, mailboxes)."""

    def __init__(self, data_dir: Path | None = None, fail_rate: float = 0.0, seed: int = 0) -> None:
        self.clock = Clock()
        self.store = Store(data_dir)
        self.auth = Authority(self.store, self.clock)
        secret = self.store.secrets.setdefault("delta_secret", b64url(os.urandom(32)))
        self.delta = DeltaManager(secret.encode())
        self.view_cache = ViewCache()
        self.faults = FaultInjector()
        self.faults.set_fail_rate(fail_rate, seed)
        self.counters = Counters()
        self.api = MailboxApi(self)
        self.listing = Listing(self)
        self.subscriptions = Subscriptions(self)
        self.request_log: deque[dict[str, Any]] = deque(maxlen=10000)
        self.batch_mailbox_limit: int | None = None
        self._stop = threading.Event()
        self._saver: threading.Thread | None = None
        if data_dir is not None:
            self._saver = threading.Thread(target=self._autosave, name="graph-save", daemon=True)
            self._saver.start()

    # ----------------------------------------------------------------- controls
    def add_tenant(
        self,
        domain: str = "contoso.onmicrosoft.com",
        tenant_id: str | None = None,
        display_name: str = "Contoso",
    ) -> Tenant:
        with self.store.lock:
            tenant = Tenant(
                id=(tenant_id or new_guid()).lower(), domain=domain, display_name=display_name
            )
            self.store.tenants[tenant.id] = tenant
            self.store.dirty = True
            return tenant

    def _tenant(self, key: str | Tenant) -> Tenant:
        tenant = key if isinstance(key, Tenant) else self.store.tenant(key)
        if tenant is None:
            raise KeyError(f"unknown tenant {key!r}")
        return tenant

    def add_app(
        self,
        tenant: str | Tenant,
        client_id: str | None = None,
        secret: str | None = None,
        certificate_pem: str | None = None,
        roles: tuple[str, ...] | list[str] = ("Calendars.ReadWrite",),
        mailboxes: list[str] | None = None,
        display_name: str = "calbridge",
    ) -> App:
        """Register an app with application permissions ``roles`` (admin-consented) and,
        optionally, an application access policy limiting it to ``mailboxes`` (ids or UPNs)."""
        with self.store.lock:
            app = App(
                client_id=(client_id or new_guid()).lower(),
                tenant_id=self._tenant(tenant).id,
                display_name=display_name,
                secrets=[secret] if secret else [],
                certificates=[certificate_pem] if certificate_pem else [],
                roles=list(roles),
                mailboxes=list(mailboxes) if mailboxes is not None else None,
            )
            self.store.apps[app.client_id] = app
            self.store.dirty = True
            return app

    def add_user(
        self,
        tenant: str | Tenant,
        upn: str,
        display_name: str | None = None,
        user_id: str | None = None,
    ) -> User:
        """Create a mailbox with its default calendar ("Calendar")."""
        with self.store.lock:
            user = User(
                id=(user_id or new_guid()).lower(),
                tenant_id=self._tenant(tenant).id,
                upn=upn,
                display_name=display_name or upn.split("@")[0].title(),
            )
            cal = new_calendar(user, "Calendar", default=True)
            user.calendars[cal.id] = cal
            user.default_calendar_id = cal.id
            self.store.users[user.id] = user
            self.store.dirty = True
            return user

    def add_room(
        self, tenant: str | Tenant, address: str, name: str, capacity: int | None = None
    ) -> User:
        """A room mailbox: listed by ``/places/microsoft.graph.room`` and answering invitations
        (rooms.py)."""
        from .rooms import Room

        user = self.add_user(tenant, address, name)
        with self.store.lock:
            self.store.rooms[address.lower()] = Room(address, name, capacity, user.id)
        return user

    def answer_rooms(self, item: Any) -> None:
        if self.store.rooms:
            from .rooms import answer_rooms

            now = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
            answer_rooms(self.store, self.store.rooms, item, now)

    def user(self, key: str) -> User:
        with self.store.lock:
            for tenant_id in self.store.tenants:
                user = self.store.user(tenant_id, key)
                if user is not None:
                    return user
        raise KeyError(f"unknown user {key!r}")

    def add_calendar(self, user: str, name: str) -> Calendar:
        with self.store.lock:
            owner = self.user(user)
            cal = new_calendar(owner, name)
            owner.calendars[cal.id] = cal
            self.store.dirty = True
            return cal

    def fail_next(
        self,
        count: int = 1,
        status: int = 429,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = 1,
        code: str | None = None,
        message: str | None = None,
        scope: str = "any",
    ) -> FaultRule:
        """Answer the next ``count`` matching Graph requests with ``status`` (see FaultRule)."""
        return self.faults.add(
            FaultRule(status, count, method, path, retry_after, code, message, scope)
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_fail_rate(
        self, rate: float, seed: int = 0, statuses: tuple[int, ...] = (429, 503, 500)
    ) -> None:
        self.faults.set_fail_rate(rate, seed, statuses)

    def invalidate_delta_tokens(self, user: str | None = None, calendar: str | None = None) -> None:
        """Every delta/skip token (of ``user``/``calendar`` when given) now answers 410."""
        with self.store.lock:
            ids: set[str] = set()
            for owner in self.store.users.values():
                if user is not None and owner is not self.user(user):
                    continue
                for cal in owner.calendars.values():
                    if calendar is None or cal.id == calendar:
                        cal.generation += 1
                        ids.add(cal.id)
            self.delta.invalidate(ids)
            self.store.dirty = True

    def counter_snapshot(self) -> dict[str, Any]:
        return self.counters.snapshot()

    def reset_counters(self) -> None:
        self.counters.reset()
        self.request_log.clear()

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def _calendar(self, owner: User, calendar: str | None) -> Calendar:
        if calendar is None:
            return owner.default_calendar
        return owner.calendars[calendar]

    def external_create(
        self, user: str, event: dict[str, Any], calendar: str | None = None
    ) -> dict[str, Any]:
        """Create an event as if someone used Outlook (no Graph request is counted)."""
        with self.store.lock:
            owner = self.user(user)
            cal = self._calendar(owner, calendar)
            organizer = {"name": owner.display_name, "address": owner.upn}
            item = ev.new_item(event, cal.id, organizer, self.clock.now())
            self.answer_rooms(item)
            cal.items[item.id] = item
            cal.record_change(item.id, None)
            self.changed(owner, cal, item.id, "created")
            return ev.render(item, ev.OutputOptions(zone=resolve_zone("UTC")))

    def external_update(
        self, user: str, event_id: str, patch: dict[str, Any], is_cancelled: bool | None = None
    ) -> None:
        """PATCH an event (or occurrence) out of band; ``is_cancelled`` sets the read-only flag
        an organizer's cancellation produces on an attendee's copy."""
        from .api import Target

        with self.store.lock:
            owner = self.user(user)
            cal, item, key = self.api.find_event(Target(owner, None, ""), event_id)
            before = copy.deepcopy(item)
            now = self.clock.now()
            if key is None:
                ev.patch_item(item, patch, now)
                self.answer_rooms(item)
            else:
                ev.patch_instance(item, key, patch, now)
            if is_cancelled is not None:
                item.is_cancelled = is_cancelled
            cal.record_change(item.id, before)
            self.changed(owner, cal, item.id, "updated")

    def external_delete(self, user: str, event_id: str) -> None:
        from .api import Target

        req = GraphRequest("DELETE", "", {}, {}, None, "")
        self.api.delete_event(req, Target(self.user(user), None, ""), event_id)

    def wait_notifications(self, timeout: float = 10.0) -> bool:
        return self.subscriptions.wait_idle(timeout)

    @property
    def notifications(self) -> list[dict[str, Any]]:
        return list(self.subscriptions.delivered)

    def save(self) -> None:
        self.store.save()

    def close(self) -> None:
        self._stop.set()
        self.subscriptions.stop()
        if self._saver is not None:
            self._saver.join(timeout=5)
        self.store.save()

    def _autosave(self) -> None:
        while not self._stop.wait(1.0):
            if self.store.dirty:
                self.store.save()

    def seed_default(self) -> dict[str, str]:
        """A ready-to-use tenant/app/mailbox (idempotent); returns the credentials."""
        tenant_id = "8c1b7f9a-52d4-4a21-9b1e-0e7d5a3c2f10"
        client_id = "3f2a1c9e-7b64-4d0e-8a51-6c9d2e4f7a88"
        secret = "emulator-client-secret"
        upn = "alex@contoso.onmicrosoft.com"
        with self.store.lock:
            if self.store.tenant(tenant_id) is None:
                self.add_tenant("contoso.onmicrosoft.com", tenant_id)
            if client_id not in self.store.apps:
                self.add_app(tenant_id, client_id, secret)
            if self.store.user(tenant_id, upn) is None:
                self.add_user(tenant_id, upn, "Alex Wilber")
        return {
            "tenant_id": tenant_id,
            "client_id": client_id,
            "client_secret": secret,
            "user": upn,
        }

    # ----------------------------------------------------------------- internals
    def changed(self, user: User, cal: Calendar, item_id: str, change: str) -> None:
        self.store.dirty = True
        item = cal.items.get(item_id)
        etag = f'W/"{item.change_key}"' if item else None
        self.subscriptions.notify(user.id, cal.id, item_id, etag, change)

    def output_options(self, req: GraphRequest, applied: list[str]) -> ev.OutputOptions:
        return output_options(req, applied)

    def max_page_size(self, req: GraphRequest) -> int | None:
        return max_page_size(req, MAX_PAGE)

    @staticmethod
    def route_name(method: str, path: str) -> str:
        segs = [s for s in path.split("/") if s]
        out = []
        for i, seg in enumerate(segs):
            prev = segs[i - 1].lower() if i else ""
            names = {
                "users": "{u}",
                "calendars": "{cid}",
                "events": "{id}",
                "subscriptions": "{id}",
            }
            out.append(names.get(prev, seg))
        return f"{method} /{'/'.join(out)}"

    async def graph(self, req: GraphRequest) -> GraphResponse:
        """Run one Graph request (top-level or inside ``$batch``)."""
        request_id = new_guid()
        client_request_id = req.headers.get("client-request-id", request_id)
        self.counters.inc("batch_inner" if req.inner else "graph")
        if req.path.lower() != "/$batch":
            self.counters.inc("graph_operations")
        try:
            query = "&".join(f"{k}={v}" for k, v in req.query.items())
            target = f"{req.path}?{query}" if query else req.path
            fault = self.faults.check(req.method, target, req.inner)
            if fault is not None:
                self.counters.inc("faulted")
                raise fault
            if not req.inner:
                req.claims = self.auth.validate_bearer(req.headers.get("authorization"))
            resp = await self._route(req)
        except GraphError as exc:
            body = error_body(
                exc.code, exc.message, request_id, client_request_id, self.clock.now()
            )
            resp = GraphResponse(exc.status, body, dict(exc.headers))
            if exc.status == 401:
                resp.headers["WWW-Authenticate"] = (
                    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                    'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
                )
        resp.headers["request-id"] = request_id
        resp.headers["client-request-id"] = client_request_id
        name = self.route_name(req.method, req.path)
        self.counters.route(name, resp.status)
        self.request_log.append(
            {
                "method": req.method,
                "path": req.path,
                "route": name,
                "status": resp.status,
                "inner": req.inner,
            }
        )
        return resp

    async def _route(self, req: GraphRequest) -> GraphResponse:
        if is_me(req.path):
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        segs = [s for s in req.path.split("/") if s]
        if not segs:
            raise GraphError(400, "BadRequest", "Invalid request.")
        head = segs[0].lower()
        if head == "$batch":
            if req.inner:
                raise GraphError(400, "BadRequest", "Nested batch requests are not supported.")
            from .batch import run_batch

            return await run_batch(self, req)
        if head == "subscriptions":
            return await self.subscriptions.handle(req, segs)
        if head == "users" and len(segs) >= 2:
            return self.api.handle(req, segs)
        if head == "places" and req.method == "GET" and len(segs) == 2:
            if segs[1].lower() != "microsoft.graph.room":
                raise GraphError(400, "BadRequest", f"Unsupported place type '{segs[1]}'.")
            with self.store.lock:
                rooms = [room.as_place() for room in self.store.rooms.values()]
            return GraphResponse(200, {"value": rooms})
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segs[0]}'.")
