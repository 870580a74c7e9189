"""The emulator's response models: element names, their order and their required parts, as
Exchange's published ``messages.xsd`` / ``types.xsd`` define them for the operations emulated.

Every element the emulator writes goes through :func:`build`, which puts the children of a
known type in schema order and refuses a child the type does not define or a missing required
one — so a response that would not validate against the schema fails in the emulator's own
tests instead of being "repaired" by a lenient client.

Only the types the emulator writes are modelled (``SEQUENCES``). Names are local names; the
namespace is the one of the type's schema (``m:`` messages, ``t:`` types).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
A = "http://schemas.microsoft.com/exchange/2010/Autodiscover"  # the SOAP Autodiscover service
WSA = "http://www.w3.org/2005/08/addressing"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

ET.register_namespace("s", SOAP)
ET.register_namespace("m", M)
ET.register_namespace("t", T)
ET.register_namespace("e", E)
ET.register_namespace("a", A)
ET.register_namespace("wsa", WSA)
ET.register_namespace("i", XSI)


@dataclass(frozen=True)
class Sequence:
    """An ``xs:sequence`` of child elements: ``(namespace, name)`` in order; ``required``
    lists the names with ``minOccurs`` 1."""

    ns: str
    children: tuple[str, ...]
    required: frozenset[str] = frozenset()
    choice: tuple[str, ...] = ()  # an unbounded xs:choice after ``children``, order kept


# m:ResponseMessageType, then the extension each response message adds after it.
_RESPONSE = ("MessageText", "ResponseCode", "DescriptiveLinkKey", "MessageXml")

# t:ItemType (types.xsd, Exchange 2010 SP2+ order) followed by t:CalendarItemType's own part.
ITEM = (
    "MimeContent",
    "ItemId",
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "Body",
    "Attachments",
    "DateTimeReceived",
    "Size",
    "Categories",
    "Importance",
    "InReplyTo",
    "IsSubmitted",
    "IsDraft",
    "IsFromMe",
    "IsResend",
    "IsUnmodified",
    "InternetMessageHeaders",
    "DateTimeSent",
    "DateTimeCreated",
    "ResponseObjects",
    "ReminderDueBy",
    "ReminderIsSet",
    "ReminderMinutesBeforeStart",
    "DisplayCc",
    "DisplayTo",
    "HasAttachments",
    "ExtendedProperty",
    "Culture",
    "EffectiveRights",
    "LastModifiedName",
    "LastModifiedTime",
    "IsAssociated",
    "WebClientReadFormQueryString",
    "WebClientEditFormQueryString",
    "ConversationId",
    "UniqueBody",
    "TextBody",  # Exchange 2013+: after the other ItemType parts, before the CalendarItem ones
)
CALENDAR_ITEM = (
    *ITEM,
    "UID",
    "RecurrenceId",
    "DateTimeStamp",
    "Start",
    "End",
    "OriginalStart",
    "IsAllDayEvent",
    "LegacyFreeBusyStatus",
    "Location",
    "When",
    "IsMeeting",
    "IsCancelled",
    "IsRecurring",
    "MeetingRequestWasSent",
    "IsResponseRequested",
    "CalendarItemType",
    "MyResponseType",
    "Organizer",
    "RequiredAttendees",
    "OptionalAttendees",
    "Resources",
    "ConflictingMeetingCount",
    "AdjacentMeetingCount",
    "ConflictingMeetings",
    "AdjacentMeetings",
    "Duration",
    "TimeZone",
    "AppointmentReplyTime",
    "AppointmentSequenceNumber",
    "AppointmentState",
    "Recurrence",
    "FirstOccurrence",
    "LastOccurrence",
    "ModifiedOccurrences",
    "DeletedOccurrences",
    "MeetingTimeZone",
    "StartTimeZone",
    "EndTimeZone",
    "ConferenceType",
    "AllowNewTimeProposal",
    "IsOnlineMeeting",
    "MeetingWorkspaceUrl",
    "NetShowUrl",
)
# t:BaseObjectChangedEventType (extends t:BaseNotificationEventType: Watermark) and its kin
_CHANGED = ("Watermark", "TimeStamp", "FolderId", "ItemId", "ParentFolderId")
_CHANGED_REQUIRED = frozenset({"TimeStamp", "ParentFolderId"})
_MOVED = (*_CHANGED, "OldFolderId", "OldItemId", "OldParentFolderId")
NOTIFICATION_EVENTS = (
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
    "StatusEvent",
    "FreeBusyChangedEvent",
)

BASE_FOLDER = (
    "FolderId",
    "ParentFolderId",
    "FolderClass",
    "DisplayName",
    "TotalCount",
    "ChildFolderCount",
    "ExtendedProperty",
    "ManagedFolderInformation",
    "EffectiveRights",
)

SEQUENCES: dict[tuple[str, str], Sequence] = {
    # messages.xsd
    (M, "ResponseMessages"): Sequence(M, ()),  # a choice of *ResponseMessage elements
    (M, "GetFolderResponseMessage"): Sequence(M, (*_RESPONSE, "Folders")),
    (M, "GetItemResponseMessage"): Sequence(M, (*_RESPONSE, "Items"), frozenset({"Items"})),
    (M, "CreateItemResponseMessage"): Sequence(M, (*_RESPONSE, "Items"), frozenset({"Items"})),
    (M, "UpdateItemResponseMessage"): Sequence(
        M, (*_RESPONSE, "Items", "ConflictResults"), frozenset({"Items"})
    ),
    (M, "DeleteItemResponseMessage"): Sequence(M, _RESPONSE),
    (M, "FindItemResponseMessage"): Sequence(M, (*_RESPONSE, "RootFolder")),
    (M, "SyncFolderItemsResponseMessage"): Sequence(
        M, (*_RESPONSE, "SyncState", "IncludesLastItemInRange", "Changes")
    ),
    (M, "ResolveNamesResponseMessage"): Sequence(M, (*_RESPONSE, "ResolutionSet")),
    (M, "ConvertIdResponseMessage"): Sequence(M, (*_RESPONSE, "AlternateId")),
    (M, "SubscribeResponseMessage"): Sequence(M, (*_RESPONSE, "SubscriptionId", "Watermark")),
    (M, "UnsubscribeResponseMessage"): Sequence(M, _RESPONSE),
    (M, "GetStreamingEventsResponseMessage"): Sequence(
        M, (*_RESPONSE, "Notifications", "ErrorSubscriptionIds", "ConnectionStatus")
    ),
    (M, "Notifications"): Sequence(M, ()),  # m:NonEmptyArrayOfNotificationsType
    (M, "ErrorSubscriptionIds"): Sequence(M, ()),  # m:ArrayOfSubscriptionIdsType
    # m:Notification is a t:NotificationType: its children are in the types namespace
    (M, "Notification"): Sequence(
        T,
        ("SubscriptionId", "PreviousWatermark", "MoreEvents"),
        frozenset({"SubscriptionId"}),
        NOTIFICATION_EVENTS,
    ),
    (T, "CreatedEvent"): Sequence(T, _CHANGED, _CHANGED_REQUIRED),
    (T, "DeletedEvent"): Sequence(T, _CHANGED, _CHANGED_REQUIRED),
    (T, "ModifiedEvent"): Sequence(T, (*_CHANGED, "UnreadCount"), _CHANGED_REQUIRED),
    (T, "MovedEvent"): Sequence(T, _MOVED, _CHANGED_REQUIRED),
    (T, "CopiedEvent"): Sequence(T, _MOVED, _CHANGED_REQUIRED),
    (T, "StatusEvent"): Sequence(T, ("Watermark",)),
    # types.xsd
    (T, "CalendarItem"): Sequence(T, CALENDAR_ITEM),
    (T, "CalendarFolder"): Sequence(T, (*BASE_FOLDER, "PermissionSet")),
    (T, "Folder"): Sequence(T, (*BASE_FOLDER, "PermissionSet", "UnreadCount")),
    (T, "ExtendedProperty"): Sequence(T, ("ExtendedFieldURI", "Value"), frozenset({"Value"})),
    (T, "Mailbox"): Sequence(T, ("Name", "EmailAddress", "RoutingType", "MailboxType", "ItemId")),
    (T, "Organizer"): Sequence(T, ("Mailbox",), frozenset({"Mailbox"})),
    # t:AttendeeType, and t:NonEmptyArrayOfAttendeesType for the three attendee lists
    (T, "Attendee"): Sequence(
        T,
        ("Mailbox", "ResponseType", "LastResponseTime", "ProposedStart", "ProposedEnd"),
        frozenset({"Mailbox"}),
    ),
    (T, "RequiredAttendees"): Sequence(T, ("Attendee",), frozenset({"Attendee"})),
    (T, "OptionalAttendees"): Sequence(T, ("Attendee",), frozenset({"Attendee"})),
    (T, "Resources"): Sequence(T, ("Attendee",), frozenset({"Attendee"})),
    (T, "Resolution"): Sequence(T, ("Mailbox", "Contact"), frozenset({"Mailbox"})),
    (T, "Occurrence"): Sequence(
        T,
        ("ItemId", "Start", "End", "OriginalStart"),
        frozenset({"ItemId", "Start", "End", "OriginalStart"}),
    ),
    (T, "DeletedOccurrence"): Sequence(T, ("Start",), frozenset({"Start"})),
    (T, "ConflictResults"): Sequence(T, ("Count",), frozenset({"Count"})),
    (T, "Delete"): Sequence(T, ("ItemId",), frozenset({"ItemId"})),
    # t:RecurrenceType = a pattern group, then a range group
    (T, "DailyRecurrence"): Sequence(T, ("Interval",), frozenset({"Interval"})),
    (T, "WeeklyRecurrence"): Sequence(
        T, ("Interval", "DaysOfWeek", "FirstDayOfWeek"), frozenset({"Interval", "DaysOfWeek"})
    ),
    (T, "AbsoluteMonthlyRecurrence"): Sequence(
        T, ("Interval", "DayOfMonth"), frozenset({"Interval", "DayOfMonth"})
    ),
    (T, "AbsoluteYearlyRecurrence"): Sequence(
        T, ("DayOfMonth", "Month"), frozenset({"DayOfMonth", "Month"})
    ),
    (T, "NoEndRecurrence"): Sequence(T, ("StartDate",), frozenset({"StartDate"})),
    (T, "EndDateRecurrence"): Sequence(
        T, ("StartDate", "EndDate"), frozenset({"StartDate", "EndDate"})
    ),
    (T, "NumberedRecurrence"): Sequence(
        T, ("StartDate", "NumberOfOccurrences"), frozenset({"StartDate", "NumberOfOccurrences"})
    ),
    # The SOAP Autodiscover service's schema (namespace .../2010/Autodiscover): GetUserSettings
    (A, "GetUserSettingsResponseMessage"): Sequence(A, ("Response",), frozenset({"Response"})),
    (A, "Response"): Sequence(A, ("ErrorCode", "ErrorMessage", "UserResponses")),
    (A, "UserResponses"): Sequence(A, (), choice=("UserResponse",)),
    (A, "UserResponse"): Sequence(
        A, ("ErrorCode", "ErrorMessage", "RedirectTarget", "UserSettingErrors", "UserSettings")
    ),
    (A, "UserSettingErrors"): Sequence(A, (), choice=("UserSettingError",)),
    (A, "UserSettingError"): Sequence(A, ("ErrorCode", "ErrorMessage", "SettingName")),
    (A, "UserSettings"): Sequence(A, (), choice=("UserSetting",)),
    (A, "UserSetting"): Sequence(A, ("Name", "Value"), frozenset({"Name"})),
    (A, "ServerVersionInfo"): Sequence(
        A, ("MajorVersion", "MinorVersion", "MajorBuildNumber", "MinorBuildNumber", "Version")
    ),
}


class SchemaViolation(Exception):
    """The emulator was about to write something the EWS schema does not allow (a bug)."""


Child = ET.Element | None
Children = Mapping[str, object] | Iterable[ET.Element]


def el(
    ns: str, name: str, text: object = None, attrs: Mapping[str, object] | None = None
) -> ET.Element:
    """A leaf element (``text`` as EWS writes it: booleans lower-case)."""
    node = ET.Element(f"{{{ns}}}{name}", {k: _text(v) for k, v in (attrs or {}).items()})
    if text is not None:
        node.text = _text(text)
    return node


def build(
    ns: str,
    name: str,
    children: Iterable[ET.Element | None] = (),
    attrs: Mapping[str, object] | None = None,
) -> ET.Element:
    """An element whose children are put in schema order (stable for repeated ones)."""
    node = el(ns, name, attrs=attrs)
    given = [c for c in children if c is not None]
    sequence = SEQUENCES.get((ns, name))
    if sequence is not None and (sequence.children or sequence.choice):
        order = {child: n for n, child in enumerate(sequence.children)}
        order |= {child: len(sequence.children) for child in sequence.choice}
        for child in given:
            local = child.tag.split("}", 1)[1]
            if local not in order:
                raise SchemaViolation(f"{name} has no child {local} in the EWS schema")
        given.sort(key=lambda c: order[c.tag.split("}", 1)[1]])
        present = {c.tag.split("}", 1)[1] for c in given}
        missing = sequence.required - present
        if missing:
            raise SchemaViolation(f"{name} lacks required {', '.join(sorted(missing))}")
    node.extend(given)
    return node


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def envelope(body: ET.Element, version: tuple[int, int, int, int]) -> bytes:
    """A SOAP envelope with the ``ServerVersionInfo`` header Exchange sends with every
    answer (``Version`` is what Exchange 2016/2019 put there: ``V2017_07_11``)."""
    major, minor, build_major, build_minor = version
    root = ET.Element(f"{{{SOAP}}}Envelope")
    header = ET.SubElement(root, f"{{{SOAP}}}Header")
    header.append(
        el(
            T,
            "ServerVersionInfo",
            attrs={
                "MajorVersion": major,
                "MinorVersion": minor,
                "MajorBuildNumber": build_major,
                "MinorBuildNumber": build_minor,
                "Version": "V2017_07_11",
            },
        )
    )
    ET.SubElement(root, f"{{{SOAP}}}Body").append(body)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>' + text


def fault(
    code: str, message: str, version: tuple[int, int, int, int], back_off_ms: int | None = None
) -> bytes:
    """A SOAP fault as Exchange sends it for a request-level error (HTTP 500): ``faultcode``,
    ``faultstring`` and a ``detail`` with ``e:ResponseCode`` / ``e:Message`` (and, for
    ``ErrorServerBusy``, ``t:MessageXml`` carrying ``BackOffMilliseconds``)."""
    body = ET.Element(f"{{{SOAP}}}Fault")
    faultcode = ET.SubElement(body, "faultcode")
    faultcode.text = "s:Client"
    ET.SubElement(body, "faultstring").text = message
    detail = ET.SubElement(body, "detail")
    detail.append(el(E, "ResponseCode", code))
    detail.append(el(E, "Message", message))
    if back_off_ms is not None:
        xml = el(T, "MessageXml")
        xml.append(el(T, "Value", back_off_ms, {"Name": "BackOffMilliseconds"}))
        detail.append(xml)
    return envelope(body, version)
