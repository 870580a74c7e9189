"""Realistic bookings for the demo's two staff calendars.

Each organizer is chosen to exercise one rule of SPEC §2 against the example directory:
a user linked to a contact (step 2), a user's secondary address, a user linked to a company
(falls through to the default account), a contact's alternate address (step 4), a contact
with no company (itself the client), a stranger (default account), no organizer on an owned
calendar (the owner's address), a weekly series, and one broken event (a rejection). Rooms: the
Acme offsite invites the Ballroom's room resource (booked in that room); the others name
places that are no venue room.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(
    uid: str,
    summary: str,
    start: datetime | date,
    end: datetime | date,
    *,
    organizer: str | None = None,
    tz: str | None = "Europe/London",
    location: str | None = None,
    rrule: str | None = None,
    rooms: tuple[str, ...] = (),
) -> str:
    """One iCalendar object (a VCALENDAR holding one VEVENT); ``rooms`` are room resources it
    invites (``ATTENDEE;CUTYPE=ROOM``), each having accepted."""

    def when(name: str, value: datetime | date) -> str:
        if not isinstance(value, datetime):
            return f"{name};VALUE=DATE:{value:%Y%m%d}"
        if tz is None:
            return f"{name}:{value:%Y%m%dT%H%M%S}"
        return f"{name};TZID={tz}:{value:%Y%m%dT%H%M%S}"

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Harbour View Venue//Front desk//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_stamp()}",
        when("DTSTART", start),
        when("DTEND", end),
        f"SUMMARY:{summary}",
    ]
    if organizer:
        lines.append(f"ORGANIZER;CN=Booker:mailto:{organizer}")
    if location:
        lines.append(f"LOCATION:{location}")
    if rrule:
        lines.append(f"RRULE:{rrule}")
    for room in rooms:
        lines.append(f"ATTENDEE;CUTYPE=ROOM;ROLE=NON-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:{room}")
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def seed_events(today: date) -> dict[str, list[tuple[str, str]]]:
    """``{calendar: [(file name, ics)]}`` for the two staff calendars."""
    d = today + timedelta(days=7)

    def at(day: int, hour: int) -> datetime:
        return datetime(d.year, d.month, d.day, hour) + timedelta(days=day)

    mia = [
        (
            "house-tour.ics",
            vevent(
                "demo-1",
                "Venue tour for Harbour staff",
                at(0, 9),
                at(0, 10),
                organizer="mia@harbour.example",
                location="Lobby",
            ),
        ),
        (
            "wedding-viewing.ics",
            vevent(
                "demo-2",
                "Wedding viewing",
                at(1, 14),
                at(1, 15),
                organizer="bookings@harbour.example",
                location="Terrace",
            ),
        ),
        (
            "acme-offsite.ics",
            vevent(
                "demo-3",
                "Acme leadership offsite",
                at(2, 9),
                at(2, 17),
                organizer="ann@acme-events.example",
                location="Ballroom",
                rooms=("ballroom@harbour.example",),  # booked by inviting the room
            ),
        ),
        (
            "raj-birthday.ics",
            vevent(
                "demo-4",
                "Raj's birthday dinner",
                at(3, 19),
                at(3, 23),
                organizer="Raj.Patel@mail.example",
                location="the garden",  # no room by that name: flagged for review
            ),
        ),
        (
            "broken.ics",
            vevent(
                "demo-bad",
                "Broken: ends before it starts",
                at(4, 12),
                at(4, 10),
                organizer="mia@harbour.example",
            ),
        ),
    ]
    tom = [
        (
            "supplier-call.ics",
            vevent(
                "demo-5",
                "Supplier tasting",
                at(1, 11),
                at(1, 12),
                organizer="tom@harbour.example",
                location="Kitchen",
            ),
        ),
        (
            "walk-in.ics",
            vevent(
                "demo-6",
                "Walk-in enquiry",
                at(2, 16),
                at(2, 17),
                organizer="someone@stranger.example",
            ),
        ),
        (
            "hold.ics",
            vevent("demo-7", "Hold for maintenance", d + timedelta(days=5), d + timedelta(days=6)),
        ),
        (
            "standup.ics",
            vevent(
                "demo-8",
                "Weekly events stand-up",
                at(0, 8),
                at(0, 8) + timedelta(minutes=30),
                organizer="tom@harbour.example",
                rrule="FREQ=WEEKLY;COUNT=4",
            ),
        ),
    ]
    return {"mia": mia, "tom": tom}
