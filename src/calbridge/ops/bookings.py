"""Booking writes and queries shared by the CLI, the REST API and the admin UI.

Contract: every function takes a SQLAlchemy session (the caller owns the transaction) and plain
values; writes take an ``actor`` (an API token's name, an admin's email or ``"cli"``) and leave
one :mod:`calbridge.ops.history` row in the same transaction. Expected failures raise
:class:`calbridge.errors.CalbridgeError` subclasses before anything is written (``NotFound`` for
an unknown id, ``BadEvent`` for data the booking system will not store, ``ConfigError`` when the
settings make assignment impossible). After the transaction commits, the front end calls
``jobs.push_booking(event.id)`` so the calendars follow within seconds.

The **review queue** holds bookings an admin should look at: flagged ``ambiguous`` (one address
belongs to several people), sent to the Default Account (nobody had the booker's address),
booked by the Virtual Assistant (the booker is not on the staff), holding a room another
confirmed booking holds at the same time (a double booking: stays in the queue until one of
them moves, even when accepted), or arrived from a calendar in a place that is no venue room.
*Accept* takes one out of the queue; a re-assignment puts it back when the new result needs
review again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    String,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from calbridge.domain.event import STATUSES
from calbridge.errors import BadEvent, NotFound
from calbridge.ops.history import now_utc, record
from calbridge.store.booked import (
    BookedPrefetch,
    PlaceRequest,
    book_place,
    double_booked_clause,
    double_bookings,
    get_booked,
    summary,
    unmatched_room_clause,
)
from calbridge.store.events import (
    ManualAssignment,
    create_event,
    get_event,
    reassign_event,
    touch,
    typed_event_times,
    update_event,
)
from calbridge.store.lookup import account_ref
from calbridge.store.models import Base, Calendar, Contact, Event, Link, SystemSettings, User

__all__ = [
    "BookingFilters",
    "BookingPage",
    "ManualAssignment",
    "NewBooking",
    "Reassignment",
    "accept_review",
    "book_location",
    "cancel_booking",
    "create_booking",
    "get_booking",
    "list_bookings",
    "reassign_booking",
    "review_reasons",
    "unbook_location",
    "update_booking",
]

#: The fields ``update_booking`` changes; client and users change only by re-assignment.
UPDATABLE = ("name", "start", "end", "all_day", "timezone", "location", "notes", "status")


class BookingReview(Base):
    """An admin accepted a booking's assignment (table ``booking_reviews``)."""

    __tablename__ = "booking_reviews"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    accepted_at: Mapped[datetime] = mapped_column(DateTime)
    accepted_by: Mapped[str] = mapped_column(String(200))


@dataclass(frozen=True)
class NewBooking:
    """A booking's own fields, as a person gave them: times as ISO text (with or without an
    offset) or values; without ``timezone`` they are in the venue's zone, when one is set
    (``store.events.typed_event_times``)."""

    name: str
    start: str | date | datetime
    end: str | date | datetime
    all_day: bool = False
    timezone: str | None = None
    location: str | None = None
    notes: str | None = None
    status: str = "confirmed"
    places: tuple[PlaceRequest, ...] = ()


@dataclass(frozen=True)
class Reassignment:
    """A re-assignment chosen by a person. Anything left ``None`` keeps its current value; a
    contact given without a client makes the contact's company (or the contact itself, when it
    has none) the Event Client, as the rules would."""

    client: str | None = None
    contact: str | None = None
    booked_by: str | None = None
    event_manager: str | None = None

    def is_empty(self) -> bool:
        return all(
            v is None for v in (self.client, self.contact, self.booked_by, self.event_manager)
        )


def _fields(event: Event) -> dict[str, Any]:
    return {key: getattr(event, key) for key in UPDATABLE}


def _assignment(event: Event) -> dict[str, Any]:
    return {
        "client": event.client_id,
        "client_contact": event.client_contact_id,
        "booked_by": event.booked_by_id,
        "event_manager": event.event_manager_id,
        "ambiguous": event.ambiguous,
    }


def _calendar(session: Session, name: str) -> Calendar:
    calendar = session.scalars(select(Calendar).where(Calendar.name == name)).first()
    if calendar is None:
        raise NotFound(f"no calendar is called '{name}' (see `calbridge calendars list`)")
    return calendar


def get_booking(session: Session, event_id: int) -> Event:
    """The booking with this id, or NotFound."""
    return get_event(session, event_id)


