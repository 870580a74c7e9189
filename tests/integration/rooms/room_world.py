"""The rooms tests' world: a booking store (the example directory, with its rooms) and a real
Radicale (a module with a unique name, so that test modules can import it)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from sqlalchemy import select

from calbridge.store.db import Store
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.assistant import AssistantChange, apply_assistant
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport
from calbridge_emulators.radicale import RadicaleServer
from worlds import NOW

USERS = {"staff": "staff-pw"}
_names = itertools.count()


@dataclass
class RoomWorld:
    store: Store
    radicale: RadicaleServer
    box: SecretBox
    urls: dict[str, str] = field(default_factory=dict)

    def add_calendar(
        self, name: str, assistant: AssistantChange | None = None, **options: object
    ) -> str:
        url = self.radicale.make_calendar("staff", f"{name}-{next(_names)}")
        with self.store.session() as session:
            calendar = add_caldav_calendar(
                session,
                self.box,
                name,
                url,
                "staff",
                USERS["staff"],
                **options,  # type: ignore[arg-type]
            )
            apply_assistant(session, calendar, assistant or AssistantChange())
        self.urls[name] = url
        return url

    def put(self, calendar: str, file_name: str, ics: str) -> None:
        self.radicale.put_ics(self.urls[calendar] + file_name, ics)

    def delete(self, calendar: str, file_name: str) -> None:
        self.radicale.delete(self.urls[calendar] + file_name)

    def sync(self, name: str) -> SyncReport:
        with self.store.session() as session:
            cal_id = session.scalars(select(Calendar.id).where(Calendar.name == name)).one()
        report = sync_calendar(self.store, cal_id, lambda c: open_provider(c, self.box), now=NOW)
        assert report.ok, report.error
        return report
