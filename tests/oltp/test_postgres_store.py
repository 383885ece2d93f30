"""What only the PostgreSQL store has: revisions, the export outbox, migrations, schemas, the front door."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import flowrun
from flowrun import FlowRunStore
from oltp import migrate
from oltp.errors import (
    DatabaseError,
    FlowRunStoreError,
    InvalidTransition,
    MigrationRequired,
    RunAlreadyExists,
    RunNotFound,
    StepNotFound,
)
from oltp.records import RunStatus, StepStatus
from oltp.store import RunStore
from tests.conftest import FakeClock, PgServer
from tests.oltp.conftest import start
from tests.oltp.observe import TABLES, run_version, table_rows


def _outbox(db: psycopg.Connection[Any], run_id: uuid.UUID) -> tuple[int, datetime] | None:
    row = db.execute("SELECT revision, enqueued_at FROM export_outbox WHERE run_id = %s", (run_id,)).fetchone()
    return None if row is None else (row[0], row[1])


def test_revision_and_outbox_follow_every_new_version_of_a_run(
    pg_store: RunStore, db: psycopg.Connection[Any], clock: FakeClock
) -> None:
    dsn = pg_store.dsn
    rid = start(pg_store)
    assert run_version(dsn, rid) == (1, None)
    pg_store.record_step_start(rid, "s", "task")
    pg_store.record_step_complete(rid, "s", "Failed")
    assert pg_store.try_record_dispatch(rid, "s")
    assert run_version(dsn, rid) == (1, None), "writes to a Running run are not new versions"

    t_complete = clock.advance(seconds=1)
    pg_store.complete_run(rid, "Failed")
    assert run_version(dsn, rid) == (2, 2)
    assert _outbox(db, rid) == (2, t_complete)

    clock.advance(seconds=1)
    pg_store.complete_run(rid, "Failed")  # same status: no new version
    with pytest.raises(InvalidTransition):
        pg_store.complete_run(rid, "Succeeded")
    with pytest.raises(StepNotFound):
        pg_store.record_step_complete(rid, "missing", "Succeeded")
    pg_store.annotate_dispatch(rid, "s", "job")
    pg_store.release_dispatch(rid, "s")
    assert pg_store.try_record_dispatch(rid, "s")
    assert _outbox(db, rid) == (2, t_complete)
    assert run_version(dsn, rid) == (2, 2)

    # Step writes to a terminal run make a new version and queue it again, in the same transaction.
    # (The same completion again is a retried acknowledgement: no write, no new version.)
    t_late = clock.advance(seconds=1)
    pg_store.record_step_complete(rid, "s", "Failed")
    assert run_version(dsn, rid) == (2, 2)
    pg_store.record_step_start(rid, "cleanup", "task")
    assert run_version(dsn, rid) == (3, 3) and _outbox(db, rid) == (3, t_late)
    pg_store.record_step_complete(rid, "cleanup", "Failed", error_message="late")
    assert run_version(dsn, rid) == (4, 4)

    # Retry reopens the run at a new version and withdraws the pending export.
    pg_store.retry_step(rid, "s")
    assert run_version(dsn, rid) == (5, None)
    pg_store.record_step_start(rid, "s", "task")
    pg_store.record_step_complete(rid, "s", "Succeeded")
    assert run_version(dsn, rid) == (5, None)
    t_again = clock.advance(seconds=1)
    pg_store.complete_run(rid, "Succeeded")
    assert run_version(dsn, rid) == (6, 6) and _outbox(db, rid) == (6, t_again)


def test_retry_on_a_running_run_bumps_the_revision_without_queueing(pg_store: RunStore) -> None:
    rid = start(pg_store)
    pg_store.record_step_start(rid, "s", "task")
    pg_store.retry_step(rid, "s")
    assert run_version(pg_store.dsn, rid) == (2, None)
    with pytest.raises(StepNotFound):
        pg_store.retry_step(rid, "missing")
    assert run_version(pg_store.dsn, rid) == (2, None)


def test_outbox_keeps_one_row_per_run(pg_store: RunStore, db: psycopg.Connection[Any]) -> None:
    runs = [start(pg_store) for _ in range(3)]
    for rid in runs:
        pg_store.record_step_start(rid, "s", "task")
        pg_store.complete_run(rid, "Succeeded")
        pg_store.record_step_complete(rid, "s", "Succeeded")
        pg_store.record_step_start(rid, "s", "task")
    rows = db.execute("SELECT run_id, revision FROM export_outbox ORDER BY run_id").fetchall()
    assert rows == sorted((rid, 4) for rid in runs)


def test_annotation_lands_in_the_dispatch_table(pg_store: RunStore, db: psycopg.Connection[Any]) -> None:
    rid = start(pg_store)
    pg_store.try_record_dispatch(rid, "a")
    pg_store.annotate_dispatch(rid, "a", "msg-1")
    pg_store.annotate_dispatch(rid, "b", "msg-2")
    rows = db.execute("SELECT step_key, job_id, dispatched_at FROM flow_dispatches WHERE run_id = %s", (rid,))
    assert rows.fetchall() == [("a", "msg-1", datetime(2026, 3, 1, 12, 0, tzinfo=UTC))]


def test_database_constraints_back_the_rules(pg_store: RunStore, db: psycopg.Connection[Any]) -> None:
    rid = start(pg_store)
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE flow_runs SET status = 'Bogus' WHERE id = %s", (rid,))
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE flow_runs SET completed_at = now() WHERE id = %s", (rid,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute(
            "INSERT INTO flow_steps (run_id, step_key, step_type, status) VALUES (%s, 'k', 't', 'Pending')",
            (uuid.uuid4(),),
        )
    assert RunStatus.RUNNING.value == db.execute("SELECT status FROM flow_runs").fetchone()[0]  # type: ignore[index]


def test_flowrun_store_open_exposes_the_lifecycle(dsn: str, clock: FakeClock) -> None:
    rid = uuid.uuid4()
    with FlowRunStore.open(dsn=dsn, clock=clock) as store:
        assert isinstance(store.lifecycle, RunStore)  # composed, not inherited
        record = store.start_run(uuid.uuid4(), "front door", rid, "manual", '{"a": 1}', "job")
        assert store.try_record_dispatch(rid, "s") is True
        store.annotate_dispatch(rid, "s", "job-s")
        store.record_step_start(rid, "s", "task", "{}")
        store.record_step_complete(rid, "s", flowrun.StepStatus.SUCCEEDED, "[]")
        assert store.get_dispatched_step_keys(rid) == {"s"}
        assert [r.id for r in store.get_active_runs()] == [rid]
        store.complete_run(rid, flowrun.RunStatus.SUCCEEDED)
        store.retry_step(rid, "s")
        store.release_dispatch(rid, "s")
        detail = store.get_run_detail(rid)
    assert isinstance(record, flowrun.FlowRunRecord) and record.started_at == clock.now
    assert detail is not None and detail.status is RunStatus.RUNNING
    assert detail.steps is not None and detail.steps[0].status is StepStatus.PENDING
    with pytest.raises(flowrun.StoreUnavailable):  # closed by the context manager
        store.get_active_runs()
    with FlowRunStore.open(dsn=dsn, migrate=False) as again:
        assert again.get_run_detail(rid) == detail
        with pytest.raises(flowrun.RunNotFound):
            again.complete_run(uuid.uuid4(), "Failed")


def test_start_run_refuses_the_id_of_a_run_pruned_to_the_archive(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    rid = uuid.uuid4()
    with FlowRunStore.open(dsn=dsn, archive=tmp_path / "archive", clock=clock) as store:
        store.start_run(uuid.uuid4(), "old", rid, "manual")
        store.complete_run(rid, "Failed")
        store.export()
        clock.advance(days=2)
        assert store.prune(timedelta(days=1)) == 1
        with pytest.raises(RunAlreadyExists):
            store.start_run(uuid.uuid4(), "new", rid, "manual")
        # Nothing was written: the archived run is still the only one, unchanged.
        assert [(r.id, r.flow_name, r.status) for r in store.get_runs()] == [(rid, "old", RunStatus.FAILED)]
        assert store.get_active_runs() == []


@pytest.fixture
def empty_dsn(pg_server: PgServer) -> Iterator[str]:
    """A database without any of our tables (not cloned from the migrated template)."""
    name = f"flowrun_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_server.dsn_for(name)
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_opening_an_unmigrated_database_without_migrating_names_the_command(empty_dsn: str) -> None:
    with pytest.raises(MigrationRequired) as info:
        RunStore(empty_dsn, migrate_schema=False)
    assert isinstance(info.value, FlowRunStoreError)
    assert "flowrun migrate" in str(info.value)
    with pytest.raises(MigrationRequired):
        FlowRunStore.open(dsn=empty_dsn, migrate=False)
    assert migrate.current_revision(empty_dsn, "flowrun") is None

    with RunStore(empty_dsn) as store:  # migrate=True creates the schema
        rid = start(store)
    with RunStore(empty_dsn, migrate_schema=False) as store:
        assert store.get_run_detail(rid) is not None


def test_migrating_twice_changes_nothing(empty_dsn: str) -> None:
    head = migrate.head_revision()
    assert migrate.upgrade(empty_dsn) == head
    with RunStore(empty_dsn, migrate_schema=False) as store:
        rid = start(store)
        store.record_step_start(rid, "s", "task")
        store.complete_run(rid, "Succeeded")
    rows = table_rows(empty_dsn)
    assert migrate.upgrade(empty_dsn) == head
    assert migrate.upgrade(empty_dsn) == head
    assert migrate.current_revision(empty_dsn, "flowrun") == head
    assert table_rows(empty_dsn) == rows
    migrate.check(empty_dsn)  # does not raise


def test_two_schemas_of_one_database_are_two_separate_stores(dsn: str, clock: FakeClock) -> None:
    rid = uuid.uuid4()
    with (
        RunStore(dsn, schema="tenant_a", clock=clock) as a,
        RunStore(dsn, schema="tenant_b", clock=clock) as b,
        RunStore(dsn, clock=clock) as default,
    ):
        start(a, rid, flow_name="in a")
        start(b, rid, flow_name="in b")  # same id, other schema: no RunAlreadyExists
        a.record_step_start(rid, "only-a", "task")
        a.complete_run(rid, "Succeeded")
        assert b.try_record_dispatch(rid, "k") is True
        assert a.try_record_dispatch(rid, "k") is True

        detail_a, detail_b = a.get_run_detail(rid), b.get_run_detail(rid)
        assert (detail_a.flow_name, detail_a.status) == ("in a", RunStatus.SUCCEEDED)  # type: ignore[union-attr]
        assert (detail_b.flow_name, detail_b.status, detail_b.steps) == ("in b", RunStatus.RUNNING, ())  # type: ignore[union-attr]
        assert a.get_active_runs() == [] and [r.id for r in b.get_active_runs()] == [rid]
        assert default.get_run_detail(rid) is None
        with pytest.raises(RunNotFound):
            default.try_record_dispatch(rid, "k")

    assert migrate.current_revision(dsn, "tenant_a") == migrate.head_revision()
    assert run_version(dsn, rid, "tenant_a") == (2, 2)
    assert run_version(dsn, rid, "tenant_b") == (1, None)
    assert sum(len(rows) for rows in table_rows(dsn, "flowrun").values()) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, count(*) FROM information_schema.tables"
            " WHERE table_name = ANY(%s) GROUP BY table_schema ORDER BY 1",
            (list(TABLES),),
        ).fetchall()
    assert tables == [("flowrun", 5), ("tenant_a", 5), ("tenant_b", 5)]


def test_schema_names_that_are_not_plain_identifiers_are_refused(dsn: str) -> None:
    for bad in ["", "a b", 'x"; DROP SCHEMA flowrun; --', "1abc", "a" * 64, "ünïcode"]:
        with pytest.raises(ValueError):
            RunStore(dsn, schema=bad)


def test_a_failed_migration_raises_a_store_error_and_releases_its_lock(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(sql.Identifier(name)))
    with pytest.raises(DatabaseError) as info:
        migrate.upgrade(empty_dsn)
    assert isinstance(info.value.__cause__, psycopg.errors.ReadOnlySqlTransaction)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute(sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(sql.Identifier(name)))
    assert migrate.upgrade(empty_dsn) == migrate.head_revision()
