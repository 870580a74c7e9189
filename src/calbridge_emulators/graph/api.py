"""Graph v1.0 REST surface for users, calendars and events (app-only).

Routes (case-insensitive, ``{u}`` = user id or UPN):
``users/{u}``, ``users/{u}/calendars`` (GET, POST), ``users/{u}/calendars/{cid}``,
``users/{u}/calendar``; then under ``users/{u}``, ``users/{u}/calendar`` or
``users/{u}/calendars/{cid}``: ``events`` (GET, POST), ``events/{id}`` (GET, PATCH, DELETE),
``events/{id}/instances``, ``events/{id}/cancel``, ``calendarView``, ``calendarView/delta``.

Mailbox-level ``users/{u}/events`` and ``calendarView`` address the default calendar;
``users/{u}/events/{id}`` finds the event in any calendar of the mailbox, as Graph does.
Errors: unknown mailbox 404 ``ErrorInvalidUser``; unknown calendar or event 404
``ErrorItemNotFound``; missing permission or a mailbox outside the app's application access
policy 403 ``ErrorAccessDenied``; ``/me`` with an app token 400 ``BadRequest``; ``If-Match``
mismatch 412 ``ErrorIrresolvableConflict``.

``transactionId``: Graph documents it as "a custom identifier specified by a client app for the
server to avoid redundant POST operations in case of client retries to create the same event".
The emulator therefore answers a second POST carrying a transactionId already used in the same
calendar with ``201 Created`` and the *existing* event, unchanged (no duplicate, the retry's body
is ignored), for as long as that event exists.  Graph documents no retention window, so the
emulator never forgets.  Changing transactionId on PATCH is rejected with 400.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import events as ev
from . import recurrence as rec
from .store import Calendar, Item, User
from .util import GraphError, new_change_key, new_item_id

if TYPE_CHECKING:
    from .emulator import GraphEmulator

READ_ROLES = {"Calendars.Read", "Calendars.ReadBasic", "Calendars.ReadWrite"}
WRITE_ROLES = {"Calendars.ReadWrite"}
NOT_FOUND = "The specified object was not found in the store."


@dataclass
class GraphRequest:
    method: str
    path: str  # after /v1.0, e.g. "/users/x/events"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any
    base_url: str
    inner: bool = False
    claims: dict[str, Any] = field(default_factory=dict)

    def q(self, name: str) -> str | None:
        return self.query.get(name.lower())


@dataclass
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Target:
    user: User
    calendar: Calendar | None  # None = mailbox level
    prefix: str  # path prefix as requested, for links

    @property
    def cal(self) -> Calendar:
        return self.calendar or self.user.default_calendar


def not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", NOT_FOUND)


def etag_of(change_key: str) -> str:
    return f'W/"{change_key}"'


def check_if_match(req: GraphRequest, change_key: str) -> None:
    want = req.headers.get("if-match")
    if want is None or want.strip() == "*":
        return
    norm = want.strip().removeprefix("W/").strip('"')
    if norm != change_key:
        raise GraphError(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key "
            "passed in the request does not match the current change key for the item.",
        )


class MailboxApi:
    def __init__(self, emu: GraphEmulator) -> None:
        self.emu = emu

    # access ---------------------------------------------------------------
    def resolve_user(self, req: GraphRequest, key: str, write: bool) -> User:
        tid = str(req.claims.get("tid"))
        user = self.emu.store.user(tid, key)
        if user is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
        roles = set(req.claims.get("roles") or [])
        needed = WRITE_ROLES if write else READ_ROLES
        app = self.emu.store.apps.get(str(req.claims.get("appid")))
        allowed = app is not None and (
            app.mailboxes is None
            or user.id in app.mailboxes
            or user.upn.lower() in {m.lower() for m in app.mailboxes}
        )
        if not roles & needed or not allowed:
            raise GraphError(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        return user

    def options(self, req: GraphRequest, applied: list[str]) -> ev.OutputOptions:
        return self.emu.output_options(req, applied)

    # routing --------------------------------------------------------------
    def handle(self, req: GraphRequest, segs: list[str]) -> GraphResponse:
        write = req.method in ("POST", "PATCH", "DELETE", "PUT")
        user = self.resolve_user(req, segs[1], write)
        rest = segs[2:]
        prefix = f"/users/{segs[1]}"
        calendar: Calendar | None = None
        low = [s.lower() for s in rest]
        if not rest:
            if req.method != "GET":
                raise GraphError(405, "Request_BadRequest", "Method not allowed.")
            return GraphResponse(200, self.render_user(user))
        if low[0] == "calendar":
            calendar, rest, low = user.default_calendar, rest[1:], low[1:]
            prefix += "/calendar"
        elif low[0] == "calendars":
            if len(rest) == 1:
                return self.calendars(req, user)
            calendar = user.calendars.get(rest[1])
            if calendar is None:
                raise not_found()
            prefix += f"/calendars/{rest[1]}"
            rest, low = rest[2:], low[2:]
        target = Target(user, calendar, prefix)
        if not rest:
            if calendar is None or req.method != "GET":
                raise GraphError(400, "BadRequest", "Resource not found for the segment.")
            return GraphResponse(200, self.render_calendar(user, calendar, req))
        listing = self.emu.listing
        if low == ["events"]:
            if req.method == "GET":
                return listing.list_events(req, target)
            if req.method == "POST":
                return self.create_event(req, target)
        elif low[0] == "events" and len(low) == 2:
            if req.method == "GET":
                return self.get_event(req, target, rest[1])
            if req.method == "PATCH":
                return self.patch_event(req, target, rest[1])
            if req.method == "DELETE":
                return self.delete_event(req, target, rest[1])
        elif low[0] == "events" and len(low) == 3 and low[2] == "instances":
            if req.method == "GET":
                return listing.instances(req, target, rest[1])
        elif low[0] == "events" and len(low) == 3 and low[2] == "cancel":
            if req.method == "POST":
                self.delete_event(req, target, rest[1])
                return GraphResponse(202)
        elif low == ["calendarview"]:
            if req.method == "GET":
                return listing.calendar_view(req, target)
        elif low in (["calendarview", "delta"], ["calendarview", "delta()"]):
            if req.method == "GET":
                return listing.delta(req, target)
        else:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")
        raise GraphError(
            405, "ErrorInvalidRequest", "The OData request is not supported (method not allowed)."
        )

    # users & calendars ------------------------------------------------------
    def render_user(self, user: User) -> dict[str, Any]:
        return {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "id": user.id,
            "displayName": user.display_name,
            "mail": user.upn,
            "userPrincipalName": user.upn,
        }

    def render_calendar(self, user: User, cal: Calendar, req: GraphRequest) -> dict[str, Any]:
        return {
            "@odata.etag": etag_of(cal.change_key),
            "id": cal.id,
            "name": cal.name,
            "color": cal.color,
            "hexColor": cal.hex_color,
            "isDefaultCalendar": cal.is_default,
            "changeKey": cal.change_key,
            "canShare": True,
            "canViewPrivateItems": True,
            "canEdit": True,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "isTallyingResponses": True,
            "isRemovable": not cal.is_default,
            "owner": {"name": user.display_name, "address": user.upn},
        }

    def calendars(self, req: GraphRequest, user: User) -> GraphResponse:
        if req.method == "POST":
            body = req.body if isinstance(req.body, dict) else {}
            name = str(body.get("name") or "")
            if not name:
                raise GraphError(400, "ErrorInvalidRequest", "The calendar name is required.")
            if any(c.name.lower() == name.lower() for c in user.calendars.values()):
                raise GraphError(
                    409, "ErrorFolderExists", "A folder with the specified name already exists."
                )
            cal = self.emu.add_calendar(user.upn, name)
            return GraphResponse(201, self.render_calendar(user, cal, req))
        if req.method != "GET":
            raise GraphError(405, "ErrorInvalidRequest", "Method not allowed.")
        ctx = f"https://graph.microsoft.com/v1.0/$metadata#users('{quote(user.upn)}')/calendars"
        value = [self.render_calendar(user, c, req) for c in user.calendars.values()]
        return GraphResponse(200, {"@odata.context": ctx, "value": value})

    # events -------------------------------------------------------------------
    def find_event(self, target: Target, event_id: str) -> tuple[Calendar, Item, str | None]:
        parsed = rec.parse_occurrence_id(event_id)
        item_id, key = parsed if parsed else (event_id, None)
        cals = [target.calendar] if target.calendar else list(target.user.calendars.values())
        for cal in cals:
            item = cal.items.get(item_id)
            if item is None:
                continue
            if key is not None:
                if item.recurrence is None or key in item.cancelled:
                    raise not_found()
                if key not in item.exceptions and not rec.is_occurrence(item, rec.key_to_dt(key)):
                    raise not_found()
            return cal, item, key
        raise not_found()

    def _find_matching(
        self, req: GraphRequest, target: Target, event_id: str
    ) -> tuple[Calendar, Item, str | None]:
        """:meth:`find_event`, answering 412 unless the change key ``If-Match`` names (if
        any) is still the event's (or the occurrence's)."""
        cal, item, key = self.find_event(target, event_id)
        check_if_match(
            req, item.exceptions[key].change_key if key in item.exceptions else item.change_key
        )
        return cal, item, key

    def _event_response(
        self, req: GraphRequest, target: Target, item: Item, key: str | None, status: int = 200
    ) -> GraphResponse:
        applied: list[str] = []
        context = (
            "https://graph.microsoft.com/v1.0/$metadata#users('"
            + quote(target.user.upn)
            + "')/events/$entity"
        )
        body = {"@odata.context": context, **ev.render(item, self.options(req, applied), key)}
        headers = {"Preference-Applied": ", ".join(applied)} if applied else {}
        return GraphResponse(status, body, headers)

    def get_event(self, req: GraphRequest, target: Target, event_id: str) -> GraphResponse:
        with self.emu.store.lock:
            _, item, key = self.find_event(target, event_id)
            return self._event_response(req, target, item, key)

    def create_event(self, req: GraphRequest, target: Target) -> GraphResponse:
        if not isinstance(req.body, dict):
            raise GraphError(400, "RequestBodyRead", "Empty Payload. JSON content expected.")
        cal = target.cal
        now = self.emu.clock.now()
        with self.emu.store.lock:
            txn = req.body.get("transactionId")
            if txn and cal.transactions.get(txn) in cal.items:
                existing = cal.items[cal.transactions[txn]]
                return self._created(req, target, existing)
            organizer = {"name": target.user.display_name, "address": target.user.upn}
            item = ev.new_item(req.body, cal.id, organizer, now)
            self.emu.answer_rooms(item)
            cal.items[item.id] = item
            if txn:
                cal.transactions[txn] = item.id
            cal.record_change(item.id, None)
            self.emu.changed(target.user, cal, item.id, "created")
            return self._created(req, target, item)

    def _created(self, req: GraphRequest, target: Target, item: Item) -> GraphResponse:
        resp = self._event_response(req, target, item, None, 201)
        resp.headers["Location"] = (
            f"{req.base_url}/v1.0/Users('{target.user.id}')/Events('{item.id}')"
        )
        return resp

    def patch_event(self, req: GraphRequest, target: Target, event_id: str) -> GraphResponse:
        if not isinstance(req.body, dict):
            raise GraphError(400, "RequestBodyRead", "Empty Payload. JSON content expected.")
        now = self.emu.clock.now()
        with self.emu.store.lock:
            cal, item, key = self._find_matching(req, target, event_id)
            before = copy.deepcopy(item)
            if key is None:
                ev.patch_item(item, req.body, now)
                self.emu.answer_rooms(item)
            else:
                ev.patch_instance(item, key, req.body, now)
            cal.record_change(item.id, before)
            self.emu.changed(target.user, cal, item.id, "updated")
            return self._event_response(req, target, item, key)

    def delete_event(self, req: GraphRequest, target: Target, event_id: str) -> GraphResponse:
        now = self.emu.clock.now()
        with self.emu.store.lock:
            cal, item, key = self._find_matching(req, target, event_id)
            before = copy.deepcopy(item)
            if key is None:
                del cal.items[item.id]
                change = "deleted"
            else:
                item.exceptions.pop(key, None)
                item.cancelled.append(key)
                item.touch(now)
                change = "updated"
            cal.record_change(item.id, before)
            self.emu.changed(target.user, cal, item.id, change)
        return GraphResponse(204)


def new_calendar(user: User, name: str, default: bool = False) -> Calendar:
    cal = Calendar(id=new_item_id(), user_id=user.id, name=name, is_default=default)
    cal.change_key = new_change_key()
    return cal


_ME = re.compile(r"^/?me(/|$)", re.IGNORECASE)


def is_me(path: str) -> bool:
    return bool(_ME.match(path))
