"""The migrations build exactly the schema the models describe: a database made by
``open_store`` (Alembic, every migration in order) compared with the models' metadata finds
no table, column or index missing or extra on either side. (A new module declaring tables
must be added to ``MODEL_MODULES``: the test finds its tables "extra" in the database.)"""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from calbridge.store.db import open_store
from calbridge.store.models import Base

# Every module that declares tables or indexes on the shared metadata:
MODEL_MODULES = (
    "calbridge.ops.bookings",
    "calbridge.ops.history",
    "calbridge.service.tokens",
    "calbridge.web.models",
)


def test_a_migrated_database_has_exactly_the_models_tables_columns_and_indexes(
    tmp_path: Path,
) -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
    store = open_store(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = compare_metadata(context, Base.metadata)
    finally:
        store.dispose()
    ignored = {"alembic_version"}
    meaningful = [
        d for d in differences
        if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name in ignored)
    ]  # fmt: skip
    assert meaningful == [], "\n".join(map(str, meaningful))
