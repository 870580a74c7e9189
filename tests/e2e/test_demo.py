"""`calbridge demo` works on a machine with nothing configured, end to end; with ``--keep`` it
says how to explore its database with other `calbridge` commands, and SIGTERM (what systemd
and docker send) stops its servers and removes its folder, as Ctrl-C does."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from calbridge_cli import CALBRIDGE
from waits import wait_until


def test_demo_syncs_both_ways_explains_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    env["CALBRIDGE_DATA_DIR"] = str(tmp_path / "untouched")
    env["COLUMNS"] = "220"
    demo = subprocess.Popen(
        [sys.executable, "-m", "calbridge.cli", "demo", "--keep", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    shown: list[str] = []
    assert demo.stderr is not None
    reader = threading.Thread(target=lambda: shown.extend(demo.stderr or []), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any("then e.g." in text for text in shown) or demo.poll() is not None,
            "the demo to print its --keep lines",
            timeout=240,
        )
        assert demo.poll() is None, "".join(shown)[-3000:]
        exports = dict(
            re.fullmatch(r"\s*export (CALBRIDGE_\w+)=(.*)", text.rstrip("\n")).groups()  # type: ignore[union-attr]
            for text in shown
            if text.strip().startswith("export CALBRIDGE_")
        )
        exported = {name: shlex.split(value)[0] for name, value in exports.items()}
        assert exported.keys() == {
            "CALBRIDGE_DATABASE_URL",
            "CALBRIDGE_DATA_DIR",
            "CALBRIDGE_SECRET_KEY",
        }
        assert any("Google Calendar API emulator: http://127.0.0.1:" in t for t in shown)
        assert any("Microsoft Graph emulator: https://127.0.0.1:" in t for t in shown)
        folder = Path(exported["CALBRIDGE_DATA_DIR"])
        servers = psutil.Process(demo.pid).children(recursive=True)  # Radicale
        assert folder.is_dir() and servers

        # Another shell, with the printed lines: the demo's database and its sealed secrets.
        explore = {**env, **exported}
        synced = subprocess.run(
            [CALBRIDGE, "sync", "--json"], env=explore, capture_output=True, text=True, timeout=120
        )
        assert synced.returncode == 0, synced.stderr
        reports = json.loads(synced.stdout)
        assert len(reports) == 5 and all(r["ok"] for r in reports), reports

        demo.send_signal(signal.SIGTERM)
        out, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    reader.join(timeout=10)
    assert demo.returncode == 0, "".join(shown)[-3000:]
    assert "Traceback" not in "".join(shown)
    assert not folder.exists()  # removed, as after Ctrl-C
    psutil.wait_procs(servers, timeout=15)
    assert not [p for p in servers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    result = json.loads(out)
    first = {r["calendar"]: r for r in result["first"]}
    assert first["mia-bookings"]["created"] == 4 and first["mia-bookings"]["rejected"] == 1
    assert first["tom-bookings"]["created"] == 3 + 4  # three events and a 4-week series
    assert first["google-events"]["created"] == 2  # Google, via the real client library
    assert first["m365-bookings"]["created"] == 1  # Microsoft 365, via MSAL + Graph
    assert first["exchange-bookings"]["created"] == 2  # Exchange Server, via exchangelib + EWS
    assert first["tom-bookings"]["pushed_created"] == 1  # Tom's Google booking, on his calendar
    assert all(r["ok"] for r in result["first"] + result["second"] + result["third"])
    second = {r["calendar"]: r for r in result["second"]}
    assert second["mia-bookings"]["updated"] == 1  # moved in the calendar app
    assert second["tom-bookings"]["pushed_updated"] == 1  # renamed in the booking system
    assert second["tom-bookings"]["pushed_deleted"] == 1  # cancelled in the booking system
    assert all(r["requests"] <= 2 for r in result["third"])
    assert result["rooms"]["Acme leadership offsite"] == ["Ballroom"]  # the room it invited
    assert result["rooms"]["Raj's birthday dinner"] == []  # "the garden" is no venue room
    text = "".join(shown)
    assert "Acme Corp" in text and "Walk-in Bookings" in text
    assert not (tmp_path / "untouched" / "calbridge.db").exists()  # the demo used its own store
