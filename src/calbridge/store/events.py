"""Bookings in the store: create, change, cancel, re-assign, and their JSON form.

Every write raises the event's ``change_seq`` from the ``events`` counter, which only grows: the
sync engine pushes "everything with change_seq above what I last wrote".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from calbridge.domain.assignment import AccountRef, Assignment, assign
from calbridge.domain.email import normalize_email
from calbridge.domain.event import STATUSES, EventTimes, check_text, make_times
from calbridge.domain.event import utcnow as utcnow  # kept here for its many callers
from calbridge.domain.shown_times import times_json, typed_times
from calbridge.errors import BadEvent, NotFound
from calbridge.store.booked import (
    BookedPrefetch,
    PlaceRequest,
    book_place,
    follow_event,
    rooms_json,
    summary,
)
from calbridge.store.lookup import (
    StoreLookup,
    account_ref,
    load_assignment_settings,
    user_ref,
    venue_zone,
)
from calbridge.store.models import Calendar, Contact, Counter, Event, Link, User

SEQ_BLOCK = 64


def next_change_seq(session: Session) -> int:
    """Take the next value of the ``events`` change counter.

    Values are reserved from the counter row in blocks (one atomic UPDATE … RETURNING per
    ``SEQ_BLOCK`` writes, on SQLite and PostgreSQL alike) and handed out within the same
    transaction; a rolled-back transaction gives its block back. The counter only grows, which
    is all the sync engine needs: it compares a booking's value with the one it last synced.
    """
    txn = id(session.get_transaction())  # a block never outlives its transaction
    owner, block = session.info.get("change_seq_block", (None, None))
    if owner == txn and block is not None and block[0] < block[1]:
        block[0] += 1
        return int(block[0]) - 1
    size = max(SEQ_BLOCK, int(session.info.pop("change_seq_want", 0)))
    end = session.execute(
        update(Counter)
        .where(Counter.name == "events")
        .values(value=Counter.value + size)
        .returning(Counter.value)
    ).scalar_one_or_none()
    if end is None:
        session.add(Counter(name="events", value=size))
        session.flush()
        end = size
    first = int(end) - size + 1
    session.info["change_seq_block"] = (txn, [first + 1, int(end) + 1])
    return first


def reserve_change_seqs(session: Session, count: int) -> None:
    """Say that this session's transaction is about to take ``count`` change values: the next
    block reserved is that large (one counter UPDATE for a page of new bookings instead of one
    per :data:`SEQ_BLOCK`). Ask only for what will be used: what is left over is skipped."""
    session.info["change_seq_want"] = count


@dataclass(frozen=True)
class ManualAssignment:
    client_id: str
    contact_id: str | None
    booked_by_id: str
    event_manager_id: str


def resolve_booker(session: Session, email: str) -> Assignment:
    """Run SPEC §2 for a raw booker address (normalized here)."""
    settings = load_assignment_settings(session)
    return assign(normalize_email(email), StoreLookup(session), settings)


def assignment_columns(a: Assignment) -> dict[str, Any]:
    """The booking columns an assignment sets (one dict, shared by every booking a sync run
    assigns to the same booker)."""
    return {
        "client_id": a.client.id,
        "client_kind": a.client.kind,
        "client_contact_id": a.client_contact.id if a.client_contact else None,
        "booked_by_id": a.booked_by.id,
        "event_manager_id": a.event_manager.id,
        "booker_email": a.email,
        "ambiguous": a.ambiguous,
        "trace": [step.as_dict() for step in a.trace],
        "assignment_reasons": {
            "booked_by": a.booked_by_reason,
            "event_manager": a.event_manager_reason,
        },
    }


def apply_assignment(event: Event, a: Assignment) -> None:
    for key, value in assignment_columns(a).items():
        setattr(event, key, value)


def _apply_manual(session: Session, event: Event, m: ManualAssignment) -> None:
    client = account_ref(session, m.client_id)
    if client is None:
        raise NotFound(f"no company or contact has id '{m.client_id}'")
    if m.contact_id is not None:
        contact = session.get(Contact, m.contact_id)
        if contact is None:
            raise NotFound(f"no contact has id '{m.contact_id}'")
        _check_contact_of(contact, client)
    for role, uid in (("booked-by", m.booked_by_id), ("event-manager", m.event_manager_id)):
        user = session.get(User, uid)
        if user is None:
            raise NotFound(f"--{role}: no user has id '{uid}'")
        if not user.active:
            raise BadEvent(f"--{role}: user '{uid}' is deactivated")
    event.client_id, event.client_kind = client.id, client.kind
    event.client_contact_id = m.contact_id
    event.booked_by_id, event.event_manager_id = m.booked_by_id, m.event_manager_id
    event.booker_email, event.ambiguous = None, False
    event.trace = [
        {"step": 0, "rule": "Assigned explicitly", "outcome": "client and users given by hand"}
    ]
    event.assignment_reasons = {"booked_by": "given by hand", "event_manager": "given by hand"}


def _check_contact_of(contact: Contact, client: AccountRef) -> None:
    """SPEC §2: a contact's company is the Event Client (a contact without one is itself the
    client), so a contact of another company than ``client`` is refused."""
    belongs = contact.company_id or contact.id
    if belongs == client.id:
        return
    whose = (
        f"belongs to company '{contact.company_id}'"
        if contact.company_id
        else "belongs to no company (such a contact is its own client)"
    )
    raise BadEvent(
        f"--contact '{contact.id}' ({contact.name}) {whose}, not to --client '{client.id}' "
        f"({client.name}); give --client {belongs}, or a contact of '{client.id}'"
    )


def times_columns(times: EventTimes) -> dict[str, Any]:
    """The booking columns that hold ``times``."""
    start, end = times.iso()
    start_utc, end_utc = times.utc_range()
    return {
        "start": start,
        "end": end,
        "all_day": times.all_day,
        "timezone": times.timezone,
        "start_utc": start_utc,
        "end_utc": end_utc,
    }


def set_times(event: Event, times: EventTimes) -> None:
    for key, value in times_columns(times).items():
        setattr(event, key, value)


def event_times(event: Event) -> EventTimes:
    if event.all_day:
        return EventTimes(
            date.fromisoformat(event.start), date.fromisoformat(event.end), True, None
        )
    return EventTimes(
        datetime.fromisoformat(event.start),
        datetime.fromisoformat(event.end),
        False,
        event.timezone,
    )


def touch(session: Session, event: Event) -> None:
    event.updated_at = utcnow()
    event.change_seq = next_change_seq(session)


def create_event(
    session: Session,
    *,
    name: str,
    times: EventTimes,
    location: str | None = None,
    notes: str | None = None,
    status: str = "confirmed",
    booker: str | None = None,
    manual: ManualAssignment | None = None,
    places: Sequence[PlaceRequest] = (),
) -> Event:
    """A booking with its booked locations: ``places`` (rooms by id, name or alias, or free
    text, each with its own times or the booking's), else one made of ``location``."""
    if places and location is not None:
        raise BadEvent("give the booking's locations as places or as one location, not both")
    check_text(name, location, notes)
    for place in places:
        check_text(name, place.value, None)
    if status not in STATUSES:
        raise BadEvent(f"status '{status}' is not one of {', '.join(STATUSES)}")
    now = utcnow()
    event = Event(name=name, location=location, notes=notes, status=status, created_at=now)
    set_times(event, times)
    if booker is not None:
        apply_assignment(event, resolve_booker(session, booker))
    elif manual is not None:
        _apply_manual(session, event, manual)
    else:
        raise BadEvent("give --booker EMAIL, or --client, --booked-by and --event-manager")
    touch(session, event)
    session.add(event)
    session.flush()
    for position, place in enumerate(places or [PlaceRequest(location, None)]):
        book_place(session, event, place, position=position)
    session.flush()
    event.location = summary(session, event)
    return event


def get_event(session: Session, event_id: int) -> Event:
    """The booking with ``event_id``; NotFound (never a driver error) for any other number."""
    if not 0 < event_id < 2**63:  # ids are positive 64-bit integers on every database
        raise NotFound(f"no event has id {event_id}; `calbridge events list` shows the ids")
    event = session.get(Event, event_id)
    if event is None:
        raise NotFound(f"no event has id {event_id}")
    return event


def typed_event_times(
    session: Session,
    start: str | datetime | date,
    end: str | datetime | date,
    *,
    all_day: bool,
    timezone: str | None,
    current: EventTimes | None = None,
) -> EventTimes:
    """Times a person typed for a booking (:func:`calbridge.domain.shown_times.typed_times`):
    without ``timezone`` they are in the booking's current zone, else the venue's."""
    default = current.timezone if current is not None else None
    return typed_times(
        start,
        end,
        all_day=all_day,
        timezone=timezone,
        default_zone=default or venue_zone(session),
    )


def update_event(
    session: Session, event: Event, changes: dict[str, Any], *, typed: bool = False
) -> bool:
    """Apply field changes (name, start, end, all_day, timezone, location, notes, status).
    ``typed``: the times are as a person typed them (:func:`typed_event_times`)."""
    times_keys = {"start", "end", "all_day", "timezone"}
    before = event_times(event)
    if times_keys & changes.keys():
        current = event_times(event)
        all_day = changes.get("all_day", current.all_day)
        start = changes.get("start", current.start)
        end = changes.get("end", current.end)
        if typed:
            times = typed_event_times(
                session,
                start,
                end,
                all_day=all_day,
                timezone=changes.get("timezone"),
                current=current,
            )
        else:
            timezone = changes.get("timezone", current.timezone)
            times = make_times(start, end, all_day=all_day, timezone=timezone)
        if times != current:
            set_times(event, times)
            changed = True
        else:
            changed = False
    else:
        changed = False
    for key in ("name", "notes", "status"):
        if key in changes and getattr(event, key) != changes[key]:
            setattr(event, key, changes[key])
            changed = True
    check_text(event.name, changes.get("location"), event.notes)
    if event.status not in STATUSES:
        raise BadEvent(f"status '{event.status}' is not one of {', '.join(STATUSES)}")
    was = event.location
    moved = "location" in changes and changes["location"] != was
    follow_event(session, event, before, event_times(event), (moved, changes.get("location")))
    changed = changed or event.location != was
    if changed:
        touch(session, event)
    return changed


def reassign_event(session: Session, event: Event, booker: str | None = None) -> Assignment:
    email = booker or event.booker_email
    if email is None:
        raise BadEvent(
            f"event {event.id} was assigned by hand and has no booker address; "
            "pass --booker EMAIL to resolve one"
        )
    assignment = resolve_booker(session, email)
    apply_assignment(event, assignment)
    touch(session, event)
    return assignment


def list_events(session: Session, status: str | None = None) -> list[Event]:
    query = select(Event).order_by(Event.start_utc, Event.id)
    if status is not None:
        if status not in STATUSES:
            raise BadEvent(f"status '{status}' is not one of {', '.join(STATUSES)}")
        query = query.where(Event.status == status)
    return list(session.scalars(query))


def _ref(ref: Any) -> dict[str, str] | None:
    return None if ref is None else {"id": ref.id, "name": ref.name}


def event_links(session: Session, event_id: int) -> list[dict[str, Any]]:
    """The calendars carrying this booking: name, state and the object's id there."""
    rows = session.execute(
        select(Calendar.name, Link.state, Link.remote_id, Link.recurrence_id)
        .join(Calendar, Calendar.id == Link.calendar_id)
        .where(Link.event_id == event_id)
        .order_by(Calendar.name)
    )
    return [
        {"calendar": name, "state": state, "remote_id": remote, "recurrence_id": rid or None}
        for name, state, remote, rid in rows
    ]


def links_of_many(session: Session, event_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """:func:`event_links` for a page of bookings, 500 bookings a query."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in event_ids}
    for start in range(0, len(event_ids), 500):
        rows = session.execute(
            select(Link.event_id, Calendar.name, Link.state, Link.remote_id, Link.recurrence_id)
            .join(Calendar, Calendar.id == Link.calendar_id)
            .where(Link.event_id.in_(event_ids[start : start + 500]))
            .order_by(Link.event_id, Calendar.name)
        )
        for event_id, name, state, remote, rid in rows:
            out[event_id].append(
                {
                    "calendar": name,
                    "state": state,
                    "remote_id": remote,
                    "recurrence_id": rid or None,
                }
            )
    return out


def event_json(
    session: Session,
    event: Event,
    pre: BookedPrefetch | None = None,
    links: dict[int, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """A booking as ``events show/list --json`` print it; ``pre`` and ``links``: read for a
    whole listing at once (:class:`~calbridge.store.booked.BookedPrefetch`,
    :func:`links_of_many`)."""
    client = account_ref(session, event.client_id) if event.client_id else None
    contact = session.get(Contact, event.client_contact_id) if event.client_contact_id else None
    return {
        "id": event.id,
        "name": event.name,
        **times_json(event_times(event)),
        "location": event.location,
        "notes": event.notes,
        "status": event.status,
        "client": None if client is None else {**_ref(client), "kind": client.kind},  # type: ignore[dict-item]
        "client_contact": _ref(contact),
        "booked_by": _ref(user_ref(session, event.booked_by_id)),
        "event_manager": _ref(user_ref(session, event.event_manager_id)),
        "booker_email": event.booker_email,
        "ambiguous": event.ambiguous,
        "trace": event.trace or [],
        "reasons": event.assignment_reasons or {},
        **rooms_json(session, event.id, pre),
        "links": links[event.id] if links is not None else event_links(session, event.id),
        "created_at": event.created_at.isoformat() + "Z",
        "updated_at": event.updated_at.isoformat() + "Z",
    }