def create_booking(
    session: Session,
    booking: NewBooking,
    *,
    actor: str,
    booker: str | None = None,
    manual: ManualAssignment | None = None,
    calendars: Sequence[str] = (),
) -> Event:
    """Create a booking assigned from ``booker``'s address (SPEC §2, as for an event arriving
    from a calendar) or given explicitly, and put it on ``calendars`` (by name)."""
    if (booker is None) == (manual is None):
        raise BadEvent(
            "give either a booker's email address, or the client, booked-by and event manager"
        )
    targets = [_calendar(session, name) for name in dict.fromkeys(calendars)]
    times = typed_event_times(
        session, booking.start, booking.end, all_day=booking.all_day, timezone=booking.timezone
    )
    event = create_event(
        session,
        name=booking.name,
        times=times,
        location=booking.location,
        notes=booking.notes,
        status=booking.status,
        booker=booker,
        manual=manual,
        places=booking.places,
    )
    from calbridge.sync.calendars import link_event

    for calendar in targets:
        link_event(session, event, calendar)
    record(
        session,
        actor=actor,
        subject="booking",
        subject_id=event.id,
        action="created",
        details={
            "fields": _fields(event),
            "assignment": _assignment(event),
            "calendars": [c.name for c in targets],
        },
    )
    return event


def update_booking(
    session: Session, event_id: int, changes: dict[str, Any], *, actor: str, typed: bool = False
) -> Event:
    """Change a booking's own fields (``UPDATABLE``); cancelling goes through
    :func:`cancel_booking`, client and users through :func:`reassign_booking`. Recording
    happens only when something changed. ``typed``: times as a person typed them (without a
    zone: the booking's own zone, see ``store.events.typed_event_times``)."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise BadEvent(
            f"cannot change {', '.join(unknown)} of booking {event_id}: client and users change "
            "by re-assignment"
        )
    if changes.get("status") == "cancelled":
        raise BadEvent(f"cancel booking {event_id} with the cancel operation, not an update")
    event = get_booking(session, event_id)
    before = _fields(event)
    if update_event(session, event, changes, typed=typed):
        after = _fields(event)
        diff = {k: [before[k], after[k]] for k in UPDATABLE if before[k] != after[k]}
        record(
            session,
            actor=actor,
            subject="booking",
            subject_id=event.id,
            action="updated",
            details={"changes": diff},
        )
    return event


def cancel_booking(session: Session, event_id: int, *, actor: str) -> Event:
    """Cancel a booking (kept, status ``cancelled``); cancelling twice changes nothing."""
    event = get_booking(session, event_id)
    before = event.status
    if update_event(session, event, {"status": "cancelled"}):
        record(
            session,
            actor=actor,
            subject="booking",
            subject_id=event.id,
            action="cancelled",
            details={"changes": {"status": [before, "cancelled"]}},
        )
    return event


def book_location(session: Session, event_id: int, place: PlaceRequest, *, actor: str) -> Event:
    """Add a booked location (a room by id/name/alias, or free text; its own times or the
    booking's) to a booking that is not cancelled."""
    event = get_booking(session, event_id)
    if event.status == "cancelled":
        raise BadEvent(f"booking {event_id} is cancelled; create a new booking instead")
    bl = book_place(session, event, place)
    event.location = summary(session, event)
    touch(session, event)
    record(
        session,
        actor=actor,
        subject="booking",
        subject_id=event.id,
        action="location_booked",
        details={"booked_location": bl.id, "location": bl.location_id, "text": bl.location_text},
    )
    return event


def unbook_location(
    session: Session,
    event_id: int,
    *,
    actor: str,
    booked_id: int | None = None,
    location: str | None = None,
) -> Event:
    """Cancel one booked location (by its id, or by the room/text it holds); the booking is
    cancelled when none is left."""
    from calbridge.store.booked import booked_locations, resolve_place

    event = get_booking(session, event_id)
    live = [bl for bl in booked_locations(session, event.id) if bl.status == "confirmed"]
    if (booked_id is None) == (location is None):
        raise BadEvent("give the booked location's id (--booked N) or its --location, not both")
    if booked_id is not None:
        target = get_booked(session, event, booked_id)
    else:
        room, text = resolve_place(session, location)
        found = [bl for bl in live if (bl.location_id, bl.location_text) == (room, text)]
        found = found or [bl for bl in live if room and bl.location_id == room]
        if not found:
            raise NotFound(
                f"booking {event_id} holds no location '{location}'; `calbridge events show "
                f"{event_id}` lists its booked locations"
            )
        target = found[0]
    if target.status == "cancelled":
        return event
    target.status = "cancelled"
    remaining = [bl for bl in live if bl.id != target.id]
    if not remaining:
        update_event(session, event, {"status": "cancelled"})
    else:
        event.location = summary(session, event)
        touch(session, event)
    record(
        session,
        actor=actor,
        subject="booking",
        subject_id=event.id,
        action="location_unbooked",
        details={"booked_location": target.id, "booking_cancelled": not remaining},
    )
    return event


def reassign_booking(
    session: Session,
    event_id: int,
    *,
    actor: str,
    booker: str | None = None,
    chosen: Reassignment | None = None,
) -> Event:
    """Re-run the assignment (for ``booker``, or the address it was assigned from), or apply a
    person's choice of contact / company / users. Either way the booking's review acceptance
    is dropped: the new result is reviewed on its own merits."""
    event = get_booking(session, event_id)
    before = _assignment(event)
    if chosen is not None and not chosen.is_empty():
        if booker is not None:
            raise BadEvent("re-assign by a booker's address or by a chosen client/users, not both")
        _apply_choice(session, event, chosen)
        touch(session, event)
        how = "chosen"
    else:
        reassign_event(session, event, booker)
        how = "rules"
    session.execute(delete(BookingReview).where(BookingReview.event_id == event.id))
    record(
        session,
        actor=actor,
        subject="booking",
        subject_id=event.id,
        action="reassigned",
        details={"how": how, "before": before, "after": _assignment(event)},
    )
    return event


def _apply_choice(session: Session, event: Event, chosen: Reassignment) -> None:
    client_id = chosen.client
    if chosen.contact is not None:
        contact = session.get(Contact, chosen.contact)
        if contact is None:
            raise NotFound(f"contact: no contact has id '{chosen.contact}'")
        if client_id is None:
            client_id = contact.company_id or contact.id
    if client_id is not None:
        client = account_ref(session, client_id)
        if client is None:
            raise NotFound(f"client: no company or contact has id '{client_id}'")
        event.client_id, event.client_kind = client.id, client.kind
        event.client_contact_id = chosen.contact
    for role, user_id in (("booked_by", chosen.booked_by), ("event_manager", chosen.event_manager)):
        if user_id is None:
            continue
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"{role}: no user has id '{user_id}'")
        if not user.active:
            raise BadEvent(f"{role}: user '{user_id}' is deactivated")
        setattr(event, f"{role}_id", user_id)
    event.ambiguous = False
    picked = [
        f"{what} {value}"
        for what, value in (
            ("client", chosen.client),
            ("contact", chosen.contact),
            ("booked by", chosen.booked_by),
            ("event manager", chosen.event_manager),
        )
        if value is not None
    ]
    event.trace = [
        *(event.trace or []),
        {"step": 0, "rule": "Re-assigned by hand", "outcome": "chosen: " + ", ".join(picked)},
    ]
    reasons = dict(event.assignment_reasons or {})
    for role, value in (("booked_by", chosen.booked_by), ("event_manager", chosen.event_manager)):
        if value is not None:
            reasons[role] = "chosen by hand"
    event.assignment_reasons = reasons


