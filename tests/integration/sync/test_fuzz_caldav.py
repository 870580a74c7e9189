"""Fuzz: a CalDAV server serving mutated multistatus and iCalendar bodies, through the real
CalDAV provider (real HTTP, ``fake_caldav``) and the real engine into a real store.

Each hypothesis case serves a fresh collection of good objects (single, zoned, all-day, series;
arbitrary Unicode titles, folded, sometimes CDATA-wrapped) and bad ones (cut anywhere, a broken
line fold, a malformed or absurd RRULE, no UID, no DTSTART, an end before the start, a to-do, no
iCalendar at all, a second object with the same UID) and checks: the sync succeeds, no traceback
is logged, every bad object is a rejection with a reason and no booking, and every good one is a
booking with its exact title. The reader-level mutations (bytes that are not UTF-8 and XML-illegal
control characters inside calendar-data, calendar-data in a 404 propstat) hold the multistatus
reader (``caldav.xml``) to the same promise.

Counts are added up over all cases and printed at the end (``-s`` shows them): cases, objects,
imported, rejected with a reason, tracebacks. One mutation cannot be told from a good object: a
broken fold whose second half happens to look like a property (``word:rest``); the strategy
leaves that one out.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from calbridge.store.models import Event, Link, Rejection
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from fake_caldav import Collection, FakeCalDAV, running_fake_caldav

EXAMPLES = int(os.environ.get("CALBRIDGE_FUZZ_EXAMPLES", "40"))
SOON = datetime.now().replace(microsecond=0, second=0, minute=0) + timedelta(days=5)
BAD_RULES = [
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=-1",
    "FREQ=WEEKLY;COUNT=0",
    "FREQ=SECONDLY;COUNT=100000000",
    "FREQ=MINUTELY",
    "FREQ=SOMETIMES",
    "FREQ=DAILY;UNTIL=20000101T000000Z",
]
BAD_KINDS = ["cut", "fold", "rrule", "no-uid", "no-start", "backwards", "todo", "garbage"]
TOTALS: Counter[str] = Counter()
_paths = itertools.count()

TITLES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(
    lambda s: s.strip() != ""
)


@dataclass
class Obj:
    name: str  # the object's file name on the server
    data: bytes
    kind: str
    good: bool
    uid: str
    title: str = ""
    occurrences: int = 1
    cdata: bool = False
    in_404: bool = False


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """RFC 5545 folding: lines of at most 75 octets, never splitting a character."""
    parts, current = [], ""
    for char in line:
        if len((current + char).encode()) > 74:
            parts.append(current)
            current = " "
        current += char
    parts.append(current)
    return "\r\n".join(parts)


def calendar(uid: str, title: str, day: int, *extra: str, component: str = "VEVENT") -> str:
    start = SOON + timedelta(days=day)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//fuzz//EN",
        f"BEGIN:{component}",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
        f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
        fold("SUMMARY:" + escape(title)),
        "ORGANIZER:mailto:ann@acme-events.example",
        *extra,
        f"END:{component}",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def rotate(draw: st.DrawFn, choices: list[str], n: int) -> str:
    """One of ``choices``, offset by the object's position: every kind turns up even where
    hypothesis favours its first choice."""
    return choices[(n + draw(st.integers(0, len(choices) - 1))) % len(choices)]


@st.composite
def good_object(draw: st.DrawFn, n: int) -> Obj:
    uid, title = f"fz-{n}@fuzz", draw(TITLES)
    kind = rotate(draw, ["single", "zoned", "all-day", "series"], n)
    text = calendar(uid, title, n)
    occurrences = 1
    if kind == "zoned":
        start = SOON + timedelta(days=n)
        text = re.sub(
            r"DTSTART:\S+\r\nDTEND:\S+",
            f"DTSTART;TZID=Europe/Berlin:{start:%Y%m%dT%H%M%S}\r\n"
            f"DTEND;TZID=Europe/Berlin:{start + timedelta(minutes=90):%Y%m%dT%H%M%S}",
            text,
        )
    elif kind == "all-day":
        day = (SOON + timedelta(days=n)).date()
        text = re.sub(
            r"DTSTART:\S+\r\nDTEND:\S+",
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}\r\nDTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
            text,
        )
    elif kind == "series":
        occurrences = draw(st.integers(1, 4))
        text = text.replace("END:VEVENT", f"RRULE:FREQ=DAILY;COUNT={occurrences}\r\nEND:VEVENT")
    data = text.encode()
    cdata = draw(st.booleans()) and b"]]>" not in data
    return Obj(f"o{n}.ics", data, kind, True, uid, title, occurrences, cdata=cdata)


@st.composite
def bad_object(draw: st.DrawFn, n: int) -> Obj:
    uid, title = f"fz-{n}@fuzz", draw(TITLES)
    text = calendar(uid, title, n)
    kind = rotate(draw, BAD_KINDS, n)
    if kind == "cut":
        end = text.rindex("END:VCALENDAR") + len("END:VCAL")
        text = text[: draw(st.integers(1, end))]
    elif kind == "fold":
        head = draw(TITLES)
        tail = draw(TITLES.filter(lambda t: not re.match(r"[ \t]|[A-Za-z0-9-]+[;:]", t)))
        text = calendar(uid, "", n).replace(
            "SUMMARY:", "SUMMARY:" + escape(head) + "\r\n" + escape(tail), 1
        )
    elif kind == "rrule":
        rule = rotate(draw, BAD_RULES, n)
        text = text.replace("END:VEVENT", f"RRULE:{rule}\r\nEND:VEVENT")
    elif kind == "no-uid":
        text = text.replace(f"UID:{uid}\r\n", "")
    elif kind == "no-start":
        text = re.sub(r"DTSTART:\S+\r\n", "", text)
    elif kind == "backwards":
        start = SOON + timedelta(days=n)
        text = re.sub(r"DTEND:\S+", f"DTEND:{start - timedelta(hours=2):%Y%m%dT%H%M%SZ}", text)
    elif kind == "todo":
        text = calendar(uid, title, n, component="VTODO")
    else:
        text = draw(TITLES.filter(lambda t: not t.lstrip().upper().startswith("BEGIN")))
    return Obj(f"o{n}.ics", text.encode(), kind, False, uid)


@st.composite
def reader_level_object(draw: st.DrawFn, n: int) -> Obj:
    """Damage the multistatus reader must contain to one object."""
    uid, title = f"fz-{n}@fuzz", draw(TITLES)
    data = calendar(uid, title, n).encode()
    kind = rotate(draw, ["bad-bytes", "control-char", "404-propstat"], n)
    if kind == "bad-bytes":
        data = data.replace(b"SUMMARY:", b"SUMMARY:\xff\xfe\xc3", 1)
    elif kind == "control-char":
        data = data.replace(b"SUMMARY:", b"SUMMARY:\x01\x08", 1)
    return Obj(f"o{n}.ics", data, kind, False, uid, in_404=kind == "404-propstat")


@st.composite
def collection(draw: st.DrawFn, reader_level: bool) -> list[Obj]:
    count = draw(st.integers(1, 6))
    objects: list[Obj] = []
    for n in range(count):
        choice = draw(
            st.sampled_from(["good", "good", "bad"] + (["reader"] if reader_level else []))
        )
        if choice == "good":
            objects.append(draw(good_object(n)))
        elif choice == "bad":
            objects.append(draw(bad_object(n)))
        else:
            objects.append(draw(reader_level_object(n)))
    goods = [o for o in objects if o.good and o.kind != "series"]
    if goods and draw(st.booleans()):  # a second object with the UID of a good one
        original = draw(st.sampled_from(goods))
        copy = calendar(original.uid, "copy of " + original.title, count)
        objects.append(Obj(f"o{count}.ics", copy.encode(), "dup-uid", False, original.uid))
    return draw(st.permutations(objects))


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCalDAV]:
    with running_fake_caldav() as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def print_totals() -> Iterator[None]:
    yield
    print("\nfuzz totals: " + ", ".join(f"{key}={TOTALS[key]}" for key in sorted(TOTALS)))


def check_case(world, fake: FakeCalDAV, objects: list[Obj]) -> None:  # type: ignore[no-untyped-def]
    path = f"fuzz{next(_paths)}"
    served = Collection(
        objects={o.name: o.data for o in objects},
        cdata={o.name for o in objects if o.cdata},
        data_in_404={o.name for o in objects if o.in_404},
    )
    url = fake.serve(path, served)
    with world.store.session() as session:
        cal = add_caldav_calendar(
            session, world.box, path, url, "staff", "pw", direction="pull", check=False
        )
        cal_id = cal.id
    catcher = Tracebacks()
    logger = logging.getLogger("calbridge")
    logger.addHandler(catcher)
    try:
        report = sync_calendar(world.store, cal_id, lambda c: open_provider(c, world.box))
    finally:
        logger.removeHandler(catcher)
    TOTALS["cases"] += 1
    TOTALS["objects"] += len(objects)
    TOTALS["tracebacks"] += len(catcher.records)
    assert not catcher.records, [r.getMessage() for r in catcher.records]
    assert report.ok, report.error
    href = {o.name: f"/{path}/{o.name}" for o in objects}
    with world.store.session() as session:
        links = session.execute(
            select(Link.remote_id, Event.name).join(Event).where(Link.calendar_id == cal_id)
        ).all()
        rejections = {
            r.remote_id: r.reason
            for r in session.scalars(select(Rejection).where(Rejection.calendar_id == cal_id))
        }
    booked = Counter(remote_id for remote_id, _ in links)
    titles = {remote_id: name for remote_id, name in links}
    by_uid: dict[str, list[Obj]] = {}
    for o in objects:
        by_uid.setdefault(o.uid, []).append(o)
    for o in objects:
        where = href[o.name]
        if o.kind == "dup-uid" or (o.good and len(by_uid[o.uid]) > 1):
            continue  # checked per UID below
        if o.good:
            assert booked[where] == o.occurrences, (o.kind, o.data)
            assert titles[where] == o.title, (titles[where], o.title)
            assert where not in rejections
            TOTALS["imported"] += 1
        else:
            assert booked[where] == 0, (o.kind, o.data)
            assert rejections.get(where), (o.kind, o.data, "no rejection with a reason")
            TOTALS["rejected"] += 1
            TOTALS[f"rejected:{o.kind}"] += 1
    for uid, group in by_uid.items():
        if len(group) < 2:
            continue
        imported = [o for o in group if booked[href[o.name]]]
        assert len(imported) == 1, (uid, [o.name for o in group])
        TOTALS["imported"] += 1
        for o in group:
            if o is not imported[0]:
                reason = rejections.get(href[o.name], "")
                assert f"already used by {href[imported[0].name]}" in reason, reason
                TOTALS["rejected"] += 1
                TOTALS["rejected:dup-uid"] += 1
    assert (
        report.rejected == len(rejections) == sum(1 for o in objects if href[o.name] in rejections)
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="CALBRIDGE_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(objects=collection(reader_level=False))
def test_mutated_icalendar_objects_are_rejections_and_good_ones_bookings(
    world, fake: FakeCalDAV, objects: list[Obj]
) -> None:  # type: ignore[no-untyped-def]
    check_case(world, fake, objects)


@settings(
    max_examples=max(10, EXAMPLES // 2),
    deadline=None,
    derandomize="CALBRIDGE_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(objects=collection(reader_level=True))
def test_damaged_calendar_data_in_a_multistatus_is_that_objects_rejection(
    world, fake: FakeCalDAV, objects: list[Obj]
) -> None:  # type: ignore[no-untyped-def]
    check_case(world, fake, objects)
