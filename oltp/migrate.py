"""Create or upgrade the store's schema in PostgreSQL.

Every database, new or old, is brought to the newest revision by running the
alembic revisions in ``oltp/migrations`` in order, each with its own frozen
SQL, so a new database and an upgraded one are built by the same statements.
``check`` tells a caller that chose not to migrate whether the schema is
usable, naming the command that fixes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql

from oltp.connection import connect, schema_name, translate_errors
from oltp.errors import MigrationRequired

MIGRATIONS = Path(__file__).with_name("migrations")
# One migration at a time per database, whatever the schema: concurrent `open(migrate=True)`
# calls from several processes must not race to create the same tables.
_MIGRATION_LOCK = 0x666C6F7772756E  # "flowrun"


def _config(connection: sa.Connection, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema
    return cfg


def head_revision() -> str:
    """The newest revision this library knows."""
    head = ScriptDirectory.from_config(_config(None, "flowrun")).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    return head


def _engine(dsn: str, schema: str) -> sa.Engine:
    return sa.create_engine(
        "postgresql+psycopg://",
        creator=lambda: connect(dsn, schema, autocommit=False),
        poolclass=sa.pool.NullPool,
    )


@contextmanager
def _translated() -> Iterator[None]:
    # SQLAlchemy wraps driver errors; unwrap them so they are translated like every other.
    with translate_errors():
        try:
            yield
        except sa.exc.DBAPIError as exc:
            if isinstance(exc.orig, psycopg.Error):
                raise exc.orig from exc
            raise


def current_revision(dsn: str, schema: str) -> str | None:
    """The revision the database's schema is at, or None when it has no tables yet."""
    schema = schema_name(schema)
    with _translated(), _engine(dsn, schema).connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table_schema": schema}).get_current_revision()


def upgrade(dsn: str, schema: str = "flowrun") -> str:
    """Bring the schema to head; returns the revision it is at afterwards."""
    schema = schema_name(schema)
    with _translated(), _engine(dsn, schema).connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            raw = conn.connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            raw.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.commit()
            command.upgrade(_config(conn, schema), "head")
            conn.commit()
            return head_revision()
        finally:
            # A failed migration leaves its transaction aborted; end it so the unlock can run
            # (the advisory lock is held by the session, so the rollback keeps it).
            conn.rollback()
            conn.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            conn.commit()


def check(dsn: str, schema: str = "flowrun") -> None:
    """Raise ``MigrationRequired`` unless the schema is at this library's head revision."""
    current = current_revision(dsn, schema)
    head = head_revision()
    if current != head:
        raise MigrationRequired(
            f"schema {schema!r} is at revision {current or 'none'}, this library needs {head}:"
            " run `flowrun migrate` (or open the store with migrate=True)"
        )
