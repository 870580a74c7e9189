"""Benchmark: two-way sync of a large CalDAV calendar against a real Radicale.

For each size N it runs, in a fresh child process (so peak RSS is per size):
  1. initial import (calendar → booking system), 2. a no-change re-sync,
  3. a re-sync after 1 % of the events changed on the calendar,
  4. a sync after 1 % of the bookings changed in the booking system (push),
and prints seconds, HTTP requests and peak RSS per phase. It then times vdirsyncer syncing the
same calendar to a local folder, as the reference for the initial import.

    python benchmarks/sync_caldav.py                 # N = 1000, 5000, 20000
    python benchmarks/sync_caldav.py --sizes 1000    # quicker
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

USER, PASSWORD = "bench", "bench-pw"


def ics(uid: str, summary: str, start: datetime, organizer: str) -> str:
    end = start + timedelta(hours=1)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART;TZID=Europe/London:{start:%Y%m%dT%H%M%S}\r\n"
        f"DTEND;TZID=Europe/London:{end:%Y%m%dT%H%M%S}\r\n"
        f"SUMMARY:{summary}\r\nLOCATION:Room {hash(uid) % 12}\r\n"
        f"ORGANIZER:mailto:{organizer}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


ORGANIZERS = [
    "mia@harbour.example",
    "ann@acme-events.example",
    "tom@harbour.example",
    "raj.patel@mail.example",
    "someone@stranger.example",
]


def populate(folder: Path, n: int) -> None:
    """Write the objects straight into Radicale's storage folder (fast, and what Radicale reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".Radicale.props").write_text('{"tag": "VCALENDAR"}')
    start = datetime(2027, 1, 4, 8)
    for i in range(n):
        when = start + timedelta(days=i // 8, hours=i % 8)
        (folder / f"ev{i}.ics").write_text(
            ics(f"ev{i}", f"Booking {i}", when, ORGANIZERS[i % len(ORGANIZERS)]), newline=""
        )


def warm_up(server: object, url: str) -> None:
    """Let Radicale build its item cache and sync history for the files written behind its
    back, so neither calbridge nor vdirsyncer is timed paying that one-off server cost."""
    client = server.client(USER)  # type: ignore[attr-defined]
    client.request("PROPFIND", url, headers={"Depth": "1"}, timeout=3000)
    body = (
        '<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token/>'
        "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"
    )
    client.request("REPORT", url, content=body, headers={"Depth": "1"}, timeout=3000)


def child(n: int, root: Path) -> dict[str, object]:
    """One size, in this process: returns the figures per phase."""
    from sqlalchemy import select

    from calbridge.demo import __file__ as demo_file
    from calbridge.emulators.radicale import running_radicale
    from calbridge.store.db import open_store
    from calbridge.store.directory import import_directory
    from calbridge.store.events import update_event
    from calbridge.store.models import Event
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.calendars import add_caldav_calendar
    from calbridge.sync.engine import sync_calendar
    from calbridge.sync.providers import open_provider

    radicale_dir = root / "radicale"
    populate(radicale_dir / "collections" / "collection-root" / USER / "big", n)
    phases: dict[str, dict[str, float]] = {}
    with running_radicale(radicale_dir, {USER: PASSWORD}) as server:
        url = server.calendar_url(USER, "big")
        warm_up(server, url)
        store = open_store(f"sqlite:///{root / 'calbridge.db'}")
        box = SecretBox(SecretBox.generate_key())
        with store.session() as session:
            import_directory(session, (Path(demo_file).parent / "directory.json").read_text())
            calendar = add_caldav_calendar(
                session, box, "big", url, USER, PASSWORD, horizon_days=3650
            )
            # Radicale answers a request over a whole 20k-object collection slowly
            calendar.settings = {**calendar.settings, "timeout": 900}
            cal_id = calendar.id

        def run(phase: str) -> None:
            started = time.perf_counter()
            report = sync_calendar(store, cal_id, lambda c: open_provider(c, box))
            if not report.ok:
                raise SystemExit(f"{phase}: {report.error}")
            phases[phase] = {
                "seconds": round(time.perf_counter() - started, 3),
                "requests": report.requests,
                "created": report.created,
                "updated": report.updated,
                "pushed": report.pushed_updated,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }

        run("initial import")
        run("no-change re-sync")
        changed = max(1, n // 100)
        start = datetime(2027, 1, 4, 8)
        for i in range(0, n, n // changed):
            when = start + timedelta(days=i // 8, hours=i % 8)
            server.put_ics(
                f"{url}ev{i}.ics",
                ics(f"ev{i}", f"Booking {i} (moved)", when, ORGANIZERS[i % len(ORGANIZERS)]),
            )
        run("1% changed on calendar")
        with store.session() as session:
            ids = list(session.scalars(select(Event.id).order_by(Event.id)))[:: n // changed]
            for event_id in ids:
                event = session.get(Event, event_id)
                assert event is not None
                update_event(session, event, {"notes": "changed in the booking system"})
        run("1% changed in booking system")
        store.dispose()
        phases["vdirsyncer initial"] = vdirsyncer(url, root / "vdir")
    return {"n": n, "phases": phases}


def vdirsyncer(url: str, root: Path) -> dict[str, float]:
    """Time vdirsyncer syncing the same calendar to a local folder (discover + sync)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "local").mkdir()
    config = root / "config"
    config.write_text(
        f'[general]\nstatus_path = "{root / "status"}"\n\n'
        '[pair bench]\na = "remote"\nb = "local"\ncollections = null\n\n'
        f'[storage remote]\ntype = "caldav"\nurl = "{url}"\n'
        f'username = "{USER}"\npassword = "{PASSWORD}"\n\n'
        f'[storage local]\ntype = "filesystem"\npath = "{root / "local"}"\n'
        'fileext = ".ics"\n'
    )
    exe = str(Path(sys.executable).with_name("vdirsyncer"))
    subprocess.run(
        [exe, "-c", str(config), "discover"], input=b"y\n", check=True, capture_output=True
    )
    started = time.perf_counter()
    done = subprocess.run([exe, "-c", str(config), "sync"], capture_output=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"seconds": -1.0, "error": done.stderr.decode()[-300:]}  # type: ignore[dict-item]
    return {"seconds": round(seconds, 3), "files": len(list((root / "local").glob("*.ics")))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.root))))
        return
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix=f"cb-bench-{n}-") as root:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(n), "--root", root],
                capture_output=True,
                text=True,
            )
        if out.returncode != 0:
            print(f"N={n} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
            continue
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # progress, in case
    if args.json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title="calbridge ⇄ Radicale (CalDAV)")
    for col in (
        "N",
        "phase",
        "seconds",
        "requests",
        "created/updated/pushed",
        "peak RSS MB",
        "ms/event",
    ):
        table.add_column(col)
    for r in results:
        n = int(r["n"])
        for phase, f in r["phases"].items():
            per = f["seconds"] * 1000 / n if phase.endswith("import") or "vdir" in phase else None
            table.add_row(
                str(n),
                phase,
                str(f["seconds"]),
                str(f.get("requests", "—")),
                f"{f.get('created', '')}/{f.get('updated', '')}/{f.get('pushed', '')}"
                if "requests" in f
                else str(f.get("files", "")),
                str(f.get("peak_rss_mb", "—")),
                f"{per:.2f}" if per is not None else "",
            )
    Console().print(table)


if __name__ == "__main__":
    main()
