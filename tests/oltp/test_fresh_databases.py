"""The ``dsn`` fixture's promise: every test gets a database equal to a new copy of the migrated template.

A database a test gave back is reused only when its rows were all the test
changed: then it comes back empty, identities restarted. Any other change - to
a table, an index, a trigger, a function, a privilege, a comment, the schema
version, the database's settings - and it is dropped instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from oltp.store import RunStore
from tests.conftest import PgServer
from tests.fixtures.databases import DatabasePool

PREFIX = "flowrun_probe"


@pytest.fixture
def taken(databases: DatabasePool) -> Iterator[str]:
    """A database taken from the pool (given back by the test itself)."""
    yield databases.take(PREFIX)


def _tables_with_rows(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'flowrun'"
            " AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version'"
        ).fetchall()
        assert len(tables) > 5
        count = sql.SQL("SELECT count(*) FROM {}")
        return [t for (t,) in tables if conn.execute(count.format(sql.Identifier("flowrun", t))).fetchone() != (0,)]


def _databases(admin_dsn: str) -> set[str]:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        return {name for (name,) in admin.execute("SELECT datname FROM pg_database")}


def test_rows_are_emptied_and_the_database_reused(pg_server: PgServer, databases: DatabasePool, taken: str) -> None:
    dsn = pg_server.dsn_for(taken)
    with RunStore(dsn, migrate_schema=False) as store:
        run = uuid.uuid4()
        store.start_run(uuid.uuid4(), "probe", run, "manual")
        store.record_step_start(run, "a", "task")
        store.complete_run(run, "Failed")
    assert _tables_with_rows(dsn) != []
    leaked = psycopg.connect(dsn, autocommit=True)  # a session the test forgot: ended, not waited for

    assert databases.give_back(taken, PREFIX)
    assert _is_dead(leaked)
    again = databases.take(PREFIX)
    assert again != taken  # renamed: whatever still holds the old name cannot reach it
    assert _tables_with_rows(pg_server.dsn_for(again)) == []
    with RunStore(pg_server.dsn_for(again), migrate_schema=True) as store:  # at head already: nothing to do
        assert store.get_active_runs() == []
    assert databases.give_back(again, PREFIX)


def _is_dead(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    finally:
        conn.close()
    return False


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE flowrun.flow_runs ADD COLUMN extra int",
        "ALTER TABLE flowrun.flow_runs ALTER COLUMN flow_name SET DEFAULT 'x'",
        "CREATE INDEX probe_index ON flowrun.flow_runs (flow_name)",
        "ALTER TABLE flowrun.flow_runs DISABLE TRIGGER ALL",
        "CREATE SCHEMA other",
        "CREATE TABLE public.probe (id int)",
        "CREATE FUNCTION public.probe() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "GRANT SELECT ON flowrun.flow_runs TO PUBLIC",
        "COMMENT ON TABLE flowrun.flow_runs IS 'probe'",
        "UPDATE flowrun.alembic_version SET version_num = '0001'",
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET work_mem = ''1MB''', current_database()); END $$",
    ],
)
def test_any_other_change_drops_the_database(
    pg_server: PgServer, databases: DatabasePool, taken: str, change: str
) -> None:
    with psycopg.connect(pg_server.dsn_for(taken), autocommit=True) as conn:
        conn.execute(change)
    before = _databases(pg_server.admin_dsn)
    assert not databases.give_back(taken, PREFIX)
    assert _databases(pg_server.admin_dsn) == before - {taken}  # neither the old name nor a renamed copy is kept
