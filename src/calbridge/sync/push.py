"""Push: write bookings changed since they were last synced to a calendar.

Each write is made idempotent before it is sent: a create first commits its link in state
``creating`` with the key the provider derives the remote id from (or sends as Graph's
``transactionId``), so a create retried after a crash is adopted, never duplicated. Updates and
deletes are conditional on the etag we last saw; a ``Conflict`` means the calendar changed in
the meantime: we re-read that object, merge, and try once more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from calbridge.domain.remote import (
    CalendarProvider,
    RemoteEvent,
    RemoteItem,
    RemoteRef,
    Window,
    WriteOp,
    WriteResult,
    Written,
)
from calbridge.errors import Conflict, ProviderAuthError, ProviderError, RateLimited
from calbridge.store.booked import BookedPrefetch
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event, Link
from calbridge.sync.appointments import remote_rooms, snapshot_rooms, with_rooms
from calbridge.sync.assistant import (
    Appointment,
    appointments,
    effective_filters,
    ensure_parts,
    matches,
    matches_clause,
    unmatched_links,
)
from calbridge.sync.bookings import booking_fields
from calbridge.sync.pull import PageApplier
from calbridge.sync.report import SyncReport

Progress = Callable[[int], None]
log = logging.getLogger(__name__)


def booking_key(calendar: Calendar, event_id: int, part: str = "") -> str:
    """Our idempotency key: lower-case base32hex-safe (Google ids), unique per calendar; one
    per appointment ``part`` of a booking (``""``: its first)."""
    return f"cb{calendar.key_prefix}e{event_id}{part}"


def adopt_matching_bookings(session: Session, calendar: Calendar) -> int:
    """Create ``pending`` links for the bookings this calendar's filters (or its owner) ask
    for and that it does not carry yet (:mod:`calbridge.sync.assistant`)."""
    filters = effective_filters(calendar)
    if not filters:
        return 0
    linked = exists().where(Link.calendar_id == calendar.id, Link.event_id == Event.id)
    ids = session.scalars(select(Event.id).where(matches_clause(filters), ~linked)).all()
    for event_id in ids:
        session.add(
            Link(
                calendar_id=calendar.id,
                event_id=event_id,
                key=booking_key(calendar, event_id),
                state="pending",
                origin="filter",
            )
        )
    back = session.scalars(  # taken off when they stopped matching; they match again
        select(Link)
        .join(Event, Event.id == Link.event_id)
        .where(
            Link.calendar_id == calendar.id,
            Link.origin == "filter",
            Link.state == "gone",
            matches_clause(filters),
        )
    ).all()
    for link in back:
        link.state, link.remote_id, link.etag, link.snapshot, link.synced_seq = (
            "pending",
            None,
            None,
            None,
            0,
        )
    return len(ids) + len(back)


def pending_work(store: Store, calendar_id: int) -> list[int]:
    """Ids of links whose booking changed since last synced (or that were never written), with
    the appointments a booking's parts call for (:func:`calbridge.sync.assistant.ensure_parts`)
    and the ones its filters no longer want."""
    with store.session() as session:
        return pending_links(session, calendar_id)


def pending_links(session: Session, calendar_id: int) -> list[int]:
    """:func:`pending_work` in the caller's transaction."""
    calendar = session.get(Calendar, calendar_id)
    assert calendar is not None
    adopt_matching_bookings(session, calendar)
    changed = (Event.change_seq > Link.synced_seq) | Link.state.in_(("pending", "creating"))
    events = session.scalars(
        select(Link.event_id)
        .join(Event, Event.id == Link.event_id)
        .where(Link.calendar_id == calendar_id, Link.state != "gone", changed)
        .distinct()
    ).all()
    if not events and not unmatched_links(session, calendar):
        return []  # nothing changed and nothing to take off: no second scan of the links
    ensure_parts(session, calendar, list(events), lambda e, p: booking_key(calendar, e, p))
    session.flush()
    rows = session.scalars(
        select(Link.id)
        .join(Event, Event.id == Link.event_id)
        .where(
            Link.calendar_id == calendar_id,
            Link.state != "gone",
            changed | Link.id.in_(unmatched_links(session, calendar)),
        )
        .order_by(Link.id)
    ).all()
    return list(rows)


@dataclass(frozen=True)
class Prepared:
    link_id: int
    seq: int
    request: RemoteEvent
    op: WriteOp


