"""SQLAlchemy 2 models: the booking system of record (SPEC §1).

Emails live in their own tables (``user_emails``, ``contact_emails``), normalized and indexed,
so that resolving one booker is a constant number of indexed queries whatever the CRM's size.
A contact's primary email is stored both on the contact (for export) and as the ``is_primary``
row of ``contact_emails`` (for lookup).

Account ids are one namespace: a company and a contact never share an id, so a reference such
as ``users.crm_account_id`` or the default account is unambiguous; ``*_kind`` columns say which
table it points at.

This module does without ``from __future__ import annotations``: SQLAlchemy reads each
``Mapped[...]`` annotation when the class is made, and from a string it must evaluate it first,
about a tenth of the module's import time in every process. A class named before it is defined
is written in quotes.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(Integer, default=0)  # order in the imported file


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    company_id: Mapped[str | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), nullable=True
    )
    primary_email: Mapped[str] = mapped_column(String(254))
    position: Mapped[int] = mapped_column(Integer, default=0)  # order in the imported file

    company: Mapped[Company | None] = relationship(lazy="joined")
    emails: Mapped[list["ContactEmail"]] = relationship(
        cascade="all, delete-orphan", order_by="ContactEmail.position"
    )


class ContactEmail(Base):
    __tablename__ = "contact_emails"
    __table_args__ = (
        UniqueConstraint("contact_id", "address", name="uq_contact_email"),
        Index("ix_contact_emails_address", "address"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(254))  # normalized: trimmed, lower-case
    display: Mapped[str] = mapped_column(String(254))  # as written in the directory
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    type: Mapped[str] = mapped_column(String(32))  # named | concurrent | virtual_assistant
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    crm_account_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    crm_account_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    emails: Mapped[list["UserEmail"]] = relationship(
        cascade="all, delete-orphan", order_by="UserEmail.position"
    )


class UserEmail(Base):
    __tablename__ = "user_emails"
    __table_args__ = (
        UniqueConstraint("user_id", "address", name="uq_user_email"),
        Index("ix_user_emails_address", "address"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(254))  # normalized: trimmed, lower-case
    display: Mapped[str] = mapped_column(String(254))  # as written in the directory
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Location(Base):
    """A venue room (SPEC §1): name, aliases, capacity, active, and the address of the room
    resource it is linked to (a Google resource calendar's email, an Exchange room mailbox, a
    CalDAV room principal's address), stored normalized and indexed: an invited room is found
    by one indexed query."""

    __tablename__ = "locations"
    __table_args__ = (Index("ix_locations_resource_address", "resource_address"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    resource_address: Mapped[str | None] = mapped_column(String(254), nullable=True)
    resource_display: Mapped[str | None] = mapped_column(String(254), nullable=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)  # order in the imported file


class NotRoomText(Base):
    """A location text an admin marked "not a room" (``Zoom``, ``Teams meeting``): bookings
    that arrive with it keep it as free text without being flagged for review. ``key`` is the
    text compared as room names are (:func:`calbridge.domain.rooms.room_key`)."""

    __tablename__ = "not_room_texts"

    key: Mapped[str] = mapped_column(String(1000), primary_key=True)
    text: Mapped[str] = mapped_column(String(1000))
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(200))


class SystemSettings(Base):
    """Event System Settings; a single row with id 1."""

    __tablename__ = "system_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    default_account_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    default_event_manager_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    auto_assign_event_manager: Mapped[bool] = mapped_column(Boolean, default=False)
    virtual_assistant_user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # IANA zone of the venue: the default zone of bookings typed without one, and the zone
    # times are shown in (None: UTC)
    venue_timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Counter(Base):
    """Named monotonically increasing counters (``events``: the change cursor)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Event(Base):
    """A booking. ``start``/``end`` hold ISO wall-clock datetimes (or dates when all-day) in
    ``timezone``; ``start_utc``/``end_utc`` are for ordering and horizons. ``change_seq`` is
    raised on every write from the ``events`` counter: the sync engine's cursor."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_change_seq", "change_seq"),
        Index("ix_events_start_utc", "start_utc"),
        Index("ix_events_event_manager", "event_manager_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(1000))
    start: Mapped[str] = mapped_column(String(40))
    end: Mapped[str] = mapped_column(String(40))
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start_utc: Mapped[datetime] = mapped_column(DateTime)
    end_utc: Mapped[datetime] = mapped_column(DateTime)
    location: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="confirmed")

    client_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    client_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    client_contact_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    booked_by_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    event_manager_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    booker_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    ambiguous: Mapped[bool] = mapped_column(Boolean, default=False)
    trace: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    assignment_reasons: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    change_seq: Mapped[int] = mapped_column(Integer, default=0)


class BookedLocation(Base):
    """One room (or free-text place) a booking holds, with its own times (EventPro's "event
    locations"). ``location_id`` is the venue room, or None for a free-text ``location_text``;
    ``match`` says how a room was found for a booking that came from a calendar (``resource``,
    ``calendar_room``, ``text``, ``none``: flagged for review) or ``given`` by a person.
    ``status`` is ``confirmed`` or ``cancelled`` (deleting its appointment cancels it)."""

    __tablename__ = "booked_locations"
    __table_args__ = (
        Index("ix_booked_locations_event", "event_id"),
        Index("ix_booked_locations_room", "location_id", "start_utc"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    location_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    location_text: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    start: Mapped[str] = mapped_column(String(40))
    end: Mapped[str] = mapped_column(String(40))
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start_utc: Mapped[datetime] = mapped_column(DateTime)
    end_utc: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    match: Mapped[str] = mapped_column(String(16), default="given")
    position: Mapped[int] = mapped_column(Integer, default=0)


class Calendar(Base):
    """A linked calendar. ``settings`` holds the provider's connection details (never secrets:
    those are in ``secret``, encrypted). ``sync_token`` is the provider's opaque cursor."""

    __tablename__ = "calendars"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # caldav | google | graph
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner_user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    policy: Mapped[str] = mapped_column(String(32), default="booking-wins")
    direction: Mapped[str] = mapped_column(String(16), default="both")
    horizon_days: Mapped[int] = mapped_column(Integer, default=365)
    key_prefix: Mapped[str] = mapped_column(String(32))
    sync_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    full_gen: Mapped[int] = mapped_column(Integer, default=0)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Run state kept by the service (calbridge.service.runs): ok | syncing | error |
    # auth_expired | paused | needs_confirmation, with what to do about it in ``error_hint``.
    state: Mapped[str] = mapped_column(String(32), default="ok", server_default="ok")
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    error_hint: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    poll_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    idle_polls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # digest of the sealed secret that was refused: no retry until the credentials change
    auth_failed_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    full_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The calendar as an assistant (calbridge.sync.assistant): one appointment per booked
    # location, per day or per event; rooms sent as resource attendees; which bookings it
    # carries; the title of appointments on a publish-only calendar; the room whose own
    # calendar this is (every event on it is in that room).
    export_mode: Mapped[str] = mapped_column(
        String(16), default="locations", server_default="locations"
    )
    rooms_as_resources: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    filters: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    title_template: Mapped[str | None] = mapped_column(String(500), nullable=True)
    room_location_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # "this calendar's last sync left nothing to do, at store revision R" (calbridge.sync.quick)
    quiet_mark: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SyncRun(Base):
    """One run of the sync job for one calendar (kept 30 days): who asked (``trigger``), when,
    how it ended (``result``: running | ok | error | retry | auth_expired | interrupted), the
    report's counts and the number of requests it made."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        Index("ix_sync_runs_calendar_started", "calendar_id", "started_at"),
        Index("ix_sync_runs_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    calendar_name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(32))
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    result: Mapped[str] = mapped_column(String(16), default="running")
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SyncTotal(Base):
    """Running totals behind ``/metrics``: sync runs finished by kind, result and duration
    bucket (``bucket``: index into :data:`calbridge.service.metrics.DURATION_BUCKETS`, its
    length meaning "+Inf"), with their seconds summed. Every worker process adds to it in the
    transaction that records the run's end, so one scrape of any process sees every worker's
    runs; it only grows (``sync_runs`` is pruned after 30 days, these totals are not)."""

    __tablename__ = "sync_totals"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    result: Mapped[str] = mapped_column(String(16), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class HistoryEntry(Base):
    """One recorded change (table ``history``, migration ``0006_api``): see
    :mod:`calbridge.ops.history`, which writes and reads it."""

    __tablename__ = "history"
    __table_args__ = (Index("ix_history_subject", "subject", "subject_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ServiceWorker(Base):
    """A sync worker's heartbeat: ``/readyz`` wants one seen within the last minute."""

    __tablename__ = "service_workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # local | procrastinate
    started_at: Mapped[datetime] = mapped_column(DateTime)
    seen_at: Mapped[datetime] = mapped_column(DateTime)


class LinkState:
    """The columns a link keeps about one booking's remote object, shared by :class:`Link` and
    :class:`FormerLink` (a link kept after its calendar was removed); see :class:`Link`."""

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    remote_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    recurrence_id: Mapped[str] = mapped_column(String(32), default="")
    uid: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    key: Mapped[str] = mapped_column(String(200))
    etag: Mapped[str | None] = mapped_column(String(512), nullable=True)
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    synced_seq: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    origin: Mapped[str] = mapped_column(String(16), default="booking")  # booking | calendar
    is_series: Mapped[bool] = mapped_column(Boolean, default=False)
    # which appointment of the booking this is (calbridge.sync.assistant.parts): "" the
    # booking's first booked location (or the whole event), "l<id>" another booked location,
    # "d<date>" one day of it
    part: Mapped[str] = mapped_column(String(40), default="", server_default="")


class Link(LinkState, Base):
    """One booking ⇄ one calendar object (or one occurrence of a series; or one appointment
    of the booking, ``part``).

    ``state``: ``pending`` (to be created on the calendar), ``creating`` (create sent or about to
    be: after a crash the next run adopts it by ``key``), ``ok``, ``gone`` (removed on one side).
    ``snapshot`` is the last-synced fields; ``synced_seq`` the booking's ``change_seq`` when
    they were last in agreement. ``recurrence_id`` is ``""`` for a non-recurring object."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("calendar_id", "event_id", "part", name="uq_link_calendar_event_part"),
        UniqueConstraint("calendar_id", "remote_id", "recurrence_id", name="uq_link_remote"),
        Index("ix_links_calendar_key", "calendar_id", "key"),
        Index("ix_links_event", "event_id"),
        Index("ix_links_calendar_uid", "calendar_id", "uid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    seen_gen: Mapped[int] = mapped_column(Integer, default=0)

    event: Mapped[Event] = relationship()


class FormerLink(LinkState, Base):
    """A link of a calendar that was removed, kept under the remote calendar's identity
    (:func:`calbridge.sync.relink.remote_identity`) so that linking the same calendar again
    adopts what both sides already hold instead of duplicating it. Its :class:`LinkState`
    columns are those of the link it was."""

    __tablename__ = "former_links"
    __table_args__ = (Index("ix_former_links_identity", "identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(1100))
    key_prefix: Mapped[str] = mapped_column(String(32))
    removed_at: Mapped[datetime] = mapped_column(DateTime)


class ConflictRecord(Base):
    """A field changed on both sides, and which side won under the calendar's policy."""

    __tablename__ = "conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(32))
    booking_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    calendar_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    winner: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime)


