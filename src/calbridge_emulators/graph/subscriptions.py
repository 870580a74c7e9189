"""Change-notification subscriptions (webhooks) for event resources.

Emulated (Graph v1.0 ``/subscriptions``):

* ``POST /subscriptions`` with ``changeType`` (comma list of created/updated/deleted),
  ``notificationUrl``, ``resource`` (``users/{id|upn}/events``, ``users/{u}/calendar/events``
  or ``users/{u}/calendars/{cid}/events``), ``expirationDateTime`` (future, at most 10080
  minutes ahead for Outlook events, else 400 ``ExtensionError``) and optional ``clientState``,
  ``lifecycleNotificationUrl``, ``latestSupportedTlsVersion``.
* Validation handshake before creating: the service POSTs ``{notificationUrl}?validationToken=
  <token>`` (``Content-Type: text/plain``, empty body) and needs ``200`` with the token echoed
  as ``text/plain`` within 10 s; otherwise 400 ``ValidationError``.  The token text imitates
  Graph's ("Validation: Testing client application reachability for subscription
  Request-Id: ...") so receivers must URL-decode the query parameter.
* Notifications: ``POST notificationUrl`` with ``{"value": [{"subscriptionId",
  "subscriptionExpirationDateTime", "changeType", "resource", "resourceData": {"@odata.type":
  "#Microsoft.Graph.Event", "@odata.id", "@odata.etag", "id"}, "clientState", "tenantId"}]}``;
  the receiver must answer 2xx within 3 s; failures are retried (3 attempts, short backoff).
  Changes to an occurrence/exception notify ``updated`` on the series master, as Exchange does.
* ``PATCH /subscriptions/{id}`` renews ``expirationDateTime``; ``DELETE`` removes; expired
  subscriptions stop delivering and answer 404 like deleted ones.

* Lifecycle notifications (``lifecycleNotificationUrl``): never spontaneous here; tests and
  demos send them with :meth:`Subscriptions.lifecycle` — ``reauthorizationRequired``,
  ``missed`` or ``subscriptionRemoved`` (which also removes the subscription, as Graph does) —
  shaped as Graph's: ``{"value": [{"subscriptionId", "subscriptionExpirationDateTime",
  "tenantId", "clientState", "lifecycleEvent"}]}``, delivered like change notifications.

Simplification: ``notificationUrl`` may be plain http (Graph requires https); no rich
notifications (``includeResourceData``).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from .api import GraphRequest, GraphResponse
from .store import Subscription
from .util import GraphError, fmt_instant, new_guid, parse_instant

if TYPE_CHECKING:
    from .emulator import GraphEmulator

MAX_MINUTES = 10080
CHANGE_TYPES = {"created", "updated", "deleted"}


def _ext_error(message: str, status: int = 400) -> GraphError:
    return GraphError(status, "ExtensionError", message)


class Subscriptions:
    def __init__(self, emu: GraphEmulator) -> None:
        self.emu = emu
        self.validation_timeout = 10.0
        self.delivery_timeout = 3.0
        self.delivered: list[dict[str, Any]] = []  # log of delivery attempts
        self._queue: queue.Queue[tuple[Subscription, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.verify: Any = True

    # HTTP surface ------------------------------------------------------------
    def render(self, sub: Subscription) -> dict[str, Any]:
        return {
            "id": sub.id,
            "resource": sub.resource,
            "applicationId": sub.app_id,
            "changeType": sub.change_type,
            "clientState": sub.client_state,
            "notificationUrl": sub.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": sub.lifecycle_url,
            "expirationDateTime": fmt_instant(sub.expiration),
            "creatorId": sub.app_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": sub.latest_tls,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }

    def _live(self, sub_id: str, req: GraphRequest) -> Subscription:
        sub = self.emu.store.subscriptions.get(sub_id)
        if (
            sub is None
            or sub.expiration <= self.emu.clock.now()
            or sub.app_id != req.claims.get("appid")
        ):
            raise GraphError(404, "ResourceNotFound", "The object was not found.")
        return sub

    def _expiration(self, body: dict[str, Any]) -> Any:
        raw = body.get("expirationDateTime")
        if not raw:
            raise GraphError(
                400,
                "InvalidRequest",
                "expirationDateTime is a required property for subscription creation.",
            )
        try:
            exp = parse_instant(str(raw))
        except ValueError as exc:
            raise GraphError(400, "InvalidRequest", "expirationDateTime is invalid.") from exc
        now = self.emu.clock.now()
        if exp <= now:
            raise _ext_error("Subscription expiration must be in the future.")
        if exp > now + timedelta(minutes=MAX_MINUTES):
            raise _ext_error(
                f"Subscription expiration can only be {MAX_MINUTES} minutes in the future."
            )
        return exp

    async def handle(self, req: GraphRequest, segs: list[str]) -> GraphResponse:
        if len(segs) == 1 and req.method == "POST":
            return await self.create(req)
        if len(segs) == 1 and req.method == "GET":
            now = self.emu.clock.now()
            value = [
                self.render(s)
                for s in self.emu.store.subscriptions.values()
                if s.app_id == req.claims.get("appid") and s.expiration > now
            ]
            ctx = "https://graph.microsoft.com/v1.0/$metadata#subscriptions"
            return GraphResponse(200, {"@odata.context": ctx, "value": value})
        if len(segs) != 2:
            raise GraphError(400, "BadRequest", "Resource not found for the segment.")
        with self.emu.store.lock:
            sub = self._live(segs[1], req)
            if req.method == "GET":
                return GraphResponse(200, self.render(sub))
            if req.method == "PATCH":
                body = req.body if isinstance(req.body, dict) else {}
                sub.expiration = self._expiration(body)
                self.emu.store.dirty = True
                return GraphResponse(200, self.render(sub))
            if req.method == "DELETE":
                del self.emu.store.subscriptions[sub.id]
                self.emu.store.dirty = True
                return GraphResponse(204)
        raise GraphError(405, "BadRequest", "Method not allowed.")

    async def create(self, req: GraphRequest) -> GraphResponse:
        body = req.body if isinstance(req.body, dict) else {}
        for name in ("changeType", "notificationUrl", "resource"):
            if not body.get(name):
                raise GraphError(
                    400,
                    "InvalidRequest",
                    f"{name} is a required property for subscription creation.",
                )
        changes = [c.strip() for c in str(body["changeType"]).split(",")]
        if not changes or any(c not in CHANGE_TYPES for c in changes):
            raise _ext_error(f"Unsupported changeType '{body['changeType']}'.")
        exp = self._expiration(body)
        segs = [s for s in str(body["resource"]).strip("/").split("/") if s]
        low = [s.lower() for s in segs]
        calendar_id = None
        if (len(segs) == 3 and low[0] == "users" and low[2] == "events") or (
            len(segs) == 4 and low[0] == "users" and low[2:] == ["calendar", "events"]
        ):
            pass
        elif len(segs) == 5 and low[0] == "users" and low[2] == "calendars" and low[4] == "events":
            calendar_id = segs[3]
        else:
            raise _ext_error(f"Resource '{body['resource']}' is not supported for subscriptions.")
        try:
            user = self.emu.api.resolve_user(req, segs[1], write=False)
        except GraphError as exc:
            raise _ext_error(
                "Operation: Create; Exception: [Status Code: "
                f"{'Forbidden' if exc.status == 403 else 'NotFound'}; Reason: {exc.message}]",
                exc.status,
            ) from exc
        if calendar_id is not None and calendar_id not in user.calendars:
            raise _ext_error(
                "Operation: Create; Exception: [Status Code: NotFound; Reason: "
                "The specified object was not found in the store.]",
                404,
            )
        sub_id = new_guid()
        for url in filter(None, [body["notificationUrl"], body.get("lifecycleNotificationUrl")]):
            await self._validate(str(url), sub_id)
        sub = Subscription(
            id=sub_id,
            tenant_id=user.tenant_id,
            app_id=str(req.claims.get("appid")),
            user_id=user.id,
            calendar_id=calendar_id,
            resource=str(body["resource"]),
            change_type=",".join(changes),
            notification_url=str(body["notificationUrl"]),
            expiration=exp,
            client_state=body.get("clientState"),
            lifecycle_url=body.get("lifecycleNotificationUrl"),
            latest_tls=str(body.get("latestSupportedTlsVersion") or "v1_2"),
        )
        with self.emu.store.lock:
            self.emu.store.subscriptions[sub.id] = sub
            self.emu.store.dirty = True
        out = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            **self.render(sub),
        }
        return GraphResponse(201, out)

    async def _validate(self, url: str, sub_id: str) -> None:
        token = (
            "Validation: Testing client application reachability for subscription Request-Id: "
            + new_guid()
        )
        sep = "&" if "?" in url else "?"
        target = f"{url}{sep}validationToken={quote(token)}"
        failure = (
            "Subscription validation request failed. Response must exactly match "
            "validationToken query parameter."
        )
        try:
            async with httpx.AsyncClient(timeout=self.validation_timeout, verify=self.verify) as c:
                resp = await c.post(target, headers={"Content-Type": "text/plain; charset=utf-8"})
        except httpx.HTTPError as exc:
            raise GraphError(
                400,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond "
                f"with 200 OK to validation request. ({type(exc).__name__})",
            ) from exc
        if resp.status_code != 200:
            raise GraphError(
                400,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond "
                "with 200 OK to validation request.",
            )
        ctype = resp.headers.get("content-type", "")
        if resp.text != token or not ctype.startswith("text/plain"):
            raise GraphError(400, "ValidationError", failure)

    # delivery ----------------------------------------------------------------
    def notify(
        self, user_id: str, calendar_id: str, item_id: str, etag: str | None, change: str
    ) -> None:
        now = self.emu.clock.now()
        for sub in list(self.emu.store.subscriptions.values()):
            if sub.user_id != user_id or sub.expiration <= now:
                continue
            if sub.calendar_id is not None and sub.calendar_id != calendar_id:
                continue
            if sub.calendar_id is None and calendar_id not in self._default_ids(user_id):
                continue
            if change not in sub.change_type.split(","):
                continue
            odata_id = f"Users/{user_id}/Events/{item_id}"
            resource_data: dict[str, str] = {
                "@odata.type": "#Microsoft.Graph.Event",
                "@odata.id": odata_id,
                "id": item_id,
            }
            if etag is not None:
                resource_data["@odata.etag"] = etag
            note: dict[str, Any] = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": fmt_instant(sub.expiration),
                "changeType": change,
                "resource": odata_id,
                "resourceData": resource_data,
                "clientState": sub.client_state,
                "tenantId": sub.tenant_id,
            }
            self._enqueue(sub, note)

    def lifecycle(self, sub_id: str, event: str) -> None:
        """Send a lifecycle notification for subscription ``sub_id`` to its lifecycle URL
        (KeyError when unknown; ValueError without a lifecycle URL)."""
        with self.emu.store.lock:
            sub = self.emu.store.subscriptions[sub_id]
            if not sub.lifecycle_url:
                raise ValueError(f"subscription {sub_id} has no lifecycleNotificationUrl")
            note: dict[str, Any] = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": fmt_instant(sub.expiration),
                "tenantId": sub.tenant_id,
                "clientState": sub.client_state,
                "lifecycleEvent": event,
            }
            if event == "subscriptionRemoved":
                del self.emu.store.subscriptions[sub.id]
                self.emu.store.dirty = True
        deliverable = self.emu.clock.now() + timedelta(minutes=1)
        target = replace(sub, notification_url=sub.lifecycle_url, expiration=deliverable)
        self._enqueue(target, note)

    def _default_ids(self, user_id: str) -> set[str]:
        user = self.emu.store.users.get(user_id)
        return {user.default_calendar_id} if user else set()

    def _enqueue(self, sub: Subscription, note: dict[str, Any]) -> None:
        self._idle.clear()
        self._queue.put((sub, note))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="graph-notify", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=self.delivery_timeout, verify=self.verify) as client:
            while True:
                try:
                    job = self._queue.get(timeout=0.5)
                except queue.Empty:
                    if self._queue.empty():
                        self._idle.set()
                    continue
                if job is None:
                    self._idle.set()
                    return
                sub, note = job
                self._deliver(client, sub, note)
                if self._queue.empty():
                    self._idle.set()

    def _deliver(self, client: httpx.Client, sub: Subscription, note: dict[str, Any]) -> None:
        record: dict[str, Any] = {
            "subscriptionId": sub.id,
            "url": sub.notification_url,
            "notification": note,
            "attempts": 0,
            "status": None,
        }
        for attempt in range(3):
            if sub.expiration <= self.emu.clock.now():
                record["status"] = "expired"
                break
            record["attempts"] = attempt + 1
            try:
                resp = client.post(sub.notification_url, json={"value": [note]})
                record["status"] = resp.status_code
                if 200 <= resp.status_code < 300:
                    break
            except httpx.HTTPError as exc:
                record["status"] = type(exc).__name__
            time.sleep(0.2 * (attempt + 1))
        self.emu.counters.inc("notifications")
        self.delivered.append(record)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued notification was delivered (or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._idle.wait(0.05) and self._queue.empty():
                return True
        return False

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)
