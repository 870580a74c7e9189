"""Collection endpoints: ``events`` list, ``calendarView``, ``instances`` and ``delta``.

Emulated paging: ``events``/``calendarView``/``instances`` page with ``$top`` (default 10,
max 1000; ``Prefer: odata.maxpagesize`` is honoured when ``$top`` is absent) and put
``$skip`` in ``@odata.nextLink`` as Graph does for Outlook collections; delta paging is in
:mod:`.delta`.  ``startDateTime``/``endDateTime`` values without an offset are UTC and are not
affected by ``Prefer: outlook.timezone`` (documented Graph behaviour).

``$filter`` on ``events`` supports the subset a sync connector needs: ``prop eq 'v'`` for
``subject``, ``iCalUId``, ``type``, ``seriesMasterId``, ``transactionId``; comparisons
``ge/gt/le/lt`` on ``start/dateTime`` and ``end/dateTime`` (UTC), and
``singleValueExtendedProperties/any(ep: ep/id eq '...' and ep/value eq '...')`` joined with
``and``.  Other expressions answer 501 ``NotImplemented`` naming the emulator (deliberately
loud rather than silently wrong).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from . import events as ev
from .api import GraphRequest, GraphResponse, Target, not_found
from .delta import item_instances, sync_state_not_found
from .store import Item
from .util import GraphError, parse_instant

if TYPE_CHECKING:
    from .emulator import GraphEmulator

DEFAULT_PAGE = 10
MAX_PAGE = 1000
_UNSUPPORTED_ON_DELTA = ("$select", "$filter", "$orderby", "$expand", "$search", "$top")


def _window(req: GraphRequest) -> tuple[datetime, datetime]:
    start, end = req.q("startDateTime"), req.q("endDateTime")
    if not start or not end:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    try:
        return parse_instant(start), parse_instant(end)
    except ValueError as exc:
        raise GraphError(
            400, "ErrorInvalidParameter", "The time window parameters are invalid."
        ) from exc


def _split_and(expr: str) -> list[str]:
    parts, depth, quote, buf = [], 0, False, ""
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if not quote and depth == 0 and expr[i : i + 5].lower() == " and ":
            parts.append(buf.strip())
            buf, i = "", i + 5
            continue
        buf += ch
        i += 1
    parts.append(buf.strip())
    return [p for p in parts if p]


_EXT_ANY = re.compile(
    r"^singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id eq '((?:[^']|'')*)'"
    r"\s+and\s+\1/value eq '((?:[^']|'')*)'\s*\)$",
    re.IGNORECASE,
)
_EQ = re.compile(r"^(\w+) eq '((?:[^']|'')*)'$", re.IGNORECASE)
_CMP = re.compile(r"^(start|end)/dateTime (ge|gt|le|lt) '([^']*)'$", re.IGNORECASE)


def _predicate(clause: str) -> Callable[[Item], bool]:
    m = _EXT_ANY.match(clause)
    if m:
        pid, value = m.group(2).replace("''", "'").lower(), m.group(3).replace("''", "'")
        return lambda item: item.ext.get(pid, [None, None])[1] == value
    m = _EQ.match(clause)
    if m:
        prop, value = m.group(1).lower(), m.group(2).replace("''", "'")
        getters: dict[str, Callable[[Item], Any]] = {
            "subject": lambda i: i.props["subject"],
            "icaluid": lambda i: i.goid,
            "type": lambda i: "seriesMaster" if i.recurrence else "singleInstance",
            "seriesmasterid": lambda i: None,
            "transactionid": lambda i: i.transaction_id,
        }
        if prop in getters:
            getter = getters[prop]
            return lambda item: getter(item) == value
    m = _CMP.match(clause)
    if m:
        which, op, value = m.group(1).lower(), m.group(2).lower(), parse_instant(m.group(3))
        ops: dict[str, Callable[[datetime, datetime], bool]] = {
            "ge": lambda a, b: a >= b,
            "gt": lambda a, b: a > b,
            "le": lambda a, b: a <= b,
            "lt": lambda a, b: a < b,
        }
        fn = ops[op]
        return lambda item: fn(item.start if which == "start" else item.end, value)
    raise GraphError(
        501, "NotImplemented", f"The calbridge Graph emulator does not support $filter '{clause}'."
    )


class Listing:
    def __init__(self, emu: GraphEmulator) -> None:
        self.emu = emu

    # helpers -------------------------------------------------------------------
    def _page_size(self, req: GraphRequest, applied: list[str]) -> int:
        top = req.q("$top")
        if top is not None:
            try:
                return max(1, min(int(top), MAX_PAGE))
            except ValueError as exc:
                raise GraphError(400, "BadRequest", f"Invalid $top value '{top}'.") from exc
        size = self.emu.max_page_size(req)
        if size is not None:
            applied.append(f"odata.maxpagesize={size}")
            return size
        return DEFAULT_PAGE

    @staticmethod
    def _skip(req: GraphRequest) -> int:
        try:
            return max(0, int(req.q("$skip") or 0))
        except ValueError as exc:
            raise GraphError(400, "BadRequest", "Invalid $skip value.") from exc

    @staticmethod
    def _next_link(req: GraphRequest, skip: int, top: int) -> str:
        params = {k: v for k, v in req.query.items() if k not in ("$skip", "$top")}
        params["$top"] = str(top)
        params["$skip"] = str(skip)
        original = {k.lower(): k for k in req.query}
        named = {original.get(k, k): v for k, v in params.items()}
        return f"{req.base_url}/v1.0{req.path}?{urlencode(named, safe='$/:')}"

    def _respond(
        self,
        req: GraphRequest,
        values: list[dict[str, Any]],
        total: int,
        skip: int,
        top: int,
        applied: list[str],
    ) -> GraphResponse:
        body: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
            "value": values,
        }
        if skip + top < total:
            body["@odata.nextLink"] = self._next_link(req, skip + top, top)
        headers = {"Preference-Applied": ", ".join(applied)} if applied else {}
        return GraphResponse(200, body, headers)

    # events --------------------------------------------------------------------
    def list_events(self, req: GraphRequest, target: Target) -> GraphResponse:
        applied: list[str] = []
        opts = self.emu.output_options(req, applied)
        top, skip = self._page_size(req, applied), self._skip(req)
        preds = [_predicate(c) for c in _split_and(req.q("$filter") or "")]
        order = (req.q("$orderby") or "start/dateTime").strip().split()
        keys: dict[str, Callable[[Item], Any]] = {
            "start/datetime": lambda i: i.start,
            "end/datetime": lambda i: i.end,
            "lastmodifieddatetime": lambda i: i.modified,
            "createddatetime": lambda i: i.created,
            "subject": lambda i: i.props["subject"],
        }
        if order[0].lower() not in keys:
            raise GraphError(
                501, "NotImplemented", f"The emulator does not support $orderby '{order[0]}'."
            )
        keyfn = keys[order[0].lower()]
        with self.emu.store.lock:
            items = [i for i in target.cal.items.values() if all(p(i) for p in preds)]
            items.sort(key=lambda i: (keyfn(i), i.id))
            if len(order) > 1 and order[1].lower() == "desc":
                items.reverse()
            page = [ev.render(i, opts) for i in items[skip : skip + top]]
        return self._respond(req, page, len(items), skip, top, applied)

    def calendar_view(self, req: GraphRequest, target: Target) -> GraphResponse:
        lo, hi = _window(req)
        applied: list[str] = []
        opts = self.emu.output_options(req, applied)
        top, skip = self._page_size(req, applied), self._skip(req)
        with self.emu.store.lock:
            cal = target.cal
            entries = self.emu.view_cache.instances(cal, lo, hi)
            if (req.q("$orderby") or "").lower().endswith("desc"):
                entries = entries[::-1]
            page = [
                ev.render(cal.items[ref[0]], opts, ref[1])
                for _, _, ref in entries[skip : skip + top]
            ]
        return self._respond(req, page, len(entries), skip, top, applied)

    def instances(self, req: GraphRequest, target: Target, event_id: str) -> GraphResponse:
        lo, hi = _window(req)
        applied: list[str] = []
        opts = self.emu.output_options(req, applied)
        top, skip = self._page_size(req, applied), self._skip(req)
        with self.emu.store.lock:
            cal = target.cal
            item = cal.items.get(event_id)
            if item is None:
                found = [
                    c.items[event_id] for c in target.user.calendars.values() if event_id in c.items
                ]
                if not found:
                    raise not_found()
                item = found[0]
            entries = sorted(item_instances(item, lo, hi), key=lambda e: (e[0], e[1]))
            page = [ev.render(item, opts, ref[1]) for _, _, ref in entries[skip : skip + top]]
        return self._respond(req, page, len(entries), skip, top, applied)

    # delta ---------------------------------------------------------------------
    def delta(self, req: GraphRequest, target: Target) -> GraphResponse:
        bad = [p for p in _UNSUPPORTED_ON_DELTA if req.q(p) is not None]
        if bad:
            raise GraphError(
                400,
                "ErrorInvalidUrlQuery",
                "The following parameters are not supported with change tracking over the "
                f"'Events' resource: '{', '.join(bad)}'.",
            )
        applied: list[str] = []
        opts = self.emu.output_options(req, applied)
        size = self.emu.max_page_size(req)
        if size is not None:
            applied.append(f"odata.maxpagesize={size}")
        size = size or DEFAULT_PAGE
        applied.append("odata.track-changes")
        dm = self.emu.delta
        with self.emu.store.lock:
            cal = target.cal
            skiptoken, deltatoken = req.q("$skiptoken"), req.q("$deltatoken")
            if skiptoken:
                rnd, offset = dm.open_skip_token(skiptoken)
                if rnd.calendar_id != cal.id or rnd.generation != cal.generation:
                    raise sync_state_not_found(rnd.generation, cal.generation)
            elif deltatoken:
                data = dm.open_delta_token(deltatoken)
                if data.get("c") != cal.id or data.get("g") != cal.generation:
                    raise sync_state_not_found(int(data.get("g", 0)), cal.generation)
                lo, hi = datetime.fromisoformat(data["s"]), datetime.fromisoformat(data["e"])
                rnd = dm.new_round(target.user.id, cal, lo, hi, int(data["q"]))
                offset = 0
            else:
                lo, hi = _window(req)
                rnd = dm.new_round(target.user.id, cal, lo, hi, None)
                offset = 0
            values = []
            for kind, event_id, ref in rnd.entries[offset : offset + size]:
                item: Item | None = cal.items.get(ref[0]) if ref else None
                if kind == "removed" or item is None or (ref and ref[1] in item.cancelled):
                    values.append(ev.removed(event_id))
                    continue
                assert ref is not None
                values.append(
                    {"@odata.type": "#microsoft.graph.event", **ev.render(item, opts, ref[1])}
                )
            link = f"{req.base_url}/v1.0{target.prefix}/calendarView/delta"
            body: dict[str, Any] = {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)"
            }
            if offset + size < len(rnd.entries):
                body["@odata.nextLink"] = f"{link}?$skiptoken={dm.skip_token(rnd, offset + size)}"
            else:
                body["@odata.deltaLink"] = f"{link}?$deltatoken={dm.delta_token(rnd)}"
            body["value"] = values
        return GraphResponse(200, body, {"Preference-Applied": ", ".join(applied)})
