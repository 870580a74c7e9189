"""Benchmark: a CalDAV calendar imported the way a user runs it, against a real Radicale.

For each size N (events on the calendar; ~5 % are weekly series, ~45 % carry a TZID with its
VTIMEZONE, ~15 % are all-day, the rest UTC) three contenders run **interleaved**, R times each,
on the same Radicale:

* **bare protocol** — the lower bound: one RFC 6578 ``sync-collection`` REPORT and the
  ``calendar-multiget`` batches of 200 hrefs, bytes only, in this warm process (no parsing, no
  database); and the no-change REPORT with the token it got. Also the bytes of the requests
  calbridge's first pull makes (``bare token + query``): a PROPFIND of the collection's
  ``DAV:sync-token``, then one ``calendar-query`` for every object — the lower bound of what
  calbridge itself asks for.
* **calbridge** — the ``calbridge sync`` *process*, start to exit, in a data directory whose
  directory (companies, contacts, users) and calendar link are already there; then a second
  ``calbridge sync`` with nothing changed. Every event becomes an assigned booking.
* **vdirsyncer** — ``vdirsyncer sync`` of the same calendar to a local folder (``discover`` is
  not timed); then its no-change sync.

It prints, per size, each contender's min and median, the per-repetition ratios
(calbridge / bare, vdirsyncer / calbridge) and the no-change overhead over the bare REPORT,
the peak RSS of the ``calbridge sync`` process, and ``calbridge --help`` / ``--version`` start
times; then the engine inside a warm process (``sync_calendar``), as a second figure.
Timings are printed, never asserted; the machine's load average is printed with them.
calbridge's modules are compiled to bytecode first (untimed), as ``pip install`` does for an
installed package and for vdirsyncer: in an editable checkout under ``PYTHONDONTWRITEBYTECODE``
(CI shells set it) every timed process would otherwise compile them from source again.

    python benchmarks/sync_caldav.py                         # N = 1000, 5000, 20000; 5 reps
    python benchmarks/sync_caldav.py --sizes 1000 --reps 3   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

USER, PASSWORD = "bench", "bench-pw"
BATCH = 200  # calbridge's multiget batch (CalDAVProvider.batch_size)
CALBRIDGE = str(Path(sys.executable).with_name("calbridge"))
VDIRSYNCER = str(Path(sys.executable).with_name("vdirsyncer"))

# Organizers: the demo directory's people (known contacts, users, a company domain) and a
# share of addresses nobody knows, a new one every 40 events.
KNOWN = [
    "mia@harbour.example",
    "ann@acme-events.example",
    "tom@harbour.example",
    "raj.patel@mail.example",
    "bookings@harbour.example",
]

ZONES = {
    "Europe/London": ("GMT", "BST", "+0000", "+0100"),
    "Europe/Berlin": ("CET", "CEST", "+0100", "+0200"),
    "America/New_York": ("EST", "EDT", "-0500", "-0400"),
}


def vtimezone(tzid: str) -> str:
    std, dst, std_off, dst_off = ZONES[tzid]
    return (
        f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n"
        f"BEGIN:DAYLIGHT\r\nTZOFFSETFROM:{std_off}\r\nTZOFFSETTO:{dst_off}\r\nTZNAME:{dst}\r\n"
        "DTSTART:19700329T010000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
        f"BEGIN:STANDARD\r\nTZOFFSETFROM:{dst_off}\r\nTZOFFSETTO:{std_off}\r\nTZNAME:{std}\r\n"
        "DTSTART:19701025T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
        "END:VTIMEZONE\r\n"
    )


def organizer(i: int) -> str:
    if i % 40 == 7:
        return f"guest{i}@stranger{i % 13}.example"
    return KNOWN[i % len(KNOWN)]


def ics(i: int, first_day: date, summary: str | None = None) -> str:
    """Event ``i``: every 20th a weekly series (8 occurrences), 45 % with a TZID, 15 % all-day,
    the rest in UTC; spread over the days after ``first_day``, 8 a day."""
    day = first_day + timedelta(days=i // 8)
    hour = 8 + i % 8
    uid = f"ev{i}-bench@example.com"
    title = summary or f"Booking {i}: client meeting"
    lines = [f"UID:{uid}", "DTSTAMP:20261101T000000Z", f"SUMMARY:{title}"]
    kind = i % 20
    zone = ""
    if kind in (1, 2, 3):  # 15 % all-day
        lines += [
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + timedelta(1):%Y%m%d}",
        ]
    elif kind < 12:  # 45 % (kinds 0 and 4…11) with a TZID
        zone = list(ZONES)[i % len(ZONES)]
        lines += [
            f"DTSTART;TZID={zone}:{day:%Y%m%d}T{hour:02d}0000",
            f"DTEND;TZID={zone}:{day:%Y%m%d}T{hour + 1:02d}0000",
        ]
    else:  # 40 % UTC
        lines += [f"DTSTART:{day:%Y%m%d}T{hour:02d}0000Z", f"DTEND:{day:%Y%m%d}T{hour:02d}4500Z"]
    if kind == 0:  # 5 % weekly series, always zoned
        lines.append("RRULE:FREQ=WEEKLY;COUNT=8")
    lines += [
        f"LOCATION:Room {i % 12}",
        f"ORGANIZER;CN=Booker {i % 97}:mailto:{organizer(i)}",
        f"ATTENDEE;CN=Guest;PARTSTAT=NEEDS-ACTION:mailto:guest{i % 31}@example.org",
        "DESCRIPTION:Set-up at 8\\, catering for 20. Call the front desk on arrival.",
        "STATUS:CONFIRMED",
    ]
    body = "".join(line + "\r\n" for line in lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n"
        + (vtimezone(zone) if zone else "")
        + f"BEGIN:VEVENT\r\n{body}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def populate(folder: Path, n: int, first_day: date) -> None:
    """Write the objects straight into Radicale's storage folder (what Radicale reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".Radicale.props").write_text('{"tag": "VCALENDAR"}')
    for i in range(n):
        (folder / f"ev{i}.ics").write_text(ics(i, first_day), newline="")


