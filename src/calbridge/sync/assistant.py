"""A linked calendar as a *calendar assistant*: which bookings it carries (filters), how a
booking becomes appointments (export mode), their titles, and rooms sent as resources.

* **Export mode** ``locations`` (the default, and the only one for two-way sync and for room
  resources): one appointment per confirmed booked location, with that location's times and
  place. ``days`` (publish-only): one appointment per day of the booking, from the day's
  earliest start to its latest end. ``event`` (publish-only): one appointment from the first
  start to the last end.
* Each appointment is a link **part**: ``""`` is the booking's first appointment (its first
  booked location, first day, or the whole event — so links made before rooms existed are
  exactly what they were), ``l<id>`` another booked location, ``d<yyyymmdd>`` another day.
  Booked locations with the same times are one appointment (a meeting inviting several
  rooms — as a meeting booked on a calendar with two rooms becomes two booked locations).
* **Filters** (``calendars.filters``: ``statuses``, ``locations``, ``clients``, ``managers``;
  the calendar's ``--owner`` is the ``managers`` filter when none is given): a calendar with
  filters carries every booking that matches all of them (links of origin ``filter``), and
  such a booking that stops matching is *removed* from it (deleted there, never cancelled
  here; counted in the run's ``removed`` with a note). Bookings put on the calendar by hand
  (``events link``, ``--calendar``) or that arrived from it stay on it.
* **Title template** (publish-only calendars): ``{event_name}``, ``{booking_id}``,
  ``{location}``, ``{client}``, ``{status}``; two-way calendars keep the booking's own title.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from calbridge.domain.event import STATUSES, EventTimes, to_utc
from calbridge.domain.remote import EventFields
from calbridge.domain.rooms import RoomAttendee
from calbridge.errors import ConfigError
from calbridge.store.booked import (
    BookedPrefetch,
    bl_times,
    booked_locations,
    place_name,
    room_of,
)
from calbridge.store.lookup import account_ref
from calbridge.store.models import BookedLocation, Calendar, Event, Link, Location

EXPORT_MODES = ("locations", "days", "event")
FILTER_KEYS = ("statuses", "locations", "clients", "managers")
TEMPLATE_FIELDS = ("event_name", "booking_id", "location", "client", "status")


@dataclass(frozen=True)
class Appointment:
    """One appointment a calendar should hold for a booking."""

    part: str
    fields: EventFields
    rooms: tuple[RoomAttendee, ...] = ()
    booked_location_id: int | None = None


# --- settings ------------------------------------------------------------------------------


def check_assistant(
    name: str,
    direction: str,
    export_mode: str,
    rooms_as_resources: bool,
    title_template: str | None,
    filters: dict[str, Any] | None,
) -> None:
    """Refuse settings that cannot work, saying which option to change."""
    if export_mode not in EXPORT_MODES:
        raise ConfigError(f"--export must be one of {', '.join(EXPORT_MODES)}, not '{export_mode}'")
    if export_mode != "locations" and direction != "push":
        raise ConfigError(
            f"calendar '{name}': --export {export_mode} is publish-only (one appointment stands "
            "for several booked locations, so changes cannot come back); add --direction push, "
            "or use --export locations"
        )
    if rooms_as_resources and export_mode != "locations":
        raise ConfigError(
            f"calendar '{name}': rooms are sent as resources only with --export locations (one "
            "appointment per booked location)"
        )
    if title_template is not None:
        if direction != "push":
            raise ConfigError(
                f"calendar '{name}': a --title template is for publish-only calendars "
                "(--direction push); two-way calendars keep the booking's own title"
            )
        check_template(title_template)
    for key, values in (filters or {}).items():
        if key not in FILTER_KEYS:
            raise ConfigError(f"unknown filter '{key}' (one of {', '.join(FILTER_KEYS)})")
        if key == "statuses":
            for value in values:
                if value not in STATUSES:
                    raise ConfigError(
                        f"--only-status: '{value}' is not one of {', '.join(STATUSES)}"
                    )


def check_template(template: str) -> None:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"--title '{template}': {exc} (write {{{{ for a brace)") from exc
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in TEMPLATE_FIELDS or spec or conversion:
            raise ConfigError(
                f"--title: unknown merge field '{{{field_name}}}'; use "
                + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
            )


def effective_filters(calendar: Calendar) -> dict[str, list[str]]:
    """The calendar's filters, with today's ``--owner`` rule as the ``managers`` filter."""
    filters = {k: list(v) for k, v in (calendar.filters or {}).items() if v}
    if calendar.owner_user_id is not None and "managers" not in filters:
        filters["managers"] = [calendar.owner_user_id]
    return filters


def matches_clause(filters: dict[str, list[str]]) -> ColumnElement[bool]:
    """SQL: an ``Event`` passes every filter (cancelled bookings never do)."""
    clauses: list[ColumnElement[bool]] = [Event.status != "cancelled"]
    if filters.get("statuses"):
        clauses.append(Event.status.in_(filters["statuses"]))
    if filters.get("clients"):
        clients = filters["clients"]
        clauses.append(or_(Event.client_id.in_(clients), Event.client_contact_id.in_(clients)))
    if filters.get("managers"):
        clauses.append(Event.event_manager_id.in_(filters["managers"]))
    if filters.get("locations"):
        clauses.append(
            exists().where(
                BookedLocation.event_id == Event.id,
                BookedLocation.status == "confirmed",
                BookedLocation.location_id.in_(filters["locations"]),
            )
        )
    return and_(*clauses)


def matches(session: Session, calendar: Calendar, event: Event) -> bool:
    filters = effective_filters(calendar)
    if not filters:
        return True
    query = select(Event.id).where(Event.id == event.id, matches_clause(filters))
    return session.scalar(query) is not None


# --- appointments --------------------------------------------------------------------------


def appointments(
    session: Session,
    calendar: Calendar,
    event: Event,
    rows: list[BookedLocation] | None = None,
) -> dict[str, Appointment]:
    """The appointments ``calendar`` should hold for ``event``, by part (empty when the
    booking is cancelled: its appointments go); ``rows``: its booked locations when the
    caller read them already (a batch)."""
    rows = booked_locations(session, event.id) if rows is None else rows
    live = [bl for bl in rows if bl.status == "confirmed"]
    if not rows:  # a booking stored without booked locations (bulk-loaded): the event itself
        from calbridge.sync.bookings import booking_fields

        return {"": Appointment("", _titled(session, calendar, event, booking_fields(event)))}
    status: Any = event.status
    mode = calendar.export_mode or "locations"
    out: dict[str, Appointment] = {}
    if mode == "locations":
        for part, group in location_groups(rows).items():
            times = bl_times(group[0])
            fields = EventFields(event.name, times, _places(session, group), event.notes, status)
            out[part] = Appointment(
                part,
                _titled(session, calendar, event, fields),
                tuple(r for bl in group for r in _rooms(session, calendar, bl)),
                group[0].id,
            )
        return out
    if not live:
        return out
    if mode == "event":
        times = _span([bl_times(bl) for bl in live])
        fields = EventFields(event.name, times, _places(session, live), event.notes, status)
        return {"": Appointment("", _titled(session, calendar, event, fields))}
    by_day: dict[date, list[BookedLocation]] = {}
    for bl in live:
        for day in _days(bl_times(bl)):
            by_day.setdefault(day, []).append(bl)
    for n, day in enumerate(sorted(by_day)):
        part = "" if n == 0 else f"d{day:%Y%m%d}"
        times = _day_span(day, [bl_times(bl) for bl in by_day[day]])
        fields = EventFields(event.name, times, _places(session, by_day[day]), event.notes, status)
        out[part] = Appointment(part, _titled(session, calendar, event, fields))
    return out


def location_groups(rows: list[BookedLocation]) -> dict[str, list[BookedLocation]]:
    """The booking's confirmed booked locations grouped by their times, by part: rooms booked
    for the same times are one appointment (one meeting inviting them all); the group holding
    the first booked location is part ``""``, any other ``l<id of its first>``."""
    groups: dict[tuple[str, str, bool, str | None], list[BookedLocation]] = {}
    for bl in rows:
        if bl.status == "confirmed":
            groups.setdefault((bl.start, bl.end, bl.all_day, bl.timezone), []).append(bl)
    first = rows[0].id if rows else None
    return {("" if group[0].id == first else f"l{group[0].id}"): group for group in groups.values()}


def _rooms(session: Session, calendar: Calendar, bl: BookedLocation) -> tuple[RoomAttendee, ...]:
    if not calendar.rooms_as_resources or bl.location_id is None:
        return ()
    loc = room_of(session, bl.location_id)
    if loc is None or not loc.resource_address:
        return ()
    return (RoomAttendee(loc.resource_display or loc.resource_address, loc.name),)


def _places(session: Session, rows: list[BookedLocation]) -> str | None:
    names: list[str] = []
    for bl in rows:
        name = place_name(session, bl)
        if name and name not in names:
            names.append(name)
    return "; ".join(names) or None


def _span(all_times: list[EventTimes]) -> EventTimes:
    """From the earliest start to the latest end (timed locations win over all-day ones: a
    booking is of one kind, so a mix only comes from data typed by hand)."""
    timed = [t for t in all_times if not t.all_day] or all_times
    first = min(timed, key=lambda t: t.utc_range()[0])
    last = max(timed, key=lambda t: t.utc_range()[1])
    if first.all_day:
        return EventTimes(first.start, last.end, True, None)
    return EventTimes(first.start, _in_zone(last, first.timezone), False, first.timezone)


def _in_zone(times: EventTimes, zone: str | None) -> datetime:
    """``times``' end as wall-clock time in ``zone``."""
    assert isinstance(times.end, datetime)
    if times.timezone == zone:
        return times.end
    instant = to_utc(times.end, times.timezone)
    if zone is None:
        return instant
    return instant.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def _days(times: EventTimes) -> list[date]:
    """The days a booked location occupies (by its own wall-clock dates)."""
    if times.all_day:
        assert isinstance(times.start, date) and isinstance(times.end, date)
        count = max((times.end - times.start).days, 1)
        return [times.start + timedelta(days=i) for i in range(count)]
    assert isinstance(times.start, datetime) and isinstance(times.end, datetime)
    return [times.start.date()]


