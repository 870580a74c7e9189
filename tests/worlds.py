"""What the integration tests' worlds share: a fresh booking store holding the example
directory (test directories have no ``__init__``; this module's name is unique on purpose)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import calbridge.demo
from calbridge.store.db import Store, open_store
from calbridge.store.directory import import_directory

EXAMPLE = Path(calbridge.demo.__file__).parent / "directory.json"


@contextmanager
def example_store(folder: Path) -> Iterator[Store]:
    """A SQLite booking store in ``folder`` with the example directory imported; disposed on
    leaving."""
    store = open_store(f"sqlite:///{folder / 'calbridge.db'}")
    with store.session() as session:
        import_directory(session, EXAMPLE.read_text(encoding="utf-8"))
    try:
        yield store
    finally:
        store.dispose()
