"""exchangelib ``CalendarItem`` <-> the neutral values of ``domain/remote.py``.

Reading: a single item is one :class:`RemoteItem`; a recurring master becomes one
:class:`RemoteItem` (``is_series``) whose occurrences are expanded within the sync window by
``domain/recurrence.py`` from its EWS pattern (turned into an RRULE), its deleted occurrences
(EXDATEs) and its modified occurrences (overrides, read with ``GetItem``). Occurrences are
identified by their *original* start, in UTC, as on the other providers.

Times: EWS sends instants in UTC plus the Windows time-zone id of the item
(``StartTimeZone``); the id is turned into an IANA zone with ``domain/windows_zones`` and the
instants into wall-clock time there. Our own items also carry the booking's IANA zone in an
extended property, so a booking in Europe/Amsterdam (which Exchange can only store as "W. Europe
Standard Time") comes back as Europe/Amsterdam, not Europe/Berlin. All-day items are dates;
exchangelib's all-day ``end`` is the last day (inclusive), ours the day after (exclusive).

Writing: subject, text body, location, start/end with their zone, all-day, and status
(``Tentative`` free/busy for tentative, ``IsCancelled`` is read-only on EWS: a cancelled booking
is deleted). Creates carry our key in an extended property (``calbridge_key``) that ``FindItem``
can restrict on, and a UID of our own so the result needs no second read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from exchangelib import (
    Attendee,
    CalendarItem,
    EWSDate,
    EWSDateTime,
    EWSTimeZone,
    ExtendedProperty,
    Mailbox,
)
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NumberedPattern,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)

from calbridge.domain.email import normalize_email
from calbridge.domain.event import EventTimes, Status, check_text, make_times, zone
from calbridge.domain.recurrence import Series, expand, recurrence_id
from calbridge.domain.remote import (
    EventFields,
    RemoteItem,
    RemoteOccurrence,
    RemoteRef,
    RemoteRejection,
    Window,
)
from calbridge.domain.rooms import RoomAttendee, merge_room_attendees
from calbridge.domain.windows_zones import iana_to_windows, windows_to_iana
from calbridge.errors import BadEmail, BadEvent

NO_TITLE = "(no title)"
PROPERTY_SET = "9e3b5f0c-6a3d-4a53-8d7e-2c4b7f1f0a11"
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class BookingKey(ExtendedProperty):  # type: ignore[misc]
    """Our idempotency key on the items we create (a named string property)."""

    property_set_id = PROPERTY_SET
    property_name = "calbridgeKey"
    property_type = "String"


class BookingZone(ExtendedProperty):  # type: ignore[misc]
    """The booking's IANA zone, kept beside Exchange's Windows zone id."""

    property_set_id = PROPERTY_SET
    property_name = "calbridgeZone"
    property_type = "String"


for _name, _cls in (("calbridge_key", BookingKey), ("calbridge_zone", BookingZone)):
    if _name not in {f.name for f in CalendarItem.FIELDS}:
        CalendarItem.register(_name, _cls)

READ_FIELDS = (
    "subject",
    "text_body",
    "location",
    "start",
    "end",
    "is_all_day",
    "uid",
    "organizer",
    "type",
    "recurrence",
    "modified_occurrences",
    "deleted_occurrences",
    "original_start",
    "legacy_free_busy_status",
    "is_cancelled",
    "last_modified_time",
    "_start_timezone",
    "calbridge_key",
    "calbridge_zone",
    "required_attendees",
    "optional_attendees",
    "resources",
)


@dataclass
class MasterInfo:
    """What writes to one occurrence of a series need: its zone, first start, RRULE and the
    ids of its modified occurrences (by recurrence id)."""

    timezone: str | None
    all_day: bool
    start: datetime | date
    rule: str
    exceptions: dict[str, tuple[str, str]] = field(default_factory=dict)  # rid -> (id, ck)

    def instance_index(self, rid: str) -> int | None:
        """The 1-based position of occurrence ``rid`` in the pattern (EWS InstanceIndex)."""
        from dateutil.rrule import rrulestr

        start = (
            self.start
            if isinstance(self.start, datetime)
            else datetime(self.start.year, self.start.month, self.start.day)
        )
        rule = rrulestr(self.rule, dtstart=start)
        for index, wall in enumerate(rule, start=1):
            found = recurrence_id(wall if not self.all_day else wall.date(), self.timezone)
            if found == rid:
                return index
            if found > rid or index > 100_000:
                return None
        return None


# ------------------------------------------------------------------ reading


def title(item: Any) -> str:
    subject = str(item.subject or "").strip() or NO_TITLE
    return f"event '{subject[:80]}'"


def item_zone(item: Any) -> str:
    """The IANA zone of an item: our own property when it still names the same Windows zone,
    else the IANA zone of Exchange's Windows id."""
    windows = _windows_id(item)
    ours = getattr(item, "calbridge_zone", None)
    if ours and (windows is None or iana_to_windows(str(ours)) == windows or ours == "UTC"):
        try:
            zone(str(ours))
            return str(ours)
        except BadEvent:
            pass
    if windows is None:
        return "UTC"
    found = windows_to_iana(windows)
    if found is None:
        if windows.upper() in ("UTC", "ETC/UTC"):
            return "UTC"
        raise BadEvent(
            f"unknown time zone '{windows[:80]}' (not a Windows zone name); set the event's "
            "time zone in Outlook"
        )
    return found


