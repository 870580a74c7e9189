"""Benchmark: the admin UI's server time with 1,000 calendars and 100,000 bookings.

Builds a store (SQLite, and PostgreSQL when a server is found) holding a directory of 2,000
contacts in 100 companies, 1,000 CalDAV calendars in assorted run states, 100,000 bookings
spread over a year (each on one calendar; some ambiguous, some sent to the Default Account),
and 20,000 sync runs. Then, in-process through the real app (``create_app``, signed in as an
admin), it requests each page ``--rounds`` times and prints the server time p50 / p95:

- the dashboard (``/``, 1,000 calendar rows, counts) and its live partial;
- bookings: a name search plus a status filter; a calendar + date-range filter; a client +
  needs-review filter; the second page of a search;
- the review queue and the sync history (chart included).

Goal (issue 11): dashboard and a bookings page (search + filter) ≤ 150 ms at p95.

    python benchmarks/web.py                 # SQLite and PostgreSQL (when found)
    python benchmarks/web.py --no-postgres --rounds 30
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from sqlalchemy import insert  # noqa: E402

from calbridge.service.app import create_app  # noqa: E402
from calbridge.store.db import Store, open_store  # noqa: E402
from calbridge.store.models import (  # noqa: E402
    Calendar,
    Company,
    Contact,
    ContactEmail,
    Counter,
    Event,
    Link,
    SyncRun,
    SystemSettings,
    User,
)
from calbridge.web.auth import create_admin  # noqa: E402
from postgres_server import (  # noqa: E402
    PostgresUnavailable,
    admin_engine,
    fresh_database,
    postgres_server,
)

CALENDARS = 1_000
BOOKINGS = 100_000
CONTACTS = 2_000
RUNS = 20_000
SEED = 20261201
WORDS = ("Board", "Budget", "Client", "Launch", "Planning", "Review", "Team", "Training")
STATES = ("ok",) * 90 + ("error",) * 4 + ("auth_expired",) * 3 + ("paused",) * 3


def _chunks(rows: list[dict[str, object]], size: int = 5_000) -> Iterator[list[dict[str, object]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def populate(store: Store, rnd: random.Random) -> None:
    now = datetime.now().replace(microsecond=0)
    with store.session() as s:
        s.execute(insert(Company), [{"id": "co-walkin", "name": "Walk-in", "position": 0}])
        s.execute(
            insert(Company),
            [{"id": f"co-{i}", "name": f"Company {i}", "position": i + 1} for i in range(100)],
        )
        contacts = [
            {
                "id": f"ct-{i}",
                "name": f"Contact {i}",
                "company_id": f"co-{i % 100}",
                "primary_email": f"c{i}@example.com",
                "position": i,
            }
            for i in range(CONTACTS)
        ]
        s.execute(insert(Contact), contacts)
        s.execute(
            insert(ContactEmail),
            [
                {"contact_id": c["id"], "address": c["primary_email"],
                 "display": c["primary_email"], "is_primary": True, "position": 0}
                for c in contacts
            ],
        )  # fmt: skip
        s.execute(
            insert(User),
            [
                {"id": "u-va", "name": "Assistant", "type": "virtual_assistant", "active": True},
                {"id": "u-1", "name": "Staff One", "type": "named", "active": True},
            ],
        )
        s.add(
            SystemSettings(
                id=1,
                default_account_id="co-walkin",
                virtual_assistant_user_id="u-va",
                auto_assign_event_manager=False,
            )
        )
        s.execute(
            insert(Calendar),
            [
                {
                    "id": i + 1,
                    "name": f"cal-{i:04d}",
                    "kind": "caldav",
                    "settings": {"url": f"https://dav.example.com/{i}/", "username": f"u{i}"},
                    "secret": None,
                    "policy": "booking-wins",
                    "direction": "both",
                    "horizon_days": 365,
                    "key_prefix": f"{i:08x}",
                    "full_gen": 0,
                    "created_at": now,
                    "state": (state := rnd.choice(STATES)),
                    "paused": state == "paused",
                    "last_error": None if state in ("ok", "paused") else "HTTP 401 Unauthorized",
                    "error_hint": None if state in ("ok", "paused") else "update the password",
                    "last_success_at": now - timedelta(minutes=rnd.randint(1, 600)),
                    "next_run_at": now + timedelta(minutes=rnd.randint(1, 120)),
                }
                for i in range(CALENDARS)
            ],
        )
    start0 = now - timedelta(days=120)
    events, links = [], []
    for i in range(BOOKINGS):
        start = start0 + timedelta(minutes=rnd.randrange(0, 365 * 24 * 4) * 15)
        contact = rnd.randrange(CONTACTS)
        walk_in = rnd.random() < 0.02
        events.append(
            {
                "id": i + 1,
                "name": f"{rnd.choice(WORDS)} meeting {i}",
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
                "all_day": False,
                "timezone": "Europe/London",
                "start_utc": start,
                "end_utc": start + timedelta(hours=1),
                "status": "cancelled" if rnd.random() < 0.05 else "confirmed",
                "client_id": "co-walkin" if walk_in else f"co-{contact % 100}",
                "client_kind": "company",
                "client_contact_id": None if walk_in else f"ct-{contact}",
                "booked_by_id": "u-1",
                "event_manager_id": "u-1",
                "booker_email": f"c{contact}@example.com",
                "ambiguous": rnd.random() < 0.01,
                "trace": [],
                "created_at": now,
                "updated_at": now,
                "change_seq": i + 1,
            }
        )
        links.append(
            {
                "calendar_id": rnd.randrange(CALENDARS) + 1,
                "event_id": i + 1,
                "remote_id": f"obj-{i}.ics",
                "recurrence_id": "",
                "key": f"key-{i}",
                "synced_seq": i + 1,
                "state": "ok",
                "origin": "calendar",
            }
        )
    runs = [
        {
            "calendar_id": (c := rnd.randrange(CALENDARS) + 1),
            "calendar_name": f"cal-{c - 1:04d}",
            "trigger": rnd.choice(("poll", "push", "manual")),
            "started_at": (t := now - timedelta(minutes=rnd.randrange(0, 14 * 24 * 60))),
            "finished_at": t + timedelta(seconds=2),
            "result": "ok" if rnd.random() < 0.95 else "error",
            "counts": {"pulled": 1},
            "requests": 1,
        }
        for _ in range(RUNS)
    ]
    with store.session() as s:
        for chunk in _chunks(events):
            s.execute(insert(Event), chunk)
        for chunk in _chunks(links):
            s.execute(insert(Link), chunk)
        for chunk in _chunks(runs):
            s.execute(insert(SyncRun), chunk)
        s.merge(Counter(name="events", value=BOOKINGS + 1))
        create_admin(s, "bench@venue.example", "bench-password-1")
    # Statistics as the server's autovacuum keeps them (it analyzes a table after a bulk
    # load): committed — an ANALYZE rolled back with its transaction leaves the planner
    # estimating 500 rows where there are 95,000.
    with store.engine.connect() as c:
        c.exec_driver_sql("ANALYZE")
        c.commit()


PAGES = (
    ("dashboard", "/"),
    ("dashboard live partial", "/partials/dashboard"),
    ("bookings: name search + status", "/bookings?q=Budget&status=confirmed"),
    ("bookings: calendar + dates", "/bookings?calendar=cal-0042&from={d1}&to={d2}"),
    ("bookings: client + needs review", "/bookings?client=co-walkin&review=1"),
    ("bookings: search, page 2", None),
    ("review queue", "/review"),
    ("sync history", "/history"),
)


def measure(store: Store, rounds: int) -> list[tuple[str, float, float]]:
    from fastapi.testclient import TestClient

    client = TestClient(create_app(store))
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed = client.post(
        "/login",
        data={"email": "bench@venue.example", "password": "bench-password-1",
              "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )  # fmt: skip
    assert signed.status_code == 303, signed.text
    today = datetime.now().date()
    first = client.get("/bookings?q=Budget")
    after = first.text.split("after=", 1)[1].split('"', 1)[0].replace("&amp;", "&")
    results = []
    for name, path in PAGES:
        url = (path or f"/bookings?q=Budget&after={after}").format(
            d1=today.isoformat(), d2=(today + timedelta(days=60)).isoformat()
        )
        times = []
        for _ in range(rounds + 2):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code, response.text[:300])
        times = sorted(times[2:])  # two warm-up requests
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        results.append((name, statistics.median(times), p95))
    return results


@contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        try:
            yield store
        finally:
            store.dispose()


@contextmanager
def postgres_store(url: str | None) -> Iterator[Store]:
    if url:
        os.environ["CALBRIDGE_TEST_POSTGRES_URL"] = url
    with postgres_server() as server:
        engine = admin_engine(server)
        try:
            with fresh_database(engine) as db_url:
                store = open_store(db_url)
                try:
                    yield store
                finally:
                    store.dispose()
        finally:
            engine.dispose()


def run(label: str, store_cm: object, rounds: int) -> None:
    with store_cm as store:  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        populate(store, random.Random(SEED))
        built = time.perf_counter() - t0
        print(
            f"\n{label}: {CALENDARS:,} calendars, {BOOKINGS:,} bookings, {RUNS:,} runs "
            f"(built in {built:.0f} s); server time over {rounds} requests"
        )
        print(f"  {'page':<34} {'p50 ms':>8} {'p95 ms':>8}")
        for name, p50, p95 in measure(store, rounds):
            print(f"  {name:<34} {p50:8.1f} {p95:8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    run("SQLite", sqlite_store(), args.rounds)
    if not args.no_postgres:
        try:
            run("PostgreSQL", postgres_store(args.postgres_url), args.rounds)
        except PostgresUnavailable as exc:
            print(f"\nPostgreSQL skipped: {exc}")


if __name__ == "__main__":
    main()
