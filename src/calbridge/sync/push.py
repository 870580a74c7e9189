"""Push: write bookings changed since they were last synced to a calendar.

Each write is made idempotent before it is sent: a create first commits its link in state
``creating`` with the key the provider derives the remote id from (or sends as Graph's
``transactionId``), so a create retried after a crash is adopted, never duplicated. Updates and
deletes are conditional on the etag we last saw; a ``Conflict`` means the calendar changed in
the meantime: we re-read that object, merge, and try once more.
"""

from __future__ import annotations

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
from calbridge.errors import Conflict
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event, Link
from calbridge.sync.bookings import booking_fields
from calbridge.sync.pull import PageApplier
from calbridge.sync.report import SyncReport

Progress = Callable[[int], None]
CHUNK = 200


def booking_key(calendar: Calendar, event_id: int) -> str:
    """Our idempotency key: lower-case base32hex-safe (Google ids), unique per calendar."""
    return f"cb{calendar.key_prefix}e{event_id}"


def adopt_owner_bookings(session: Session, calendar: Calendar) -> int:
    """Create ``pending`` links for the owner's bookings this calendar does not carry yet."""
    if calendar.owner_user_id is None:
        return 0
    linked = exists().where(Link.calendar_id == calendar.id, Link.event_id == Event.id)
    ids = session.scalars(
        select(Event.id).where(
            Event.event_manager_id == calendar.owner_user_id,
            Event.status != "cancelled",
            ~linked,
        )
    ).all()
    for event_id in ids:
        session.add(
            Link(
                calendar_id=calendar.id,
                event_id=event_id,
                key=booking_key(calendar, event_id),
                state="pending",
                origin="booking",
            )
        )
    return len(ids)


def pending_work(store: Store, calendar_id: int) -> list[int]:
    """Ids of links whose booking changed since last synced (or that were never written)."""
    with store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        assert calendar is not None
        adopt_owner_bookings(session, calendar)
        rows = session.scalars(
            select(Link.id)
            .join(Event, Event.id == Link.event_id)
            .where(
                Link.calendar_id == calendar_id,
                Link.state != "gone",
                (Event.change_seq > Link.synced_seq) | Link.state.in_(("pending", "creating")),
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

    def run(self, progress: Progress) -> None:
        work = pending_work(self.store, self.calendar_id)
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

    def prepare(self, link_id: int) -> Prepared | None:
        """Commit the intent (a create's link becomes ``creating``) and describe the write."""
        with self.store.session() as session:
            link = session.get(Link, link_id)
            event = session.get(Event, link.event_id) if link is not None else None
            if link is None or event is None:
                return None
            if link.state in ("pending", "creating"):
                if event.status == "cancelled":
                    session.delete(link)
                    return None
                link.state = "creating"
            request = self._request(link, event)
            ref = RemoteRef(link.remote_id or "", link.etag)
            if link.state == "creating":
                op = WriteOp("create", event=request)
            elif event.status == "cancelled":
                op = WriteOp("delete", ref=ref, recurrence_id=link.recurrence_id or None)
            else:
                op = WriteOp("update", event=request, ref=ref)
            return Prepared(link_id, event.change_seq, request, op)

    def push_one(self, link_id: int, retry: bool = True) -> None:
        prepared = self.prepare(link_id)
        if prepared is None:
            return
        op = prepared.op
        try:
            if op.kind == "create":
                assert op.event is not None
                result: WriteResult = self.provider.create(op.event)
            elif op.kind == "delete":
                assert op.ref is not None
                self.provider.delete(op.ref, op.recurrence_id)
                result = None
            else:
                assert op.ref is not None and op.event is not None
                result = self.provider.update(op.ref, op.event)
        except Conflict:
            if not retry or op.kind == "create" or op.ref is None:
                raise
            self._refresh(op.ref.id)
            self.push_one(link_id, retry=False)
            return
        self._finish(prepared, result)

    def push_batch(self, link_ids: list[int]) -> None:
        """Many writes in one provider request; a failed op falls back to a single write."""
        prepared = [p for p in (self.prepare(i) for i in link_ids) if p is not None]
        if not prepared:
            return
        batcher: Any = self.provider
        results: list[WriteResult] = batcher.write_many([p.op for p in prepared])
        for item, result in zip(prepared, results, strict=True):
            if isinstance(result, Exception):
                self.push_one(item.link_id)  # conflicts re-pull + merge; retries inside
            else:
                self._finish(item, result)

    def _finish(self, prepared: Prepared, result: WriteResult) -> None:
        if isinstance(result, Written):
            what = "created" if prepared.op.kind == "create" else "updated"
            self._done(
                prepared.link_id, prepared.seq, prepared.request, result.ref, result.uid, what
            )
        else:
            self._done(prepared.link_id, prepared.seq, prepared.request, None, None, "deleted")

    def _request(self, link: Link, event: Event) -> RemoteEvent:
        return RemoteEvent(
            fields=booking_fields(event),
            key=link.key,
            uid=link.uid,
            recurrence_id=link.recurrence_id or None,
        )

    def _done(
        self,
        link_id: int,
        seq: int,
        request: RemoteEvent,
        ref: RemoteRef | None,
        uid: str | None,
        what: str,
    ) -> None:
        with self.store.session() as session:
            link = session.get(Link, link_id)
            if link is None:
                return
            if ref is None:
                link.state = "gone"
            else:
                link.remote_id, link.etag, link.state = ref.id, ref.etag, "ok"
                if uid:
                    link.uid = uid
                if link.is_series:  # every occurrence shares the series' etag
                    _share_etag(session, link, ref.etag)
            link.snapshot = request.fields.snapshot()
            link.synced_seq = max(link.synced_seq, seq)
        counter = {"created": "pushed_created", "updated": "pushed_updated"}.get(what)
        attr = counter or "pushed_deleted"
        setattr(self.report, attr, getattr(self.report, attr) + 1)

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