def _windows_id(item: Any) -> str | None:
    tz = getattr(item, "_start_timezone", None)
    if tz is None:
        return None
    ms_id = getattr(tz, "ms_id", None)
    if ms_id:
        return str(ms_id)
    key = getattr(tz, "key", None)
    return iana_to_windows(str(key)) if key else None


def plain(value: Any) -> Any:
    """exchangelib's EWSDateTime / EWSDate as the standard library's types (aware UTC)."""
    if isinstance(value, datetime):
        moment = datetime(*value.utctimetuple()[:6], value.microsecond, tzinfo=UTC)
        return moment if value.tzinfo is not None else moment.replace(tzinfo=None)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    return value


def times_of(item: Any, tz_name: str) -> EventTimes:
    start, end = plain(item.start), plain(item.end)
    if start is None or end is None:
        raise BadEvent("the event has no start or end")
    if item.is_all_day:
        first = start if not isinstance(start, datetime) else start.date()
        last = end if not isinstance(end, datetime) else end.date()
        return make_times(first, last + timedelta(days=1), all_day=True, timezone=None)
    tz = zone(tz_name)
    return make_times(
        start.astimezone(tz).replace(tzinfo=None),
        end.astimezone(tz).replace(tzinfo=None),
        all_day=False,
        timezone=tz_name,
    )


def status_of(item: Any) -> Status:
    if item.is_cancelled:
        return "cancelled"
    return "tentative" if item.legacy_free_busy_status == "Tentative" else "confirmed"


def fields_of(item: Any, tz_name: str) -> EventFields:
    name = str(item.subject or "")
    name = name if name.strip() else NO_TITLE
    location = str(item.location or "") or None
    notes = str(item.text_body or "").strip() or None
    check_text(name, location, notes)
    return EventFields(name, times_of(item, tz_name), location, notes, status_of(item))


def organizer_address(item: Any) -> tuple[str | None, str | None]:
    """(SMTP address, legacy DN needing ResolveNames) of the organizer."""
    organizer = item.organizer
    if organizer is None or not organizer.email_address:
        return None, None
    address = str(organizer.email_address).strip()
    if (organizer.routing_type or "").upper() == "EX" or address.lower().startswith("/o="):
        return None, address
    try:
        normalize_email(address)
    except BadEmail as exc:
        raise BadEmail(f"the organizer is malformed: {exc}") from exc
    return address, None


