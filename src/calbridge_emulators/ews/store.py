"""The emulated Exchange organisation: accounts, mailboxes and their calendar items.

State is in memory and guarded by one lock (the app runs requests on uvicorn's event loop,
tests poke the store from their own thread). What Exchange does and the emulator keeps:

* Items have an ``Id`` that never changes and a ``ChangeKey`` that changes on every write.
* A mailbox keeps a change log: every write bumps its sequence number; a sync state is the
  sequence number it was taken at, sealed with the mailbox's *epoch* — bumping the epoch
  (:meth:`Mailbox.forget_sync_states`) makes every earlier state invalid
  (``ErrorInvalidSyncStateData``), as a mailbox move does on a real server.
* A recurring master holds its pattern, its deleted occurrences (by original start) and its
  modified occurrences (exceptions, each with its own id); exceptions are not listed by
  ``SyncFolderItems`` — a change to one is a change of its master.
* Times are instants (aware UTC); an item also keeps the Windows time-zone ids of its start and
  end, in which all-day items start at midnight and series repeat in wall-clock time.
* Streaming subscriptions (:class:`Subscription`) on a mailbox's calendar collect the events
  of every write (``CreatedEvent`` / ``ModifiedEvent`` / ``DeletedEvent``; a change to an
  exception is a ``ModifiedEvent`` of its master) until a ``GetStreamingEvents`` connection
  takes them. A subscription no connection has served for ``idle_lifetime`` (Exchange: 30
  minutes) expires; ``stream_cap_seconds`` shortens every connection (the server closing it,
  ``ConnectionStatus`` ``Closed``), :meth:`Organisation.drop_streams` cuts open connections
  without a word (a network drop) and :meth:`Organisation.forget_subscriptions` makes the server
  forget them (a restart): both are what a client must survive.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, weekday

from calbridge.domain.windows_zones import resolve_zone

from .rooms import Attendee, Room, answer_rooms

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def new_id(prefix: bytes = b"AAMkA") -> str:
    return base64.b64encode(prefix + secrets.token_bytes(30)).decode()


@dataclass
class Pattern:
    """A recurrence pattern and range as EWS describes them. ``kind``: Daily, Weekly,
    AbsoluteMonthly or AbsoluteYearly; ``end`` (EndDateRecurrence) or ``count``
    (NumberedRecurrence) or neither (NoEndRecurrence)."""

    kind: str
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    day_of_month: int | None = None
    month: int | None = None
    start_date: date | None = None
    end_date: date | None = None
    count: int | None = None

    def rule(self, anchor: datetime) -> rrule:
        freq = {"Daily": DAILY, "Weekly": WEEKLY, "AbsoluteMonthly": MONTHLY}.get(self.kind, YEARLY)
        options: dict[str, object] = {"interval": max(1, self.interval), "dtstart": anchor}
        if self.kind == "Weekly" and self.days_of_week:
            options["byweekday"] = [weekday(WEEKDAYS.index(d)) for d in self.days_of_week]
        if self.kind in ("AbsoluteMonthly", "AbsoluteYearly") and self.day_of_month:
            options["bymonthday"] = self.day_of_month
        if self.kind == "AbsoluteYearly" and self.month:
            options["bymonth"] = self.month
        if self.count:
            options["count"] = self.count
        elif self.end_date:
            options["until"] = datetime.combine(self.end_date, datetime.max.time())
        return rrule(freq, **options)  # type: ignore[arg-type]


@dataclass
class Organizer:
    name: str
    address: str  # an SMTP address, or an X500 legacy DN when routing is "EX"
    routing: str = "SMTP"


@dataclass
class Item:
    id: str
    subject: str
    start: datetime  # aware UTC
    end: datetime
    start_zone: str = "UTC"  # Windows time-zone id
    end_zone: str = "UTC"
    all_day: bool = False
    location: str = ""
    body: str = ""
    uid: str = ""
    organizer: Organizer | None = None
    extended: dict[str, str] = field(default_factory=dict)  # "setid/name" -> value
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    version: int = 1
    seq: int = 0  # the mailbox sequence number of its last change
    created_seq: int = 0
    pattern: Pattern | None = None
    deleted_occurrences: set[datetime] = field(default_factory=set)  # original starts (UTC)
    exceptions: dict[datetime, Item] = field(default_factory=dict)  # original start -> item
    master_id: str | None = None  # set on an exception
    original_start: datetime | None = None  # set on an exception
    is_cancelled: bool = False
    free_busy: str = "Busy"
    invalid: str | None = None  # make GetItem answer this error code for the item
    required: list[Attendee] = field(default_factory=list)  # see rooms.py
    optional: list[Attendee] = field(default_factory=list)
    resources: list[Attendee] = field(default_factory=list)

    @property
    def change_key(self) -> str:
        return base64.b64encode(b"DwAAABYAAAA" + self.version.to_bytes(4, "big")).decode()

    @property
    def kind(self) -> str:
        if self.master_id is not None:
            return "Exception"
        return "RecurringMaster" if self.pattern is not None else "Single"

    def zone(self) -> ZoneInfo:
        try:
            return resolve_zone(self.start_zone)
        except KeyError:
            return ZoneInfo("UTC")

    def occurrence_starts(self, until: datetime) -> Iterator[tuple[int, datetime]]:
        """(instance index, original start in UTC) of a master's occurrences up to ``until``."""
        assert self.pattern is not None
        tz = self.zone()
        anchor = self.start.astimezone(tz).replace(tzinfo=None)
        for index, wall in enumerate(self.pattern.rule(anchor), start=1):
            moment = wall.replace(tzinfo=tz).astimezone(UTC)
            if moment > until:
                return
            yield index, moment

    def instance(self, index: int) -> datetime | None:
        """The original start of occurrence number ``index`` (1-based)."""
        if self.pattern is None or index < 1:
            return None
        limit = self.start + timedelta(days=366 * 30)
        for n, start in self.occurrence_starts(limit):
            if n == index:
                return start
        return None


