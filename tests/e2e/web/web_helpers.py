"""Helpers shared by the browser tests: the world's handle, signing in, waiting with a
deadline, screenshots."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from calbridge.emulators.radicale import RadicaleServer
from calbridge_cli import Cli

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "docs" / "screenshots"
ADMIN = ("admin@venue.example", "admin-password-1")
VIEWER = ("viewer@venue.example", "viewer-password-1")
RADICALE_USERS = {"ann": "ann-secret"}
START_TIMEOUT = 60.0


def wait_until(condition: Any, what: str, timeout: float = 30.0) -> Any:
    """Poll ``condition()`` until it returns something truthy, or fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


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
    cli: Cli
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

    def create_booking(self, name: str, booker: str) -> int:
        start = (date.today() + timedelta(days=20)).isoformat()
        result = self.cli(
            "events", "create", "--name", name, "--start", f"{start}T10:00",
            "--end", f"{start}T11:00", "--timezone", "Europe/London", "--booker", booker,
            "--json",
        )  # fmt: skip
        assert result.code == 0, result.err
        data = json.loads(result.out)
        return int(data["id"])


def login(page: Any, world: WebWorld, who: tuple[str, str] = ADMIN) -> None:
    page.goto(world.url + "/login")
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/$"))


def shot(page: Any, world: WebWorld, name: str) -> None:
    page.screenshot(path=str(world.shots / f"{name}.png"), full_page=True)
