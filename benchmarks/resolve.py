"""Benchmark: resolving booker addresses (SPEC §2) against small and large directories.

For each database (SQLite; PostgreSQL when a server is found) and each directory size it runs, in
a fresh child process so that peak memory is per case:

1. generate a directory of N contacts (several addresses each; ~10 % of them also users with
   several email accounts, some inactive) and import it through the real import code;
2. resolve 10,000 addresses — user hits, contact hits via alternate addresses, misses — through
   the batch path of ``calbridge resolve --batch FILE --json``, in-process;
3. run the real ``calbridge resolve --batch FILE --json`` once on the same file (start-up
   included, nothing subtracted; calbridge's modules compiled to bytecode first, as an installed
   package has them).

Goals (issue 3): the per-address cost is flat in the directory's size (100k within 1.5x of 1k)
and SQLite resolves at least 5,000 addresses per second.

    python benchmarks/resolve.py                       # 1,000 and 100,000 contacts
    python benchmarks/resolve.py --sizes 1000 --no-postgres
    python benchmarks/resolve.py --postgres-url postgresql://user@host/postgres

PostgreSQL: ``--postgres-url`` (a server URL allowed to CREATE DATABASE), else the server of the
test suite (``CALBRIDGE_TEST_POSTGRES_URL``, else a throwaway cluster, see
``tests/postgres_server.py``). Each case gets its own fresh database.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from postgres_server import (  # noqa: E402
    PostgresUnavailable,
    admin_engine,
    fresh_database,
    postgres_server,
)

ADDRESSES = 10_000
SEED = 20270305


def generate(contacts: int, rnd: random.Random) -> tuple[dict[str, Any], list[str]]:
    """A directory of ``contacts`` contacts and the 10,000 addresses to resolve against it."""
    companies = [{"id": "co-walkin", "name": "Walk-in Bookings"}] + [
        {"id": f"co-{i}", "name": f"Company {i}"} for i in range(max(1, contacts // 20))
    ]
    people, users = [], [
        {"id": "u-va", "name": "Calendar Assistant", "type": "virtual_assistant",
         "active": True, "crm_account": None, "email_accounts": []}
    ]  # fmt: skip
    user_hits, alternates = [], []
    for i in range(contacts):
        alts = [f"c{i}.alt{j}@alt{j}.example" for j in range(rnd.randint(1, 3))]
        alternates += alts
        people.append(
            {
                "id": f"ct-{i}",
                "name": f"Contact {i}",
                "company": None if i % 7 == 0 else f"co-{rnd.randrange(len(companies) - 1)}",
                "primary_email": f"c{i}@crm.example",
                "alternate_emails": alts,
            }
        )
        if i % 10 == 0:  # ~10 % of the contacts are also staff users
            accounts = [
                {"address": f"u{i}@venue.example", "primary": True},
                {"address": f"u{i}.bookings@venue.example", "primary": False},
            ]
            if i % 20 == 0:
                accounts.append({"address": f"c{i}@crm.example", "primary": False})
            users.append(
                {
                    "id": f"u-{i}",
                    "name": f"User {i}",
                    "type": "named" if i % 30 else "concurrent",
                    "active": i % 50 != 0,
                    "crm_account": f"ct-{i}" if i % 40 else f"co-{i % (len(companies) - 1)}",
                    "email_accounts": accounts,
                }
            )
            user_hits += [a["address"] for a in accounts]
    directory = {
        "settings": {
            "default_account": "co-walkin",
            "default_event_manager": None,
            "auto_assign_event_manager": True,
            "virtual_assistant_user": "u-va",
        },
        "companies": companies,
        "contacts": people,
        "users": users,
    }
    mix = (
        [rnd.choice(user_hits) for _ in range(ADDRESSES * 4 // 10)]
        + [rnd.choice(alternates).upper() for _ in range(ADDRESSES * 4 // 10)]
        + [f"nobody{rnd.randrange(10**9)}@else.example" for _ in range(ADDRESSES * 2 // 10)]
    )
    rnd.shuffle(mix)
    return directory, mix


def run_case(url: str, contacts: int, folder: Path) -> dict[str, Any]:
    """One case, in this (child) process: import, resolve in-process, resolve with the CLI."""
    from calbridge.cli.resolve_cmd import _batch
    from calbridge.store.db import open_store
    from calbridge.store.directory import import_directory
    from calbridge.store.lookup import StoreLookup, load_assignment_settings

    directory, addresses = generate(contacts, random.Random(SEED + contacts))
    text = json.dumps(directory)
    batch = folder / f"addresses-{contacts}.txt"
    batch.write_text("\n".join(addresses) + "\n", encoding="utf-8")
    del directory

    store = open_store(url)
    started = time.perf_counter()
    with store.session() as s:
        import_directory(s, text)
    import_seconds = time.perf_counter() - started
    del text

    out = io.StringIO()
    with store.session() as s, redirect_stdout(out):
        started = time.perf_counter()
        settings = load_assignment_settings(s)
        _batch(batch, StoreLookup(s), settings, as_json=True)
        inproc_seconds = time.perf_counter() - started
    lines = out.getvalue().splitlines()
    assert len(lines) == len(addresses), "one JSON line per address"
    misses = sum('"client_contact":null,"booked_by":{"id":"u-va"' in line for line in lines)
    store.dispose()
    return {
        "contacts": contacts,
        "import_s": import_seconds,
        "inproc_s": inproc_seconds,
        "resolved_to_default": misses,
        "batch": str(batch),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def compile_calbridge() -> None:
    """Bytecode for calbridge's modules, as an installed package has (pip compiles them at
    install time): under ``PYTHONDONTWRITEBYTECODE`` an editable checkout would otherwise
    compile them again in the timed ``calbridge resolve`` process."""
    import compileall

    import calbridge

    compileall.compile_dir(Path(calbridge.__file__).parent, quiet=1)


def cli_run(url: str, batch: Path, folder: Path) -> dict[str, Any]:
    """Time one real ``calbridge resolve --batch`` process; its own peak RSS via wait4.

    Run from the small parent process: Linux counts the RSS a process had before ``exec`` in
    its peak, so a child of the big worker would report the worker's memory."""
    env = dict(os.environ, CALBRIDGE_DATABASE_URL=url, CALBRIDGE_DATA_DIR=str(folder))
    calbridge = Path(sys.executable).with_name("calbridge")
    with open(os.devnull, "wb") as devnull:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(calbridge), "resolve", "--batch", str(batch), "--json"],
            stdout=devnull,
            stderr=subprocess.PIPE,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"calbridge resolve --batch exited {code}: {proc.stderr.read()!r}")
    return {"cli_s": seconds, "cli_rss_mb": usage.ru_maxrss / 1024}


