"""REST surface: routes derived from the discovery document and the method handlers.

Every method of the discovery document is routed (``calendar/v3/`` + its ``path``); those the
emulator implements are listed in :data:`HANDLERS`, the others answer 501 ``notImplemented``.
Unknown paths answer 404.  Each handler gets a :class:`Call` with the authenticated principal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from . import auth
from .errors import ApiError, invalid, not_found, required, required_access_level
from .events import delete_event, insert_event, update_event
from .listing import list_events, list_instances
from .model import Calendar
from .notify import channel_json
from .params import parse_bool
from .resources import etag_matches, etag_of, lookup, make_etag, render, render_target
from .schema import discovery_document
from .timeutil import is_valid_zone

if TYPE_CHECKING:
    from .emulator import GoogleCalendarEmulator

SERVICE_PREFIX = "/calendar/v3/"


@dataclass
class ApiRequest:
    """One API call: a direct HTTP request or one part of a batch."""

    method: str
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    kind: str = "api"


@dataclass
class ApiResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    method_id: str
    http_method: str
    template: str
    regex: re.Pattern[str]
    params: list[str]
    literals: int


@dataclass
class Call:
    emu: GoogleCalendarEmulator
    request: ApiRequest
    principal: auth.Principal
    params: dict[str, str]

    @property
    def query(self) -> dict[str, list[str]]:
        return self.request.query

    def json_body(self) -> Any:
        if not self.request.body.strip():
            return {}
        try:
            return json.loads(self.request.body)
        except ValueError as exc:
            raise ApiError(400, "parseError", "Parse Error") from exc

    def calendar(self, *, write: bool = False) -> tuple[Calendar, str]:
        cal, role = self.emu.store.resolve_calendar(self.principal.email, self.params["calendarId"])
        if write and role not in ("owner", "writer"):
            raise required_access_level()
        return cal, role

    def display_tz(self, cal: Calendar) -> str:
        values = self.query.get("timeZone")
        tz = values[-1] if values else None
        if tz is not None and not is_valid_zone(tz):
            raise invalid("Invalid time zone definition.", location="timeZone")
        return tz or cal.time_zone


def build_routes() -> list[Route]:
    routes: list[Route] = []

    def walk(resources: dict[str, Any]) -> None:
        for res in resources.values():
            for meth in res.get("methods", {}).values():
                template = meth["path"]
                segments = template.split("/")
                names = [s[1:-1] for s in segments if s.startswith("{")]
                pattern = "/".join(
                    "([^/]+)" if s.startswith("{") else re.escape(s) for s in segments
                )
                routes.append(
                    Route(
                        meth["id"],
                        meth["httpMethod"],
                        template,
                        re.compile(f"^{pattern}$"),
                        names,
                        len(segments) - len(names),
                    )
                )
            walk(res.get("resources", {}))

    walk(discovery_document()["resources"])
    routes.sort(key=lambda r: -r.literals)
    return routes


def match_route(routes: list[Route], method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
    if not raw_path.startswith(SERVICE_PREFIX):
        raise not_found()
    rel = raw_path[len(SERVICE_PREFIX) :]
    path_matched = False
    for route in routes:
        m = route.regex.match(rel)
        if m is None:
            continue
        path_matched = True
        if route.http_method == method.upper():
            return route, {n: unquote(v) for n, v in zip(route.params, m.groups(), strict=True)}
    if path_matched:
        raise ApiError(405, "httpMethodNotAllowed", "Method Not Allowed")
    raise not_found()


# -- handlers ----------------------------------------------------------------------------------
def _event_response(body: dict[str, Any]) -> ApiResponse:
    return ApiResponse(200, body, {"ETag": body["etag"]})


def events_list(call: Call) -> ApiResponse:
    cal, role = call.calendar()
    return ApiResponse(200, list_events(call.emu.store, cal, role, call.query))


def events_get(call: Call) -> ApiResponse:
    cal, _ = call.calendar()
    target = lookup(cal, call.params["eventId"])
    current = etag_of(target)
    inm = call.request.headers.get("if-none-match")
    if inm and etag_matches(inm, current):
        return ApiResponse(304, None, {"ETag": current})
    return _event_response(render_target(cal, target, call.display_tz(cal)))


def events_insert(call: Call) -> ApiResponse:
    cal, _ = call.calendar(write=True)
    ev = insert_event(call.emu.store, cal, call.principal.email, call.json_body())
    return _event_response(render(cal, ev, cal.time_zone))


def _update(call: Call, *, patch: bool) -> ApiResponse:
    cal, _ = call.calendar(write=True)
    ev = update_event(
        call.emu.store,
        cal,
        call.principal.email,
        call.params["eventId"],
        call.json_body(),
        patch=patch,
        if_match=call.request.headers.get("if-match"),
    )
    return _event_response(render(cal, ev, cal.time_zone))


def events_update(call: Call) -> ApiResponse:
    return _update(call, patch=False)


def events_patch(call: Call) -> ApiResponse:
    return _update(call, patch=True)


def events_delete(call: Call) -> ApiResponse:
    cal, _ = call.calendar(write=True)
    delete_event(
        call.emu.store, cal, call.params["eventId"], if_match=call.request.headers.get("if-match")
    )
    return ApiResponse(204)


def events_instances(call: Call) -> ApiResponse:
    cal, role = call.calendar()
    body = list_instances(call.emu.store, cal, role, call.params["eventId"], call.query)
    return ApiResponse(200, body)


def events_watch(call: Call) -> ApiResponse:
    cal, _ = call.calendar()
    ch = call.emu.notifier.create_channel(
        call.principal.email,
        cal,
        call.params["calendarId"],
        call.json_body(),
        call.emu.base_url + SERVICE_PREFIX,
    )
    return ApiResponse(200, channel_json(ch))


def channels_stop(call: Call) -> ApiResponse:
    call.emu.notifier.stop_channel(call.json_body())
    return ApiResponse(204)


def calendar_json(cal: Calendar) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "calendar#calendar",
        "etag": make_etag(cal.meta_seq),
        "id": cal.id,
        "summary": cal.summary,
        "timeZone": cal.time_zone,
    }
    if cal.description:
        out["description"] = cal.description
    return out


def calendar_list_entry(cal: Calendar, role: str, principal: str) -> dict[str, Any]:
    out = calendar_json(cal)
    out["kind"] = "calendar#calendarListEntry"
    out.update(
        colorId="14",
        backgroundColor="#9fe1e7",
        foregroundColor="#000000",
        selected=True,
        accessRole=role,
        defaultReminders=[],
    )
    if cal.primary and cal.owner == principal:
        out["primary"] = True
    return out


def calendars_get(call: Call) -> ApiResponse:
    cal, _ = call.calendar()
    return ApiResponse(200, calendar_json(cal))


def calendars_insert(call: Call) -> ApiResponse:
    body = call.json_body()
    if not isinstance(body, dict) or not body.get("summary"):
        raise required("Missing summary.")
    user = call.emu.store.users.get(call.principal.email)
    tz = body.get("timeZone") or (user.time_zone if user else "UTC")
    if not isinstance(tz, str) or not is_valid_zone(tz):
        raise invalid("Invalid time zone definition.")
    cal = call.emu.store.add_calendar(
        call.principal.email,
        str(body["summary"]),
        time_zone=tz,
        description=body.get("description"),
    )
    return ApiResponse(200, calendar_json(cal))


def calendars_delete(call: Call) -> ApiResponse:
    cal, role = call.calendar()
    if role != "owner":
        raise required_access_level()
    if cal.primary:
        raise ApiError(400, "cannotDeletePrimaryCalendar", "Cannot delete primary calendar.")
    call.emu.store.delete_calendar(cal.id)
    return ApiResponse(204)


def calendar_list_list(call: Call) -> ApiResponse:
    """Minimal ``calendarList.list``: all visible calendars, primary first, one page.

    Simplification: ``syncToken`` is accepted but the full list is returned again.
    """
    principal = call.principal.email
    entries = []
    for cal in call.emu.store.calendars.values():
        role = cal.role_for(principal)
        if role is not None:
            entries.append(calendar_list_entry(cal, role, principal))
    entries.sort(key=lambda e: (not e.get("primary", False), e["id"]))
    parse_bool(call.query, "showDeleted")
    body = {
        "kind": "calendar#calendarList",
        "etag": make_etag(call.emu.store.seq),
        "nextSyncToken": f"cl-{call.emu.store.seq}",
        "items": entries,
    }
    return ApiResponse(200, body)


def calendar_list_get(call: Call) -> ApiResponse:
    cal, role = call.calendar()
    return ApiResponse(200, calendar_list_entry(cal, role, call.principal.email))


Handler = Callable[[Call], ApiResponse]
HANDLERS: dict[str, tuple[Handler, frozenset[str]]] = {
    "calendar.events.list": (events_list, auth.READ_EVENTS),
    "calendar.events.get": (events_get, auth.READ_EVENTS),
    "calendar.events.insert": (events_insert, auth.WRITE_EVENTS),
    "calendar.events.update": (events_update, auth.WRITE_EVENTS),
    "calendar.events.patch": (events_patch, auth.WRITE_EVENTS),
    "calendar.events.delete": (events_delete, auth.WRITE_EVENTS),
    "calendar.events.instances": (events_instances, auth.READ_EVENTS),
    "calendar.events.watch": (events_watch, auth.READ_EVENTS),
    "calendar.channels.stop": (channels_stop, auth.ANY_CALENDAR),
    "calendar.calendars.get": (calendars_get, auth.READ_CALENDARS | auth.READ_EVENTS),
    "calendar.calendars.insert": (calendars_insert, auth.WRITE_CALENDARS),
    "calendar.calendars.delete": (calendars_delete, auth.WRITE_CALENDARS),
    "calendar.calendarList.list": (calendar_list_list, auth.CALENDAR_LIST),
    "calendar.calendarList.get": (calendar_list_get, auth.CALENDAR_LIST),
}
