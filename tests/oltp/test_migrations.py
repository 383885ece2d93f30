"""Migrations are history: a database with data at the first revision upgrades to head, and the
schema the revisions build is exactly ``oltp.schema.metadata`` (alembic's comparison)."""

from __future__ import annotations

import uuid
import warnings
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from oltp import migrate
from oltp.errors import MigrationRequired
from oltp.records import RunStatus, StepStatus
from oltp.schema import metadata
from oltp.store import RunStore
from tests.oltp.conftest import upgrade_to

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_database_with_data_at_the_first_revision_upgrades_to_head(empty_dsn: str) -> None:
    upgrade_to(empty_dsn, "0001")
    rid, flow = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO flowrun, public")
        conn.execute(
            "INSERT INTO flow_runs (id, flow_id, flow_name, status, trigger_key, started_at)"
            " VALUES (%s, %s, 'nightly', 'Running', 'cron', %s)",
            (rid, flow, T0),
        )
        conn.execute(
            "INSERT INTO flow_steps (run_id, step_key, step_type, status, started_at, completed_at, attempt_count,"
            " output_json) VALUES (%s, 'a', 'task', 'Succeeded', %s, %s, 1, '{\"n\": 1}')",
            (rid, T0, T0),
        )
        conn.execute(
            "INSERT INTO flow_step_attempts (run_id, step_key, attempt, step_type, status, started_at, completed_at,"
            " output_json) VALUES (%s, 'a', 1, 'task', 'Succeeded', %s, %s, '{\"n\": 1}')",
            (rid, T0, T0),
        )
        conn.execute("INSERT INTO flow_dispatches (run_id, step_key, dispatched_at) VALUES (%s, 'a', %s)", (rid, T0))

    assert migrate.upgrade(empty_dsn) == migrate.head_revision() == migrate.current_revision(empty_dsn, "flowrun")
    with RunStore(empty_dsn, migrate_schema=False, clock=lambda: T0) as store:
        before = store.get_run_detail(rid)
        assert before is not None and before.steps is not None
        assert before.steps[0].attempts[0].output_json == '{"n": 1}'
        [held] = store.get_dispatches(rid)
        assert (held.step_key, held.owner, held.lease_expires_at) == ("a", None, None)
        # The upgraded functions run on the old rows: fencing, attempt numbers, control.
        store.record_step_complete(rid, "a", "Succeeded", '{"n": 1}')  # the same outcome: a no-op
        assert store.record_step_start(rid, "b", "task").attempt == 1
        assert store.request_cancel(rid) is True
        assert store.complete_run(rid, "Cancelled") is True
        after = store.get_run_detail(rid)
        assert after is not None and after.status is RunStatus.CANCELLED
        assert after.steps is not None and after.steps[0].status is StepStatus.SUCCEEDED


# Created by revision 0001 on expressions the metadata cannot declare (alembic skips them).
TRIGRAM_INDEXES = {"ix_flow_runs_search_trgm", "ix_flow_step_attempts_search_trgm"}


def _schema_diff(dsn: str, target: sa.MetaData) -> list[Any]:
    with migrate._engine(dsn, "flowrun").connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # alembic's notes on the expression indexes it skips
        context = MigrationContext.configure(conn, opts={"compare_server_default": True, "compare_type": True})
        diff = compare_metadata(context, target)
    return [
        d
        for d in diff
        if not (d[0] == "remove_table" and d[1].name == "alembic_version")
        and not (d[0] == "remove_index" and d[1].name in TRIGRAM_INDEXES)
    ]


def test_the_migrated_schema_equals_the_metadata(empty_dsn: str) -> None:
    migrate.upgrade(empty_dsn)
    assert _schema_diff(empty_dsn, metadata) == []
    # The comparison sees drift: a column the revisions never added.
    drifted = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["flow_runs"].append_column(sa.Column("priority", sa.Integer))
    assert [d[0] for d in _schema_diff(empty_dsn, drifted)] == ["add_column"]


def test_the_head_a_store_checks_against_is_alembics_head() -> None:
    # Opening a store compares alembic_version with ``HEAD`` without loading alembic: a new
    # revision that does not move ``HEAD`` fails here, not in every reader of an upgraded database.
    assert migrate.script_head() == migrate.HEAD
    assert migrate.head_revision() == migrate.HEAD


def test_the_revision_read_with_one_query_is_the_one_alembic_reads(empty_dsn: str) -> None:
    def alembics(dsn: str) -> str | None:
        with migrate._engine(dsn, "flowrun").connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table_schema": "flowrun"}).get_current_revision()

    assert migrate.current_revision(empty_dsn, "flowrun") is None is alembics(empty_dsn)
    upgrade_to(empty_dsn, "0003")
    assert migrate.current_revision(empty_dsn, "flowrun") == "0003" == alembics(empty_dsn)
    with pytest.raises(MigrationRequired, match=f"at revision 0003, this library needs {migrate.HEAD}"):
        migrate.check(empty_dsn)
    assert migrate.current_revision(empty_dsn, "other") is None  # another schema has no version table


def test_a_filed_export_batch_moves_to_one_row_of_arrays_and_back(empty_dsn: str) -> None:
    # A batch a crashed job left filed at 0007 (one row per run) must still be finished or
    # discarded after the upgrade: 0008 carries it over as one row, aligned by run.
    upgrade_to(empty_dsn, "0007")
    a, b, c = sorted(uuid.uuid4() for _ in range(3))
    filed = [(b, 4, None), (a, 2, T0.date()), (c, 7, T0.date())]
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO flowrun, public")
        conn.cursor().executemany(
            "INSERT INTO archive_pending (run_id, revision, started_date, batch) VALUES (%s, %s, %s, 9)", filed
        )
    upgrade_to(empty_dsn, "0008")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO flowrun, public")
        rows = conn.execute("SELECT batch, run_ids, revisions, started_dates FROM archive_pending").fetchall()
        assert rows == [(9, [a, b, c], [2, 4, 7], [T0.date(), None, T0.date()])]
        with pytest.raises(psycopg.errors.CheckViolation):  # the arrays stay aligned
            conn.execute("UPDATE archive_pending SET revisions = revisions[1:2]")
    with migrate._engine(empty_dsn, "flowrun").connect() as conn:
        command.downgrade(migrate._config(conn, "flowrun"), "0007")
        conn.commit()
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        back = conn.execute("SELECT run_id, revision, started_date FROM flowrun.archive_pending ORDER BY revision")
        assert back.fetchall() == sorted(filed, key=lambda row: row[1])