def rule_of(item: Any, all_day: bool) -> str:
    """The RRULE of an EWS recurrence (pattern + range)."""
    recurrence = item.recurrence
    pattern, boundary = recurrence.pattern, recurrence.boundary
    parts: list[str]
    if isinstance(pattern, DailyPattern):
        parts = ["FREQ=DAILY", f"INTERVAL={pattern.interval}"]
    elif isinstance(pattern, WeeklyPattern):
        days = ",".join(DAYS[int(d) - 1] for d in pattern.weekdays)
        parts = ["FREQ=WEEKLY", f"INTERVAL={pattern.interval}", f"BYDAY={days}"]
        if pattern.first_day_of_week:
            parts.append(f"WKST={DAYS[int(pattern.first_day_of_week) - 1]}")
    elif isinstance(pattern, AbsoluteMonthlyPattern):
        parts = [
            "FREQ=MONTHLY",
            f"INTERVAL={pattern.interval}",
            f"BYMONTHDAY={pattern.day_of_month}",
        ]
    elif isinstance(pattern, RelativeMonthlyPattern):
        parts = ["FREQ=MONTHLY", f"INTERVAL={pattern.interval}", _relative(pattern)]
    elif isinstance(pattern, AbsoluteYearlyPattern):
        parts = ["FREQ=YEARLY", f"BYMONTH={pattern.month}", f"BYMONTHDAY={pattern.day_of_month}"]
    elif isinstance(pattern, RelativeYearlyPattern):
        parts = ["FREQ=YEARLY", f"BYMONTH={pattern.month}", _relative(pattern)]
    else:
        raise BadEvent(f"the recurrence pattern {type(pattern).__name__} is not supported")
    if isinstance(boundary, NumberedPattern):
        parts.append(f"COUNT={boundary.number}")
    elif isinstance(boundary, EndDatePattern):
        end = boundary.end
        parts.append(f"UNTIL={end:%Y%m%d}" if all_day else f"UNTIL={end:%Y%m%d}T235959")
    return ";".join(parts)


def _relative(pattern: Any) -> str:
    week = -1 if int(pattern.week_number) == 5 else int(pattern.week_number)
    day = int(pattern.weekday)
    if day <= 7:
        return f"BYDAY={week}{DAYS[day - 1]}"
    days = {8: DAYS, 9: DAYS[:5], 10: DAYS[5:]}[day]
    return f"BYDAY={','.join(days)};BYSETPOS={week}"


def _rid_of(original: datetime, tz_name: str, all_day: bool) -> str:
    original = plain(original)
    if all_day:
        return recurrence_id(original.astimezone(zone(tz_name)).date(), None)
    return recurrence_id(original.astimezone(UTC).replace(tzinfo=None), "UTC")


def item_of(
    item: Any,
    window: Window,
    exceptions: dict[str, Any],
    organizer: str | None,
) -> tuple[RemoteItem | RemoteRejection, MasterInfo | None]:
    """A read item as a RemoteItem (a series expanded in ``window``), or a rejection."""
    ref = RemoteRef(str(item.id), str(item.changekey) if item.changekey else None)
    uid = str(item.uid or item.id)
    key = getattr(item, "calbridge_key", None) or None
    try:
        tz_name = item_zone(item)
        fields = fields_of(item, tz_name)
        if item.type != "RecurringMaster" or item.recurrence is None:
            remote = RemoteItem(
                ref=ref,
                uid=uid,
                organizer=organizer,
                occurrences=(RemoteOccurrence(None, fields),),
                key=key,
                updated=_naive(item.last_modified_time),
                rooms=rooms_of(item),
            )
            return remote, None
        all_day = fields.times.all_day
        rule = rule_of(item, all_day)
        exdates = frozenset(
            _rid_of(d.start, tz_name, all_day) for d in item.deleted_occurrences or []
        )
        overrides: dict[str, EventFields] = {}
        info = MasterInfo(None if all_day else tz_name, all_day, fields.times.start, rule)
        for occurrence in item.modified_occurrences or []:
            rid = _rid_of(occurrence.original_start, tz_name, all_day)
            info.exceptions[rid] = (str(occurrence.id), str(occurrence.changekey or ""))
            read = exceptions.get(str(occurrence.id))
            if read is not None:
                overrides[rid] = fields_of(read, tz_name)
        series = Series(fields, (rule,), exdates=exdates, overrides=overrides)
        remote = RemoteItem(
            ref=ref,
            uid=uid,
            organizer=organizer,
            occurrences=tuple(expand(series, window)),
            key=key,
            is_series=True,
            updated=_naive(item.last_modified_time),
            rooms=rooms_of(item),
        )
        return remote, info
    except (BadEvent, BadEmail) as exc:
        return RemoteRejection(ref.id, uid, f"{title(item)}: {exc}"), None


#: EWS ``ResponseType`` → the neutral answer (domain/rooms.py)
_ANSWERS = {"Accept": "accepted", "Decline": "declined", "Tentative": "tentative"}


