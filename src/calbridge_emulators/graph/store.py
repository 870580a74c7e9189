"""In-memory state of the emulated tenants/mailboxes plus optional JSON persistence.

Change tracking: every calendar keeps a monotonically increasing change sequence ``seq``.
Each mutation of an item (single instance or series master, including exceptions and cancelled
occurrences, which live on their master) appends ``(seq, item_id)`` to ``calendar.log`` and the
item's pre-change snapshot to ``calendar.history[item_id]``.  A delta token records the ``seq``
it was issued at, so an incremental round touches only ``log[seq:]`` (bisect) - no O(n) scan of
the calendar and no O(n^2) paging.  ``generation`` is bumped by the control API to invalidate
every delta/skip token of a calendar (Graph answers such tokens with 410 ``SyncStateNotFound``).
"""

from __future__ import annotations

import json
import os
import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .util import new_change_key


def _dt(value: datetime) -> str:
    return value.isoformat()


def _pdt(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass
class Tenant:
    id: str
    domain: str
    display_name: str = "Contoso"


@dataclass
class App:
    client_id: str
    tenant_id: str
    display_name: str = "calbridge"
    secrets: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)  # PEM
    roles: list[str] = field(default_factory=lambda: ["Calendars.ReadWrite"])
    # Exchange "application access policy": None = every mailbox of the tenant.
    mailboxes: list[str] | None = None


@dataclass
class ExceptionInstance:
    """A modified occurrence of a series (stored on its master)."""

    key: str  # original start, UTC, %Y%m%dT%H%M%SZ
    overrides: dict[str, Any]
    start: datetime
    end: datetime
    created: datetime
    modified: datetime
    change_key: str
    ext: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Item:
    """A stored event: ``singleInstance`` or ``seriesMaster``."""

    id: str
    calendar_id: str
    props: dict[str, Any]
    start: datetime  # UTC aware; for all-day events: the date at 00:00 UTC (floating)
    end: datetime
    start_tz: str
    end_tz: str
    is_all_day: bool
    created: datetime
    modified: datetime
    change_key: str
    goid: str
    organizer: dict[str, Any]
    recurrence: dict[str, Any] | None = None
    transaction_id: str | None = None
    ext: dict[str, list[str]] = field(default_factory=dict)  # lower(id) -> [id, value]
    exceptions: dict[str, ExceptionInstance] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    is_cancelled: bool = False

    @property
    def is_master(self) -> bool:
        return self.recurrence is not None

    def touch(self, now: datetime) -> None:
        self.modified = now
        self.change_key = new_change_key()


@dataclass
class Calendar:
    id: str
    user_id: str
    name: str
    is_default: bool = False
    color: str = "auto"
    hex_color: str = ""
    change_key: str = field(default_factory=new_change_key)
    items: dict[str, Item] = field(default_factory=dict)
    seq: int = 0
    generation: int = 1
    log: list[tuple[int, str]] = field(default_factory=list)
    history: dict[str, list[tuple[int, Item | None]]] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)

    def record_change(self, item_id: str, before: Item | None) -> int:
        """Register a mutation of ``item_id``; ``before`` is a copy of its prior state
        (None when the item was just created)."""
        self.seq += 1
        self.log.append((self.seq, item_id))
        self.history.setdefault(item_id, []).append((self.seq, before))
        return self.seq

    def changed_since(self, seq: int) -> list[str]:
        """Item ids changed after ``seq``, each once, in order of their last change."""
        idx = bisect_right(self.log, (seq, "\uffff"))
        last: dict[str, int] = {}
        for s, item_id in self.log[idx:]:
            last[item_id] = s
        return sorted(last, key=last.__getitem__)

    def state_at(self, item_id: str, seq: int) -> Item | None:
        """The item as it was when the calendar was at ``seq`` (None = did not exist)."""
        for change_seq, before in self.history.get(item_id, []):
            if change_seq > seq:
                return before
        return self.items.get(item_id)


@dataclass
class User:
    id: str
    tenant_id: str
    upn: str
    display_name: str
    calendars: dict[str, Calendar] = field(default_factory=dict)
    default_calendar_id: str = ""

    @property
    def default_calendar(self) -> Calendar:
        return self.calendars[self.default_calendar_id]


@dataclass
class Subscription:
    id: str
    tenant_id: str
    app_id: str
    user_id: str
    calendar_id: str | None  # None = the whole mailbox's events
    resource: str
    change_type: str
    notification_url: str
    expiration: datetime
    client_state: str | None
    lifecycle_url: str | None = None
    latest_tls: str = "v1_2"


# ---------------------------------------------------------------- JSON persistence


def _item_to_json(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "calendar_id": item.calendar_id,
        "props": item.props,
        "start": _dt(item.start),
        "end": _dt(item.end),
        "start_tz": item.start_tz,
        "end_tz": item.end_tz,
        "is_all_day": item.is_all_day,
        "created": _dt(item.created),
        "modified": _dt(item.modified),
        "change_key": item.change_key,
        "goid": item.goid,
        "organizer": item.organizer,
        "recurrence": item.recurrence,
        "transaction_id": item.transaction_id,
        "ext": item.ext,
        "exceptions": {
            k: {
                "key": e.key,
                "overrides": e.overrides,
                "start": _dt(e.start),
                "end": _dt(e.end),
                "created": _dt(e.created),
                "modified": _dt(e.modified),
                "change_key": e.change_key,
                "ext": e.ext,
            }
            for k, e in item.exceptions.items()
        },
        "cancelled": item.cancelled,
        "is_cancelled": item.is_cancelled,
    }


