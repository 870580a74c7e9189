"""Writing to a Google calendar: inserts, PATCHes, deletes, occurrences and HTTP batches.

* **Inserts** carry a client-chosen id derived from our key (``event_id_for``) and the key in
  ``extendedProperties.private``: a retried insert meets 409 and is adopted when the event
  there carries our key — never duplicated.
* **Updates** are PATCHes with ``If-Match``; 412 (or the event gone) is a :class:`Conflict`:
  the engine re-reads, merges and tries once more. **Deletes** carry ``If-Match`` too; one
  that finds the event gone already (404/410) is done.
* **One occurrence** is written as the instance ``<masterId>_<recurrenceId>``, which Google
  turns into an exception — never a new series; cancelling one sets the instance's status to
  ``cancelled``. The engine knows a series by its composite etag (master + exceptions), so the
  series is re-read first to check it; the etag returned is the series' new composite one, the
  one the next listing will compute. Within one run, a write that follows our own write to the
  same series is not mistaken for a conflict.
* **write_many** sends single-event writes as one HTTP batch (≤ 50 calls). Parts that fail
  with a quota error or a 5xx are re-sent, after a backoff honouring ``Retry-After``, in a
  smaller batch; what still fails is returned as that op's error.
* **Rooms** (a calendar sending rooms as resources): Google replaces the whole attendee list
  on a PATCH, so an update that sends rooms first reads the event's attendees and keeps every
  one we did not put there (guests added in Google); only the room resources we manage change
  (:func:`calbridge.domain.rooms.merge_room_attendees`). Such updates are sent one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from calbridge.domain.remote import (
    EventFields,
    RemoteEvent,
    RemoteRef,
    WriteOp,
    WriteResult,
    Written,
)
from calbridge.domain.rooms import merge_room_attendees
from calbridge.errors import CalbridgeError, Conflict
from calbridge.providers.google.http import (
    GoogleApi,
    Json,
    is_retryable_part,
    status_of,
    with_if_match,
)
from calbridge.providers.google.mapping import (
    attendees_body,
    event_body,
    event_id_for,
    insert_body,
    is_cancelled,
    key_of,
    series_etag,
)
from calbridge.providers.google.series import MAX_BATCH, Touched, fetch_series

log = logging.getLogger(__name__)
ZoneFor = Callable[[EventFields], str]


class GoogleWriter:
    """The write half of :class:`~calbridge.providers.google.provider.GoogleProvider`. ``zone_for``
    gives the zone to write a floating time in (the calendar's)."""

    def __init__(self, api: GoogleApi, zone_for: ZoneFor) -> None:
        self.api = api
        self.zone_for = zone_for
        self._superseded: dict[str, set[str]] = {}  # series etags our own writes replaced
        self._latest: dict[str, str] = {}  # the series etag our last write there produced

    def create(self, event: RemoteEvent) -> Written:
        body = insert_body(event, self.zone_for(event.fields))
        request = self.api.events.insert(calendarId=self.api.calendar_id, body=body)
        try:
            created: Json = self.api.guard(request.execute)
        except HttpError as exc:
            if status_of(exc) == 409:
                return self.adopt(event)
            raise self.api.error(exc, f"creating '{event.fields.name}'") from exc
        return written(created)

    def update(self, ref: RemoteRef, event: RemoteEvent) -> Written:
        if event.recurrence_id:
            result = self.write_occurrence(ref, event.recurrence_id, event.fields, event.uid)
            assert result is not None
            return result
        try:
            return written(self.api.guard(self._patch(ref, event).execute))
        except HttpError as exc:
            raise self._error(exc, "update", ref.id) from exc

    def delete(self, ref: RemoteRef, recurrence_id: str | None = None) -> None:
        if recurrence_id:
            self.write_occurrence(ref, recurrence_id, None, None)
            return
        request = self.api.events.delete(calendarId=self.api.calendar_id, eventId=ref.id)
        try:
            self.api.guard(with_if_match(request, ref.etag).execute)
        except HttpError as exc:
            if status_of(exc) not in (404, 410):
                raise self._error(exc, "delete", ref.id) from exc

    def write_many(self, ops: list[WriteOp]) -> list[WriteResult]:
        results: list[WriteResult] = [None] * len(ops)
        batched: list[int] = []
        for index, op in enumerate(ops):
            event = op.event
            if op.recurrence_id or (event is not None and (event.recurrence_id or _rooms(op))):
                results[index] = self._one(op)
            else:
                batched.append(index)
        for start in range(0, len(batched), MAX_BATCH):
            self._send_batch(ops, batched[start : start + MAX_BATCH], results)
        return results

    # ------------------------------------------------------------ pieces

    def adopt(self, event: RemoteEvent) -> Written:
        """An insert met an existing id: ours from a retried or crashed create, or a clash."""
        event_id = event_id_for(event.key)
        request = self.api.events.get(calendarId=self.api.calendar_id, eventId=event_id)
        existing = self.api.call(request, f"reading event {event_id}", missing="none")
        if existing is not None and key_of(existing) == event.key:
            found = written(existing)
            return Written(found.ref, found.uid, adopted=True)
        raise Conflict(
            f"{self.api.label}: cannot create event {event_id}: an event with that id exists "
            "and calbridge did not create it"
        )

    def write_occurrence(
        self, ref: RemoteRef, rid: str, fields: EventFields | None, uid: str | None
    ) -> Written | None:
        """PATCH one instance (``fields`` None: cancel it) after checking the series' etag."""
        touched = Touched()
        if uid:
            touched.masters[ref.id] = {"id": ref.id, "iCalUID": uid}
        master, exceptions = fetch_series(self.api, [ref.id], touched)[ref.id]
        if master is None or is_cancelled(master):
            if fields is None:
                return None
            raise Conflict(f"{self.api.label}: the series {ref.id} was deleted on the calendar")
        current = series_etag(master, exceptions)
        ours = ref.etag in self._superseded.get(ref.id, set()) and self._latest.get(ref.id)
        if ref.etag and current not in (ref.etag, ours):
            raise Conflict(f"{self.api.label}: the series {ref.id} changed on the calendar")
        instance_id = f"{ref.id}_{rid}"
        existing = next((e for e in exceptions if e.get("id") == instance_id), None)
        if fields is None:
            body: Json = {"status": "cancelled"}
        else:
            body = event_body(fields, self.zone_for(fields), patch=True)
        request = self.api.events.patch(
            calendarId=self.api.calendar_id, eventId=instance_id, body=body
        )
        request = with_if_match(request, existing.get("etag") if existing else None)
        try:
            changed: Json = self.api.guard(request.execute)
        except HttpError as exc:
            raise self._error(exc, "update", instance_id) from exc
        exceptions = [e for e in exceptions if e.get("id") != changed.get("id")] + [changed]
        new_etag = series_etag(master, exceptions)
        self._superseded.setdefault(ref.id, set()).update({current, *filter(None, [ref.etag])})
        self._latest[ref.id] = new_etag
        return Written(RemoteRef(ref.id, new_etag), str(master.get("iCalUID") or ref.id))

    def _patch(self, ref: RemoteRef, event: RemoteEvent) -> HttpRequest:
        body = event_body(event.fields, self.zone_for(event.fields), patch=True)
        if event.rooms is not None:  # the calendar sends rooms: they are its room attendees
            body["attendees"] = merge_room_attendees(
                self._attendees(ref),
                event.rooms,
                event.managed_rooms,
                lambda a: str(a.get("email") or ""),
                lambda r: attendees_body((r,))[0],
            )
        request = self.api.events.patch(calendarId=self.api.calendar_id, eventId=ref.id, body=body)
        return with_if_match(request, ref.etag)

    def _attendees(self, ref: RemoteRef) -> list[Json]:
        """The event's attendees now (none when it is gone: the PATCH then says so)."""
        request = self.api.events.get(calendarId=self.api.calendar_id, eventId=ref.id)
        current = self.api.call(request, f"reading event {ref.id}", missing="none") or {}
        return [a for a in current.get("attendees") or [] if isinstance(a, dict)]

    def _error(self, exc: HttpError, kind: str, ref_id: str) -> CalbridgeError:
        if kind == "update" and status_of(exc) == 404:
            return Conflict(f"{self.api.label}: event {ref_id} was deleted on the calendar")
        return self.api.error(exc, f"{kind} of event {ref_id}")

    def _one(self, op: WriteOp) -> WriteResult:
        try:
            if op.kind == "delete":
                assert op.ref is not None
                self.delete(op.ref, op.recurrence_id)
                return None
            assert op.event is not None and op.ref is not None
            return self.update(op.ref, op.event)
        except CalbridgeError as exc:
            return exc

    def _request(self, op: WriteOp) -> HttpRequest:
        if op.kind == "create":
            assert op.event is not None
            body = insert_body(op.event, self.zone_for(op.event.fields))
            return self.api.events.insert(calendarId=self.api.calendar_id, body=body)
        assert op.ref is not None
        if op.kind == "update":
            assert op.event is not None
            return self._patch(op.ref, op.event)
        request = self.api.events.delete(calendarId=self.api.calendar_id, eventId=op.ref.id)
        return with_if_match(request, op.ref.etag)

    def _send_batch(
        self, ops: list[WriteOp], pending: list[int], results: list[WriteResult]
    ) -> None:
        policy = self.api.http.retry
        attempt = 0
        while pending:
            attempt += 1
            answers = self.api.batch([self._request(ops[i]) for i in pending])
            again: list[int] = []
            hint = ""
            for index, (response, exc) in zip(pending, answers, strict=True):
                if exc is not None and is_retryable_part(exc) and attempt < policy.attempts:
                    again.append(index)
                    hint = str(exc.resp.get("retry-after", "")) or hint
                else:
                    results[index] = self._outcome(ops[index], response, exc)
            if again:
                log.info("re-sending %d batched writes", len(again), extra={"attempt": attempt})
                policy.sleep(
                    policy.wait(attempt, httpx.Response(429, headers={"Retry-After": hint}))
                )
            pending = again

    def _outcome(self, op: WriteOp, response: Json | None, exc: HttpError | None) -> WriteResult:
        if exc is None:
            return None if op.kind == "delete" else written(response or {})
        if op.kind == "create" and status_of(exc) == 409:
            assert op.event is not None
            try:
                return self.adopt(op.event)
            except CalbridgeError as error:
                return error
        if op.kind == "delete" and status_of(exc) in (404, 410):
            return None
        return self._error(exc, op.kind, op.ref.id if op.ref else "(new)")


def written(event: Json) -> Written:
    return Written(
        RemoteRef(str(event["id"]), event.get("etag")), str(event.get("iCalUID") or event["id"])
    )


def _rooms(op: WriteOp) -> bool:
    """An update that sends rooms (it reads the attendees first, so it is not batched)."""
    return op.kind == "update" and op.event is not None and op.event.rooms is not None
