"""A big import's write-ahead log is copied into the SQLite database on a helper thread while
the sync ends (``Store.checkpoint_soon``), not when the last connection closes (a pull of
that size asks for it: ``sync/test_pull_groups.py``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, Text, insert

from calbridge.store.db import open_store


def test_the_log_is_copied_into_the_database_while_the_store_stays_open(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'calbridge.db'}")
    metadata = MetaData()
    bulk = Table("bulk", metadata, Column("id", Integer, primary_key=True), Column("t", Text))
    metadata.create_all(store.engine)
    database, log = tmp_path / "calbridge.db", tmp_path / "calbridge.db-wal"
    with store.session() as session:
        session.execute(insert(bulk), [{"t": "x" * 1000} for _ in range(1500)])
    before = database.stat().st_size
    assert log.stat().st_size > 1_500_000 and before < 1_000_000  # the rows are in the log
    store.checkpoint_soon()
    store.checkpoint_soon()  # while one is under way: nothing more
    assert store._checkpoint is not None
    store._checkpoint.join(30)
    assert database.stat().st_size > before + 1_400_000  # copied, the store still open
    store.dispose()


def test_an_in_memory_or_postgresql_store_has_nothing_to_copy() -> None:
    store = open_store("sqlite:///:memory:")
    store.checkpoint_soon()
    assert store._checkpoint is None
    store.dispose()
