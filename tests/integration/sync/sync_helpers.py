"""Shared by the sync tests: the Radicale users and a server-side view of a calendar."""

from __future__ import annotations

from typing import Any

USERS = {"staff": "staff-pw", "tom": "tom-pw"}


def objects(world: Any, calendar: str) -> list[str]:
    """The calendar's objects as the server holds them (one REPORT, no calbridge code)."""
    return objects_at(world.radicale, world.urls[calendar])


def objects_at(radicale: Any, url: str) -> list[str]:
    """The objects of the calendar collection at ``url``, read straight from Radicale."""
    client = radicale._client_for(url)
    body = (
        '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
        'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop>'
        '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
    )
    response = client.request("REPORT", url, content=body, headers={"Depth": "1"})
    return [part.split("</")[0] for part in response.text.split("calendar-data>")[1::2]]
