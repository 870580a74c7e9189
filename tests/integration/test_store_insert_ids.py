"""``insert_with_ids``: a page of new rows gets its ids back in row order — on SQLite by one
executemany between two reads of the largest id (SQLAlchemy would send an ordered RETURNING
insert one row at a time there), on PostgreSQL by one sorted ``INSERT … RETURNING``."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, delete, select

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
