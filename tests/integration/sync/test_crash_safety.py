"""Crash safety: a real `calbridge sync` killed with SIGKILL at random points, then run again,
converges to the same state as an uninterrupted run — no duplicates, nothing missing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sync_helpers import USERS, objects

from calbridge.demo.seed import vevent
from calbridge.domain.event import make_times
from calbridge.store.db import open_store
from calbridge.store.directory import import_directory
from calbridge.store.events import ManualAssignment, create_event
from calbridge.store.models import Event, Link
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from worlds import EXAMPLE

REMOTE, LOCAL = 25, 25


def _prepare(world, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = dict(os.environ)
    env["CALBRIDGE_DATA_DIR"] = str(tmp_path / "data")
    env["CALBRIDGE_SECRET_KEY"] = "crash-test-key"
    env.pop("CALBRIDGE_DATABASE_URL", None)
    (tmp_path / "data").mkdir()
    url = world.radicale.make_calendar("staff", f"crash-{tmp_path.name}")
    world.urls["crash"] = url
    start = datetime(2027, 5, 3, 9)
    for i in range(REMOTE):
        world.radicale.put_ics(
            f"{url}r{i}.ics",
            vevent(
                f"r{i}",
                f"Remote {i}",
                start + timedelta(days=i),
                start + timedelta(days=i, hours=1),
                organizer="ann@acme-events.example",
            ),
        )
    store = open_store(f"sqlite:///{tmp_path / 'data' / 'calbridge.db'}")
    with store.session() as session:
        import_directory(session, EXAMPLE.read_text(encoding="utf-8"))
        box = SecretBox.from_settings(_settings(env))
        add_caldav_calendar(session, box, "crash", url, "staff", USERS["staff"], owner="u-tom")
        for i in range(LOCAL):
            create_event(
                session,
                name=f"Local {i}",
                times=make_times(
                    f"2027-06-{i + 1:02d}T10:00",
                    f"2027-06-{i + 1:02d}T11:00",
                    all_day=False,
                    timezone="Europe/Berlin",
                ),
                manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
            )
    store.dispose()
    return env


def _settings(env: dict[str, str]):  # type: ignore[no-untyped-def]
    from calbridge.config import Settings

    return Settings(
        data_dir=Path(env["CALBRIDGE_DATA_DIR"]), secret_key=env["CALBRIDGE_SECRET_KEY"]
    )


def _sync(env: dict[str, str], kill_after: float | None) -> int | None:
    process = subprocess.Popen(
        [sys.executable, "-m", "calbridge.cli", "sync", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if kill_after is None:
        return process.wait(timeout=120)
    time.sleep(kill_after)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return None


def test_sync_killed_at_random_points_converges_without_duplicates(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _prepare(world, tmp_path)
    rng = random.Random(20261127)
    # Kill points spread over interpreter start-up, pull, and push.
    for _ in range(10):
        _sync(env, kill_after=rng.uniform(0.3, 2.5))
    assert _sync(env, kill_after=None) == 0
    assert _sync(env, kill_after=None) == 0

    stored = objects(world, "crash")
    uids = Counter(line.split("UID:", 1)[1].split("\r\n")[0].split("\n")[0] for line in stored)
    assert len(stored) == REMOTE + LOCAL
    assert all(count == 1 for count in uids.values())

    store = open_store(f"sqlite:///{tmp_path / 'data' / 'calbridge.db'}")
    try:
        with store.session() as session:
            names = Counter(session.scalars(select(Event.name)))
            assert len(names) == REMOTE + LOCAL and set(names.values()) == {1}
            links = session.scalars(select(Link)).all()
            assert len(links) == REMOTE + LOCAL
            assert {link.state for link in links} == {"ok"}
            pending = session.scalar(
                select(func.count())
                .select_from(Link)
                .join(Event, Event.id == Link.event_id)
                .where(Event.change_seq > Link.synced_seq)
            )
            assert pending == 0
    finally:
        store.dispose()