# ------------------------------------------------------------------ the bare protocol


SYNC_BODY = (
    '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
    "<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
    "<D:prop><D:getetag/></D:prop></D:sync-collection>"
)
MULTIGET = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><D:getetag/><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>"
)
_HREF = re.compile(rb"<(?:\w+:)?href>([^<]+)</(?:\w+:)?href>")
_TOKEN = re.compile(rb"<(?:\w+:)?sync-token>([^<]+)</(?:\w+:)?sync-token>")


def bare_import(url: str) -> tuple[float, str, int]:
    """One sync-collection + the multigets, bytes only: seconds, the token, bytes read."""
    started = time.perf_counter()
    with httpx.Client(auth=(USER, PASSWORD), timeout=3000) as client:
        listing = client.request(
            "REPORT", url, content=SYNC_BODY.format(token=""), headers={"Depth": "1"}
        ).content
        collection = httpx.URL(url).path
        hrefs = [h.decode() for h in _HREF.findall(listing) if h.decode() != collection]
        size = len(listing)
        for start in range(0, len(hrefs), BATCH):
            body = MULTIGET.format(
                hrefs="".join(f"<D:href>{h}</D:href>" for h in hrefs[start : start + BATCH])
            )
            size += len(client.request("REPORT", url, content=body, headers={"Depth": "1"}).content)
    token = _TOKEN.search(listing)
    return time.perf_counter() - started, token.group(1).decode() if token else "", size


QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
    '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
)


TOKEN_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:propfind xmlns:D="DAV:"><D:prop><D:sync-token/></D:prop></D:propfind>'
)


def bare_token_first(url: str) -> float | None:
    """calbridge's first pull, bytes only: the collection's sync-token as a property, then
    every object by calendar-query; None when the server refuses the query (Radicale: more
    than 10,000 VEVENTs in one answer), as calbridge then lists by etags and multigets."""
    started = time.perf_counter()
    with httpx.Client(auth=(USER, PASSWORD), timeout=3000) as client:
        client.request("PROPFIND", url, content=TOKEN_PROPFIND, headers={"Depth": "0"}).read()
        query = client.request("REPORT", url, content=QUERY, headers={"Depth": "1"})
        if query.status_code != 207:
            return None
    return time.perf_counter() - started


def bare_no_change(url: str, token: str) -> float:
    started = time.perf_counter()
    with httpx.Client(auth=(USER, PASSWORD), timeout=3000) as client:
        client.request("REPORT", url, content=SYNC_BODY.format(token=token), headers={"Depth": "1"})
    return time.perf_counter() - started


# ------------------------------------------------------------------------ calbridge


def prepare_calbridge(template: Path, url: str) -> None:
    """A data directory with the demo directory imported and the calendar linked (untimed)."""
    from calbridge.config import Settings
    from calbridge.store.db import open_store
    from calbridge.store.directory import import_directory
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.calendars import add_caldav_calendar

    template.mkdir(parents=True)
    directory = (Path(__file__).parents[1] / "src/calbridge/demo/directory.json").read_text()
    store = open_store(f"sqlite:///{template / 'calbridge.db'}")
    box = SecretBox.from_settings(Settings(data_dir=template))
    with store.session() as session:
        import_directory(session, directory)
        calendar = add_caldav_calendar(session, box, "big", url, USER, PASSWORD, horizon_days=3650)
        # Radicale answers a request over a whole 20k-object collection slowly
        calendar.settings = {**calendar.settings, "timeout": 900}
    store.dispose()


