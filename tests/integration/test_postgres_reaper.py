"""The test PostgreSQL helper never leaves a killed run's cluster running: the next start
reaps it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from postgres_server import PostgresUnavailable, _bindir, reap_orphan_clusters

TESTS = Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from postgres_server import throwaway_cluster
with throwaway_cluster() as url:
    print(url, flush=True)
    time.sleep(600)
"""


def _answers(url: str) -> bool:
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            return conn.execute(text("select 1")).scalar() == 1
    except OperationalError:
        return False
    finally:
        engine.dispose()


def test_a_killed_runs_cluster_is_stopped_and_removed_by_the_next_start() -> None:
    try:
        bindir = _bindir()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc}")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(TESTS)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    url = holder.stdout.readline().strip()
    assert url.startswith("postgresql+psycopg://"), url
    assert _answers(url)
    reap_orphan_clusters(bindir)
    assert _answers(url), "a cluster whose owner is alive was reaped"

    os.kill(holder.pid, signal.SIGKILL)  # no finally: clause runs, the server stays up
    holder.wait(timeout=30)
    assert _answers(url), "the killed run's cluster should still be running before the reap"
    reaped = reap_orphan_clusters(bindir)
    assert reaped, "the orphan cluster was not found"
    assert not _answers(url)
    assert not any(folder.exists() for folder in reaped)