def _day_span(day: date, all_times: list[EventTimes]) -> EventTimes:
    if all(t.all_day for t in all_times):
        return EventTimes(day, day + timedelta(days=1), True, None)
    return _span(all_times)


def _titled(session: Session, calendar: Calendar, event: Event, fields: EventFields) -> EventFields:
    template = calendar.title_template
    if not template or calendar.direction != "push":
        return fields
    client = account_ref(session, event.client_id) if event.client_id else None
    values = {
        "event_name": event.name,
        "booking_id": str(event.id),
        "location": fields.location or "",
        "client": client.name if client is not None else "",
        "status": event.status,
    }
    title = template.format_map(values)[:1000] or event.name
    return EventFields(title, fields.times, fields.location, fields.notes, fields.status)


# --- links per part ------------------------------------------------------------------------


def ensure_parts(
    session: Session,
    calendar: Calendar,
    event_ids: list[int],
    key: Callable[[int, str], str],
) -> None:
    """Give each changed booking a link for every appointment it now needs on ``calendar``
    (a booked location added, a day more); a part that was removed and is wanted again is
    written anew. Links of parts no longer wanted are deleted by the push."""
    if not event_ids:
        return
    mode = calendar.export_mode or "locations"
    if mode == "event":
        return  # one appointment per booking: the link it has
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        if mode == "locations":  # only bookings with more than one booked location
            query = (
                select(BookedLocation.event_id)
                .where(BookedLocation.event_id.in_(chunk))
                .group_by(BookedLocation.event_id)
                .having(func.count() > 1)
            )
            chunk = list(session.scalars(query).all())
        links: dict[int, dict[str, Link]] = {}
        for link in session.scalars(
            select(Link).where(Link.calendar_id == calendar.id, Link.event_id.in_(chunk))
        ):
            links.setdefault(link.event_id, {})[link.part] = link
        events = {e.id: e for e in session.scalars(select(Event).where(Event.id.in_(chunk)))}
        booked = BookedPrefetch(session, chunk, doubles=False)
        for event_id in chunk:
            event = events.get(event_id)
            have = links.get(event_id, {})
            first = have.get("")
            if event is None or first is None or event.status == "cancelled":
                continue
            for part in appointments(session, calendar, event, booked.booked(session, event_id)):
                found = have.get(part)
                if found is None:
                    session.add(
                        Link(
                            calendar_id=calendar.id,
                            event_id=event_id,
                            part=part,
                            key=key(event_id, part),
                            state="pending",
                            origin=first.origin,
                        )
                    )
                elif found.state == "gone":
                    found.state, found.remote_id, found.etag = "pending", None, None
                    found.snapshot, found.synced_seq = None, 0