class Pusher:
    def __init__(
        self,
        store: Store,
        calendar_id: int,
        provider: CalendarProvider,
        window: Window,
        report: SyncReport,
    ) -> None:
        self.store = store
        self.calendar_id = calendar_id
        self.provider = provider
        self.window = window
        self.report = report
        self.removed: set[int] = set()  # links deleted because the filters no longer match
        with store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            self.rooms_as_resources = bool(calendar is not None and calendar.rooms_as_resources)

    def run(self, progress: Progress) -> None:
        work = pending_work(self.store, self.calendar_id)
        if not work:  # nothing asks the provider anything (it may not even be made yet)
            return
        batch_size = int(getattr(self.provider, "max_batch", 0) or 0)
        if batch_size > 1 and hasattr(self.provider, "write_many"):
            for start in range(0, len(work), batch_size):
                chunk = work[start : start + batch_size]
                self.push_batch(chunk)
                progress(len(chunk))
            return
        for link_id in work:
            self.push_one(link_id)
            progress(1)

    def prepare(
        self, session: Session, link_id: int, batch: BookedPrefetch | None = None
    ) -> Prepared | None:
        """Record the intent (a create's link becomes ``creating``) and describe the write.
        The caller commits before the write is sent; ``batch``: the booked locations of the
        batch's bookings, read together (see :meth:`push_batch`)."""
        link = session.get(Link, link_id)
        event = session.get(Event, link.event_id) if link is not None else None
        if link is None or event is None or link.state == "gone":
            return None
        calendar = session.get(Calendar, link.calendar_id)
        assert calendar is not None
        rows = batch.booked(session, event.id) if batch is not None else None
        wanted = appointments(session, calendar, event, rows)
        removed = link.origin == "filter" and not matches(session, calendar, event)
        goes = event.status == "cancelled" or removed or link.part not in wanted
        if link.state in ("pending", "creating"):
            if goes:
                session.delete(link)
                return None
            link.state = "creating"
        request = self._request(link, event, wanted.get(link.part))
        ref = RemoteRef(link.remote_id or "", link.etag)
        if link.state == "creating":
            op = WriteOp("create", event=request)
        elif goes:
            op = WriteOp("delete", ref=ref, recurrence_id=link.recurrence_id or None)
            if removed and event.status != "cancelled":
                self.removed.add(link_id)
        else:
            op = WriteOp("update", event=request, ref=ref)
        return Prepared(link_id, event.change_seq, request, op)

    def push_one(self, link_id: int, retry: bool = True) -> None:
        with self.store.session() as session:
            prepared = self.prepare(session, link_id)
        if prepared is None:
            return
        op = prepared.op
        try:
            result = self._send(op)
        except Conflict as exc:
            if not retry or op.kind == "create" or op.ref is None:
                self._failed(prepared, exc)
                return
            self._refresh(op.ref.id)
            self.push_one(link_id, retry=False)
            return
        except (ProviderAuthError, RateLimited):
            raise
        except ProviderError as exc:
            if not _refused(exc):
                raise
            self._failed(prepared, exc)
            return
        with self.store.session() as session:
            self._finish(session, prepared, result)

    def _send(self, op: WriteOp) -> WriteResult:
        if op.kind == "create":
            assert op.event is not None
            return self.provider.create(op.event)
        assert op.ref is not None
        if op.kind == "delete":
            self.provider.delete(op.ref, op.recurrence_id)
            return None
        assert op.event is not None
        return self.provider.update(op.ref, op.event)

    def push_batch(self, link_ids: list[int]) -> None:
        """Many writes in one provider request; a failed op falls back to a single write.
        Intents are committed together before the request, results together after it."""
        with self.store.session() as session:
            held = _read_batch(session, self.calendar_id, link_ids)  # a few queries, not 4 each
            batch = BookedPrefetch(session, [e.id for e in held[1]], doubles=False)
            prepared = [
                p for p in (self.prepare(session, i, batch) for i in link_ids) if p is not None
            ]
            del held
        if not prepared:
            return
        batcher: Any = self.provider
        results: list[WriteResult] = batcher.write_many([p.op for p in prepared])
        retry: list[int] = []
        with self.store.session() as session:
            links = list(  # the identity map keeps them while held: no query per result
                session.scalars(select(Link).where(Link.id.in_([p.link_id for p in prepared])))
            )
            for item, result in zip(prepared, results, strict=True):
                if isinstance(result, Exception):
                    retry.append(item.link_id)
                else:
                    self._finish(session, item, result)
        del links
        for link_id in retry:  # conflicts re-pull + merge; transient errors retried inside
            self.push_one(link_id)

    def _failed(self, prepared: Prepared, exc: Exception) -> None:
        """A write the calendar refuses for this booking only: note it and go on with the rest.
        The booking stays unsynced, so the next run tries it again."""
        self.report.failed += 1
        self.report.notes.append(f"event {prepared.request.key}: {exc}"[:300])
        log.warning("write refused", extra={"key": prepared.request.key, "error": str(exc)})

    def _finish(self, session: Session, prepared: Prepared, result: WriteResult) -> None:
        if isinstance(result, Written):
            what = "created" if prepared.op.kind == "create" else "updated"
            self._done(session, prepared, result.ref, result.uid, what)
        else:
            self._done(session, prepared, None, None, "deleted")

    def _request(self, link: Link, event: Event, wanted: Appointment | None) -> RemoteEvent:
        fields = wanted.fields if wanted is not None else booking_fields(event)
        return RemoteEvent(
            fields=fields,
            key=link.key,
            uid=link.uid,
            recurrence_id=link.recurrence_id or None,
            rooms=wanted.rooms if wanted is not None and self.rooms_as_resources else None,
            managed_rooms=tuple(snapshot_rooms(link.snapshot)),
        )

    def _done(
        self,
        session: Session,
        prepared: Prepared,
        ref: RemoteRef | None,
        uid: str | None,
        what: str,
    ) -> None:
        link = session.get(Link, prepared.link_id)
        if link is None:
            return
        if ref is None:
            link.state = "gone"
            written = getattr(self.provider, "last_written", None)  # a series' new etag
            if link.is_series and isinstance(written, RemoteRef) and written.id == link.remote_id:
                _share_etag(session, link, written.etag)
        else:
            link.remote_id, link.etag, link.state = ref.id, ref.etag, "ok"
            if uid:
                link.uid = uid
            if link.is_series:  # every occurrence shares the series' etag
                _share_etag(session, link, ref.etag)
        sent = prepared.request.rooms
        rooms = snapshot_rooms(link.snapshot) if sent is None else remote_rooms(sent)
        link.snapshot = with_rooms(prepared.request.fields.snapshot(), rooms)
        link.synced_seq = max(link.synced_seq, prepared.seq)
        attr = {"created": "pushed_created", "updated": "pushed_updated"}.get(
            what, "pushed_deleted"
        )
        setattr(self.report, attr, getattr(self.report, attr) + 1)
        if what == "deleted" and prepared.link_id in self.removed:
            self.report.removed += 1
            self.report.notes.append(
                f"booking {link.event_id} no longer matches the calendar's filters: removed "
                "from this calendar (the booking is not cancelled)"
            )

    def _refresh(self, ref_id: str) -> None:
        """Re-read one object after a conditional write failed, and merge it."""
        item = self.provider.get(ref_id, self.window)
        with self.store.session() as session:
            calendar = session.get(Calendar, self.calendar_id)
            assert calendar is not None
            applier = PageApplier(session, calendar, self.window, self.report)
            if item is None:
                applier.remote_gone(ref_id)
            elif isinstance(item, RemoteItem):
                applier.apply_item(item, None)
                applier.insert_arrivals()


def _read_batch(
    session: Session, calendar_id: int, link_ids: list[int]
) -> tuple[list[Link], list[Event], Calendar | None]:
    """A push batch's links, their bookings and the calendar, in three queries; the caller
    holds them, so the identity map answers the per-link lookups that follow."""
    links = list(session.scalars(select(Link).where(Link.id.in_(link_ids))))
    ids = list({link.event_id for link in links})
    events = list(session.scalars(select(Event).where(Event.id.in_(ids))))
    return links, events, session.get(Calendar, calendar_id)


def _refused(exc: ProviderError) -> bool:
    """A 4xx answer about this one object (not an outage): the status the provider saw."""
    status = getattr(exc, "status", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (401, 408, 429)


def _share_etag(session: Session, link: Link, etag: str | None) -> None:
    siblings: Any = session.scalars(
        select(Link).where(
            Link.calendar_id == link.calendar_id,
            Link.remote_id == link.remote_id,
            Link.id != link.id,
        )
    )
    for sibling in siblings:
        sibling.etag = etag