class Rejection(Base):
    """A calendar object that could not be imported, and why. Cleared once it imports."""

    __tablename__ = "rejections"
    __table_args__ = (UniqueConstraint("calendar_id", "remote_id", name="uq_rejection_remote"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    remote_id: Mapped[str] = mapped_column(String(1024))
    uid: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime)


class HeldCancellation(Base):
    """A cancellation the mass-cancellation guard held back (calbridge.sync.guard): the
    calendar waits in state ``needs_confirmation`` until a person confirms the list."""

    __tablename__ = "held_cancellations"
    __table_args__ = (Index("ix_held_cancellations_calendar", "calendar_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(500))
    held_at: Mapped[datetime] = mapped_column(DateTime)


class CalendarAlert(Base):
    """The last calendar state an alert email was sent for (calbridge.service.alerts), so a
    state change is announced once, and its recovery once, across restarts."""

    __tablename__ = "calendar_alerts"

    calendar_id: Mapped[int] = mapped_column(
        ForeignKey("calendars.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(32))
    notified_at: Mapped[datetime] = mapped_column(DateTime)


class SyncLock(Base):
    """Who is syncing a calendar right now, on SQLite (PostgreSQL uses an advisory lock
    instead; see ``sync/locks.py``). ``host``/``pid`` let a later process tell a crashed
    holder's row from a live one."""

    __tablename__ = "sync_locks"

    calendar_id: Mapped[int] = mapped_column(
        ForeignKey("calendars.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(DateTime)
