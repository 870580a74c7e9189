"""What every command shares: opening the store, printing JSON, turning errors into messages."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from calbridge.config import load_settings
from calbridge.store.db import Store, open_store
from calbridge.sync.report import SyncReport

console = Console()
err_console = Console(stderr=True)


def store() -> Store:
    return open_store(load_settings().resolved_database_url())


@contextmanager
def session() -> Iterator[Session]:
    opened = store()
    try:
        with opened.session() as s:
            yield s
    finally:
        opened.dispose()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def print_jsonl(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")


def report_table(reports: list[SyncReport], title: str | None = None) -> Table:
    """What ``calbridge sync`` did per calendar, as the CLI and the demo show it."""
    table = Table(
        "calendar",
        "pulled",
        "created",
        "updated",
        "cancelled",
        "pushed +/~/-",
        "conflicts",
        "rejected",
        "requests",
        "status",
        title=title,
    )
    for r in reports:
        table.add_row(
            r.calendar,
            str(r.pulled),
            str(r.created),
            str(r.updated),
            str(r.cancelled),
            f"{r.pushed_created}/{r.pushed_updated}/{r.pushed_deleted}",
            str(r.conflicts),
            str(r.rejected),
            str(r.requests),
            "[green]ok[/]" if r.ok else f"[red]{r.error}[/]",
        )
    return table