def accept_review(session: Session, event_id: int, *, actor: str) -> Event:
    """Take a booking out of the review queue, keeping its assignment as it is."""
    event = get_booking(session, event_id)
    if session.get(BookingReview, event.id) is None:
        session.add(BookingReview(event_id=event.id, accepted_at=now_utc(), accepted_by=actor))
        record(
            session,
            actor=actor,
            subject="booking",
            subject_id=event.id,
            action="review_accepted",
            details={"reasons": review_reasons(session, event), "assignment": _assignment(event)},
        )
    return event


# --- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingFilters:
    """What ``list_bookings`` narrows to. ``start_from``/``start_to`` are naive-UTC instants: a
    booking is in range when it ends after ``start_from`` and starts before ``start_to``."""

    calendar: str | None = None
    status: str | None = None
    client: str | None = None
    start_from: datetime | None = None
    start_to: datetime | None = None
    needs_review: bool | None = None
    text: str | None = None
    #: with ``needs_review``: leave out bookings flagged only for a location text that matches
    #: no room (the review page shows those grouped by text, see ops/location_texts.py)
    texts_grouped: bool = False


@dataclass(frozen=True)
class BookingPage:
    """One page of bookings in (start, id) order and where the next page starts."""

    items: list[Event]
    next_after: tuple[datetime, int] | None


def _review_settings(session: Session) -> tuple[str | None, str | None]:
    row = session.get(SystemSettings, 1)
    if row is None:
        return None, None
    return row.default_account_id, row.virtual_assistant_user_id


def needs_review_clause(session: Session, *, rooms: bool = True) -> ColumnElement[bool]:
    """SQL for "in the review queue" (not cancelled, not accepted, and flagged); ``rooms``
    False: not counting a location text that matches no room."""
    default_account, assistant = _review_settings(session)
    flagged: list[ColumnElement[bool]] = [Event.ambiguous.is_(True)]
    if default_account is not None:
        flagged.append(Event.client_id == default_account)
    if assistant is not None:
        flagged.append(Event.booked_by_id == assistant)
    accepted = exists().where(BookingReview.event_id == Event.id)
    if rooms:
        flagged.append(unmatched_room_clause())
    return and_(
        or_(and_(or_(*flagged), ~accepted), double_booked_clause()), Event.status != "cancelled"
    )


