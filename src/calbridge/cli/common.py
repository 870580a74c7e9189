"""What every command shares: opening the store, printing JSON, printing tables and lines.

Text from outside (event titles, names, locations, notes, server replies, file paths) is never
read as rich markup: both consoles are made with ``markup=False``, ``emoji=False`` and
``highlight=False``, and our own styling is applied with :class:`rich.text.Text` styles, never
with ``[markup]`` in a string. :class:`Rows` is the one way commands print tables: on a terminal
a rich table whose columns wrap instead of truncating; in a pipe (stdout not a terminal) plain,
untruncated lines — tab-separated fields under a header line, or ``key: value`` lines — so
``grep``/``cut`` work; ``--json`` remains the format for scripts. Control characters in outside
text are shown escaped (``\\n``, ``\\x1b``), so a hostile title cannot drive the terminal or
split a record over two lines.

rich is imported when something is first printed through it (``console``, ``err_console``,
:func:`say`, :class:`Rows` on a terminal), not when this module is: ``calbridge sync --json``
never loads it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

from calbridge.config import load_settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text
    from sqlalchemy.orm import Session

    from calbridge.store.db import Store
    from calbridge.sync.report import SyncReport

    console: Console
    err_console: Console


def make_console(stderr: bool = False) -> Console:
    """A console that prints strings as they are: no markup, no emoji codes, no highlighting."""
    from rich.console import Console

    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)


def __getattr__(name: str) -> Any:
    """``console`` and ``err_console``, made on first use (importing rich then)."""
    if name in ("console", "err_console"):
        made = make_console(stderr=name == "err_console")
        globals()[name] = made
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _console(err: bool = False) -> Console:
    made: Console = __getattr__("err_console" if err else "console")
    return made


Cell: TypeAlias = "str | Text | None"


def shown(value: object) -> str:
    """``value`` as text for a person: control characters (C0, DEL, C1) and the Unicode line
    and paragraph separators (U+2028, U+2029) escaped, the rest as it is. ``None`` is shown
    as an em dash."""
    if value is None:
        return "—"
    text = str(value)
    if not any(_is_control(ch) for ch in text):
        return text
    return "".join(_escape_control(ch) if _is_control(ch) else ch for ch in text)


def _is_control(ch: str) -> bool:
    code = ord(ch)
    # C0, DEL and C1 controls, and the Unicode line and paragraph separators: terminals and
    # rich break lines at all of them, so a title holding one would be cut in two
    return code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029)


def _escape_control(ch: str) -> str:
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    code = ord(ch)
    return named.get(ch) or (f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}")


def readable(value: object) -> str:
    """A stored value for a person: ``None`` as an em dash, booleans as yes/no, dicts and lists
    as compact JSON (never Python's repr), anything else as :func:`shown` text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return shown(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))
    return shown(value)


def styled(value: object, style: str) -> Text:
    """Outside text (or our own) in a style, never parsed as markup."""
    from rich.text import Text

    return Text(shown(value), style=style)


def line(*parts: Cell | tuple[object, str]) -> Text:
    """One line from parts: plain strings (outside text is safe here), ``Text``, or
    ``(value, style)`` pairs."""
    from rich.text import Text

    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(shown(part[0]), style=part[1])
        elif isinstance(part, Text):
            text.append_text(part)
        else:
            text.append(shown(part))
    return text


def say(*parts: Cell | tuple[object, str], err: bool = False) -> None:
    """Print one line built by :func:`line`; on a pipe the styles simply fall away."""
    _console(err).print(line(*parts), soft_wrap=True)


def _cell(value: Cell) -> Text:
    from rich.text import Text

    return value.copy() if isinstance(value, Text) else Text(shown(value))


class Rows:
    """A table of outside text, printed as a rich table on a terminal and as plain lines in a
    pipe. ``fields=True`` makes a two-column ``key: value`` listing (no header)."""

    def __init__(self, *columns: str, title: str | None = None, fields: bool = False) -> None:
        self.columns = list(columns) if columns else ["field", "value"]
        self.title = title
        self.fields = fields
        self.rows: list[list[Text]] = []

    def add(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([_cell(c) for c in cells])

    def table(self) -> Table:
        """The rich table (columns wrap; nothing is cut with an ellipsis)."""
        from rich import box
        from rich.table import Table

        table = Table(
            title=self.title,
            show_header=not self.fields,
            box=None if self.fields else box.HEAVY_HEAD,
            padding=(0, 2) if self.fields else (0, 1),
        )
        for column in self.columns:
            table.add_column(column, overflow="fold")
        for row in self.rows:
            table.add_row(*row)
        return table

    def plain_lines(self) -> list[str]:
        """The rows as plain lines: ``key: value`` for fields, else a tab-separated header and
        one tab-separated line per row (a title becomes a ``# title`` line)."""
        lines = [f"# {self.title}"] if self.title else []
        if self.fields:
            lines += [f"{key.plain}: {value.plain}" for key, value in self.rows]
            return lines
        lines.append("\t".join(self.columns))
        lines += ["\t".join(cell.plain for cell in row) for row in self.rows]
        return lines

    def print(self, to: Console | None = None) -> None:
        target = to or _console()
        if target.is_terminal:
            target.print(self.table())
        else:
            target.file.write("".join(text + "\n" for text in self.plain_lines()))
            target.file.flush()


def store() -> Store:
    from calbridge.store.db import open_store

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


def report_rows(reports: list[SyncReport], title: str | None = None) -> Rows:
    """What ``calbridge sync`` did per calendar, as the CLI and the demo show it."""
    rows = Rows(
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
        rows.add(
            r.calendar,
            str(r.pulled),
            str(r.created),
            str(r.updated),
            str(r.cancelled),
            f"{r.pushed_created}/{r.pushed_updated}/{r.pushed_deleted}",
            str(r.conflicts),
            str(r.rejected),
            str(r.requests),
            styled("ok", "green") if r.ok else styled(r.error, "red"),
        )
    return rows
