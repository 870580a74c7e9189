"""What every command shares: opening the store, printing JSON, turning errors into messages."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from sqlalchemy.orm import Session

from calbridge.config import load_settings
from calbridge.store.db import Store, open_store

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