def review_reasons(session: Session, event: Event) -> list[str]:
    """Why this booking is (or would be) in the review queue, in the venue's words; empty when
    it needs no review or was accepted (a double booking stays until it is resolved)."""
    return reasons_for_many(session, [event])[event.id]


def reasons_for_many(
    session: Session, events: list[Event], pre: BookedPrefetch | None = None
) -> dict[int, list[str]]:
    """:func:`review_reasons` for a page of bookings (``pre``: its double bookings, read
    already; else read here for the page in one query)."""
    if pre is None and len(events) > 1:
        pre = BookedPrefetch(session, [event.id for event in events])
    default_account, assistant = _review_settings(session)
    ids = [event.id for event in events]
    accepted = set(
        session.scalars(select(BookingReview.event_id).where(BookingReview.event_id.in_(ids)))
    )
    unmatched = set(
        session.scalars(select(Event.id).where(Event.id.in_(ids), unmatched_room_clause()))
    )
    found: dict[int, list[str]] = {}
    for event in events:
        reasons: list[str] = []
        found[event.id] = reasons
        if event.status == "cancelled":
            continue
        found_doubles = (
            pre.doubles_of(session, event.id) if pre else double_bookings(session, event.id)
        )
        doubles = [d.message() for d in found_doubles]
        if event.id in accepted:
            reasons += doubles
            continue
        if event.ambiguous:
            reasons.append(
                "ambiguous: the booker's address belongs to more than one user or contact"
            )
        if default_account is not None and event.client_id == default_account:
            reasons.append("sent to the Default Account: nobody in the directory has that address")
        if assistant is not None and event.booked_by_id == assistant:
            reasons.append("booked by the Virtual Assistant: the booker is not a staff user")
        if event.id in unmatched:
            reasons.append(
                "no room: the calendar's location matches no venue room (add the text as a "
                "room's alias with `calbridge locations alias`, mark it not a room with "
                "`calbridge locations ignore`, or book a room with `calbridge events "
                "book-location`)"
            )
        reasons += doubles
    return found


def list_bookings(
    session: Session,
    filters: BookingFilters,
    *,
    after: tuple[datetime, int] | None = None,
    limit: int = 50,
) -> BookingPage:
    """Bookings matching ``filters`` in (start, id) order, ``limit`` at a time (keyset
    pagination: pass the page's ``next_after`` to get the next one)."""
    query = select(Event)
    if filters.status is not None:
        if filters.status not in STATUSES:
            raise BadEvent(f"status '{filters.status}' is not one of {', '.join(STATUSES)}")
        query = query.where(Event.status == filters.status)
    if filters.calendar is not None:
        calendar = _calendar(session, filters.calendar)
        # IN (the calendar's links) lets the database start from the calendar's few links
        # rather than test every booking in the date range (web benchmark: 500 ms → 1 ms)
        query = query.where(
            Event.id.in_(select(Link.event_id).where(Link.calendar_id == calendar.id))
        )
    if filters.client is not None:
        query = query.where(
            or_(Event.client_id == filters.client, Event.client_contact_id == filters.client)
        )
    if filters.start_from is not None:
        query = query.where(Event.end_utc > filters.start_from)
    if filters.start_to is not None:
        query = query.where(Event.start_utc < filters.start_to)
    if filters.needs_review is not None:
        clause = needs_review_clause(session, rooms=not filters.texts_grouped)
        query = query.where(clause if filters.needs_review else ~clause)
    if filters.text:
        pattern = "%" + filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Event.name.ilike(pattern + "%", escape="\\"))
    if after is not None:
        start, last_id = after
        query = query.where(
            or_(Event.start_utc > start, and_(Event.start_utc == start, Event.id > last_id))
        )
    rows = list(session.scalars(query.order_by(Event.start_utc, Event.id).limit(limit + 1)))
    items = rows[:limit]
    more = len(rows) > limit and items
    return BookingPage(items, (items[-1].start_utc, items[-1].id) if more else None)


def review_count(session: Session, *, rooms: bool = True) -> int:
    """How many bookings wait in the review queue (for dashboards); ``rooms`` False: not
    counting those flagged only for a location text that matches no room (the review page
    groups those by text instead of listing them)."""
    clause = needs_review_clause(session, rooms=rooms)
    return int(session.scalar(select(func.count()).where(clause)) or 0)