def run_process(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds from start to exit, peak RSS (MB) of that process, and its stdout. Output goes
    to files, not pipes: a chatty process (vdirsyncer logs a line per item) never blocks."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(
                f"{' '.join(args)} failed ({process.returncode}): {err.read().decode()[-2000:]}"
            )
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def calbridge_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    return env | {"CALBRIDGE_DATA_DIR": str(data_dir), "NO_COLOR": "1"}


def calbridge_sync(template: Path, work: Path) -> dict[str, float]:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template, work)
    env = calbridge_env(work)
    seconds, rss, out = run_process([CALBRIDGE, "sync", "--json"], env)
    [report] = json.loads(out)
    again, _rss, out2 = run_process([CALBRIDGE, "sync", "--json"], env)
    [second] = json.loads(out2)
    assert second["pulled"] == 0 and second["requests"] == 1, second
    return {
        "import": seconds,
        "no_change": again,
        "rss_mb": rss,
        "bookings": report["created"],
        "requests": report["requests"],
    }


# ----------------------------------------------------------------------- vdirsyncer


def vdirsyncer_sync(url: str, root: Path) -> dict[str, Any]:
    """vdirsyncer's import and no-change sync; ``{"failed": why}`` when vdirsyncer itself
    fails (it is the peer, not the subject: its failure is printed, the run goes on)."""
    try:
        return _vdirsyncer_sync(url, root)
    except SystemExit as exc:
        lines = [line for line in str(exc).splitlines() if line.startswith("error:")]
        return {"failed": lines[0] if lines else str(exc)[-300:]}


def _vdirsyncer_sync(url: str, root: Path) -> dict[str, float]:
    if root.exists():
        shutil.rmtree(root)
    (root / "local").mkdir(parents=True)
    config = root / "config"
    config.write_text(
        f'[general]\nstatus_path = "{root / "status"}"\n\n'
        '[pair bench]\na = "remote"\nb = "local"\ncollections = null\n\n'
        f'[storage remote]\ntype = "caldav"\nurl = "{url}"\n'
        f'username = "{USER}"\npassword = "{PASSWORD}"\n\n'
        f'[storage local]\ntype = "filesystem"\npath = "{root / "local"}"\n'
        'fileext = ".ics"\n'
    )
    base = [VDIRSYNCER, "-c", str(config)]
    subprocess.run([*base, "discover"], input=b"y\n", check=True, capture_output=True)
    seconds, _rss, _ = run_process([*base, "sync"], dict(os.environ))
    again, _rss, _ = run_process([*base, "sync"], dict(os.environ))
    files = len(list((root / "local").glob("*.ics")))
    return {"import": seconds, "no_change": again, "files": files}


# -------------------------------------------------------------------------- engine


def engine_in_process(template: Path, work: Path) -> dict[str, float]:
    """``sync_calendar`` in this (warm) process: initial import and a no-change re-sync."""
    from calbridge.config import Settings
    from calbridge.store.db import open_store
    from calbridge.store.secrets import SecretBox
    from calbridge.sync.engine import sync_calendar
    from calbridge.sync.providers import open_provider

    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template, work)
    store = open_store(f"sqlite:///{work / 'calbridge.db'}")
    box = SecretBox.from_settings(Settings(data_dir=work))
    figures = {}
    for phase in ("import", "no_change"):
        started = time.perf_counter()
        report = sync_calendar(store, 1, lambda c: open_provider(c, box))
        if not report.ok:
            raise SystemExit(f"engine {phase}: {report.error}")
        figures[phase] = time.perf_counter() - started
    store.dispose()
    return figures


# --------------------------------------------------------------------------- driver


def compile_calbridge() -> None:
    """Bytecode for calbridge's modules, as an installed package has (pip compiles them at
    install time); ``py_compile`` writes it even under ``PYTHONDONTWRITEBYTECODE``."""
    import compileall

    import calbridge

    compileall.compile_dir(Path(calbridge.__file__).parent, quiet=1)


def start_times(reps: int) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE_")}
    times: dict[str, list[float]] = {"--help": [], "--version": []}
    for _ in range(reps):
        for flag in times:
            times[flag].append(run_process([CALBRIDGE, flag], env)[0])
    return times


