"""Create or upgrade the store's schema in PostgreSQL.

Every database, new or old, is brought to the newest revision by running the
alembic revisions in ``oltp/migrations`` in order, each with its own frozen
SQL, so a new database and an upgraded one are built by the same statements.
``check`` tells a caller that chose not to migrate whether the schema is
usable, naming the command that fixes it.

Opening a store only checks: one query of ``alembic_version`` against ``HEAD``.
alembic and SQLAlchemy (about half a second of imports) are loaded only to migrate.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from oltp.connection import connect, schema_name, translate_errors
from oltp.errors import MigrationRequired

if TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest revision in ``oltp/migrations/versions``: a new revision changes it here, and
# tests/oltp/test_migrations.py fails while this and alembic's own head differ.
HEAD = "0008"
# One migration at a time per database, whatever the schema: concurrent `open(migrate=True)`
# calls from several processes must not race to create the same tables.
_MIGRATION_LOCK = 0x666C6F7772756E  # "flowrun"


def _config(connection: sa.Connection, schema: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema
    return cfg


def head_revision() -> str:
    """The newest revision this library knows."""
    return HEAD


def script_head() -> str:
    """The head of the revision scripts as alembic reads them (``HEAD`` must equal it)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config(None, "flowrun")).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    return head


def _engine(dsn: str, schema: str) -> sa.Engine:
    import sqlalchemy as sa

    return sa.create_engine(
        "postgresql+psycopg://",
        creator=lambda: connect(dsn, schema, autocommit=False),
        poolclass=sa.pool.NullPool,
    )


@contextmanager
def _translated() -> Iterator[None]:
    # SQLAlchemy wraps driver errors; unwrap them so they are translated like every other.
    import sqlalchemy as sa

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
    query = sql.SQL("SELECT version_num FROM {}.alembic_version").format(sql.Identifier(schema))
    with connect(dsn, schema) as conn, translate_errors():
        try:
            rows = conn.execute(query).fetchall()
        except psycopg.errors.UndefinedTable:
            return None  # alembic's own reading: no version table, no revision
    if len(rows) > 1:
        raise MigrationRequired(f"schema {schema!r} records {len(rows)} revisions at once: run `flowrun migrate`")
    return str(rows[0][0]) if rows else None


def upgrade(dsn: str, schema: str = "flowrun") -> str:
    """Bring the schema to head; returns the revision it is at afterwards."""
    from alembic import command

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
            return HEAD
        finally:
            # A failed migration leaves its transaction aborted; end it so the unlock can run
            # (the advisory lock is held by the session, so the rollback keeps it).
            conn.rollback()
            conn.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            conn.commit()


def check(dsn: str, schema: str = "flowrun") -> None:
    """Raise ``MigrationRequired`` unless the schema is at this library's head revision."""
    current = current_revision(dsn, schema)
    head = HEAD
    if current != head:
        raise MigrationRequired(
            f"schema {schema!r} is at revision {current or 'none'}, this library needs {head}:"
            " run `flowrun migrate` (or open the store with migrate=True)"
        )