@dataclass
class Mailbox:
    smtp: str
    name: str
    legacy_dn: str
    calendar_id: str = field(default_factory=lambda: new_id(b"AQMkA"))
    root_id: str = field(default_factory=lambda: new_id(b"AQMkR"))
    items: dict[str, Item] = field(default_factory=dict)
    tombstones: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (created, gone)
    seq: int = 0
    epoch: int = 1
    cancellations_sent: list[str] = field(default_factory=list)  # ids deleted with notices
    invitations_sent: list[str] = field(default_factory=list)

    def bump(self, item: Item) -> None:
        self.seq += 1
        item.seq = self.seq
        item.version += 1
        item.modified = datetime.now(UTC)

    def forget_sync_states(self) -> None:
        self.epoch += 1

    def find(self, item_id: str) -> Item | None:
        """An item or an exception of a master, by id."""
        found = self.items.get(item_id)
        if found is not None:
            return found
        for master in self.items.values():
            for exception in master.exceptions.values():
                if exception.id == item_id:
                    return exception
        return None


@dataclass
class Subscription:
    """A streaming subscription to one mailbox's calendar folder: the events not yet sent."""

    id: str
    mailbox: str
    account: str
    event_types: frozenset[str]
    pending: list[tuple[str, str, str, datetime]] = field(default_factory=list)
    # (event type, item id, change key, time stamp)
    last_served: datetime = field(default_factory=lambda: datetime.now(UTC))
    streams: int = 0  # open GetStreamingEvents connections


@dataclass
class Account:
    """A Windows account that can sign in: its own mailbox (if any) and the mailboxes it may
    impersonate (ApplicationImpersonation scoped to them; ``"*"`` = all)."""

    username: str
    password: str
    domain: str = "HARBOUR"
    mailbox: str | None = None
    impersonates: set[str] = field(default_factory=set)
    delegate_of: set[str] = field(default_factory=set)

    def may_impersonate(self, smtp: str) -> bool:
        return "*" in self.impersonates or smtp.lower() in self.impersonates

    def may_open(self, smtp: str) -> bool:
        smtp = smtp.lower()
        return smtp == (self.mailbox or "").lower() or smtp in self.delegate_of


