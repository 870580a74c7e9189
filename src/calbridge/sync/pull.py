"""Pull: apply what changed on a calendar to the booking system.

Pages are read ahead on a thread (:class:`~calbridge.sync.readahead.ReadAhead`) and applied in
transactions: one page each while the listing keeps up with the store, and while it is ahead
(a first import read by a child process, whose pages wait in the queue) the pages already read
join the transaction of the one before them, up to :data:`GROUP_ITEMS` objects — a commit, the
page's lookups and a share of SQLite's checkpoints fewer per page. A page is never split, and
what the listing raises is raised after the pages before it are committed.

The provider's new token is stored with the last page only, so a run killed anywhere simply
re-reads the same changes next time, and re-reading is harmless: objects are matched to
bookings by (calendar, remote id, occurrence), or by our idempotency key for objects we created
ourselves. One UID is one event: a new object whose UID another object of the calendar already
holds is rejected, naming that object, instead of becoming a second booking.

Cancellations (deleted events, occurrences removed from a series, what a full resync's listing
no longer holds) are not applied page by page: they are collected and settled by the
mass-cancellation guard (:mod:`calbridge.sync.guard`) in the last page's transaction, the one
that stores the new token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from calbridge.domain.assignment import AssignmentSettings
from calbridge.domain.merge import Policy, merge
from calbridge.domain.recurrence import parse_recurrence_id
from calbridge.domain.remote import (
    ChangePage,
    EventFields,
    RemoteItem,
    RemoteRejection,
    Window,
)
from calbridge.domain.rooms import RoomDecision, match_rooms
from calbridge.errors import BadEmail, BadEvent
from calbridge.store.db import Store, insert_rows, insert_with_ids
from calbridge.store.events import (
    SEQ_BLOCK,
    assignment_columns,
    reserve_change_seqs,
    utcnow,
)
from calbridge.store.locations import StoreRoomLookup
from calbridge.store.lookup import load_assignment_settings
from calbridge.store.models import Calendar, ConflictRecord, Event, Link, Rejection
from calbridge.sync.appointments import (
    apply_link_fields,
    link_fields,
    rematch_rooms,
    remote_rooms,
    snapshot_rooms,
    with_rooms,
)
from calbridge.sync.bookings import (
    assign_arrival,
    booking_row,
    insert_booked_locations,
    room_trace,
)
from calbridge.sync.collector import fewer_collections
from calbridge.sync.guard import NeedsConfirmation, PendingCancellations, cancel_link, settle
from calbridge.sync.history import changed_fields, record_arrivals, record_change
from calbridge.sync.readahead import ReadAhead
from calbridge.sync.report import SyncReport

Progress = Callable[[int], None]

#: At most this many objects (and deletions) in one transaction: pages already read when the
#: one before them is applied join its transaction up to this size (see the module doc).
GROUP_ITEMS = 2_000
#: A pull of at least this many objects has SQLite's log copied early (Store.checkpoint_soon).
CHECKPOINT_ITEMS = 1_000
#: booker address → the booking columns its assignment sets (see :class:`PageApplier`)
Assigned = dict[str, dict[str, Any]]


@dataclass
class Linked:
    """What a pull of a calendar that had no links when it began has linked so far: the
    remote ids it gave a link, and each whole object's UID → its href (the links the
    page lookups of :class:`PageApplier` would find). Such a pull never asks the store for the
    links of an object it has not linked itself — on a first import, two queries per page
    that could only answer "none"."""

    ids: set[str] = field(default_factory=set)
    uids: dict[str, str] = field(default_factory=dict)


class PageApplier:
    """Applies pages for one calendar within a session the caller commits.

    New bookings are set-based: a page's arrivals become plain rows, inserted with one
    executemany per table (bookings, links, history, booked locations; on SQLite straight
    through the driver, :func:`~calbridge.store.db.insert_rows`), never an ORM object per
    booking. ``assigned`` memoizes the assignment per booker address; the pull
    passes one dict for the whole run (the directory does not change during a sync), so a
    booker's rules run once per run, not once per event or page.
    """

    def __init__(
        self,
        session: Session,
        calendar: Calendar,
        window: Window,
        report: SyncReport,
        pending: PendingCancellations | None = None,
        assigned: Assigned | None = None,
        settings: AssignmentSettings | None = None,
        linked: Linked | None = None,
    ):
        self.session = session
        self.pending = pending  # None: cancel at once (no guard)
        self.calendar = calendar
        self.window = window
        self.report = report
        self.settings: AssignmentSettings = settings or load_assignment_settings(session)
        self.assigned: Assigned = {} if assigned is None else assigned
        self.arrivals: list[tuple[dict[str, Any], dict[str, Any]]] = []  # page's new bookings
        self.seen: list[int] = []  # links a full listing mentioned (see mark_seen)
        self.arrival_rooms: list[RoomDecision] = []  # each arrival's rooms (domain/rooms.py)
        self.room_lookup = StoreRoomLookup(session)
        self.by_remote: dict[str, list[Link]] = {}  # the page's links, see _prefetch
        self.prefetched: set[str] = set()
        self.uid_owner: dict[str, str] = {}  # UID → the href that holds it (see _duplicate)
        self.linked = linked  # None: the calendar had links when the pull began (see Linked)
        self.gone: set[str] = set()  # the page's deleted hrefs
        self.rejected: set[str] = set(
            session.scalars(select(Rejection.remote_id).where(Rejection.calendar_id == calendar.id))
        )

    def apply(self, page: ChangePage, gen: int | None) -> None:
        self._prefetch(page)
        # the page's objects we hold no link for are (nearly all) new bookings: their change
        # values come from one counter update
        new = sum(
            len(i.occurrences)
            for i in page.items
            if isinstance(i, RemoteItem) and i.ref.id not in self.by_remote
        )
        if new > SEQ_BLOCK:
            reserve_change_seqs(self.session, new)
        for item in page.items:
            self.report.pulled += 1
            if isinstance(item, RemoteRejection):
                self._reject(item.ref_id, item.uid, item.reason)
                continue
            try:
                self.apply_item(item, gen)
            except (BadEmail, BadEvent) as exc:
                self._reject(item.ref.id, item.uid, str(exc))
        self.insert_arrivals()
        if gen is not None:
            self.mark_seen(gen)
        for ref_id in page.deleted:
            self.report.pulled += 1
            self.remote_gone(ref_id)

    def _prefetch(self, page: ChangePage) -> None:
        """Load the page's links in one query per 500 ids instead of one per item (for a
        calendar that had none, only those this pull made: :class:`Linked`)."""
        self.by_remote = {}
        ids = [i.ref.id for i in page.items if isinstance(i, RemoteItem)] + list(page.deleted)
        self.gone = set(page.deleted)  # an object moved to a new href within this page is no clash
        linked = self.linked
        asked = ids if linked is None else [i for i in ids if i in linked.ids]
        for start in range(0, len(asked), 500):
            chunk = asked[start : start + 500]
            for link in self.session.scalars(
                select(Link).where(Link.calendar_id == self.calendar.id, Link.remote_id.in_(chunk))
            ):
                self.by_remote.setdefault(link.remote_id or "", []).append(link)
        self.prefetched = set(ids)
        if linked is not None:
            return  # the UIDs this pull linked are looked up in memory (_duplicate)
        uids = list({i.uid for i in page.items if isinstance(i, RemoteItem) and _whole(i)})
        gone = self.gone
        for start in range(0, len(uids), 500):
            for uid, remote_id in self.session.execute(
                select(Link.uid, Link.remote_id).where(
                    Link.calendar_id == self.calendar.id,
                    Link.uid.in_(uids[start : start + 500]),
                    Link.state != "gone",
                    Link.remote_id.is_not(None),
                    (Link.is_series.is_(False)) | (Link.recurrence_id != ""),
                )
            ):
                if uid is not None and remote_id is not None and remote_id not in gone:
                    self.uid_owner.setdefault(uid, remote_id)

    def _links_for(self, item: RemoteItem) -> dict[str, Link]:
        if item.ref.id in self.prefetched:
            links: Sequence[Link] = self.by_remote.get(item.ref.id, [])
        else:
            links = self.session.scalars(
                select(Link).where(
                    Link.calendar_id == self.calendar.id, Link.remote_id == item.ref.id
                )
            ).all()
        if not links and item.key is not None:
            links = self.session.scalars(
                select(Link).where(Link.calendar_id == self.calendar.id, Link.key == item.key)
            ).all()
            for link in links:  # our own create, seen before we recorded its result
                link.remote_id, link.uid, link.state = item.ref.id, item.uid, "ok"
        return {link.recurrence_id: link for link in links}

    def apply_item(self, item: RemoteItem, gen: int | None) -> None:
        self._clear_rejection(item.ref.id)
        links = self._links_for(item)
        if not links and self._duplicate(item):
            return
        if gen is not None:
            self.seen.extend(link.id for link in links.values())
        known = [link for link in links.values() if link.state != "gone"]
        unchanged = item.ref.etag and all(link.etag == item.ref.etag for link in known)
        if known and unchanged and all((o.recurrence_id or "") in links for o in item.occurrences):
            return  # our own write echoed back, or nothing new (no occurrence came into range)
        seen: set[str] = set()
        for occurrence in item.occurrences:
            rid = occurrence.recurrence_id or ""
            seen.add(rid)
            found = links.get(rid)
            if found is None:
                self._arrival(item, rid, occurrence.fields, gen)
            else:
                self._merge(item, found, occurrence.fields)
        for rid, link in links.items():
            if rid and rid not in seen and link.state != "gone" and self._in_window(rid):
                self._cancel(link, "the occurrence was removed from the series")

    def _duplicate(self, item: RemoteItem) -> bool:
        """A new object whose UID another object of this calendar already has: one UID is one
        event (RFC 4791), so the second is rejected — naming the first — rather than booked
        twice. Occurrence-per-object providers (Graph instances of one series) are exempt."""
        if not _whole(item) or not item.uid:
            return False
        owner = self.uid_owner.get(item.uid)
        if owner in self.gone:  # that object moved to a new href within this page
            owner = None
        if owner is None and self.linked is not None:
            made = self.linked.uids.get(item.uid)
            owner = made if made is not None and made not in self.gone else None
        if owner is None:
            owner = self.uid_owner[item.uid] = item.ref.id
        if owner == item.ref.id:
            return False
        self._reject(
            item.ref.id,
            item.uid,
            f"UID {item.uid[:200]} is already used by {owner[:300]} on this calendar; this "
            "copy was not imported (one UID is one event): delete the duplicate or give it a "
            "new UID",
        )
        return True

    def _in_window(self, recurrence_id: str) -> bool:
        start = parse_recurrence_id(recurrence_id, None)  # naive UTC, floating, or a date
        if not isinstance(start, datetime):
            start = datetime(start.year, start.month, start.day)
        return self.window.start <= start < self.window.end

    def _arrival(self, item: RemoteItem, rid: str, fields: EventFields, gen: int | None) -> None:
        if fields.status == "cancelled":
            return  # nothing to book: it was cancelled before we ever saw it
        memo = (item.organizer or "").strip().lower()
        assigned = self.assigned.get(memo)
        if assigned is None:
            assignment = assign_arrival(
                self.session, self.calendar, item.organizer, self.settings, "the event's"
            )
            assigned = {**assignment_columns(assignment), "booker_email": assignment.email or None}
            self.assigned[memo] = assigned
        event = booking_row(self.session, fields, assigned)
        rooms = match_rooms(
            item.rooms, self.calendar.room_location_id, fields.location, self.room_lookup
        )
        if rooms.trace:
            event["trace"] = [*(event.get("trace") or []), *room_trace(rooms)]
        self.arrival_rooms.append(rooms)
        link = {
            "calendar_id": self.calendar.id,
            "remote_id": item.ref.id,
            "recurrence_id": rid,
            "uid": item.uid,
            "key": item.key or arrival_key(self.calendar, item.ref.id, rid),
            "etag": item.ref.etag,
            "snapshot": with_rooms(
                fields.snapshot(), remote_rooms(item.rooms, self.room_lookup.is_address)
            ),
            "synced_seq": event["change_seq"],
            "state": "ok",
            "origin": "calendar",
            "is_series": item.is_series,
            "seen_gen": gen or 0,
        }
        self.arrivals.append((event, link))
        self.report.created += 1

    def insert_arrivals(self) -> None:
        """New bookings and their links, inserted in two Core statements per page (the
        bookings' ids come back in row order, :func:`~calbridge.store.db.insert_with_ids`)
        instead of two ORM rows per event."""
        if not self.arrivals:
            return
        events, links = cast(Table, Event.__table__), cast(Table, Link.__table__)
        rows = [row for row, _ in self.arrivals]
        ids = insert_with_ids(self.session, events, rows)
        insert_rows(
            self.session,
            links,
            [
                {**link, "event_id": event_id}
                for (_, link), event_id in zip(self.arrivals, ids, strict=True)
            ],
        )
        record_arrivals(
            self.session,
            self.calendar.name,
            (
                (event_id, str(link["remote_id"]), row.get("booker_email"))
                for (row, link), event_id in zip(self.arrivals, ids, strict=True)
            ),
        )
        insert_booked_locations(
            self.session, [e for e, _ in self.arrivals], ids, self.arrival_rooms
        )
        if self.linked is not None:  # what _prefetch's queries would now find
            for _, link in self.arrivals:
                remote = str(link["remote_id"])
                self.linked.ids.add(remote)
                if link["uid"] and (not link["is_series"] or link["recurrence_id"]):
                    self.linked.uids.setdefault(link["uid"], remote)
        self.arrivals.clear()
        self.arrival_rooms.clear()

    def mark_seen(self, gen: int) -> None:
        """Record that a full listing mentioned the page's known links: one UPDATE per 500
        links instead of one per link (a full resync of a large calendar touches them all)."""
        for start in range(0, len(self.seen), 500):
            self.session.execute(
                update(Link)
                .where(Link.id.in_(self.seen[start : start + 500]))
                .values(seen_gen=gen)
                .execution_options(synchronize_session=False)
            )
        self.seen.clear()

    def _merge(self, item: RemoteItem, link: Link, remote: EventFields) -> None:
        event = self.session.get(Event, link.event_id)
        if event is None:
            return
        rooms = remote_rooms(item.rooms, self.room_lookup.is_address)
        remote_snap = remote.snapshot()
        link.etag, link.uid, link.is_series = item.ref.etag, item.uid, item.is_series
        if link.state == "gone":
            return
        if with_rooms(remote_snap, rooms) == link.snapshot:
            return  # the calendar did not change these fields; our changes go out on push
        base = link.snapshot or {}
        rooms_changed = rooms != snapshot_rooms(base)
        location, counted = remote.location, False
        if remote_snap != with_rooms(base, []):
            location, counted = self._merge_fields(item, link, event, remote_snap)
        text_changed = (location or None) == (remote.location or None) != base.get("location")
        if rooms_changed or text_changed:
            self._rematch(item, link, event, location, rooms_changed, counted)
        link.snapshot = with_rooms(link.snapshot or remote_snap, rooms)

    def _rematch(
        self,
        item: RemoteItem,
        link: Link,
        event: Event,
        location: str | None,
        rooms_changed: bool,
        counted: bool,
    ) -> None:
        """The appointment's rooms (or, for one booked location, its location text) changed on
        the calendar: its booked locations follow as the import rules decide (see
        :func:`calbridge.sync.appointments.rematch_rooms`), in the booking's history."""
        in_sync = link.synced_seq >= event.change_seq
        change = rematch_rooms(
            self.session, self.calendar, event, link, item.rooms, location, rooms_changed
        )
        if change is None:
            return
        if in_sync:
            link.synced_seq = event.change_seq  # the calendar already holds these rooms
        self.report.updated += 0 if counted else 1
        details = {"event": item.ref.id, "changes": change}
        record_change(self.session, self.calendar.name, event.id, "updated", details)

    def _merge_fields(
        self, item: RemoteItem, link: Link, event: Event, remote_snap: dict[str, Any]
    ) -> tuple[str | None, bool]:
        """Merge the calendar's fields into the booking; returns the merged location text and
        whether the booking changed (counted in the report)."""
        booking_snap = link_fields(self.session, self.calendar, event, link).snapshot()
        policy: Any = self.calendar.policy
        result = merge(
            booking_snap,
            remote_snap,
            link.snapshot,
            policy=_policy(policy),
            booking_updated=event.updated_at,
            calendar_updated=item.updated,
        )
        for c in result.conflicts:
            self.session.add(
                ConflictRecord(
                    calendar_id=self.calendar.id,
                    event_id=event.id,
                    field=c.field,
                    booking_value=c.booking_value,
                    calendar_value=c.calendar_value,
                    winner=c.winner,
                    policy=self.calendar.policy,
                    at=utcnow(),
                )
            )
        self.report.conflicts += len(result.conflicts)
        was_cancelled = event.status == "cancelled"
        in_sync = link.synced_seq >= event.change_seq
        counted = False
        if result.booking_changed and apply_link_fields(
            self.session, self.calendar, event, link, EventFields.from_snapshot(result.merged)
        ):
            fields = changed_fields(booking_snap, result.merged)
            if event.status == "cancelled" and not was_cancelled:
                self.report.cancelled += 1
                action = "cancelled"
            else:
                self.report.updated += 1
                action = "updated"
            counted = True
            details = {"event": item.ref.id, "changes": fields}
            record_change(self.session, self.calendar.name, event.id, action, details)
        link.snapshot = remote_snap
        if not result.calendar_changed:
            link.snapshot = result.merged
            link.synced_seq = event.change_seq
        elif in_sync:
            link.synced_seq = event.change_seq - 1 if event.change_seq else 0
        return result.merged.get("location"), counted

    def remote_gone(self, ref_id: str) -> None:
        self._clear_rejection(ref_id)
        links = self.session.scalars(
            select(Link).where(Link.calendar_id == self.calendar.id, Link.remote_id == ref_id)
        ).all()
        for link in links:
            if link.state != "gone":
                self._cancel(link, "the calendar event was deleted")

    def _cancel(self, link: Link, why: str) -> None:
        if self.pending is not None:
            self.pending.add(link, why)
            return
        self.report.cancelled += cancel_link(self.session, link, why)

    def _reject(self, ref_id: str, uid: str | None, reason: str) -> None:
        self.report.rejected += 1
        self.rejected.add(ref_id)
        row = self.session.scalars(
            select(Rejection).where(
                Rejection.calendar_id == self.calendar.id, Rejection.remote_id == ref_id
            )
        ).first()
        if row is None:
            self.session.add(
                Rejection(
                    calendar_id=self.calendar.id,
                    remote_id=ref_id,
                    uid=uid,
                    reason=reason[:2000],
                    at=utcnow(),
                )
            )
        else:
            row.uid, row.reason, row.at = uid, reason[:2000], utcnow()

    def _clear_rejection(self, ref_id: str) -> None:
        if ref_id not in self.rejected:
            return
        self.rejected.discard(ref_id)
        row = self.session.scalars(
            select(Rejection).where(
                Rejection.calendar_id == self.calendar.id, Rejection.remote_id == ref_id
            )
        ).first()
        if row is not None:
            self.session.delete(row)


def _whole(item: RemoteItem) -> bool:
    """Whether ``item`` is a whole event (a single event, or a series with its occurrences),
    not one occurrence of a series delivered as its own object."""
    return not item.is_series or any(o.recurrence_id for o in item.occurrences)


def arrival_key(calendar: Calendar, remote_id: str, recurrence_id: str) -> str:
    """A stable key for an object that arrived from the calendar (we never created it)."""
    digest = hashlib.sha1(f"{remote_id}#{recurrence_id}".encode()).hexdigest()[:20]
    return f"cb{calendar.key_prefix}r{digest}"


def _policy(value: str) -> Policy:
    if value == "calendar-wins":
        return "calendar-wins"
    if value == "latest-wins":
        return "latest-wins"
    return "booking-wins"


def sweep_unseen(session: Session, calendar: Calendar, gen: int, applier: PageApplier) -> None:
    """After a full listing, links the listing did not mention were deleted on the calendar."""
    window = applier.window
    gone = session.scalars(
        select(Link.remote_id)
        .join(Event, Event.id == Link.event_id)
        .where(
            Link.calendar_id == calendar.id,
            Link.state == "ok",
            Link.seen_gen < gen,
            Link.remote_id.is_not(None),
            # a listing may cover only the window (Graph): what lies outside it was not asked
            Event.end_utc > window.start,
            Event.start_utc < window.end,
        )
        .distinct()
    ).all()
    for ref_id in gone:
        if ref_id is not None:
            applier.remote_gone(ref_id)


def mark_generation(session: Session, calendar: Calendar) -> int:
    calendar.full_gen += 1
    session.execute(
        update(Calendar).where(Calendar.id == calendar.id).values(full_gen=calendar.full_gen)
    )
    return calendar.full_gen


def pull_pages(
    store: Store,
    calendar_id: int,
    pages: Any,
    window: Window,
    report: SyncReport,
    gen: int | None,
    progress: Progress,
) -> None:
    """Apply pages in transactions of one page — or of several, when the pages after it are
    already read (see the module doc); settle the cancellations (the guard) and store the new
    token with the last page. Raises NeedsConfirmation, after that commit, when the guard held
    the cancellations back."""
    pending = PendingCancellations()
    held: str | None = None
    assigned: Assigned = {}  # one memo for the whole run
    settings: AssignmentSettings | None = None
    linked: Linked | None = None  # set in the first transaction: see Linked
    first = True
    total = 0
    source = ReadAhead.of(pages)
    with fewer_collections(), closing(source):
        remaining = iter(source)
        page = next(remaining, None)
        while page is not None:
            applied = 0
            with store.session() as session:
                calendar = session.get(Calendar, calendar_id)
                assert calendar is not None
                if first:
                    first = False
                    held_any = select(Link.id).where(Link.calendar_id == calendar_id).limit(1)
                    linked = Linked() if session.scalar(held_any) is None else None
                applier = PageApplier(
                    session, calendar, window, report, pending, assigned, settings, linked
                )
                settings = applier.settings
                while page is not None:
                    applier.apply(page, gen)
                    applied += len(page.items) + len(page.deleted)
                    if page.done:
                        if gen is not None:
                            sweep_unseen(session, calendar, gen, applier)
                        try:
                            settle(session, calendar, pending, report)
                        except NeedsConfirmation as exc:
                            held = str(exc)
                        calendar.sync_token = page.token
                    if applied >= GROUP_ITEMS or not source.ready():
                        break
                    page = next(remaining)
            progress(applied)
            total += applied
            page = next(remaining, None)
    if total >= CHECKPOINT_ITEMS:  # a big import: SQLite's log is copied while the sync ends
        store.checkpoint_soon()
    if held is not None:
        raise NeedsConfirmation(held)
