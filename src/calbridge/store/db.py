"""Opening the store: engine, automatic migrations, sessions.

:func:`open_store` is the one entry point. It turns the database URL into an engine (SQLite in
WAL mode with foreign keys on, or PostgreSQL through psycopg 3), applies any Alembic migration
that is missing — so a new database is ready on first use — and returns a :class:`Store`.
A URL that cannot be opened raises :class:`ConfigError` with a one-line reason.

Opening an up-to-date database does not import Alembic (with Mako and every dialect, a large
part of a command's start-up): :func:`head_revision` reads the newest revision id straight from
the migration scripts (their ``revision =`` / ``down_revision =`` lines; a test checks it
against Alembic's own answer), one ``SELECT version_num FROM alembic_version`` reads the
database's, and Alembic runs only when they differ.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Table,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.schema import ScalarElementColumnDefault
from sqlalchemy.types import TypeEngine

from calbridge.errors import ConfigError
from calbridge.store.schema import MIGRATIONS, head_revision

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)


class Store:
    """An opened database: ``session()`` gives a transaction that commits on success."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._factory = sessionmaker(engine, expire_on_commit=False)
        self._checkpoint: threading.Thread | None = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._factory() as session, session.begin():
            yield session

    def checkpoint_soon(self) -> None:
        """SQLite: copy what the write-ahead log holds into the database on a helper thread,
        now (a passive checkpoint: it never waits for or blocks this process's writes). A big
        import leaves megabytes in the log, which SQLite would otherwise copy when the last
        connection closes — the process waiting for it; on its own connection the copy runs
        while the sync finishes (SQLite's work does not hold the interpreter lock), and the
        close has little left. Nothing on other databases, or while one is under way."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return
        if self._checkpoint is not None and self._checkpoint.is_alive():
            return
        self._checkpoint = threading.Thread(
            target=_checkpoint, args=(database,), name="calbridge-checkpoint", daemon=True
        )
        self._checkpoint.start()

    def dispose(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.join()
        self.engine.dispose()


def _checkpoint(database: str) -> None:
    try:
        with closing(sqlite3.connect(database, timeout=30)) as connection:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:  # only an early copy: the close does it in any case
        logger.debug("early checkpoint failed", exc_info=True)


def _normalize_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_store_engine(url: str) -> Engine:
    try:
        parsed = make_url(_normalize_url(url))
    except ArgumentError as exc:
        raise ConfigError(f"database URL '{url}' is not a URL SQLAlchemy understands") from exc
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            parent = Path(database).expanduser().parent
            if not parent.is_dir():
                raise ConfigError(f"cannot open database {url}: the folder {parent} does not exist")
            _create_private(Path(database).expanduser())
        kwargs["connect_args"] = {"timeout": 30}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"database URL '{url}': no driver for '{parsed.drivername}' "
            "(PostgreSQL needs `pip install calbridge[postgres]`)"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _create_private(path: Path) -> None:
    """Create a new SQLite database file readable by its owner only (0600) before SQLite opens
    it (its -wal and -shm files take the same mode); an existing file is left as it is."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create the database file {path}: {exc.strerror}") from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None for a new database), by one cheap query."""
    with engine.connect() as connection:
        if not engine.dialect.has_table(connection, "alembic_version"):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return str(rows[0][0]) if len(rows) == 1 else None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it already is; Alembic is
    imported only when a migration is due)."""
    head = head_revision()
    if head is not None and current_revision(engine) == head:
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.begin() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(url: str) -> Store:
    """Open (creating and migrating if needed) the database at ``url``."""
    engine = create_store_engine(url)
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(f"cannot open database {_safe(url)}: {reason}") from exc
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigError(f"cannot use database {_safe(url)}: {exc.__class__.__name__}") from exc
    return Store(engine)


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in one executemany, exactly as
    ``session.execute(insert(table), rows)`` would: the same SQL and the same values stored.

    On SQLite the rows reach the driver as tuples converted here, column by column, by the
    columns' own bind processors (JSON, DateTime…) — SQLAlchemy's generic per-row parameter
    handling costs more than SQLite's insert itself on a page of new bookings — and a JSON
    value shared by many rows (a booker's assignment trace) is serialized once per call.
    Columns the rows leave out get their scalar ``default``, as in the Core insert. Other
    dialects, and a column with a callable default the rows leave out, take the Core insert."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    plan = _insert_plan(table, tuple(rows[0]), dialect) if dialect.paramstyle == "qmark" else None
    if plan is None:
        session.execute(insert(table), list(rows))
        return
    sql, columns = plan
    values = [
        [value] * len(rows) if key is None else _column(rows, key, processor, shared)
        for key, processor, value, shared in columns
    ]
    params = list(zip(*values, strict=True))
    session.connection().exec_driver_sql(sql, params)


_Processor = Callable[[Any], Any] | None
# the SQL, and for each of its parameters: the row's key, its bind processor, None and whether
# its values are JSON (serialized once per object the rows share), or (None, None, the
# processed default of a column the rows leave out, False)
_Plan = tuple[str, list[tuple[str | None, _Processor, Any, bool]]]
_plans: dict[tuple[Table, tuple[str, ...], str], _Plan | None] = {}


def _column(
    rows: Sequence[dict[str, Any]], key: str, processor: _Processor, shared: bool
) -> list[Any]:
    """Column ``key`` of ``rows``, as the driver takes it."""
    if processor is None:
        return [row[key] for row in rows]
    if not shared:
        return [processor(row[key]) for row in rows]
    memo: dict[int, Any] = {}  # JSON: one serialization per object the rows share (the rows
    out = []  # hold every value meanwhile, so no id is reused)
    for row in rows:
        value = row[key]
        if isinstance(value, dict | list):
            found = memo.get(id(value))
            if found is None:
                found = memo[id(value)] = processor(value)
            out.append(found)
        else:
            out.append(processor(value))
    return out


_SAMPLE_TIMES = (
    datetime(2026, 12, 2, 9, 30),
    datetime(1, 1, 1, 0, 0, 0, 7),
    datetime(9999, 12, 31, 23, 59, 59, 999999),
)


def _fast_processor(column_type: TypeEngine[Any], processor: _Processor) -> _Processor:
    """``processor``, or a quicker function that gives the same values: the column type's
    own bind processor costs more than the rest of an import's insert for date-times (a
    ``%`` format per value). Used only when it agrees with the type's processor on samples,
    so a changed storage format falls back to the type's own."""
    if processor is None:
        return None
    if isinstance(column_type, DateTime):

        def as_text(value: Any) -> Any:
            if value.__class__ is datetime and value.tzinfo is None:
                return value.isoformat(" ", "microseconds")
            return processor(value)

        if all(as_text(t) == processor(t) for t in _SAMPLE_TIMES):
            return as_text
    return processor


def _insert_plan(table: Table, keys: tuple[str, ...], dialect: Dialect) -> _Plan | None:
    """The positional (``qmark``) INSERT of ``keys`` and of the columns they leave out that
    have a scalar default, with what each parameter takes; None when a left-out column's
    default is not a plain value. Cached per table, keys and dialect. Written here with the
    dialect's quoting rather than compiled from ``insert(table)``: the same statement, without
    a compilation on the first page of every process (tests compare the two)."""
    cache_key = (table, keys, dialect.name)
    if cache_key not in _plans:
        _plans[cache_key] = None
        left_out = {c.key: c.default for c in table.columns if c.key not in keys and c.default}
        if all(isinstance(d, ScalarElementColumnDefault) for d in left_out.values()):
            names = [*keys, *left_out]
            quote = dialect.identifier_preparer
            sql = (
                f"INSERT INTO {quote.format_table(table)} "
                f"({', '.join(quote.format_column(table.c[n]) for n in names)}) "
                f"VALUES ({', '.join('?' for _ in names)})"
            )
            columns: list[tuple[str | None, _Processor, Any, bool]] = []
            for name in names:
                impl = table.c[name].type.dialect_impl(dialect)
                processor = _fast_processor(impl, impl.bind_processor(dialect))
                if name in keys:
                    columns.append((name, processor, None, isinstance(impl, JSON)))
                else:
                    value = cast(ScalarElementColumnDefault, left_out[name]).arg
                    processed = value if processor is None else processor(value)
                    columns.append((None, None, processed, False))
            _plans[cache_key] = (sql, columns)
    return _plans[cache_key]


def insert_with_ids(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table`` (integer primary key ``id``); their ids, in row order.

    PostgreSQL: one ``INSERT … RETURNING`` sorted by parameter order (batched). SQLite: that
    statement is sent one row at a time there (SQLite does not promise RETURNING's order), so
    the rows go in one executemany between two reads of the largest id instead — exact, since
    SQLite gives each new row the largest id + 1, in insertion order, and a transaction that
    writes holds SQLite's only write lock (a writer that came between the first read and the
    insert makes the insert fail, it cannot slip rows in). The count is checked all the same.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name != "sqlite":
        return list(
            session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        )
    name, column = _quoted_id(table, session.get_bind().dialect)
    connection = session.connection()
    before = connection.exec_driver_sql(f"SELECT coalesce(max({column}), 0) FROM {name}").scalar()
    insert_rows(session, table, rows)
    ids = list(
        connection.exec_driver_sql(
            f"SELECT {column} FROM {name} WHERE {column} > ? ORDER BY {column}", (before,)
        ).scalars()
    )
    if len(ids) != len(rows):
        raise RuntimeError(f"{table.name}: inserted {len(rows)} rows but found {len(ids)} new ids")
    return ids


def _quoted_id(table: Table, dialect: Dialect) -> tuple[str, str]:
    quote = dialect.identifier_preparer
    return quote.format_table(table), quote.format_column(table.c.id)


def _safe(url: str) -> str:
    try:
        return make_url(_normalize_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return url
