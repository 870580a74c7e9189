"""`calbridge demo` works on a machine with nothing configured, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_syncs_both_ways_and_explains(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    env["CALBRIDGE_DATA_DIR"] = str(tmp_path / "untouched")
    env["COLUMNS"] = "220"
    done = subprocess.run(
        [sys.executable, "-m", "calbridge.cli", "demo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    first = {r["calendar"]: r for r in result["first"]}
    assert first["mia-bookings"]["created"] == 4 and first["mia-bookings"]["rejected"] == 1
    assert first["tom-bookings"]["created"] == 3 + 4  # three events and a 4-week series
    assert first["google-events"]["created"] == 2  # Google, via the real client library
    assert first["m365-bookings"]["created"] == 1  # Microsoft 365, via MSAL + Graph
    assert first["tom-bookings"]["pushed_created"] == 1  # Tom's Google booking, on his calendar
    assert all(r["ok"] for r in result["first"] + result["second"] + result["third"])
    second = {r["calendar"]: r for r in result["second"]}
    assert second["mia-bookings"]["updated"] == 1  # moved in the calendar app
    assert second["tom-bookings"]["pushed_updated"] == 1  # renamed in the booking system
    assert second["tom-bookings"]["pushed_deleted"] == 1  # cancelled in the booking system
    assert all(r["requests"] <= 2 for r in result["third"])
    assert "Acme Corp" in done.stderr and "Walk-in Bookings" in done.stderr
    assert not (tmp_path / "untouched" / "calbridge.db").exists()  # the demo used its own store
