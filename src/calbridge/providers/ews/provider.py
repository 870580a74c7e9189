"""An Exchange Server (2016, 2019, Subscription Edition) calendar over EWS, behind the
:class:`BatchingProvider` protocol of ``domain/remote.py``.

Pull: ``SyncFolderItems`` with the stored sync state, at most 512 changes a call, one
:class:`ChangePage` per call until ``IncludesLastItemInRange``; created and updated ids are
then read with ``GetItem`` in batches (plus the modified occurrences of recurring masters), and
legacy-DN organizers resolved to SMTP with ``ResolveNames`` (once per address). The last page's
sync state is the token, stamped with the window the listing expanded series over (as Graph's
delta links are, ``DeltaToken``): once the engine's window has moved past it, the token is
expired and the engine resyncs in full, so occurrences and events that came into range arrive.
A sync state Exchange no longer accepts (``ErrorInvalidSyncStateData``) raises
:class:`TokenExpired` the same way: a state-less ``SyncFolderItems`` lists every item, so
nothing that still exists is cancelled and nothing is duplicated. A no-change sync is one
request (the server build is stored when the calendar is added, so exchangelib does not probe
the version again).

Push, :meth:`EwsProvider.write_many` (up to :data:`MAX_BATCH` ops, a few requests):
creates first look for items already carrying their keys (one ``FindItem`` restricted on the
key property: a create retried after a crash is *adopted*, never duplicated), then one
``CreateItem`` for the rest; updates are one ``UpdateItem`` with each item's ``ChangeKey`` and
``ConflictResolution=NeverOverwrite`` (``ErrorIrresolvableConflict`` -> :class:`Conflict`: the
engine re-reads and merges); deletes are one ``DeleteItem`` sending no meeting cancellations
unless the calendar asks for them (``cancellations``). An occurrence of a series is written
through its ``OccurrenceItemId`` (master + instance index) or, once modified, its own id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from exchangelib import CalendarItem
from exchangelib import errors as ews_errors
from exchangelib.fields import FieldPath
from exchangelib.properties import OccurrenceItemId
from exchangelib.restriction import Q, Restriction
from exchangelib.services import (
    CreateItem,
    DeleteItem,
    FindItem,
    GetItem,
    SyncFolderItems,
    UpdateItem,
)

from calbridge.domain.remote import (
    ChangePage,
    RemoteEvent,
    RemoteItem,
    RemoteRef,
    RemoteRejection,
    Window,
    WriteOp,
    WriteResult,
    Written,
)
from calbridge.errors import BadEvent, CalbridgeError, Conflict, ProviderError, TokenExpired
from calbridge.providers.ews.http import EwsConnection, translate
from calbridge.providers.ews.mapping import (
    READ_FIELDS,
    WRITE_FIELDS,
    MasterInfo,
    apply_fields,
    apply_rooms,
    item_of,
    organizer_address,
    title,
)
from calbridge.providers.window_token import DeltaToken

# Reading a master only to learn its pattern: no occurrence falls in this window.
_PATTERN_ONLY = Window(datetime(1970, 1, 1), datetime(1970, 1, 2))
MAX_CHANGES = 512  # the most SyncFolderItems returns in one call (EWS schema)
MAX_BATCH = 100  # items per GetItem / CreateItem / UpdateItem / DeleteItem request
GONE = (ews_errors.ErrorItemNotFound, ews_errors.ErrorCalendarOccurrenceIsDeletedFromRecurrence)
# Errors about one item of a batch: returned in its place (exchangelib would raise most of them
# and lose the other items' results). ErrorServerBusy is not here: it is retried.
PER_ITEM = (
    *GetItem.ERRORS_TO_CATCH_IN_RESPONSE,
    ews_errors.ErrorIrresolvableConflict,
    ews_errors.ErrorCalendarOccurrenceIsDeletedFromRecurrence,
    ews_errors.ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange,
    ews_errors.ErrorCalendarEndDateIsEarlierThanStartDate,
    ews_errors.ErrorCalendarDurationIsTooLong,
    ews_errors.ErrorCalendarInvalidRecurrence,
    ews_errors.ErrorCalendarInvalidTimeZone,
    ews_errors.ErrorInvalidPropertySet,
    ews_errors.ErrorInvalidExtendedPropertyValue,
    ews_errors.ErrorInvalidIdEmpty,
    ews_errors.ErrorAccessDenied,
    ews_errors.ErrorQuotaExceeded,
)


class EwsProvider:
    """One mailbox's default calendar on an Exchange server."""

    kind = "Exchange"
    max_batch = MAX_BATCH

    def __init__(self, connection: EwsConnection) -> None:
        self.conn = connection
        self.name = connection.name
        self.label = connection.label
        self.masters: dict[str, MasterInfo] = {}
        self.organizers: dict[str, str | None] = {}  # legacy DN -> SMTP
        self.last_written: RemoteRef | None = None
        self.learned_settings: dict[str, Any] = {}

    @property
    def requests(self) -> int:
        return self.conn.counter.count

    @requests.setter
    def requests(self, value: int) -> None:
        self.conn.counter.count = value

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------ check

    def check(self) -> None:
        """Sign in and read the calendar folder: errors say what is wrong (credentials,
        mailbox, impersonation right, not Exchange, certificate)."""
        from exchangelib.folders import Calendar

        calendar = self.conn.calendar
        self.conn.call(
            "reading the calendar folder", lambda: Calendar.get_distinguished(calendar.root)
        )
        build = self.conn.server_build()
        if build:
            self.learned_settings["build"] = build
        if not self.conn.settings.server:  # autodiscovered: later runs go straight there
            endpoint = self.conn.service_endpoint()
            if endpoint:
                self.learned_settings["server"] = endpoint

    # ------------------------------------------------------------ pull

    def list_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]:
        full = token is None
        opened, state = (window, None) if token is None else self._resume(token, window)
        while True:
            service = SyncFolderItems(account=self.conn.account)

            def run(service: Any = service, state: str | None = state) -> list[Any]:
                return list(
                    service.call(
                        folder=self.conn.calendar,
                        shape="IdOnly",
                        additional_fields=None,
                        sync_state=state,
                        ignore=None,
                        max_changes_returned=MAX_CHANGES,
                        sync_scope=None,
                    )
                )

            changes = self.conn.call("listing changes", run)
            page = ChangePage(full=full)
            wanted: list[str] = []
            for change, item in changes:
                if change == SyncFolderItems.DELETE:
                    page.deleted.append(str(item.id))
                elif change in (SyncFolderItems.CREATE, SyncFolderItems.UPDATE):
                    wanted.append(str(item.id))
            page.items.extend(self._read(wanted, window))
            state = service.sync_state
            page.done = bool(service.includes_last_item_in_range)
            page.token = str(DeltaToken(opened, str(state))) if page.done else None
            yield page
            if page.done:
                return

    def _resume(self, token: str, window: Window) -> tuple[Window, str]:
        """The window and sync state of a stored token. A sync state only reports changes, so
        once the engine's window has moved past the one the listing was made for, events and
        occurrences that came into range since would never arrive: that token is expired and
        the engine resyncs in full (see ``DeltaToken``)."""
        stored = DeltaToken.parse(token)
        if stored is None:
            raise TokenExpired(f"{self.label}: the stored sync state records no window")
        if not stored.serves(window):
            raise TokenExpired(
                f"{self.label}: the sync window moved past the sync state's "
                f"({stored.window.start:%Y-%m-%d} to {stored.window.end:%Y-%m-%d})"
            )
        return stored.window, stored.link

    def get(self, ref_id: str, window: Window) -> RemoteItem | RemoteRejection | None:
        found = self._read([ref_id], window)
        return found[0] if found else None

    def _service(self, cls: Any, what: str, **kwargs: Any) -> list[Any]:
        """One exchangelib item service over ``kwargs["items"]`` (chunks of MAX_BATCH, one
        request each, each retried on its own): results or per-item exceptions, in order."""
        items = list(kwargs.pop("items"))
        results: list[Any] = []
        for start in range(0, len(items), MAX_BATCH):
            chunk = items[start : start + MAX_BATCH]

            def run(chunk: list[Any] = chunk) -> list[Any]:
                service = cls(account=self.conn.account, chunk_size=MAX_BATCH)
                service.ERRORS_TO_CATCH_IN_RESPONSE = PER_ITEM
                return list(service.call(items=chunk, **kwargs))

            results.extend(self.conn.call(what, run))
        return results

    def _fetch(self, ids: Sequence[tuple[str, str | None]]) -> list[Any]:
        """GetItem in batches: items or exchangelib exceptions, in order."""
        folder = self.conn.calendar
        fields = {
            f for f in folder.normalize_fields(fields=list(READ_FIELDS)) if not f.field.is_attribute
        }
        return self._service(
            GetItem, "reading events", items=ids, additional_fields=fields, shape="IdOnly"
        )

    def _read(self, ids: list[str], window: Window) -> list[RemoteItem | RemoteRejection]:
        """Items (and the modified occurrences of masters) read in batches; an id that is gone
        by now is left out (the next listing reports its deletion)."""
        if not ids:
            return []
        read = self._fetch([(i, None) for i in ids])
        exception_ids = [
            (str(o.id), None)
            for item in read
            if isinstance(item, CalendarItem)
            for o in (item.modified_occurrences or [])
        ]
        exceptions: dict[str, Any] = {}
        for exception in self._fetch(exception_ids) if exception_ids else []:
            if isinstance(exception, CalendarItem):
                exceptions[str(exception.id)] = exception
        found: list[RemoteItem | RemoteRejection] = []
        for item_id, item in zip(ids, read, strict=True):
            if isinstance(item, GONE):
                continue
            if isinstance(item, Exception):
                reason = str(item).strip().splitlines()[0][:200] if str(item).strip() else ""
                found.append(
                    RemoteRejection(
                        item_id,
                        None,
                        f"Exchange cannot read this event ({type(item).__name__}: {reason})",
                    )
                )
                continue
            try:
                smtp, legacy = organizer_address(item)
            except CalbridgeError as exc:
                found.append(RemoteRejection(item_id, None, f"{title(item)}: {exc}"))
                continue
            if legacy is not None:
                smtp = self._resolve(legacy)
            remote, info = item_of(item, window, exceptions, smtp)
            if info is not None:
                self.masters[item_id] = info
            found.append(remote)
        return found

    def _resolve(self, legacy_dn: str) -> str | None:
        """The SMTP address of an X500 / legacy-DN organizer (ResolveNames, cached)."""
        if legacy_dn not in self.organizers:
            protocol = self.conn.account.protocol

            def resolve() -> list[Any]:
                return list(protocol.resolve_names([legacy_dn], return_full_contact_data=False))

            try:
                answers = self.conn.call("resolving an organizer", resolve)
            except ProviderError:
                answers = []
            smtp = None
            for answer in answers:
                mailbox = answer[0] if isinstance(answer, tuple) else answer
                if isinstance(mailbox, Exception):
                    continue
                address = getattr(mailbox, "email_address", None)
                if address and "@" in str(address):
                    smtp = str(address)
                    break
            self.organizers[legacy_dn] = smtp
        return self.organizers[legacy_dn]

    # ------------------------------------------------------------ push

    def create(self, event: RemoteEvent) -> Written:
        return _single(self.write_many([WriteOp("create", event=event)]))

    def update(self, ref: RemoteRef, event: RemoteEvent) -> Written:
        return _single(self.write_many([WriteOp("update", event=event, ref=ref)]))

    def delete(self, ref: RemoteRef, recurrence_id: str | None = None) -> None:
        result = self.write_many([WriteOp("delete", ref=ref, recurrence_id=recurrence_id)])[0]
        if isinstance(result, Exception):
            raise result

    def write_many(self, ops: list[WriteOp]) -> list[WriteResult]:
        results: list[WriteResult] = [None] * len(ops)
        creates = [n for n, op in enumerate(ops) if op.kind == "create"]
        updates = [n for n, op in enumerate(ops) if op.kind == "update"]
        deletes = [n for n, op in enumerate(ops) if op.kind == "delete"]
        for start in range(0, len(creates), MAX_BATCH):
            self._creates(ops, creates[start : start + MAX_BATCH], results)
        for start in range(0, len(updates), MAX_BATCH):
            self._updates(ops, updates[start : start + MAX_BATCH], results)
        for start in range(0, len(deletes), MAX_BATCH):
            self._deletes(ops, deletes[start : start + MAX_BATCH], results)
        return results

    def _creates(self, ops: list[WriteOp], indexes: list[int], results: list[WriteResult]) -> None:
        account, folder = self.conn.account, self.conn.calendar
        keys = {ops[n].event.key: n for n in indexes if ops[n].event is not None}  # type: ignore[union-attr]

        def existing() -> list[Any]:
            """FindItem restricted on our key property, returning it (one request a page)."""
            key_field = FieldPath(field=CalendarItem.get_field_by_fieldname("calbridge_key"))
            restriction = Restriction(
                Q(calbridge_key__in=list(keys)), folders=[folder], applies_to=Restriction.ITEMS
            )
            service = FindItem(account=account, page_size=MAX_BATCH)
            return list(
                service.call(
                    folders=[folder],
                    additional_fields={key_field},
                    restriction=restriction,
                    order_fields=None,
                    shape="IdOnly",
                    query_string=None,
                    depth="Shallow",
                    calendar_view=None,
                    max_items=None,
                    offset=0,
                )
            )

        for item in self.conn.call("looking for events created before", existing):
            key = getattr(item, "calbridge_key", None)
            if key in keys and results[keys[key]] is None:
                event = ops[keys[key]].event
                assert event is not None
                ref = RemoteRef(str(item.id), str(item.changekey))
                results[keys[key]] = Written(ref, _uid(event), adopted=True)
        to_make: list[tuple[int, CalendarItem, str]] = []
        for n in indexes:
            event = ops[n].event
            assert event is not None
            if results[n] is not None:
                continue
            item = CalendarItem(account=account, folder=folder)
            try:
                apply_fields(item, event.fields)
                if event.rooms is not None:
                    apply_rooms(item, event, None)
            except BadEvent as exc:
                results[n] = ProviderError(
                    f"{self.label}: cannot write '{event.fields.name[:60]}': {exc}"
                )
                results[n].status = 400  # type: ignore[union-attr]
                continue
            item.calbridge_key = event.key
            uid = _uid(event)
            item.uid = uid
            to_make.append((n, item, uid))
        if not to_make:
            return
        made = self._service(
            CreateItem,
            "creating events",
            items=[item for _, item, _ in to_make],
            folder=folder,
            message_disposition="SaveOnly",
            send_meeting_invitations="SendToNone",
        )
        for (n, _item, uid), answer in zip(to_make, made, strict=True):
            if isinstance(answer, Exception):
                results[n] = self._refused(answer, "creating an event")
            else:
                results[n] = Written(RemoteRef(str(answer.id), str(answer.changekey)), uid)

    def _target(self, ref: RemoteRef, recurrence_id: str | None) -> CalendarItem | Exception:
        """The exchangelib item to write: the item itself, or one occurrence of a series."""
        account, folder = self.conn.account, self.conn.calendar
        if recurrence_id is None:
            return CalendarItem(account=account, folder=folder, id=ref.id, changekey=ref.etag)
        info = self.masters.get(ref.id)
        if info is None:
            self._read([ref.id], _PATTERN_ONLY)
            info = self.masters.get(ref.id)
        if info is None:
            return Conflict(f"{self.label}: the series was deleted on the calendar")
        if recurrence_id in info.exceptions:
            item_id, change_key = info.exceptions[recurrence_id]
            return CalendarItem(account=account, folder=folder, id=item_id, changekey=change_key)
        index = info.instance_index(recurrence_id)
        if index is None:
            return Conflict(f"{self.label}: the series has no occurrence {recurrence_id}")
        item = CalendarItem(account=account, folder=folder)
        item._id = OccurrenceItemId(id=ref.id, changekey=ref.etag, instance_index=index)
        return item

    def _updates(self, ops: list[WriteOp], indexes: list[int], results: list[WriteResult]) -> None:
        batch: list[tuple[int, CalendarItem]] = []
        fields: dict[int, list[str]] = {}
        current = self._attendees(ops, indexes)
        for n in indexes:
            op = ops[n]
            assert op.ref is not None and op.event is not None
            target = self._target(op.ref, op.event.recurrence_id)
            if isinstance(target, Exception):
                results[n] = target
                continue
            try:
                apply_fields(target, op.event.fields)
                if n in current:
                    fields[n] = apply_rooms(target, op.event, current[n])
            except BadEvent as exc:
                error = ProviderError(
                    f"{self.label}: cannot write '{op.event.fields.name[:60]}': {exc}"
                )
                error.status = 400
                results[n] = error
                continue
            batch.append((n, target))
        if not batch:
            return
        answers = self._service(
            UpdateItem,
            "updating events",
            items=[(item, [*WRITE_FIELDS, *fields.get(n, [])]) for n, item in batch],
            conflict_resolution="NeverOverwrite",
            message_disposition="SaveOnly",
            send_meeting_invitations_or_cancellations="SendToNone",
            suppress_read_receipts=True,
        )
        series: dict[str, list[int]] = {}
        for (n, _item), answer in zip(batch, answers, strict=True):
            op = ops[n]
            assert op.ref is not None and op.event is not None
            if isinstance(answer, ews_errors.ErrorIrresolvableConflict):
                results[n] = Conflict(
                    f"{self.label}: '{op.event.fields.name[:60]}' changed on the calendar"
                )
            elif isinstance(answer, GONE):
                results[n] = Conflict(
                    f"{self.label}: '{op.event.fields.name[:60]}' was deleted on the calendar"
                )
            elif isinstance(answer, Exception):
                results[n] = self._refused(answer, f"updating '{op.event.fields.name[:60]}'")
            elif op.event.recurrence_id is not None:
                series.setdefault(op.ref.id, []).append(n)
            else:
                item_id, change_key = answer
                results[n] = Written(RemoteRef(str(item_id), str(change_key)), op.event.uid or "")
        self._series_written(ops, series, results)

    def _attendees(self, ops: list[WriteOp], indexes: list[int]) -> dict[int, Any]:
        """For updates that send rooms: the items' attendees now, read in one GetItem (the
        ones we did not put there are kept, see ``mapping.apply_rooms``)."""
        wanted = [
            n
            for n in indexes
            if (event := ops[n].event) is not None
            and event.rooms is not None
            and event.recurrence_id is None
        ]
        if not wanted:
            return {}
        refs = [ops[n].ref for n in wanted]
        read = self._fetch([(ref.id, None) for ref in refs if ref is not None])
        return {
            n: item for n, item in zip(wanted, read, strict=True) if not isinstance(item, Exception)
        }

    def _series_written(
        self, ops: list[WriteOp], series: dict[str, list[int]], results: list[WriteResult]
    ) -> None:
        """After writing occurrences: the masters' new change keys (shared by every occurrence
        link of a series), read in one GetItem."""
        if not series:
            return
        masters = list(series)
        read = self._fetch([(m, None) for m in masters])
        for master_id, item in zip(masters, read, strict=True):
            ref = RemoteRef(master_id, None if isinstance(item, Exception) else str(item.changekey))
            self.masters.pop(master_id, None)  # its exceptions changed: re-read when needed
            self.last_written = ref
            for n in series[master_id]:
                op = ops[n]
                if op.kind == "update":
                    assert op.event is not None
                    results[n] = Written(ref, op.event.uid or "")

    def _deletes(self, ops: list[WriteOp], indexes: list[int], results: list[WriteResult]) -> None:
        batch: list[tuple[int, CalendarItem]] = []
        for n in indexes:
            op = ops[n]
            assert op.ref is not None
            target = self._target(op.ref, op.recurrence_id)
            if isinstance(target, Conflict):
                continue  # the series or occurrence is gone already
            if isinstance(target, Exception):
                results[n] = target
                continue
            batch.append((n, target))
        if not batch:
            return
        notices = "SendToAllAndSaveCopy" if self.conn.settings.cancellations else "SendToNone"
        answers = self._service(
            DeleteItem,
            "deleting events",
            items=[item for _, item in batch],
            delete_type="MoveToDeletedItems",
            send_meeting_cancellations=notices,
            affected_task_occurrences="AllOccurrences",
            suppress_read_receipts=True,
        )
        series: dict[str, list[int]] = {}
        for (n, _item), answer in zip(batch, answers, strict=True):
            op = ops[n]
            assert op.ref is not None
            if isinstance(answer, Exception) and not isinstance(answer, GONE):
                results[n] = self._refused(answer, "deleting an event")
            elif op.recurrence_id is not None:
                series.setdefault(op.ref.id, []).append(n)
        self._series_written(ops, series, results)

    def _refused(self, exc: Exception, what: str) -> CalbridgeError:
        return translate(exc, self.conn, what)


def Window_all() -> Window:
    """A window wide enough to learn a series' pattern (its occurrences are not kept)."""
    from datetime import datetime

    return Window(datetime(1970, 1, 1), datetime(1970, 1, 2))


def _uid(event: RemoteEvent) -> str:
    """The UID our create gives an item: the booking's own, else one derived from its key —
    the same on a retried create, so an adopted item needs no read to know it."""
    return event.uid or f"{event.key}@calbridge"


def _single(results: list[WriteResult]) -> Written:
    result = results[0]
    if isinstance(result, Exception):
        raise result
    assert isinstance(result, Written)
    return result
