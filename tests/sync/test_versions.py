"""Runs exported more than once: reopened, completed again, written after completion; odd queue rows."""

from __future__ import annotations

from typing import Any

from oltp.store import RunStore
from sync import ExportReport, export_completed_runs
from tests.conftest import FakeClock
from tests.sync import archive_checks, workload


def test_a_reopened_run_completed_again_is_exported_again_and_the_old_copy_superseded(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    ids = workload.play(store, clock, 3)
    export_completed_runs(dsn, archive, clock=clock)
    store.retry_step(ids[0], "fetch")
    # Reopened: Running again, out of the outbox, not exported by the next call.
    assert export_completed_runs(dsn, archive, clock=clock).runs == 0
    clock.advance(hours=1)
    store.record_step_start(ids[0], "fetch", "http")
    store.record_step_complete(ids[0], "fetch", "Failed", None, "second try failed")
    store.complete_run(ids[0], "Failed")

    report = export_completed_runs(dsn, archive, clock=clock)

    assert (report.runs, report.steps) == (1, 2)
    archive_checks.assert_exactly_once(db, archive)
    # The re-exported run replaced its row, in the same commit: one version visible to every reader.
    copies = archive_checks.query(archive, "runs", f"SELECT revision, status FROM t WHERE id = '{ids[0]}'")
    assert copies == [(4, "Failed")]
    history = archive_checks.table(archive).history()  # type: ignore[union-attr]
    assert history[0]["operation"] == "MERGE"
    assert db.execute("SELECT revision FROM archived_runs WHERE run_id = %s", (ids[0],)).fetchone() == (4,)
    newest = archive_checks.query(
        archive,
        "attempts",
        "SELECT attempt, status, error_message FROM t"
        f" WHERE run_id = '{ids[0]}' AND revision = 4 AND step_key = 'fetch' ORDER BY attempt",
    )
    assert newest[-1] == (len(newest), "Failed", "second try failed")


def test_a_step_written_to_a_completed_run_makes_a_new_version(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    ids = workload.play(store, clock, 2)
    export_completed_runs(dsn, archive, clock=clock)
    store.record_step_start(ids[1], "cleanup", "task")
    store.record_step_complete(ids[1], "cleanup", "Succeeded", '{"freed": 3}')

    assert export_completed_runs(dsn, archive, clock=clock).runs == 1
    archive_checks.assert_exactly_once(db, archive)
    keys = archive_checks.query(archive, "steps", f"SELECT revision, step_key FROM t WHERE run_id = '{ids[1]}'")
    assert sorted(keys) == [(4, "cleanup"), (4, "fetch"), (4, "load")]


def test_a_queue_row_of_a_running_run_is_dropped_unexported(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    workload.play(store, clock, 2)
    running = workload.play(store, clock, 1, complete=False)
    export_completed_runs(dsn, archive, clock=clock)
    # A row the writers never leave behind (retry_step withdraws it), made by hand.
    db.execute("INSERT INTO export_outbox SELECT id, revision, now() FROM flow_runs WHERE id = %s", (running[0],))

    report = export_completed_runs(dsn, archive, clock=clock)

    assert report == ExportReport(0, 0, 0, 0, report.seconds)
    archive_checks.assert_exactly_once(db, archive)
    assert running[0] not in {r[0] for r in archive_checks.query(archive, "runs", "SELECT id FROM t")}


def test_a_running_run_queued_beside_completed_ones_is_dropped_with_its_steps_and_attempts(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    done = workload.play(store, clock, 2)
    running = workload.play(store, clock, 1, complete=False)
    # In the same batch as the completed runs: only the exportable runs' rows are read.
    db.execute("INSERT INTO export_outbox SELECT id, revision, now() FROM flow_runs WHERE id = %s", (running[0],))
    steps, attempts = db.execute(
        "SELECT (SELECT count(*) FROM flow_steps WHERE run_id = ANY(%s)),"
        " (SELECT count(*) FROM flow_step_attempts WHERE run_id = ANY(%s))",
        (done, done),
    ).fetchone()

    report = export_completed_runs(dsn, archive, clock=clock)

    assert (report.runs, report.steps, report.attempts, report.files) == (2, steps, attempts, 1)
    archive_checks.assert_exactly_once(db, archive)
    for kind in ("steps", "attempts"):
        assert {r[0] for r in archive_checks.query(archive, kind, "SELECT DISTINCT run_id FROM t")} == set(done)


def test_an_empty_outbox_writes_nothing_and_progress_is_reported(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    updates: list[Any] = []
    report = export_completed_runs(dsn, archive, clock=clock, progress=updates.append)
    assert (report.runs, report.files) == (0, 0)
    assert archive_checks.table(archive) is None  # no table until there is something to write
    assert [(u.task, u.done, u.finished) for u in updates] == [("export", 0, True)]

    workload.play(store, clock, 5)
    updates.clear()
    report = export_completed_runs(dsn, archive, batch_size=2, clock=clock, progress=updates.append)
    assert [u.done for u in updates] == [2, 4, 5, 5]
    assert {u.total for u in updates} == {5}
    assert updates[-1].finished and updates[-1].rows == report.runs + report.steps + report.attempts
