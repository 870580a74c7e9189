"""Rendering events in Graph's v1.0 JSON shape and the request options that shape it.

``Prefer`` handling: ``outlook.timezone="<Windows or IANA name>"`` (responses in that zone,
the name echoed in ``timeZone``; unknown names -> 400 ``TimeZoneNotSupportedException``),
``outlook.body-content-type="text"``, ``odata.maxpagesize=N``; applied preferences are echoed
in ``Preference-Applied``.  ``$select`` keeps ``id`` and ``@odata.etag`` as Graph does;
``$expand=singleValueExtendedProperties($filter=id eq '...')`` adds the extended properties.
All-day events are floating dates: midnight-to-midnight in whatever zone is requested.
Occurrences and exceptions carry ``seriesMasterId``, ``originalStart`` and a per-instance
``iCalUId``; the series master carries ``recurrence``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from calbridge.domain.windows_zones import resolve_zone

from . import recurrence as rec
from .store import Item
from .util import GraphError, fmt_instant, fmt_instant_short, fmt_local

if TYPE_CHECKING:
    from .api import GraphRequest

_PREFER_SPLIT = re.compile(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)")
_EXPAND_EXT = re.compile(r"singleValueExtendedProperties(?:\((.*)\))?", re.IGNORECASE)


def parse_prefer(values: list[str]) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for value in values:
        for part in _PREFER_SPLIT.split(value):
            name, _, val = part.strip().partition("=")
            if name:
                prefs[name.strip().lower()] = val.strip().strip('"')
    return prefs


@dataclass
class OutputOptions:
    zone: ZoneInfo
    zone_label: str = "UTC"
    body_text: bool = False
    select: set[str] | None = None
    expand_ext: list[str] | None = None  # lower-cased ids; [] = all
    base_url: str = ""


def output_options(req: GraphRequest, applied: list[str]) -> OutputOptions:
    prefs = parse_prefer([req.headers.get("prefer", "")])
    opts = OutputOptions(zone=resolve_zone("UTC"), base_url=req.base_url)
    tz = prefs.get("outlook.timezone")
    if tz:
        try:
            opts.zone = resolve_zone(tz)
        except KeyError as exc:
            raise GraphError(
                400,
                "TimeZoneNotSupportedException",
                "A valid TimeZone value must be specified. The following TimeZone value is "
                f"not supported: '{tz}'.",
            ) from exc
        opts.zone_label = tz
        applied.append(f'outlook.timezone="{tz}"')
    if prefs.get("outlook.body-content-type", "").lower() == "text":
        opts.body_text = True
        applied.append('outlook.body-content-type="text"')
    select = req.q("$select")
    if select:
        opts.select = {s.strip() for s in select.split(",") if s.strip()}
    expand = req.q("$expand") or ""
    m = _EXPAND_EXT.search(expand)
    if m:
        opts.expand_ext = [i.lower() for i in re.findall(r"id eq '([^']*)'", m.group(1) or "")]
    return opts


def max_page_size(req: GraphRequest, limit: int = 1000) -> int | None:
    prefs = parse_prefer([req.headers.get("prefer", "")])
    raw = prefs.get("odata.maxpagesize")
    if raw is None:
        return None
    try:
        return max(1, min(int(raw), limit))
    except ValueError:
        return None


def _text_of(body: dict[str, Any]) -> str:
    if body["contentType"] == "text":
        return str(body["content"])
    text = re.sub(r"(?is)<(script|style|head).*?</\1>", "", str(body["content"]))
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def render_body(body: dict[str, Any], as_text: bool) -> dict[str, Any]:
    if as_text:
        return {"contentType": "text", "content": _text_of(body)}
    if body["contentType"] == "html" or not body["content"]:
        return {"contentType": "html", "content": body["content"]}
    escaped = html.escape(body["content"]).replace("\n", "<br>\r\n")
    content = (
        '<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        f"\r\n</head>\r\n<body>\r\n{escaped}\r\n</body>\r\n</html>\r\n"
    )
    return {"contentType": "html", "content": content}


def render_location(loc: dict[str, Any] | None) -> dict[str, Any]:
    if not loc or not loc.get("displayName"):
        return {
            "displayName": "",
            "locationType": "default",
            "uniqueIdType": "unknown",
            "address": {},
            "coordinates": {},
        }
    out = {
        "displayName": loc["displayName"],
        "locationType": loc.get("locationType") or "default",
        "uniqueId": loc.get("uniqueId") or loc["displayName"],
        "uniqueIdType": loc.get("uniqueIdType") or "private",
    }
    for extra in ("address", "coordinates", "locationUri", "locationEmailAddress"):
        if extra in loc:
            out[extra] = loc[extra]
    return out


def _dttz(instant: datetime, all_day: bool, opts: OutputOptions) -> dict[str, str]:
    if all_day:
        return {"dateTime": fmt_local(instant.replace(tzinfo=None)), "timeZone": opts.zone_label}
    local = instant.astimezone(opts.zone).replace(tzinfo=None)
    return {"dateTime": fmt_local(local), "timeZone": opts.zone_label}


def render(
    item: Item,
    opts: OutputOptions,
    key: str | None = None,
) -> dict[str, Any]:
    """Render a stored item, or (``key`` given) one occurrence/exception of a master."""
    props = dict(item.props)
    exc = item.exceptions.get(key) if key else None
    if exc is not None:
        props.update(exc.overrides)
    start, end = item.start, item.end
    ext = dict(item.ext)
    if key is not None:
        orig = rec.key_to_dt(key)
        start, end = (exc.start, exc.end) if exc else (orig, orig + (item.end - item.start))
        event_id = rec.occurrence_id(item.id, key)
        etype = "exception" if exc else "occurrence"
        change_key = exc.change_key if exc else item.change_key
        modified = exc.modified if exc else item.modified
        ical = rec.instance_goid(item.goid, orig, rec.series_zone(item))
        if exc:
            ext.update(exc.ext)
    else:
        event_id = item.id
        etype = "seriesMaster" if item.recurrence else "singleInstance"
        change_key, modified, ical = item.change_key, item.modified, item.goid
    body = props["body"]
    preview = re.sub(r"\s+", " ", _text_of(body)).strip()[:255]
    loc = render_location(props.get("location"))
    out: dict[str, Any] = {
        "@odata.etag": f'W/"{change_key}"',
        "id": event_id,
        "createdDateTime": fmt_instant(item.created),
        "lastModifiedDateTime": fmt_instant(modified),
        "changeKey": change_key,
        "categories": props["categories"],
        "originalStartTimeZone": item.start_tz,
        "originalEndTimeZone": item.end_tz,
        "iCalUId": ical,
        "reminderMinutesBeforeStart": props["reminderMinutesBeforeStart"],
        "isReminderOn": props["isReminderOn"],
        "hasAttachments": False,
        "subject": props["subject"],
        "bodyPreview": preview,
        "importance": props["importance"],
        "sensitivity": props["sensitivity"],
        "isAllDay": item.is_all_day,
        "isCancelled": item.is_cancelled,
        "isOrganizer": True,
        "responseRequested": props["responseRequested"],
        "seriesMasterId": item.id if key is not None else None,
        "showAs": props["showAs"],
        "type": etype,
        "webLink": "https://outlook.office365.com/owa/?itemid="
        + quote(event_id, safe="")
        + "&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": props["isOnlineMeeting"],
        "onlineMeetingProvider": props["onlineMeetingProvider"],
        "allowNewTimeProposals": props["allowNewTimeProposals"],
        "isDraft": False,
        "hideAttendees": props["hideAttendees"],
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": render_body(body, opts.body_text),
        "start": _dttz(start, item.is_all_day, opts),
        "end": _dttz(end, item.is_all_day, opts),
        "location": loc,
        "locations": props.get("locations") or ([loc] if loc["displayName"] else []),
        "recurrence": item.recurrence if key is None else None,
        "attendees": [
            {"status": {"response": "none", "time": "0001-01-01T00:00:00Z"}, **a}
            for a in props["attendees"]
        ],
        "organizer": {"emailAddress": dict(item.organizer)},
        "onlineMeeting": None,
    }
    if item.transaction_id and key is None:
        out["transactionId"] = item.transaction_id
    if key is not None:
        out["originalStart"] = fmt_instant_short(rec.key_to_dt(key))
    if opts.select is not None:
        keep = {s.lower() for s in opts.select} | {"id", "@odata.etag"}
        out = {k: v for k, v in out.items() if k.lower() in keep}
    if opts.expand_ext is not None:
        wanted = opts.expand_ext
        out["singleValueExtendedProperties"] = [
            {"id": pid, "value": value}
            for lower, (pid, value) in sorted(ext.items())
            if not wanted or lower in wanted
        ]
    return out


def removed(event_id: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "@removed": {"reason": "deleted"},
    }
