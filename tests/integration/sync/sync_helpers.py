"""Shared by the sync tests: the example directory, the Radicale users, a server-side view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import calbridge.demo

EXAMPLE = Path(calbridge.demo.__file__).parent / "directory.json"
USERS = {"staff": "staff-pw", "tom": "tom-pw"}


def objects(world: Any, calendar: str) -> list[str]:
    """The calendar's objects as the server holds them (one REPORT, no calbridge code)."""
    client = world.radicale._client_for(world.urls[calendar])
    body = (
        '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
        'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop>'
        '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
    )
    response = client.request("REPORT", world.urls[calendar], content=body, headers={"Depth": "1"})
    return [part.split("</")[0] for part in response.text.split("calendar-data>")[1::2]]
