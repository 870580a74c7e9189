"""The EWS operations the emulator answers, one method each, reading the request's SOAP body
and writing a response through the schema models (``schema.py``).

A request-level problem (no such mailbox to impersonate, no impersonation right, a malformed
request) is a SOAP fault (:class:`SoapFault`, HTTP 500, as Exchange sends it); a problem with
one id of a batch is an error *response message* for that id while the others succeed.
"""

from __future__ import annotations

import base64
import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from calbridge.domain.windows_zones import resolve_zone

from .rooms import Attendee, merged
from .schema import CALENDAR_ITEM, SEQUENCES, M, T, build, el
from .store import (
    MONTHS,
    Account,
    Item,
    Mailbox,
    Organisation,
    Organizer,
    Pattern,
    Subscription,
    new_id,
)

MAX_SYNC_CHANGES = 512


class SoapFault(Exception):
    def __init__(self, code: str, message: str, back_off_ms: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.back_off_ms = back_off_ms


class StreamRefused(Exception):
    """A ``GetStreamingEvents`` request names a subscription the server does not know, or one
    another account made (only its creator may use it: ``ErrorSubscriptionAccessDenied``)."""

    def __init__(
        self,
        subscription_id: str,
        code: str = "ErrorSubscriptionNotFound",
        message: str = "The specified subscription was not found.",
    ) -> None:
        super().__init__(subscription_id)
        self.subscription_id = subscription_id
        self.code = code
        self.message = message


class ItemError(Exception):
    """An error response message for one item of a batch."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def t(name: str) -> str:
    return f"{{{T}}}{name}"


def m(name: str) -> str:
    return f"{{{M}}}{name}"


def _local(node: ET.Element) -> str:
    return node.tag.split("}", 1)[-1]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Shape:
    """What a request asked to get back: ``IdOnly`` plus additional properties, or everything
    (``Default`` / ``AllProperties``); extended properties only when named."""

    base: str
    fields: frozenset[str]
    extended: frozenset[str]

    @classmethod
    def of(cls, node: ET.Element | None) -> Shape:
        if node is None:
            return cls("AllProperties", frozenset(), frozenset())
        base = (node.findtext(t("BaseShape")) or "Default").strip()
        fields: set[str] = set()
        extended: set[str] = set()
        for prop in node.iterfind(f"{t('AdditionalProperties')}/*"):
            if _local(prop) == "ExtendedFieldURI":
                extended.add(extended_key(prop))
            elif prop.get("FieldURI"):
                fields.add(str(prop.get("FieldURI")).split(":", 1)[-1])
        return cls(base, frozenset(fields), frozenset(extended))

    def wants(self, name: str) -> bool:
        return self.base != "IdOnly" or name in self.fields


def extended_key(uri: ET.Element) -> str:
    """A stable key of an ``ExtendedFieldURI``'s attributes (property set + name + type)."""
    return ";".join(f"{k}={v}" for k, v in sorted(uri.attrib.items()))


def _extended_attrs(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split(";") if "=" in part)


class Request:
    """One SOAP request: who sent it, for which mailbox, and what it asks."""

    def __init__(self, org: Organisation, account: Account, envelope: ET.Element) -> None:
        self.org = org
        self.account = account
        header = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
        body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
        if body is None or len(body) == 0:
            raise SoapFault("ErrorInvalidRequest", "The request has no SOAP body.")
        self.operation_node = body[0]
        self.operation = _local(self.operation_node)
        self.impersonated: str | None = None
        self.context_zone: ZoneInfo = ZoneInfo("UTC")
        if header is not None:
            smtp = header.findtext(f"{t('ExchangeImpersonation')}/{t('ConnectingSID')}/*")
            if smtp:
                self.impersonated = smtp.strip().lower()
            zone = header.find(f"{t('TimeZoneContext')}/{t('TimeZoneDefinition')}")
            if zone is not None and zone.get("Id"):
                with contextlib.suppress(KeyError):
                    self.context_zone = resolve_zone(str(zone.get("Id")))

    # ------------------------------------------------------------ mailbox access
    def target(self, named: str | None = None) -> Mailbox:
        """The mailbox this request works in: the impersonated one, the one a folder id names,
        or the account's own — after checking the account may use it."""
        if self.impersonated is not None:
            box = self.org.mailbox(self.impersonated)
            if box is None:
                raise SoapFault(
                    "ErrorNonExistentMailbox",
                    f"The SMTP address has no mailbox associated with it: {self.impersonated}",
                )
            if not self.account.may_impersonate(box.smtp):
                raise SoapFault(
                    "ErrorImpersonateUserDenied",
                    "The account does not have permission to impersonate the requested user.",
                )
            return box
        smtp = (named or self.account.mailbox or "").lower()
        box = self.org.mailbox(smtp)
        if box is None:
            raise ItemError(
                "ErrorNonExistentMailbox",
                f"The SMTP address has no mailbox associated with it: {smtp or '(none)'}",
            )
        if not self.account.may_open(box.smtp):
            raise ItemError(
                "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        return box

    def folder_mailbox(self, folder: ET.Element | None) -> Mailbox:
        """The mailbox of a ``FolderId`` / ``DistinguishedFolderId`` (checking it is a
        calendar this emulator has)."""
        if folder is None:
            return self.target()
        named = folder.findtext(f"{t('Mailbox')}/{t('EmailAddress')}")
        box = self.target(named.strip() if named else None)
        if _local(folder) == "DistinguishedFolderId":
            if folder.get("Id") not in ("calendar", "root", "msgfolderroot"):
                raise ItemError("ErrorFolderNotFound", "The specified folder could not be found.")
        elif folder.get("Id") not in (box.calendar_id, box.root_id):
            raise ItemError("ErrorFolderNotFound", "The specified folder could not be found.")
        return box

    def item_box(self) -> Mailbox:
        """For requests that name items only: the impersonated or the account's mailbox."""
        return self.target()

    # ------------------------------------------------------------ time values
    def moment(self, text: str, zone_id: str | None = None) -> datetime:
        text = text.strip()
        if len(text) == 10 or (len(text) > 10 and text[10] in "+-Z"):
            day = date.fromisoformat(text[:10])
            zone = resolve_zone(zone_id) if zone_id else self.context_zone
            return datetime.combine(day, time(), zone).astimezone(UTC)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.context_zone)
        return value.astimezone(UTC)


class Operations:
    """Dispatches a request to its handler; each returns the ``m:<Operation>Response``."""

    def __init__(self, org: Organisation) -> None:
        self.org = org
        self.handlers: dict[str, Callable[[Request], ET.Element]] = {
            "ConvertId": self.convert_id,
            "GetFolder": self.get_folder,
            "SyncFolderItems": self.sync_folder_items,
            "GetItem": self.get_item,
            "CreateItem": self.create_item,
            "UpdateItem": self.update_item,
            "DeleteItem": self.delete_item,
            "FindItem": self.find_item,
            "ResolveNames": self.resolve_names,
            "Subscribe": self.subscribe,
            "Unsubscribe": self.unsubscribe,
        }

    def handle(self, request: Request) -> ET.Element:
        handler = self.handlers.get(request.operation)
        if handler is None:
            raise SoapFault(
                "ErrorInvalidRequest", f"The operation {request.operation} is not supported."
            )
        with self.org.lock:
            return handler(request)

    # ------------------------------------------------------------ envelopes
    @staticmethod
    def response(operation: str, messages: Iterable[ET.Element]) -> ET.Element:
        node = el(M, f"{operation}Response")
        container = el(M, "ResponseMessages")
        container.extend(messages)
        node.append(container)
        return node

    @staticmethod
    def message(name: str, children: Iterable[ET.Element | None] = ()) -> ET.Element:
        return build(
            M,
            name,
            [el(M, "ResponseCode", "NoError"), *children],
            {"ResponseClass": "Success"},
        )

    @staticmethod
    def error(name: str, code: str, text: str, extra: Iterable[ET.Element] = ()) -> ET.Element:
        """An error response message; parts the schema requires (``Items``) are sent empty,
        as Exchange does."""
        sequence = SEQUENCES.get((M, name))
        required = [el(M, part) for part in sorted(sequence.required)] if sequence else []
        return build(
            M,
            name,
            [
                el(M, "MessageText", text),
                el(M, "ResponseCode", code),
                el(M, "DescriptiveLinkKey", 0),
                *extra,
                *required,
            ],
            {"ResponseClass": "Error"},
        )

    # ------------------------------------------------------------ ConvertId (version probe)
    def convert_id(self, request: Request) -> ET.Element:
        ids = request.operation_node.findall(f"{m('SourceIds')}/*")
        messages = [
            self.error(
                "ConvertIdResponseMessage",
                "ErrorInvalidIdMalformed",
                "Id is malformed.",
            )
            for _ in range(max(1, len(ids)))
        ]
        return self.response("ConvertId", messages)

    # ------------------------------------------------------------ GetFolder
    def get_folder(self, request: Request) -> ET.Element:
        messages = []
        for folder in request.operation_node.findall(f"{m('FolderIds')}/*"):
            try:
                box = request.folder_mailbox(folder)
            except ItemError as exc:
                messages.append(self.error("GetFolderResponseMessage", exc.code, exc.message))
                continue
            calendar = folder.get("Id") in ("calendar", box.calendar_id)
            folder_id = box.calendar_id if calendar else box.root_id
            node = build(
                T,
                "CalendarFolder" if calendar else "Folder",
                [
                    el(T, "FolderId", attrs={"Id": folder_id, "ChangeKey": "AgAAABYAAAA"}),
                    el(T, "ParentFolderId", attrs={"Id": box.root_id, "ChangeKey": "AQAAAA=="}),
                    el(T, "FolderClass", "IPF.Appointment" if calendar else "IPF.Note"),
                    el(T, "DisplayName", "Calendar" if calendar else "Top of Information Store"),
                    el(T, "TotalCount", len(box.items) if calendar else 0),
                    el(T, "ChildFolderCount", 0),
                ],
            )
            folders = el(M, "Folders")
            folders.append(node)
            messages.append(self.message("GetFolderResponseMessage", [folders]))
        return self.response("GetFolder", messages)

    # ------------------------------------------------------------ SyncFolderItems
    def sync_folder_items(self, request: Request) -> ET.Element:
        node = request.operation_node
        name = "SyncFolderItemsResponseMessage"
        try:
            box = request.folder_mailbox(node.find(f"{m('SyncFolderId')}/*"))
        except ItemError as exc:
            return self.response("SyncFolderItems", [self.error(name, exc.code, exc.message)])
        wanted = int(node.findtext(m("MaxChangesReturned")) or "0")
        if not 1 <= wanted <= MAX_SYNC_CHANGES:
            raise SoapFault(
                "ErrorSchemaValidation",
                f"The request failed schema validation: MaxChangesReturned {wanted} is not "
                f"within 1..{MAX_SYNC_CHANGES}.",
            )
        self.org.max_changes_seen.append(wanted)
        fault = self.org.take_fault("SyncFolderItems:state")
        if fault is not None:
            box.forget_sync_states()
        state = (node.findtext(m("SyncState")) or "").strip()
        since = 0
        if state:
            parsed = self.org.parse_sync_state(box, state)
            if parsed is None:
                # Exchange still sends an (empty) SyncState and IncludesLastItemInRange here
                return self.response(
                    "SyncFolderItems",
                    [
                        self.error(
                            name,
                            "ErrorInvalidSyncStateData",
                            "Synchronization state data is corrupt or otherwise invalid.",
                            [el(M, "SyncState"), el(M, "IncludesLastItemInRange", True)],
                        )
                    ],
                )
            since = parsed
        shape = Shape.of(node.find(m("ItemShape")))
        changes = self.org.changes_since(box, since)
        page, rest = changes[:wanted], changes[wanted:]
        last = page[-1][0] if page else max(since, 0)
        if not page and not state:
            last = box.seq
        container = el(M, "Changes")
        for _seq, kind, what in page:
            if kind == "Delete":
                assert isinstance(what, str)
                change = build(T, "Delete", [el(T, "ItemId", attrs={"Id": what})])
            else:
                assert isinstance(what, Item)
                change = el(T, kind)
                change.append(self.render(what, shape, box))
            container.append(change)
        message = self.message(
            name,
            [
                el(M, "SyncState", self.org.sync_state(box, last)),
                el(M, "IncludesLastItemInRange", not rest),
                container,
            ],
        )
        return self.response("SyncFolderItems", [message])

    # ------------------------------------------------------------ reading items
    def render(self, item: Item, shape: Shape, box: Mailbox, occurrence: int = 0) -> ET.Element:
        """A ``t:CalendarItem`` with what ``shape`` asks for."""
        want = shape.wants
        children: list[ET.Element | None] = [
            el(
                T,
                "ItemId",
                attrs={
                    "Id": occurrence_id(item.id, occurrence) if occurrence else item.id,
                    "ChangeKey": item.change_key,
                },
            )
        ]
        kind = "Occurrence" if occurrence else item.kind
        if want("ParentFolderId"):
            children.append(
                el(T, "ParentFolderId", attrs={"Id": box.calendar_id, "ChangeKey": "AgAAAA=="})
            )
        if want("ItemClass"):
            children.append(el(T, "ItemClass", "IPM.Appointment"))
        if want("Subject"):
            children.append(el(T, "Subject", item.subject))
        if want("Body"):
            children.append(el(T, "Body", item.body, {"BodyType": "Text", "IsTruncated": False}))
        if want("DateTimeCreated"):
            children.append(el(T, "DateTimeCreated", _iso(item.created)))
        for key, value in sorted(item.extended.items()):
            if key in shape.extended:
                children.append(
                    build(
                        T,
                        "ExtendedProperty",
                        [
                            el(T, "ExtendedFieldURI", attrs=_extended_attrs(key)),
                            el(T, "Value", value),
                        ],
                    )
                )
        if shape.fields and "TextBody" in shape.fields:
            children.append(el(T, "TextBody", item.body, {"BodyType": "Text"}))
        if want("LastModifiedTime"):
            children.append(el(T, "LastModifiedTime", _iso(item.modified)))
        if want("UID"):
            children.append(el(T, "UID", item.uid))
        start, end = item.start, item.end
        original = item.original_start
        if occurrence:
            original = item.instance(occurrence)
            assert original is not None
            start, end = original, original + (item.end - item.start)
        if want("Start"):
            children.append(el(T, "Start", _iso(start)))
        if want("End"):
            children.append(el(T, "End", _iso(end)))
        if original is not None and want("OriginalStart"):
            children.append(el(T, "OriginalStart", _iso(original)))
        if want("IsAllDayEvent"):
            children.append(el(T, "IsAllDayEvent", item.all_day))
        if want("LegacyFreeBusyStatus"):
            children.append(el(T, "LegacyFreeBusyStatus", item.free_busy))
        if want("Location"):
            children.append(el(T, "Location", item.location))
        if want("IsCancelled"):
            children.append(el(T, "IsCancelled", item.is_cancelled))
        if want("IsRecurring"):
            children.append(el(T, "IsRecurring", kind != "Single"))
        if want("CalendarItemType"):
            children.append(el(T, "CalendarItemType", kind))
        if item.organizer is not None and want("Organizer"):
            mailbox = build(
                T,
                "Mailbox",
                [
                    el(T, "Name", item.organizer.name),
                    el(T, "EmailAddress", item.organizer.address),
                    el(T, "RoutingType", item.organizer.routing),
                    el(
                        T,
                        "MailboxType",
                        "Mailbox" if item.organizer.routing == "SMTP" else "OneOff",
                    ),
                ],
            )
            children.append(build(T, "Organizer", [mailbox]))
        for list_name, attr in ATTENDEE_LISTS.items():
            attendees = getattr(item, attr)
            if attendees and want(list_name):
                children.append(build(T, list_name, [render_attendee(a) for a in attendees]))
        if item.pattern is not None and not occurrence:
            if want("Recurrence"):
                children.append(self.render_recurrence(item))
            if item.exceptions and want("ModifiedOccurrences"):
                modified = el(T, "ModifiedOccurrences")
                for original_start, exception in sorted(item.exceptions.items()):
                    modified.append(
                        build(
                            T,
                            "Occurrence",
                            [
                                el(
                                    T,
                                    "ItemId",
                                    attrs={"Id": exception.id, "ChangeKey": exception.change_key},
                                ),
                                el(T, "Start", _iso(exception.start)),
                                el(T, "End", _iso(exception.end)),
                                el(T, "OriginalStart", _iso(original_start)),
                            ],
                        )
                    )
                children.append(modified)
            if item.deleted_occurrences and want("DeletedOccurrences"):
                deleted = el(T, "DeletedOccurrences")
                for gone in sorted(item.deleted_occurrences):
                    deleted.append(build(T, "DeletedOccurrence", [el(T, "Start", _iso(gone))]))
                children.append(deleted)
        if want("StartTimeZone"):
            children.append(
                el(T, "StartTimeZone", attrs={"Id": item.start_zone, "Name": item.start_zone})
            )
        if want("EndTimeZone"):
            children.append(
                el(T, "EndTimeZone", attrs={"Id": item.end_zone, "Name": item.end_zone})
            )
        return build(T, "CalendarItem", children)

    @staticmethod
    def render_recurrence(item: Item) -> ET.Element:
        pattern = item.pattern
        assert pattern is not None
        kind = pattern.kind
        parts: list[ET.Element | None] = []
        if kind in ("Daily", "Weekly", "AbsoluteMonthly"):
            parts.append(el(T, "Interval", pattern.interval))
        if kind == "Weekly":
            parts.append(el(T, "DaysOfWeek", " ".join(pattern.days_of_week)))
        if kind in ("AbsoluteMonthly", "AbsoluteYearly"):
            parts.append(el(T, "DayOfMonth", pattern.day_of_month or item.start.day))
        if kind == "AbsoluteYearly":
            parts.append(el(T, "Month", MONTHS[(pattern.month or item.start.month) - 1]))
        start_date = pattern.start_date or item.start.astimezone(item.zone()).date()
        if pattern.count:
            range_node = build(
                T,
                "NumberedRecurrence",
                [el(T, "StartDate", start_date), el(T, "NumberOfOccurrences", pattern.count)],
            )
        elif pattern.end_date:
            range_node = build(
                T,
                "EndDateRecurrence",
                [el(T, "StartDate", start_date), el(T, "EndDate", pattern.end_date)],
            )
        else:
            range_node = build(T, "NoEndRecurrence", [el(T, "StartDate", start_date)])
        recurrence = el(T, "Recurrence")
        recurrence.append(build(T, f"{kind}Recurrence", parts))
        recurrence.append(range_node)
        return recurrence

    def locate(self, box: Mailbox, node: ET.Element) -> tuple[Item, int]:
        """The item an ``ItemId`` / ``OccurrenceItemId`` names: (item, occurrence index) —
        index 0 for the item itself."""
        if _local(node) == "OccurrenceItemId":
            master = box.items.get(str(node.get("RecurringMasterId")))
            index = int(node.get("InstanceIndex") or "0")
        else:
            decoded = parse_occurrence_id(str(node.get("Id") or ""))
            if decoded is None:
                found = box.find(str(node.get("Id") or ""))
                if found is None:
                    raise ItemError(
                        "ErrorItemNotFound", "The specified object was not found in the store."
                    )
                return found, 0
            master_id, index = decoded
            master = box.items.get(master_id)
        if master is None or master.pattern is None:
            raise ItemError("ErrorItemNotFound", "The specified object was not found in the store.")
        original = master.instance(index)
        if original is None:
            raise ItemError(
                "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
                "Occurrence index is out of recurrence range.",
            )
        if original in master.deleted_occurrences:
            raise ItemError(
                "ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                "Occurrence with this index was previously deleted from the recurrence.",
            )
        exception = master.exceptions.get(original)
        if exception is not None:
            return exception, 0
        return master, index

    def get_item(self, request: Request) -> ET.Element:
        node = request.operation_node
        shape = Shape.of(node.find(m("ItemShape")))
        messages = []
        for id_node in node.findall(f"{m('ItemIds')}/*"):
            try:
                box = request.item_box()
                item, index = self.locate(box, id_node)
                if item.invalid:
                    raise ItemError(item.invalid, "The item cannot be read: its data is corrupt.")
            except ItemError as exc:
                messages.append(self.error("GetItemResponseMessage", exc.code, exc.message))
                continue
            items = el(M, "Items")
            items.append(self.render(item, shape, box, index))
            messages.append(self.message("GetItemResponseMessage", [items]))
        return self.response("GetItem", messages)

    # ------------------------------------------------------------ writing items
    def apply(self, request: Request, item: Item, source: ET.Element) -> None:
        """Set the fields a request's ``t:CalendarItem`` carries on ``item``."""
        zone_start = source.find(t("StartTimeZone"))
        zone_end = source.find(t("EndTimeZone"))
        meeting_zone = source.find(t("MeetingTimeZone"))
        if zone_start is not None and zone_start.get("Id"):
            item.start_zone = str(zone_start.get("Id"))
        elif meeting_zone is not None and meeting_zone.get("TimeZoneName"):
            item.start_zone = str(meeting_zone.get("TimeZoneName"))
        if zone_end is not None and zone_end.get("Id"):
            item.end_zone = str(zone_end.get("Id"))
        elif zone_start is not None and zone_start.get("Id"):
            item.end_zone = item.start_zone
        for child in source:
            name = _local(child)
            text = child.text or ""
            if name not in CALENDAR_ITEM:
                raise SoapFault(
                    "ErrorSchemaValidation",
                    f"The request failed schema validation: CalendarItem has no element {name}.",
                )
            if name == "Subject":
                item.subject = text
            elif name == "Body":
                item.body = text
            elif name == "Location":
                item.location = text
            elif name == "UID":
                item.uid = text
            elif name == "LegacyFreeBusyStatus":
                item.free_busy = text
            elif name == "IsAllDayEvent":
                item.all_day = text.strip() in ("true", "1")
            elif name == "Start":
                item.start = request.moment(text, item.start_zone)
            elif name == "End":
                item.end = request.moment(text, item.end_zone)
            elif name == "ExtendedProperty":
                uri = child.find(t("ExtendedFieldURI"))
                if uri is not None:
                    item.extended[extended_key(uri)] = child.findtext(t("Value")) or ""
            elif name == "Recurrence":
                item.pattern = parse_pattern(child)
            elif name in ATTENDEE_LISTS:
                attr = ATTENDEE_LISTS[name]
                setattr(item, attr, merged(getattr(item, attr), parse_attendees(child)))
        if item.end < item.start:
            raise ItemError(
                "ErrorCalendarEndDateIsEarlierThanStartDate",
                "EndDate is earlier than StartDate",
            )

    def create_item(self, request: Request) -> ET.Element:
        node = request.operation_node
        name = "CreateItemResponseMessage"
        invitations = node.get("SendMeetingInvitations", "SendToAllAndSaveCopy")
        messages = []
        try:
            box = request.folder_mailbox(node.find(f"{m('SavedItemFolderId')}/*"))
        except ItemError as exc:
            box = None
            failure = exc
        for source in node.findall(f"{m('Items')}/*"):
            if box is None:
                messages.append(self.error(name, failure.code, failure.message))
                continue
            now = datetime.now(UTC)
            item = Item(new_id(), "", now, now + timedelta(minutes=30))
            owner = box
            item.organizer = Organizer(owner.name, owner.smtp)
            try:
                if _local(source) != "CalendarItem":
                    raise ItemError(
                        "ErrorCannotCreateCalendarItemInNonCalendarFolder",
                        "Only calendar items can be created in a calendar folder.",
                    )
                self.apply(request, item, source)
            except ItemError as exc:
                messages.append(self.error(name, exc.code, exc.message))
                continue
            self.org.insert(box, item)
            if invitations != "SendToNone":
                box.invitations_sent.append(item.id)
            items = el(M, "Items")
            items.append(
                build(
                    T,
                    "CalendarItem",
                    [el(T, "ItemId", attrs={"Id": item.id, "ChangeKey": item.change_key})],
                )
            )
            messages.append(self.message(name, [items]))
        return self.response("CreateItem", messages)

    def update_item(self, request: Request) -> ET.Element:
        node = request.operation_node
        name = "UpdateItemResponseMessage"
        resolution = node.get("ConflictResolution", "AutoResolve")
        messages = []
        for change in node.findall(f"{m('ItemChanges')}/{t('ItemChange')}"):
            id_node = next((c for c in change if _local(c).endswith("ItemId")), None)
            try:
                if id_node is None:
                    raise ItemError("ErrorInvalidIdEmpty", "The item id is missing.")
                box = request.item_box()
                item, index = self.locate(box, id_node)
                master = box.items.get(item.master_id or "") if item.master_id else None
                current = (
                    (master or item).change_key
                    if index or _local(id_node) == "OccurrenceItemId"
                    else item.change_key
                )
                given = id_node.get("ChangeKey")
                if index and master is None:
                    master = item
                if given and given != current and resolution == "NeverOverwrite":
                    raise ItemError(
                        "ErrorIrresolvableConflict",
                        "The send or update operation could not be performed because the change "
                        "key passed in the request does not match the current change key for "
                        "the item.",
                    )
                if index:
                    original = item.instance(index)
                    assert original is not None
                    item = self.org.exception_for(box, item, original)
                for update in change.findall(f"{t('Updates')}/*"):
                    verb = _local(update)
                    if verb == "SetItemField":
                        source = update.find(t("CalendarItem"))
                        if source is None:
                            raise ItemError(
                                "ErrorInvalidPropertySet", "Only calendar items are supported."
                            )
                        self.apply(request, item, source)
                    elif verb == "DeleteItemField":
                        uri = update.find(t("FieldURI"))
                        field = str(uri.get("FieldURI") if uri is not None else "")
                        if field.endswith(":Location"):
                            item.location = ""
                        elif field.split(":")[-1] in ATTENDEE_LISTS:
                            setattr(item, ATTENDEE_LISTS[field.split(":")[-1]], [])
                        elif field.endswith(":Body"):
                            item.body = ""
                        elif update.find(t("ExtendedFieldURI")) is not None:
                            extended = update.find(t("ExtendedFieldURI"))
                            assert extended is not None
                            item.extended.pop(extended_key(extended), None)
                if item.invalid:
                    item.invalid = None
                self.org.touch(box, item)
            except ItemError as exc:
                messages.append(self.error(name, exc.code, exc.message))
                continue
            items = el(M, "Items")
            items.append(
                build(
                    T,
                    "CalendarItem",
                    [el(T, "ItemId", attrs={"Id": item.id, "ChangeKey": item.change_key})],
                )
            )
            conflicts = build(T, "ConflictResults", [el(T, "Count", 0)])
            messages.append(self.message(name, [items, conflicts]))
        return self.response("UpdateItem", messages)

    def delete_item(self, request: Request) -> ET.Element:
        node = request.operation_node
        name = "DeleteItemResponseMessage"
        notices = node.get("SendMeetingCancellations", "SendToAllAndSaveCopy")
        messages = []
        for id_node in node.findall(f"{m('ItemIds')}/*"):
            try:
                box = request.item_box()
                item, index = self.locate(box, id_node)
            except ItemError as exc:
                messages.append(self.error(name, exc.code, exc.message))
                continue
            if index or item.master_id:
                master = item if index else box.items[str(item.master_id)]
                original = item.instance(index) if index else item.original_start
                assert original is not None
                master.exceptions.pop(original, None)
                master.deleted_occurrences.add(original)
                self.org.touch(box, master)
            else:
                self.org.remove(box, item)
            if notices != "SendToNone":
                box.cancellations_sent.append(item.id)
            messages.append(self.message(name))
        return self.response("DeleteItem", messages)

    # ------------------------------------------------------------ streaming notifications
    STREAMABLE = frozenset(
        {"CopiedEvent", "CreatedEvent", "DeletedEvent", "ModifiedEvent", "MovedEvent"}
    )

    def subscribe(self, request: Request) -> ET.Element:
        """``Subscribe`` with a ``StreamingSubscriptionRequest`` on one calendar folder (pull
        and push subscriptions are not emulated: calbridge uses streaming ones)."""
        node = request.operation_node
        name = "SubscribeResponseMessage"
        wanted = node.find(m("StreamingSubscriptionRequest"))
        if wanted is None:
            raise SoapFault(
                "ErrorInvalidSubscriptionRequest",
                "Only streaming subscriptions are supported by this server.",
            )
        try:
            box = request.folder_mailbox(wanted.find(f"{t('FolderIds')}/*"))
        except ItemError as exc:
            return self.response("Subscribe", [self.error(name, exc.code, exc.message)])
        types = frozenset(
            (e.text or "").strip() for e in wanted.iterfind(f"{t('EventTypes')}/{t('EventType')}")
        )
        if not types or not types <= self.STREAMABLE | {"NewMailEvent", "FreeBusyChangedEvent"}:
            raise SoapFault("ErrorInvalidSubscriptionRequest", "The event types are not valid.")
        made = self.org.subscribe(box, request.account.username, types)
        return self.response("Subscribe", [self.message(name, [el(M, "SubscriptionId", made.id)])])

    def unsubscribe(self, request: Request) -> ET.Element:
        name = "UnsubscribeResponseMessage"
        wanted = (request.operation_node.findtext(m("SubscriptionId")) or "").strip()
        found = self.org.subscription(wanted)
        if found is None:
            return self.response(
                "Unsubscribe",
                [
                    self.error(
                        name,
                        "ErrorSubscriptionNotFound",
                        "The specified subscription was not found.",
                    )
                ],
            )
        if found.account != request.account.username:
            return self.response(
                "Unsubscribe",
                [
                    self.error(
                        name,
                        "ErrorSubscriptionAccessDenied",
                        "The caller does not have access to this subscription.",
                    )
                ],
            )
        self.org.unsubscribe(wanted)
        return self.response("Unsubscribe", [self.message(name)])

    def streaming_subscriptions(self, request: Request) -> tuple[list[Subscription], int]:
        """The subscriptions a ``GetStreamingEvents`` request names and its connection timeout
        in minutes; a :class:`SoapFault` when one is unknown or expired (Exchange answers
        with an error message naming them: see :meth:`streaming_error`)."""
        node = request.operation_node
        ids = [
            (e.text or "").strip()
            for e in node.iterfind(f"{m('SubscriptionIds')}/{t('SubscriptionId')}")
        ]
        minutes_text = (node.findtext(m("ConnectionTimeout")) or "").strip()
        if not ids or not minutes_text.isdigit() or not 1 <= int(minutes_text) <= 30:
            raise SoapFault(
                "ErrorInvalidRequest",
                "GetStreamingEvents needs subscription ids and a ConnectionTimeout of 1-30 min.",
            )
        found = []
        with self.org.lock:
            for sid in ids:
                live = self.org.subscription(sid)
                if live is None:
                    raise StreamRefused(sid)
                if live.account != request.account.username:
                    raise StreamRefused(
                        sid,
                        "ErrorSubscriptionAccessDenied",
                        "The caller does not have access to this subscription.",
                    )
                found.append(live)
        return found, int(minutes_text)

    @staticmethod
    def streaming_error(refused: StreamRefused) -> ET.Element:
        sid = refused.subscription_id
        name = "GetStreamingEventsResponseMessage"
        missing = el(M, "ErrorSubscriptionIds")
        missing.append(el(M, "SubscriptionId", sid))
        return Operations.response(
            "GetStreamingEvents",
            [
                Operations.error(
                    name,
                    refused.code,
                    refused.message,
                    [missing],
                )
            ],
        )

    def streaming_message(
        self, subscriptions: list[Subscription], status: str | None
    ) -> ET.Element | None:
        """The next ``GetStreamingEventsResponse``: the events waiting on ``subscriptions``
        (taken off them), or only ``status`` (``OK`` heartbeat, ``Closed``); None when there
        is nothing to send."""
        name = "GetStreamingEventsResponseMessage"
        notifications = []
        with self.org.lock:
            for found in subscriptions:
                events, found.pending = found.pending, []
                if not events:
                    continue
                box = self.org.mailbox(found.mailbox)
                parent = box.calendar_id if box is not None else ""
                notification = build(
                    M,
                    "Notification",
                    [
                        el(T, "SubscriptionId", found.id),
                        *(
                            build(
                                T,
                                kind,
                                [
                                    el(T, "TimeStamp", _iso(stamp)),
                                    el(
                                        T,
                                        "ItemId",
                                        attrs={"Id": item_id, "ChangeKey": key}
                                        if key
                                        else {"Id": item_id},
                                    ),
                                    el(
                                        T,
                                        "ParentFolderId",
                                        attrs={"Id": parent, "ChangeKey": "AQAAAA=="},
                                    ),
                                ],
                            )
                            for kind, item_id, key, stamp in events
                        ),
                    ],
                )
                notifications.append(notification)
                found.last_served = datetime.now(UTC)
        if not notifications and status is None:
            return None
        children: list[ET.Element] = []
        if notifications:
            container = el(M, "Notifications")
            container.extend(notifications)
            children.append(container)
        if status is not None:
            children.append(el(M, "ConnectionStatus", status))
        return self.response("GetStreamingEvents", [self.message(name, children)])

    # ------------------------------------------------------------ FindItem
    def find_item(self, request: Request) -> ET.Element:
        node = request.operation_node
        name = "FindItemResponseMessage"
        try:
            box = request.folder_mailbox(node.find(f"{m('ParentFolderIds')}/*"))
        except ItemError as exc:
            return self.response("FindItem", [self.error(name, exc.code, exc.message)])
        found = node.find(m("Restriction"))
        tests = [restriction(c) for c in found] if found is not None else []
        matching = [item for item in box.items.values() if all(test(item) for test in tests)]
        matching.sort(key=lambda i: (i.start, i.id))
        view = node.find(m("IndexedPageItemView"))
        offset = int(view.get("Offset", "0")) if view is not None else 0
        limit = int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000
        page = matching[offset : offset + limit]
        shape = Shape.of(node.find(m("ItemShape")))
        items = el(M, "Items")
        items.extend(self.render(i, shape, box) for i in page)
        root = el(
            M,
            "RootFolder",
            attrs={
                "IndexedPagingOffset": offset + len(page),
                "TotalItemsInView": len(matching),
                "IncludesLastItemInRange": offset + len(page) >= len(matching),
            },
        )
        root.tag = m("RootFolder")
        items.tag = t("Items")
        root.append(items)
        return self.response("FindItem", [self.message(name, [root])])

    # ------------------------------------------------------------ ResolveNames
    def resolve_names(self, request: Request) -> ET.Element:
        node = request.operation_node
        name = "ResolveNamesResponseMessage"
        entry = node.findtext(m("UnresolvedEntry")) or ""
        found = self.org.resolve(entry)
        if not found:
            return self.response(
                "ResolveNames",
                [self.error(name, "ErrorNameResolutionNoResults", "No results were found.")],
            )
        resolutions = el(
            M,
            "ResolutionSet",
            attrs={"TotalItemsInView": len(found), "IncludesLastItemInRange": True},
        )
        for box in found:
            mailbox = build(
                T,
                "Mailbox",
                [
                    el(T, "Name", box.name),
                    el(T, "EmailAddress", box.smtp),
                    el(T, "RoutingType", "SMTP"),
                    el(T, "MailboxType", "Mailbox"),
                ],
            )
            resolutions.append(build(T, "Resolution", [mailbox]))
        if len(found) > 1:
            message = build(
                M,
                name,
                [
                    el(M, "MessageText", "Multiple results were found."),
                    el(M, "ResponseCode", "ErrorNameResolutionMultipleResults"),
                    el(M, "DescriptiveLinkKey", 0),
                    resolutions,
                ],
                {"ResponseClass": "Warning"},
            )
        else:
            message = self.message(name, [resolutions])
        return self.response("ResolveNames", [message])


def restriction(node: ET.Element) -> Callable[[Item], bool]:
    """Compile a restriction (``IsEqualTo`` / ``IsNotEqualTo`` / ``Exists`` on an extended
    property or a field, ``And``, ``Or``, ``Not``) into a test of one item."""
    kind = _local(node)
    if kind in ("And", "Or", "Not"):
        parts = [restriction(c) for c in node]
        if kind == "And":
            return lambda item: all(p(item) for p in parts)
        if kind == "Or":
            equal = [_equality(c) for c in node]
            if all(e is not None for e in equal) and len({e[0] for e in equal if e}) == 1:
                key = equal[0][0] if equal[0] else ""
                values = {e[1] for e in equal if e}
                return lambda item: item.extended.get(key) in values
            return lambda item: any(p(item) for p in parts)
        return lambda item: not all(p(item) for p in parts)
    value = _value_reader(node)
    if kind == "Exists":
        return lambda item: value(item) is not None
    constant = node.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
    wanted = constant.get("Value") if constant is not None else None
    if kind == "IsEqualTo":
        return lambda item: value(item) is not None and value(item) == wanted
    if kind == "IsNotEqualTo":
        return lambda item: value(item) != wanted
    raise SoapFault("ErrorUnsupportedQueryFilter", f"The restriction {kind} is not supported.")


def _equality(node: ET.Element) -> tuple[str, str | None] | None:
    """(extended key, value) of an ``IsEqualTo`` on an extended property, else None."""
    uri = node.find(t("ExtendedFieldURI"))
    constant = node.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
    if _local(node) != "IsEqualTo" or uri is None or constant is None:
        return None
    return extended_key(uri), constant.get("Value")


def _value_reader(node: ET.Element) -> Callable[[Item], str | None]:
    uri = node.find(t("ExtendedFieldURI"))
    if uri is not None:
        key = extended_key(uri)
        return lambda item: item.extended.get(key)
    field = node.find(t("FieldURI"))
    name = str(field.get("FieldURI")) if field is not None else ""
    readers: dict[str, Callable[[Item], str | None]] = {
        "item:Subject": lambda item: item.subject,
        "calendar:UID": lambda item: item.uid,
        "calendar:Location": lambda item: item.location,
    }
    if name not in readers:
        raise SoapFault("ErrorUnsupportedQueryFilter", f"Restricting on {name} is not supported.")
    return readers[name]


def parse_pattern(node: ET.Element) -> Pattern:
    """A request's ``t:Recurrence`` (pattern element, then range element)."""
    if len(node) != 2:
        raise ItemError("ErrorCalendarInvalidRecurrence", "The recurrence pattern is invalid.")
    pattern_node, range_node = node[0], node[1]
    kind = _local(pattern_node).removesuffix("Recurrence")
    if kind not in ("Daily", "Weekly", "AbsoluteMonthly", "AbsoluteYearly"):
        raise ItemError(
            "ErrorCalendarInvalidRecurrence", f"The recurrence pattern {kind} is not supported."
        )
    pattern = Pattern(kind, interval=int(pattern_node.findtext(t("Interval")) or "1"))
    days = pattern_node.findtext(t("DaysOfWeek"))
    if days:
        pattern.days_of_week = tuple(days.split())
    day = pattern_node.findtext(t("DayOfMonth"))
    if day:
        pattern.day_of_month = int(day)
    month = pattern_node.findtext(t("Month"))
    if month:
        pattern.month = MONTHS.index(month) + 1
    start = range_node.findtext(t("StartDate"))
    if start:
        pattern.start_date = date.fromisoformat(start[:10])
    end = range_node.findtext(t("EndDate"))
    if end:
        pattern.end_date = date.fromisoformat(end[:10])
    count = range_node.findtext(t("NumberOfOccurrences"))
    if count:
        pattern.count = int(count)
    return pattern


def occurrence_id(master_id: str, index: int) -> str:
    return base64.b64encode(f"OCC|{master_id}|{index}".encode()).decode()


def parse_occurrence_id(value: str) -> tuple[str, int] | None:
    try:
        raw = base64.b64decode(value.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    parts = raw.split("|")
    if len(parts) != 3 or parts[0] != "OCC" or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


#: the three attendee lists of a t:CalendarItem → the emulator's Item attribute (rooms.py)
ATTENDEE_LISTS = {
    "RequiredAttendees": "required",
    "OptionalAttendees": "optional",
    "Resources": "resources",
}


def parse_attendees(node: ET.Element) -> list[Attendee]:
    """A request's t:NonEmptyArrayOfAttendeesType (the client's ResponseType is not taken:
    Exchange keeps the attendees' own answers)."""
    out = []
    for attendee in node.findall(t("Attendee")):
        mailbox = attendee.find(t("Mailbox"))
        address = (mailbox.findtext(t("EmailAddress")) if mailbox is not None else None) or ""
        if not address.strip():
            raise ItemError("ErrorInvalidRecipients", "An attendee has no e-mail address.")
        name = (mailbox.findtext(t("Name")) if mailbox is not None else None) or ""
        out.append(Attendee(address.strip(), name))
    return out


def render_attendee(attendee: Attendee) -> ET.Element:
    mailbox = build(
        T,
        "Mailbox",
        [
            el(T, "Name", attendee.name or attendee.address),
            el(T, "EmailAddress", attendee.address),
            el(T, "RoutingType", "SMTP"),
            el(T, "MailboxType", "Mailbox"),
        ],
    )
    children = [mailbox, el(T, "ResponseType", attendee.response)]
    if attendee.last_response is not None:
        children.append(el(T, "LastResponseTime", _iso(attendee.last_response)))
    return build(T, "Attendee", children)
