"""Helpers shared by the browser tests: the world's handle, signing in, waiting with a
deadline, screenshots."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import waits
from calbridge.config import Settings
from calbridge.ops.bookings import NewBooking, create_booking
from calbridge.store.db import Store
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge_emulators.radicale import RadicaleServer

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "docs" / "screenshots"
ADMIN = ("admin@venue.example", "admin-password-1")
VIEWER = ("viewer@venue.example", "viewer-password-1")
RADICALE_USERS = {"ann": "ann-secret"}
START_TIMEOUT = 60.0


def wait_until(condition: Any, what: str, timeout: float = 30.0) -> Any:
    """Poll ``condition()`` until it returns something truthy, or fail saying ``what``."""
    return waits.wait_until(condition, what, timeout=timeout, interval=0.1)


def ics(uid: str, summary: str, organizer: str, day: date) -> str:
    stamp = day.strftime("%Y%m%d")
    return (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nBEGIN:VEVENT\n"
        f"UID:{uid}\nDTSTAMP:{stamp}T090000Z\nDTSTART:{stamp}T100000Z\n"
        f"DTEND:{stamp}T110000Z\nSUMMARY:{summary}\nORGANIZER:mailto:{organizer}\n"
        "END:VEVENT\nEND:VCALENDAR\n"
    )


@dataclass
class WebWorld:
    url: str
    store: Store
    radicale: RadicaleServer
    data_dir: Path
    shots: Path

    def caldav_url(self, name: str) -> str:
        return self.radicale.calendar_url("ann", name)

    def new_radicale_calendar(self, name: str, events: list[tuple[str, str, str]]) -> str:
        """A calendar of ann's on Radicale with ``(uid, summary, organizer)`` events."""
        url = self.radicale.make_calendar("ann", name)
        day = date.today() + timedelta(days=10)
        for uid, summary, organizer in events:
            self.radicale.put_ics(url + f"{uid}.ics", ics(uid, summary, organizer, day))
        return url

    def objects(self, name: str) -> list[str]:
        """ann's calendar ``name`` as Radicale holds it (one REPORT, no calbridge code)."""
        url = self.caldav_url(name)
        body = (
            '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop>'
            '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
        )
        response = self.radicale.client("ann").request(
            "REPORT", url, content=body, headers={"Depth": "1"}
        )
        return [part.split("</")[0] for part in response.text.split("calendar-data>")[1::2]]

    def create_booking(self, name: str, booker: str, calendar: str | None = None) -> int:
        """A booking made in the booking system (the shared ops function, as the CLI and the
        API make them), assigned from ``booker``; optionally put on ``calendar``."""
        start = (date.today() + timedelta(days=20)).isoformat()
        booking = NewBooking(name, f"{start}T10:00", f"{start}T11:00", timezone="Europe/London")
        with self.store.session() as s:
            event = create_booking(
                s, booking, actor="test", booker=booker, calendars=[calendar] if calendar else []
            )
            return event.id


def add_unchecked(store: Store, data_dir: Path, name: str, url: str, password: str) -> None:
    """A calendar whose password is wrong (added without the connection check the UI and the
    CLI make), as when a password is changed on the server after linking."""
    box = SecretBox.from_settings(Settings(data_dir=data_dir))
    with store.session() as s:
        add_caldav_calendar(s, box, name, url, "ann", password, check=False)


def login(page: Any, world: WebWorld, who: tuple[str, str] = ADMIN) -> None:
    page.goto(world.url + "/login")
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/$"))


def shot(page: Any, world: WebWorld, name: str) -> None:
    page.screenshot(path=str(world.shots / f"{name}.png"), full_page=True)