def _item_from_json(d: dict[str, Any]) -> Item:
    return Item(
        id=d["id"],
        calendar_id=d["calendar_id"],
        props=d["props"],
        start=_pdt(d["start"]),
        end=_pdt(d["end"]),
        start_tz=d["start_tz"],
        end_tz=d["end_tz"],
        is_all_day=d["is_all_day"],
        created=_pdt(d["created"]),
        modified=_pdt(d["modified"]),
        change_key=d["change_key"],
        goid=d["goid"],
        organizer=d["organizer"],
        recurrence=d["recurrence"],
        transaction_id=d["transaction_id"],
        ext=d["ext"],
        exceptions={
            k: ExceptionInstance(
                key=e["key"],
                overrides=e["overrides"],
                start=_pdt(e["start"]),
                end=_pdt(e["end"]),
                created=_pdt(e["created"]),
                modified=_pdt(e["modified"]),
                change_key=e["change_key"],
                ext=e["ext"],
            )
            for k, e in d["exceptions"].items()
        },
        cancelled=d["cancelled"],
        is_cancelled=d["is_cancelled"],
    )


def _calendar_to_json(cal: Calendar) -> dict[str, Any]:
    return {
        "id": cal.id,
        "user_id": cal.user_id,
        "name": cal.name,
        "is_default": cal.is_default,
        "color": cal.color,
        "hex_color": cal.hex_color,
        "change_key": cal.change_key,
        "items": [_item_to_json(i) for i in cal.items.values()],
        "seq": cal.seq,
        "generation": cal.generation,
        "log": cal.log,
        "history": {
            k: [(s, _item_to_json(b) if b else None) for s, b in v] for k, v in cal.history.items()
        },
        "transactions": cal.transactions,
    }


def _calendar_from_json(d: dict[str, Any]) -> Calendar:
    cal = Calendar(
        id=d["id"],
        user_id=d["user_id"],
        name=d["name"],
        is_default=d["is_default"],
        color=d["color"],
        hex_color=d["hex_color"],
        change_key=d["change_key"],
        seq=d["seq"],
        generation=d["generation"],
        log=[(int(s), str(i)) for s, i in d["log"]],
        transactions=d["transactions"],
    )
    cal.items = {i["id"]: _item_from_json(i) for i in d["items"]}
    cal.history = {
        k: [(int(s), _item_from_json(b) if b else None) for s, b in v]
        for k, v in d["history"].items()
    }
    return cal


class Store:
    """Tenants, apps, mailboxes and subscriptions, guarded by one re-entrant lock."""

    FILE_NAME = "graph-emulator.json"

    def __init__(self, data_dir: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.data_dir = data_dir
        self.tenants: dict[str, Tenant] = {}
        self.apps: dict[str, App] = {}
        self.users: dict[str, User] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.secrets: dict[str, str] = {}  # signing material that must survive restarts
        self.rooms: dict[str, Any] = {}  # room mailboxes by address (rooms.Room)
        self.dirty = False
        if data_dir is not None and (data_dir / self.FILE_NAME).exists():
            self.load()

    # lookups ---------------------------------------------------------------
    def tenant(self, key: str) -> Tenant | None:
        key_l = key.lower()
        for tenant in self.tenants.values():
            if tenant.id == key_l or tenant.domain.lower() == key_l:
                return tenant
        return None

    def user(self, tenant_id: str, key: str) -> User | None:
        key_l = key.lower()
        user = self.users.get(key_l)
        if user is None:
            user = next((u for u in self.users.values() if u.upn.lower() == key_l), None)
        if user is None or user.tenant_id != tenant_id:
            return None
        return user

    # persistence -----------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "tenants": [vars(t) for t in self.tenants.values()],
            "apps": [vars(a) for a in self.apps.values()],
            "users": [
                {
                    "id": u.id,
                    "tenant_id": u.tenant_id,
                    "upn": u.upn,
                    "display_name": u.display_name,
                    "default_calendar_id": u.default_calendar_id,
                    "calendars": [_calendar_to_json(c) for c in u.calendars.values()],
                }
                for u in self.users.values()
            ],
            "subscriptions": [
                {**vars(s), "expiration": _dt(s.expiration)} for s in self.subscriptions.values()
            ],
            "secrets": self.secrets,
        }

    def load(self) -> None:
        assert self.data_dir is not None
        data = json.loads((self.data_dir / self.FILE_NAME).read_text("utf-8"))
        self.tenants = {t["id"]: Tenant(**t) for t in data["tenants"]}
        self.apps = {a["client_id"]: App(**a) for a in data["apps"]}
        self.users = {}
        for u in data["users"]:
            user = User(
                id=u["id"],
                tenant_id=u["tenant_id"],
                upn=u["upn"],
                display_name=u["display_name"],
                default_calendar_id=u["default_calendar_id"],
            )
            user.calendars = {c["id"]: _calendar_from_json(c) for c in u["calendars"]}
            self.users[user.id] = user
        self.subscriptions = {
            s["id"]: Subscription(**{**s, "expiration": _pdt(s["expiration"])})
            for s in data["subscriptions"]
        }
        self.secrets = data["secrets"]

    def save(self) -> None:
        if self.data_dir is None:
            return
        with self.lock:
            text = json.dumps(self.to_json(), separators=(",", ":"))
            self.dirty = False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        target = self.data_dir / self.FILE_NAME
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, "utf-8")
        os.replace(tmp, target)
