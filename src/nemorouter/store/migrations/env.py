"""Alembic environment: migrations run on the connection the gateway hands over
(`store.engine.upgrade`), never from an alembic.ini."""

from __future__ import annotations

from alembic import context

from nemorouter.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `nemorouter db upgrade`, not the alembic CLI")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