@dataclass
class Fault:
    """An injected failure for the next ``times`` requests of ``operation`` (``"*"``: any):
    ``kind`` is ``"busy"`` (ErrorServerBusy with ``back_off_ms``), ``"503"``, or
    ``"sync_state"`` (the mailbox forgets its sync states first)."""

    operation: str
    kind: str
    times: int = 1
    back_off_ms: int = 0


VERSIONS = {"2016": (15, 1, 2507, 6), "2019": (15, 2, 1118, 7)}


class Organisation:
    """Everything one emulated Exchange server knows."""

    def __init__(self, version: str = "2016") -> None:
        if version not in VERSIONS:
            raise ValueError(f"unknown Exchange version {version!r}: use 2016 or 2019")
        self.version = VERSIONS[version]
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str]] = []  # (operation, mailbox) per SOAP request
        self.http_requests = 0
        self.max_changes_seen: list[int] = []
        self._uids = itertools.count(1)
        self.subscriptions: dict[str, Subscription] = {}
        self.idle_lifetime = timedelta(minutes=30)
        self.stream_cap_seconds: float | None = None  # None: the client's ConnectionTimeout
        self.heartbeat_seconds = 5.0  # ConnectionStatus OK while nothing happens
        self.drops = 0  # bumped by drop_streams(): open connections end without a word
        self.rooms: dict[str, Room] = {}  # room mailboxes by address (rooms.py)

    def reset(self) -> None:
        """Forget every account, mailbox, fault and counter (between tests)."""
        with self.lock:
            self.accounts.clear()
            self.mailboxes.clear()
            self.faults.clear()
            self.calls.clear()
            self.max_changes_seen.clear()
            self.http_requests = 0
            self.subscriptions.clear()
            self.rooms.clear()
            self.idle_lifetime = timedelta(minutes=30)
            self.stream_cap_seconds = None
            self.heartbeat_seconds = 5.0

    # ------------------------------------------------------------ a person using Outlook
    def external_create(
        self,
        smtp: str,
        subject: str,
        start: datetime,
        end: datetime,
        zone: str = "UTC",
        *,
        organizer: Organizer | None = None,
        pattern: Pattern | None = None,
        all_day: bool = False,
        location: str = "",
        body: str = "",
        required: list[Attendee] | None = None,
        optional: list[Attendee] | None = None,
        resources: list[Attendee] | None = None,
    ) -> Item:
        """An item made in Outlook: ``start``/``end`` aware instants, ``zone`` a Windows id;
        rooms among its attendees answer (rooms.py)."""
        box = self.mailboxes[smtp.lower()]
        item = Item(
            new_id(),
            subject,
            start.astimezone(UTC),
            end.astimezone(UTC),
            start_zone=zone,
            end_zone=zone,
            all_day=all_day,
            location=location,
            body=body,
            organizer=organizer or Organizer(box.name, box.smtp),
            pattern=pattern,
            required=list(required or []),
            optional=list(optional or []),
            resources=list(resources or []),
        )
        return self.insert(box, item)

    def external_update(self, smtp: str, item_id: str, **changes: object) -> Item:
        """Change an item (or an exception) as Outlook would: any :class:`Item` attribute."""
        with self.lock:
            box = self.mailboxes[smtp.lower()]
            item = box.find(item_id)
            assert item is not None, item_id
            for name, value in changes.items():
                setattr(item, name, value)
            self.touch(box, item)
            return item

    def external_delete(self, smtp: str, item_id: str) -> None:
        with self.lock:
            box = self.mailboxes[smtp.lower()]
            item = box.items[item_id]
            self.remove(box, item)

    def external_modify_occurrence(
        self, smtp: str, master_id: str, original: datetime, **changes: object
    ) -> Item:
        with self.lock:
            box = self.mailboxes[smtp.lower()]
            master = box.items[master_id]
            exception = self.exception_for(box, master, original.astimezone(UTC))
            for name, value in changes.items():
                setattr(exception, name, value)
            self.touch(box, exception)
            return exception

    def external_delete_occurrence(self, smtp: str, master_id: str, original: datetime) -> None:
        with self.lock:
            box = self.mailboxes[smtp.lower()]
            master = box.items[master_id]
            moment = original.astimezone(UTC)
            master.exceptions.pop(moment, None)
            master.deleted_occurrences.add(moment)
            self.touch(box, master)

    # ------------------------------------------------------------ directory
    def add_room(self, smtp: str, name: str, capacity: int | None = None) -> Room:
        """A room mailbox that auto-accepts meetings, declining when busy (rooms.py)."""
        with self.lock:
            room = Room(smtp.strip().lower(), name, capacity)
            self.rooms[room.address] = room
            self.add_mailbox(room.address, name)
            return room

    def add_mailbox(self, smtp: str, name: str | None = None) -> Mailbox:
        with self.lock:
            smtp = smtp.lower()
            local = smtp.split("@")[0]
            box = Mailbox(
                smtp,
                name or local.title(),
                f"/o=Harbour/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/"
                f"cn={local}",
            )
            self.mailboxes[smtp] = box
            return box

    def add_account(
        self,
        username: str,
        password: str,
        *,
        mailbox: str | None = None,
        impersonates: tuple[str, ...] = (),
    ) -> Account:
        with self.lock:
            account = Account(
                username.lower(),
                password,
                mailbox=mailbox.lower() if mailbox else None,
                impersonates={m.lower() for m in impersonates},
            )
            self.accounts[account.username] = account
            if mailbox and mailbox.lower() not in self.mailboxes:
                self.add_mailbox(mailbox)
            return account

    def account(self, username: str) -> Account | None:
        """``user``, ``DOMAIN\\user`` or ``user@domain``."""
        name = username.lower().split("\\")[-1]
        found = self.accounts.get(name)
        if found is None and "@" in name:
            found = self.accounts.get(name.split("@")[0])
        return found

    def mailbox(self, smtp: str) -> Mailbox | None:
        return self.mailboxes.get(smtp.strip().lower())

    def resolve(self, text: str) -> list[Mailbox]:
        """Mailboxes whose legacy DN, SMTP address or name matches ``text`` (ResolveNames)."""
        wanted = text.strip().lower()
        if wanted.startswith("smtp:"):
            wanted = wanted[5:]
        exact = [
            m
            for m in self.mailboxes.values()
            if wanted in (m.smtp, m.legacy_dn.lower(), m.name.lower())
        ]
        if exact:
            return exact
        return [m for m in self.mailboxes.values() if m.name.lower().startswith(wanted)]

    # ------------------------------------------------------------ faults
    def inject(self, operation: str, kind: str, times: int = 1, back_off_ms: int = 0) -> None:
        with self.lock:
            self.faults.append(Fault(operation, kind, times, back_off_ms))

    def take_fault(self, operation: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.operation in (operation, "*") and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
            return None

    # ------------------------------------------------------------ streaming subscriptions
    def subscribe(self, box: Mailbox, account: str, event_types: frozenset[str]) -> Subscription:
        with self.lock:
            self.expire_subscriptions()
            found = Subscription(new_id(b"JwBkYjNw"), box.smtp, account, event_types)
            self.subscriptions[found.id] = found
            return found

    def subscription(self, subscription_id: str) -> Subscription | None:
        """A live subscription (expired ones are dropped first)."""
        with self.lock:
            self.expire_subscriptions()
            return self.subscriptions.get(subscription_id)

    def unsubscribe(self, subscription_id: str) -> bool:
        with self.lock:
            return self.subscriptions.pop(subscription_id, None) is not None

    def expire_subscriptions(self) -> None:
        with self.lock:
            now = datetime.now(UTC)
            for sid, found in list(self.subscriptions.items()):
                if found.streams == 0 and now - found.last_served > self.idle_lifetime:
                    del self.subscriptions[sid]

    def forget_subscriptions(self) -> None:
        """The server forgets every subscription (as after a restart or a mailbox move)."""
        with self.lock:
            self.subscriptions.clear()

    def drop_streams(self) -> None:
        """Cut every open ``GetStreamingEvents`` connection without a closing message."""
        with self.lock:
            self.drops += 1

    def subscriptions_of(self, smtp: str) -> list[Subscription]:
        with self.lock:
            self.expire_subscriptions()
            return [s for s in self.subscriptions.values() if s.mailbox == smtp.lower()]

    def _event(self, box: Mailbox, kind: str, item: Item | str) -> None:
        item_id = item if isinstance(item, str) else item.id
        change_key = "" if isinstance(item, str) else item.change_key
        with self.lock:
            for found in self.subscriptions.values():
                if found.mailbox == box.smtp and kind in found.event_types:
                    found.pending.append((kind, item_id, change_key, datetime.now(UTC)))

    # ------------------------------------------------------------ writes
    def insert(self, box: Mailbox, item: Item) -> Item:
        with self.lock:
            if not item.uid:
                item.uid = f"040000008200E00074C5B7101A82E008{next(self._uids):032X}"
            box.seq += 1
            item.seq = item.created_seq = box.seq
            box.items[item.id] = item
            answer_rooms(self, item)
            self._event(box, "CreatedEvent", item)
            return item

    def touch(self, box: Mailbox, item: Item) -> None:
        """Record a change of ``item`` (an exception's change is its master's)."""
        with self.lock:
            answer_rooms(self, item)
            master = box.items.get(item.master_id) if item.master_id else None
            if master is not None:
                item.version += 1
                item.modified = datetime.now(UTC)
                box.bump(master)
                self._event(box, "ModifiedEvent", master)
            else:
                box.bump(item)
                self._event(box, "ModifiedEvent", item)

    def remove(self, box: Mailbox, item: Item) -> None:
        with self.lock:
            if box.items.pop(item.id, None) is not None:
                box.seq += 1
                box.tombstones[item.id] = (item.created_seq, box.seq)
                self._event(box, "DeletedEvent", item.id)

    def exception_for(self, box: Mailbox, master: Item, original: datetime) -> Item:
        """The exception item of one occurrence, made from the master when it has none yet."""
        with self.lock:
            found = master.exceptions.get(original)
            if found is not None:
                return found
            length = master.end - master.start
            exception = replace(
                master,
                id=new_id(b"AAMkE"),
                start=original,
                end=original + length,
                pattern=None,
                deleted_occurrences=set(),
                exceptions={},
                master_id=master.id,
                original_start=original,
                extended=dict(master.extended),
                version=1,
            )
            master.exceptions[original] = exception
            return exception

    # ------------------------------------------------------------ sync
    def sync_state(self, box: Mailbox, seq: int) -> str:
        raw = f"{box.smtp}|{box.epoch}|{seq}".encode()
        return base64.b64encode(b"H4sIAAAAAAAEAO29B2AcSZYlJi9tynt" + raw).decode()

    def parse_sync_state(self, box: Mailbox, state: str) -> int | None:
        """The sequence number of a state this mailbox issued, else None (invalid)."""
        try:
            raw = base64.b64decode(state.encode(), validate=True)
        except (ValueError, UnicodeEncodeError):
            return None
        prefix = b"H4sIAAAAAAAEAO29B2AcSZYlJi9tynt"
        if not raw.startswith(prefix):
            return None
        try:
            smtp, epoch, seq = raw[len(prefix) :].decode().split("|")
        except ValueError:
            return None
        if smtp != box.smtp or epoch != str(box.epoch) or not seq.isdigit():
            return None
        return int(seq)

    def changes_since(
        self, box: Mailbox, seq: int
    ) -> list[tuple[int, str, Item | str]]:  # (seq, Create|Update|Delete, item or id)
        with self.lock:
            found: list[tuple[int, str, Item | str]] = []
            for item in box.items.values():
                if item.seq > seq:
                    found.append((item.seq, "Create" if item.created_seq > seq else "Update", item))
            for item_id, (created, gone) in box.tombstones.items():
                if gone > seq and created <= seq:
                    found.append((gone, "Delete", item_id))
            found.sort(key=lambda change: change[0])
            return found
