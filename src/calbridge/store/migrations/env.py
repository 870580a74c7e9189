"""Alembic environment: runs against the connection handed over by ``store.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from calbridge.store.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")

if connection is None:  # run from the alembic command line: use sqlalchemy.url
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