def one_size(n: int, reps: int, engine: bool) -> dict[str, Any]:
    from calbridge_emulators.radicale import running_radicale

    with tempfile.TemporaryDirectory(prefix=f"cb-bench-{n}-") as tmp:
        root = Path(tmp)
        first_day = datetime.now(UTC).date() + timedelta(days=2)
        populate(root / "radicale" / "collections" / "collection-root" / USER / "big", n, first_day)
        with running_radicale(root / "radicale", {USER: PASSWORD}) as server:
            url = server.calendar_url(USER, "big")
            bare_import(url)  # Radicale builds its item cache and sync history (untimed)
            prepare_calbridge(root / "template", url)
            runs: dict[str, list[dict[str, Any]]] = {
                "bare": [],
                "calbridge": [],
                "vdirsyncer": [],
            }
            contenders: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                ("bare", lambda: bare_figures(url)),
                ("calbridge", lambda: calbridge_sync(root / "template", root / "cb")),
                ("vdirsyncer", lambda: vdirsyncer_sync(url, root / "vdir")),
            ]
            for rep in range(reps):
                order = contenders[rep % 3 :] + contenders[: rep % 3]  # rotate who goes first
                for name, run in order:
                    runs[name].append(run())
                print(
                    f"N={n} rep {rep + 1}/{reps}: "
                    + json.dumps(
                        {
                            k: {
                                p: round(v, 3) if isinstance(v, float) else v
                                for p, v in r[-1].items()
                            }
                            for k, r in runs.items()
                        }
                    ),
                    file=sys.stderr,
                    flush=True,
                )
            result: dict[str, Any] = {"n": n, "runs": runs, "load": os.getloadavg()}
            if engine:
                result["engine"] = engine_in_process(root / "template", root / "engine")
    return result


def bare_figures(url: str) -> dict[str, float | None]:
    seconds, token, size = bare_import(url)
    no_change = bare_no_change(url, token)
    return {
        "import": seconds,
        "token_first": bare_token_first(url),
        "no_change": no_change,
        "mb": size / 1e6,
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def row(label: str, values: list[float]) -> str:
    """One line of the summary: label, min, median, then every repetition's value."""
    return f"  {label:<28}{min(values):8.2f}{median(values):8.2f}   " + " ".join(
        f"{v:.2f}" for v in values
    )


def summarize(result: dict[str, Any]) -> list[str]:
    n, runs = result["n"], result["runs"]
    cb = runs["calbridge"]
    lines = [
        f"N={n} events → {cb[0]['bookings']:.0f} bookings, {cb[0]['requests']:.0f} requests; "
        f"{runs['bare'][0]['mb']:.1f} MB of calendar data; load average "
        + " ".join(f"{x:.1f}" for x in result["load"])
    ]
    lines.append(f"  {'initial import (s)':<28}{'min':>8}{'median':>8}   per repetition")
    failed = [r["failed"] for r in runs["vdirsyncer"] if "failed" in r]
    peers = ("bare", "calbridge") if failed else ("bare", "calbridge", "vdirsyncer")
    for name in peers:
        values = [r["import"] for r in runs[name]]
        lines.append(row(name, values))
    queried = all(r["token_first"] is not None for r in runs["bare"])
    if queried:
        values = [r["token_first"] for r in runs["bare"]]
        lines.append(row("bare token + query", values))
    else:
        lines.append(f"  {'bare token + query':<28}refused by the server: calbridge lists")
    ratio_bare = [c["import"] / b["import"] for c, b in zip(cb, runs["bare"], strict=True)]
    lines.append(row("calbridge / bare", ratio_bare))
    if queried:
        ratio_query = [
            c["import"] / b["token_first"] for c, b in zip(cb, runs["bare"], strict=True)
        ]
        lines.append(row("calbridge / bare token+query", ratio_query))
    if failed:
        lines.append(
            f"  vdirsyncer failed in {len(failed)} of {len(runs['vdirsyncer'])} runs: {failed[0]}"
        )
    else:
        ratio_vdir = [
            v["import"] / c["import"] for c, v in zip(cb, runs["vdirsyncer"], strict=True)
        ]
        lines.append(row("vdirsyncer / calbridge", ratio_vdir))
    lines.append(f"  {'no-change re-sync (s)':<28}{'min':>8}{'median':>8}")
    for name in peers:
        values = [r["no_change"] for r in runs[name]]
        lines.append(row(name, values))
    over = [c["no_change"] - b["no_change"] for c, b in zip(cb, runs["bare"], strict=True)]
    lines.append(row("calbridge − bare REPORT", over))
    rss = [r["rss_mb"] for r in cb]
    lines.append(f"  calbridge sync peak RSS: {max(rss):.0f} MB")
    if "engine" in result:
        e = result["engine"]
        lines.append(
            f"  engine in a warm process: import {e['import']:.2f} s, "
            f"no-change {e['no_change'] * 1000:.0f} ms"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-engine", action="store_true", help="skip the in-process figure")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    compile_calbridge()
    starts = start_times(args.reps)
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        results.append(one_size(n, args.reps, not args.no_engine))
        if not args.json:
            print("\n".join(summarize(results[-1])), flush=True)
    if args.json:
        print(json.dumps({"start": starts, "sizes": results}, indent=2))
        return
    for flag, values in starts.items():
        print(
            f"calbridge {flag}: min {min(values):.2f} s, median {median(values):.2f} s "
            f"({' '.join(f'{v:.2f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
