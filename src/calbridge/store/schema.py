"""The newest schema revision, read from the migration scripts without importing Alembic or
SQLAlchemy (``open_store`` and ``calbridge sync``'s quick path compare it with the database's)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


@cache
def head_revision() -> str | None:
    """The newest migration's revision id, read from the scripts without importing Alembic:
    the one revision no other script names as its ``down_revision``. None when the scripts
    do not have exactly one head (then Alembic decides, and says what is wrong). Read once
    per process: the scripts are part of the installed program."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        values = dict(_REVISION_LINE.findall(script.read_text(encoding="utf-8")))
        revision = values.get("revision", "").strip("\"'")
        if not revision:
            return None
        revisions.add(revision)
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", values.get("down_revision", "")))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
