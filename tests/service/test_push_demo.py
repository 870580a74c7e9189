"""``calbridge demo --serve``: the service on the demo world, push from both emulators, a
booking through the API on all three kinds of calendar; a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from push_service import free_port


def test_demo_serve_shows_push_and_api_bookings_then_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    env |= {"CALBRIDGE_DATA_DIR": str(tmp_path / "untouched"), "COLUMNS": "200"}
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "calbridge.cli", "demo", "--serve", "--port", str(port), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(240, process.kill)  # a hung demo fails the test, never the suite
    watchdog.start()
    try:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        assert line, process.stderr.read()[-3000:]
        shown = json.loads(line)
        for figure in ("google_edit_seconds", "graph_edit_seconds", "api_booking_seconds"):
            assert shown[figure] >= 0
        assert shown["url"] == f"http://127.0.0.1:{port}"
        bookings = httpx.get(
            shown["url"] + "/api/bookings",
            headers={"Authorization": f"Bearer {shown['token']}"},
            params={"limit": 200},
            timeout=10,
        )
        assert bookings.status_code == 200
        names = {item["name"] for item in bookings.json()["items"]}
        assert {"Staff training (first aid)", "Patel family lunch (12 guests)"} <= names
        assert "Harbour tour (booked through the API)" in names

        process.send_signal(signal.SIGTERM)
        code = process.wait(90)
        errors = process.stderr.read()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0, errors[-3000:]
    assert "Traceback" not in errors
    assert "admin UI" in errors and "/api/docs" in errors
    assert not (tmp_path / "untouched" / "calbridge.db").exists()