@contextmanager
def databases(args: argparse.Namespace, folder: Path) -> Iterator[list[tuple[str, Any]]]:
    """("SQLite", factory) and, when available, ("PostgreSQL", factory) of fresh database URLs."""
    with ExitStack() as stack:
        counter = iter(range(10**6))

        @contextmanager
        def sqlite() -> Iterator[str]:
            yield f"sqlite:///{folder / f'bench-{next(counter)}.db'}"

        found: list[tuple[str, Any]] = [("SQLite", sqlite)]
        if not args.no_postgres:
            try:
                server = args.postgres_url or stack.enter_context(postgres_server())
                admin = admin_engine(server)
                stack.callback(admin.dispose)
                found.append(("PostgreSQL", lambda: fresh_database(admin, "calbridge_bench")))
            except PostgresUnavailable as exc:
                print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--postgres-url", help="PostgreSQL server URL (may CREATE DATABASE)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("URL", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        url, size = args.worker
        print(json.dumps(run_case(url, int(size), Path(args.folder))))
        return

    compile_calbridge()
    results: list[tuple[str, dict[str, Any]]] = []
    with (
        tempfile.TemporaryDirectory(prefix="calbridge-bench-") as tmp,
        databases(args, Path(tmp)) as dbs,
    ):
        for db_name, fresh in dbs:
            for size in args.sizes:
                with fresh() as url:
                    done = subprocess.run(
                        [sys.executable, __file__, "--worker", url, str(size), "--folder", tmp],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if done.returncode != 0:
                        sys.exit(f"{db_name} {size}: worker failed\n{done.stderr}")
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    result |= cli_run(url, Path(result["batch"]), Path(tmp))
                results.append((db_name, result))
                print(f"{db_name:10} {size:>7,} done", file=sys.stderr)
    print_table(results)


def print_table(results: list[tuple[str, dict[str, Any]]]) -> None:
    header = (
        f"{'DB':<10} {'contacts':>8} {'import s':>9} {'res/s':>8} {'µs/addr':>8} "
        f"{'CLI s':>6} {'CLI res/s':>9} {'peak RSS MB':>11} {'CLI RSS MB':>10}"
    )
    print(f"{ADDRESSES:,} addresses per case: 40 % user hits, 40 % contact alternates, 20 % misses")
    print("res/s, µs/addr: in-process batch path; CLI: one `calbridge resolve --batch` run,")
    print("start-up included. peak RSS: the case's process (generate + import + resolve).")
    print(header)
    print("-" * len(header))
    for db, r in results:
        per, rate = r["inproc_s"] / ADDRESSES * 1e6, ADDRESSES / r["inproc_s"]
        print(
            f"{db:<10} {r['contacts']:>8,} {r['import_s']:>9.2f} {rate:>8,.0f} {per:>8.1f} "
            f"{r['cli_s']:>6.2f} {ADDRESSES / r['cli_s']:>9,.0f} "
            f"{r['peak_rss_mb']:>11.0f} {r['cli_rss_mb']:>10.0f}"
        )
    for db in dict.fromkeys(db for db, _ in results):
        rows = sorted((r for d, r in results if d == db), key=lambda r: r["contacts"])
        if len(rows) >= 2:
            small, large = rows[0], rows[-1]
            ratio = large["inproc_s"] / small["inproc_s"]
            cli_ratio = large["cli_s"] / small["cli_s"]
            print(
                f"{db}: per-address cost {large['contacts']:,} / {small['contacts']:,} contacts = "
                f"{ratio:.2f}x in-process, {cli_ratio:.2f}x CLI (goal <= 1.5x)"
            )


if __name__ == "__main__":
    main()