def unmatched_links(session: Session, calendar: Calendar) -> list[int]:
    """Links this calendar's filters made whose booking no longer matches them."""
    filters = effective_filters(calendar)
    if not filters:
        return []
    return list(
        session.scalars(
            select(Link.id)
            .join(Event, Event.id == Link.event_id)
            .where(
                Link.calendar_id == calendar.id,
                Link.origin == "filter",
                Link.state != "gone",
                ~matches_clause(filters),
            )
        ).all()
    )


# --- changing a calendar's assistant settings ---------------------------------------------


@dataclass(frozen=True)
class AssistantChange:
    """What ``calendars add/update`` (and the API, and the UI's calendar form) change; None
    keeps a setting. ``title_template`` / ``room`` ``""`` clear it; ``filters`` replaces all
    filters (``{}``: none)."""

    export_mode: str | None = None
    rooms_as_resources: bool | None = None
    title_template: str | None = None
    filters: dict[str, list[str]] | None = None
    room: str | None = None


def apply_assistant(session: Session, calendar: Calendar, change: AssistantChange) -> bool:
    """Check the calendar's resulting settings as a whole (with its direction) and store them;
    the calendar's appointments are rewritten at the next sync when their shape changed.
    Works on a calendar not stored yet, to check options before a calendar is added."""
    export = change.export_mode or calendar.export_mode or "locations"
    rooms = (
        bool(calendar.rooms_as_resources)
        if change.rooms_as_resources is None
        else change.rooms_as_resources
    )
    template = (
        calendar.title_template if change.title_template is None else change.title_template or None
    )
    filters = (
        calendar.filters
        if change.filters is None
        else {k: v for k, v in change.filters.items() if v}
    )
    room = calendar.room_location_id if change.room is None else change.room or None
    check_assistant(calendar.name, calendar.direction or "both", export, rooms, template, filters)
    _check_references(session, filters or {}, room)
    reshaped = (export, rooms, template) != (
        calendar.export_mode,
        bool(calendar.rooms_as_resources),
        calendar.title_template,
    )
    calendar.export_mode, calendar.rooms_as_resources = export, rooms
    calendar.title_template, calendar.filters = template, filters or None
    calendar.room_location_id = room
    if reshaped and calendar.id is not None:
        session.execute(update(Link).where(Link.calendar_id == calendar.id).values(synced_seq=0))
    return reshaped


def _check_references(session: Session, filters: dict[str, list[str]], room: str | None) -> None:
    from calbridge.errors import NotFound
    from calbridge.store.models import User

    for location_id in [*filters.get("locations", []), *([room] if room else [])]:
        if session.get(Location, location_id) is None:
            raise NotFound(
                f"no location has id '{location_id}'; `calbridge locations list` shows the rooms"
            )
    for client in filters.get("clients", []):
        if account_ref(session, client) is None:
            raise NotFound(f"--only-client: no company or contact has id '{client}'")
    for manager in filters.get("managers", []):
        if session.get(User, manager) is None:
            raise NotFound(f"--only-manager: no user has id '{manager}'")


def assistant_json(calendar: Calendar) -> dict[str, Any]:
    return {
        "export": calendar.export_mode or "locations",
        "rooms_as_resources": bool(calendar.rooms_as_resources),
        "title_template": calendar.title_template,
        "filters": dict(calendar.filters or {}),
        "room": calendar.room_location_id,
    }
