"""Alembic environment: runs on the connection ``oltp.migrate`` passes in."""

from __future__ import annotations

from alembic import context

from oltp.schema import metadata

config = context.config
connection = config.attributes["connection"]
schema = config.attributes["schema"]

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=schema,
    include_schemas=False,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