def rooms_of(item: Any) -> tuple[RoomAttendee, ...]:
    """The room mailboxes a meeting invites, with their answer: every ``Resources`` attendee,
    and the Required/Optional attendees as possible rooms (Outlook users type a room there;
    they count only when they are a venue room's address)."""
    rooms = []
    lists = (
        (getattr(item, "resources", None), True),
        (getattr(item, "required_attendees", None), False),
        (getattr(item, "optional_attendees", None), False),
    )
    for attendees, resource in lists:
        for attendee in attendees or []:
            mailbox = getattr(attendee, "mailbox", None)
            address = str(getattr(mailbox, "email_address", None) or "").strip()
            if not address or "@" not in address:
                continue
            name = getattr(mailbox, "name", None)
            answer = _ANSWERS.get(str(getattr(attendee, "response_type", "")), "needs-action")
            rooms.append(RoomAttendee(address, name or None, answer, resource))
    return tuple(rooms)


def room_attendee(room: RoomAttendee) -> Attendee:
    """A room as an exchangelib ``Resources`` attendee."""
    return Attendee(
        mailbox=Mailbox(email_address=room.address, name=room.name or room.address),
        response_type="Unknown",
    )


def attendee_address(attendee: Any) -> str:
    mailbox = getattr(attendee, "mailbox", None)
    return str(getattr(mailbox, "email_address", None) or "")


def apply_rooms(item: Any, event: Any, current: Any | None) -> list[str]:
    """Set the rooms ``event`` sends on ``item`` (``current``: the item as it is, for an
    update): the ``Resources`` we manage change, a managed room found among the Required or
    Optional attendees is dropped from there when no longer wanted, every other attendee stays
    (:func:`calbridge.domain.rooms.merge_room_attendees`). Returns the fields to update."""
    wanted = tuple(event.rooms)
    managed = tuple(event.managed_rooms)
    keep = {r.address.strip().lower() for r in wanted}
    dropped = {a.strip().lower() for a in managed} - keep
    fields = ["resources"]
    elsewhere: set[str] = set()
    for name in ("required_attendees", "optional_attendees"):
        attendees = list(getattr(current, name, None) or []) if current is not None else []
        kept = [a for a in attendees if attendee_address(a).strip().lower() not in dropped]
        elsewhere |= {attendee_address(a).strip().lower() for a in kept}
        if current is not None and len(kept) != len(attendees):
            setattr(item, name, kept or None)
            fields.append(name)
    resources = list(getattr(current, "resources", None) or []) if current is not None else []
    merged = merge_room_attendees(
        resources,
        [r for r in wanted if r.address.strip().lower() not in elsewhere],
        managed,
        attendee_address,
        room_attendee,
    )
    item.resources = merged or None
    return fields


def _naive(moment: Any) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    value: datetime = plain(moment)
    return value.astimezone(UTC).replace(tzinfo=None)


# ------------------------------------------------------------------ writing

WRITE_FIELDS = (
    "subject",
    "body",
    "location",
    "start",
    "end",
    "is_all_day",
    "legacy_free_busy_status",
    "calbridge_zone",
)


def apply_fields(item: CalendarItem, fields: EventFields) -> None:
    """Set the fields calbridge owns on an exchangelib item."""
    times = fields.times
    item.subject = fields.name
    item.body = fields.notes or ""
    item.location = fields.location or ""
    item.legacy_free_busy_status = "Tentative" if fields.status == "tentative" else "Busy"
    if times.all_day:
        assert not isinstance(times.start, datetime) and not isinstance(times.end, datetime)
        item.is_all_day = True
        item.start = EWSDate.from_date(times.start)
        item.end = EWSDate.from_date(times.end - timedelta(days=1))
        item.calbridge_zone = "UTC"
        return
    assert isinstance(times.start, datetime) and isinstance(times.end, datetime)
    name = times.timezone or "UTC"
    tz = _ews_zone(name)
    item.is_all_day = False
    item.start = EWSDateTime.from_datetime(times.start.replace(tzinfo=zone(name))).astimezone(tz)
    item.end = EWSDateTime.from_datetime(times.end.replace(tzinfo=zone(name))).astimezone(tz)
    item.calbridge_zone = name


def _ews_zone(name: str) -> EWSTimeZone:
    """An exchangelib zone Exchange knows by a Windows id: the Windows zone of ``name``
    (``domain/windows_zones``), as the IANA zone that id stands for."""
    if name == "UTC":
        return EWSTimeZone("UTC")
    windows = iana_to_windows(name)
    iana = windows_to_iana(windows) if windows else None
    if iana is None:
        raise BadEvent(f"the time zone '{name}' has no Windows equivalent Exchange accepts")
    return EWSTimeZone(iana)
