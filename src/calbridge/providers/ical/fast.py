"""A fast reader for the common calendar object: one plain VEVENT, or a plain weekly/daily…
series (one simple RRULE, no exceptions).

Why: icalendar builds an object per content line and parameter, about a millisecond per event —
20 s of a 20,000-event import spent parsing. Most objects on a calendar are one event with a
dozen properties, for which a line reader over the few properties calbridge uses is an order of
magnitude faster. Anything out of the ordinary — a series, several components, a non-IANA TZID,
a value it does not recognise, a missing UID or DTSTART — makes :func:`read_simple` return None
and the full icalendar reader (``ical.py``) decide, so unusual objects lose nothing. The two
readers share every rule (``ical.fields``) and the tests check they agree on every sample.

A series is read here only when given the sync ``window`` and when its one RRULE is of the plain
form :data:`_PLAIN_RULE` (FREQ, COUNT, INTERVAL, BYDAY — text icalendar would write back
unchanged, which a test checks), with no RDATE, EXDATE or RECURRENCE-ID: then it is expanded by
the same ``domain.recurrence.expand`` as the full reader's. Anything else goes to icalendar.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from calbridge.domain.event import to_utc
from calbridge.domain.recurrence import Series, expand
from calbridge.domain.remote import (
    RemoteItem,
    RemoteOccurrence,
    RemoteRef,
    RemoteRejection,
    Window,
)
from calbridge.errors import BadEmail, BadEvent
from calbridge.providers.ical.fields import (
    KEY_PROPERTY,
    Moment,
    fields_from,
    is_iana,
    organizer_from,
    times_from,
)

_UNFOLD = re.compile(r"\r?\n[ \t]")
_LINE = re.compile(r"([A-Za-z0-9-]+)((?:;[^:;\"=]+=(?:\"[^\"]*\"|[^:;\",]*)"
                   r"(?:,(?:\"[^\"]*\"|[^:;\",]*))*)*):(.*)")  # fmt: skip
_PARAM = re.compile(r";([^=;:]+)=(\"[^\"]*\"|[^;:]*)")
_ESCAPE = re.compile(r"\\([\\,;:nN])")
_DATE = re.compile(r"\d{8}")
_DATE_TIME = re.compile(r"(\d{8}T\d{6})(Z?)")
_DURATION = re.compile(
    r"([+-]?)P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", re.IGNORECASE
)
_WANTED = frozenset(
    {"UID", "SUMMARY", "LOCATION", "DESCRIPTION", "STATUS", "ORGANIZER", "DTSTART", "DTEND"}
    | {"DURATION", "LAST-MODIFIED", "DTSTAMP", "RRULE", KEY_PROPERTY}
)
_SERIES = frozenset({"RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID"})
_PLAIN_RULE = re.compile(
    r"FREQ=(?:DAILY|WEEKLY|MONTHLY|YEARLY)(?:;COUNT=[1-9]\d{0,3})?(?:;INTERVAL=[1-9]\d{0,2})?"
    r"(?:;BYDAY=(?:MO|TU|WE|TH|FR|SA|SU)(?:,(?:MO|TU|WE|TH|FR|SA|SU))*)?"
)
_SKIPPED = frozenset({"VCALENDAR", "VTIMEZONE", "STANDARD", "DAYLIGHT", "VALARM"})
# Names of properties that commonly come without parameters: ``NAME:value`` with one of them
# is what _LINE reads (name NAME, no parameters, the rest the value) without running it.
_PLAIN_NAMES = _WANTED | {
    "BEGIN", "END", "VERSION", "PRODID", "CALSCALE", "METHOD", "CREATED", "SEQUENCE", "TRANSP",
    "CLASS", "PRIORITY", "URL", "CATEGORIES", "ATTENDEE", "TZID", "TZOFFSETFROM", "TZOFFSETTO",
    "TZNAME", "X-LIC-LOCATION", "ACTION", "TRIGGER",
}  # fmt: skip
_TEXT = frozenset({"UID", "SUMMARY", "LOCATION", "DESCRIPTION", "STATUS", KEY_PROPERTY})

Property = tuple[dict[str, str], str]  # parameters (names upper-cased), raw value


class _Unusual(Exception):
    """Leave this object to the full reader."""


def read_simple(
    ref: RemoteRef, data: str | bytes, window: Window | None = None
) -> RemoteItem | RemoteRejection | None:
    """The item or rejection for a plain single-event object (or, given the ``window``, a
    plain series); None for anything else."""
    try:
        props = _properties(data)
        uid = _text(props, "UID")
        if not uid or "DTSTART" not in props:
            return None
        rule = _plain_rule(props) if "RRULE" in props else None
        if "RRULE" in props and (window is None or rule is None):
            return None
        try:
            return _item(ref, uid, props, rule, window)
        except (BadEvent, BadEmail) as exc:
            return RemoteRejection(ref.id, uid, str(exc))
    except (_Unusual, ValueError, UnicodeDecodeError):
        return None


def _properties(data: str | bytes) -> dict[str, Property]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    found: dict[str, Property] = {}
    stack: list[str] = []
    events = 0
    for line in _UNFOLD.sub("", text).splitlines():
        if not line:
            continue
        name, colon, value = line.partition(":")
        if colon and name in _PLAIN_NAMES:
            params = ""
        else:
            match = _LINE.fullmatch(line)
            if match is None:
                raise _Unusual
            name, params, value = match.group(1).upper(), match.group(2), match.group(3)
        if name in ("BEGIN", "END"):
            events += _nest(stack, name, value.upper())
        elif not stack:
            raise _Unusual
        elif stack[-1] == "VTIMEZONE" and name == "TZID" and not is_iana(value.strip()):
            raise _Unusual  # a custom zone: the full reader maps it through its VTIMEZONE
        elif stack[-1] == "VEVENT":
            if name in _SERIES or (name in _WANTED and name in found):
                raise _Unusual
            if name == "ATTENDEE" and "CUTYPE=ROOM" in params.upper():
                raise _Unusual  # the full reader reads the rooms
            if name in _WANTED:
                found[name] = (_parameters(params), value)
    if stack or events != 1:
        raise _Unusual
    return found


def _nest(stack: list[str], verb: str, component: str) -> int:
    """Track BEGIN/END; count VEVENTs; anything but one VEVENT (+zones, alarms) is unusual."""
    if verb == "END":
        if not stack or stack.pop() != component:
            raise _Unusual
        return 0
    if component == "VEVENT" and stack == ["VCALENDAR"]:
        stack.append(component)
        return 1
    if component not in _SKIPPED or (component == "VCALENDAR") != (not stack):
        raise _Unusual
    stack.append(component)
    return 0


def _parameters(text: str) -> dict[str, str]:
    return {k.upper(): v.strip('"') for k, v in _PARAM.findall(text)} if text else {}


def _plain_rule(props: dict[str, Property]) -> str | None:
    params, value = props["RRULE"]
    return value if not params and _PLAIN_RULE.fullmatch(value) else None


def _item(
    ref: RemoteRef,
    uid: str,
    props: dict[str, Property],
    rule: str | None = None,
    window: Window | None = None,
) -> RemoteItem:
    organizer = organizer_from(props["ORGANIZER"][1] if "ORGANIZER" in props else None)
    times = times_from(_moment(props, "DTSTART"), _moment(props, "DTEND"), _duration(props))
    fields = fields_from(
        _text(props, "SUMMARY"),
        _text(props, "LOCATION"),
        _text(props, "DESCRIPTION"),
        _text(props, "STATUS"),
        times,
    )
    occurrences: tuple[RemoteOccurrence, ...] = (RemoteOccurrence(None, fields),)
    if rule is not None and window is not None:
        occurrences = tuple(expand(Series(fields=fields, rules=(rule,)), window))
    return RemoteItem(
        ref=ref,
        uid=uid,
        organizer=organizer,
        occurrences=occurrences,
        key=_text(props, KEY_PROPERTY),
        is_series=rule is not None,
        updated=_updated(props),
    )


def _text(props: dict[str, Property], name: str) -> str | None:
    if name not in props:
        return None
    params, value = props[name]
    if "ENCODING" in params or "VALUE" in params:
        raise _Unusual
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _moment(props: dict[str, Property], name: str) -> Moment | None:
    if name not in props:
        return None
    params, value = props[name]
    kind = params.get("VALUE", "").upper()
    if set(params) - {"VALUE", "TZID"} or kind not in ("", "DATE", "DATE-TIME"):
        raise _Unusual
    if _DATE.fullmatch(value) and kind != "DATE-TIME":
        return date(int(value[:4]), int(value[4:6]), int(value[6:8])), None
    match = _DATE_TIME.fullmatch(value)
    if match is None or kind == "DATE":
        raise _Unusual
    v = match.group(1)  # YYYYMMDDTHHMMSS; an impossible date raises ValueError: not ours
    wall = datetime(int(v[:4]), int(v[4:6]), int(v[6:8]), int(v[9:11]), int(v[11:13]), int(v[13:]))
    tzid = params.get("TZID")
    if match.group(2):
        if tzid:
            raise _Unusual
        return wall, "UTC"
    if tzid is None:
        return wall, None
    if not is_iana(tzid.strip()):
        raise _Unusual
    return wall, tzid.strip()


def _duration(props: dict[str, Property]) -> timedelta | None:
    if "DURATION" not in props:
        return None
    match = _DURATION.fullmatch(props["DURATION"][1].strip())
    if match is None or not any(match.groups()[1:]):
        raise _Unusual
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups()[1:])
    duration = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return -duration if match.group(1) == "-" else duration


def _updated(props: dict[str, Property]) -> datetime | None:
    for name in ("LAST-MODIFIED", "DTSTAMP"):
        moment = _moment(props, name)
        if moment is not None and isinstance(moment[0], datetime):
            return to_utc(moment[0], moment[1])
    return None
