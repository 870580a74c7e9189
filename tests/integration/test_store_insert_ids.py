"""``insert_with_ids``: a page of new rows gets its ids back in row order — on SQLite by one
executemany between two reads of the largest id (SQLAlchemy would send an ordered RETURNING
insert one row at a time there), on PostgreSQL by one sorted ``INSERT … RETURNING``."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, delete, select, text

from calbridge.store.db import Store, insert_with_ids


def test_inserted_rows_get_their_ids_in_row_order_whatever_came_before(store: Store) -> None:
    table = Table(
        "scratch_rows",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("label", String(20), nullable=False),
    )
    table.create(store.engine)
    with store.session() as s:
        assert insert_with_ids(s, table, []) == []
        first = insert_with_ids(s, table, [{"label": f"a{i}"} for i in range(5)])
        s.execute(delete(table).where(table.c.id == first[-1]))  # the largest id is free again
    with store.session() as s:
        second = insert_with_ids(s, table, [{"label": f"b{i}"} for i in range(1200)])
    with store.session() as s:
        label = dict(s.execute(select(table.c.id, table.c.label)).all())
    assert [label[i] for i in first[:-1]] == ["a0", "a1", "a2", "a3"]
    assert [label[i] for i in second] == [f"b{i}" for i in range(1200)]
    assert len(label) == 4 + 1200


def test_a_reserved_run_of_change_values_is_consecutive_and_costs_one_counter_update(
    store: Store,
) -> None:
    """A page of 300 new bookings takes its change values with one counter update (asked for
    with ``reserve_change_seqs``); the values are unique and increasing, and the next
    transaction goes on after them."""
    from sqlalchemy import event

    from calbridge.store.events import next_change_seq, reserve_change_seqs

    updates: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE COUNTERS"):
            updates.append(statement)

    with store.session() as s:
        before = next_change_seq(s)
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        with store.session() as s:
            reserve_change_seqs(s, 300)
            values = [next_change_seq(s) for _ in range(300)]
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert values == sorted(set(values)) and values[0] > before
    assert len(updates) == 1
    with store.session() as s:
        assert next_change_seq(s) > values[-1]


def test_insert_rows_stores_exactly_what_the_core_insert_stores(store: Store) -> None:
    """``insert_rows`` (SQLite: the driver's executemany with the columns' own conversions)
    leaves the same rows as ``session.execute(insert(table), rows)``: JSON (one object shared
    by several rows, JSON null, SQL NULL), datetimes, booleans, reserved column names, and the
    scalar default of a column the rows leave out. Date-times take a quicker conversion than
    the type's own (``store.db._fast_processor``): the stored text must be the same."""
    from datetime import UTC, datetime

    from sqlalchemy import JSON, Boolean, DateTime, insert

    from calbridge.store.db import insert_rows

    metadata = MetaData()

    def scratch(name: str) -> Table:
        return Table(
            name,
            metadata,
            Column("id", Integer, primary_key=True),
            Column("end", String(20), nullable=True),
            Column("at", DateTime),
            Column("flag", Boolean, default=False),
            Column("doc", JSON, nullable=True),
            Column("state", String(16), default="pending"),
        )

    core, fast = scratch("scratch_core"), scratch("scratch_fast")
    metadata.create_all(store.engine)
    shared = {"trace": [{"step": 1, "outcome": "ünïcode"}], "n": 2}
    rows = [
        {"end": "a", "at": datetime(2027, 3, 5, 9, 0), "flag": True, "doc": shared},
        {"end": None, "at": datetime(2027, 3, 5, 9, 0, 0, 1234), "flag": False, "doc": None},
        {"end": "c", "at": datetime(1999, 12, 31, 23, 59, 59), "flag": True, "doc": [1, "x"]},
        {"end": "d", "at": datetime(2027, 1, 1), "flag": False, "doc": shared},
        # an aware time and SQL NULL take the column type's own conversion
        {"end": "e", "at": datetime(2027, 1, 1, 8, tzinfo=UTC), "flag": True, "doc": None},
        {"end": "f", "at": None, "flag": False, "doc": {}},
    ]
    with store.session() as s:
        s.execute(insert(core), rows)
        insert_rows(s, fast, rows)
        insert_rows(s, fast, [])
    with store.session() as s:
        stored = [
            s.execute(select(t.c.end, t.c.at, t.c.flag, t.c.doc, t.c.state).order_by(t.c.id)).all()
            for t in (core, fast)
        ]
        raw = [
            s.execute(
                text(f'SELECT "end", at, flag, doc, doc IS NULL, state FROM {t.name} ORDER BY id')
            ).all()
            for t in (core, fast)
        ]
    assert stored[1] == stored[0]
    assert tuple(stored[1][0]) == ("a", datetime(2027, 3, 5, 9), True, shared, "pending")
    assert raw[1] == raw[0]  # as stored, before SQLAlchemy reads it back
    from sqlalchemy import bindparam

    from calbridge.store.db import _insert_plan

    dialect = store.engine.dialect
    if dialect.paramstyle != "qmark":
        return  # the driver's own executemany is SQLite's (qmark) only
    plan = _insert_plan(fast, tuple(rows[0]), dialect)
    assert plan is not None
    names = [*rows[0], "state"]  # the rows' keys, then the left-out column with a default
    core_sql = insert(fast).values({n: bindparam(n) for n in names}).compile(dialect=dialect)
    assert plan[0] == str(core_sql)  # the statement SQLAlchemy itself would send
