"""Retention: exactly the completed runs archived at their newest version, and older than the cutoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from oltp.errors import InvalidArgument
from oltp.store import RunStore
from sync import export_completed_runs, prune
from tests.conftest import FakeClock
from tests.sync import archive_checks, workload


def test_prune_removes_exactly_the_eligible_runs(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    old = workload.play(store, clock, 4, hours_apart=1)  # completed, exported, old
    reopened, redone, late_step = workload.play(store, clock, 3, hours_apart=1)
    never_done = workload.play(store, clock, 1, complete=False)[0]
    export_completed_runs(dsn, archive, clock=clock)
    store.retry_step(reopened, "fetch")  # Running again
    workload.reopen_and_complete(store, clock, redone)  # completed again, newer version queued
    store.record_step_start(late_step, "audit", "task")  # newer version queued
    not_exported = workload.play(store, clock, 1, hours_apart=1)[0]
    for rid in (old[0], old[1]):  # dispatch rows go too
        store.try_record_dispatch(rid, "fetch")
    boundary = db.execute("SELECT completed_at FROM flow_runs WHERE id = %s", (old[3],)).fetchone()[0]

    # Cutoff exactly at old[3]'s completion: "before" is strict, so old[3] stays.
    removed = prune(dsn, timedelta(hours=2), now=boundary + timedelta(hours=2), batch_size=2)

    assert removed == 3
    remaining = archive_checks.run_ids(db)
    assert set(old[:3]).isdisjoint(remaining)
    assert {old[3], reopened, redone, late_step, never_done, not_exported} == remaining
    for table in ("flow_steps", "flow_step_attempts", "flow_dispatches", "export_outbox"):
        ids = {r[0] for r in db.execute(f"SELECT DISTINCT run_id FROM {table}")}
        assert ids.isdisjoint(old[:3]), table
    # Everything pruned is still in the archive, at the revision PostgreSQL had.
    assert set(old[:3]) <= {r[0] for r in archive_checks.query(archive, "runs", "SELECT id FROM t")}

    # One microsecond later old[3] goes too; once exported, the completed-again runs follow.
    assert prune(dsn, timedelta(hours=2), now=boundary + timedelta(hours=2, microseconds=1)) == 1
    store.record_step_complete(late_step, "audit", "Succeeded")
    export_completed_runs(dsn, archive, clock=clock)
    assert prune(dsn, timedelta(0), now=clock.now + timedelta(seconds=1)) == 3  # redone, late_step, not_exported
    assert archive_checks.run_ids(db) == {reopened, never_done}
    archive_checks.assert_exactly_once(db, archive)


def test_prune_takes_durations_and_validates_before_touching_anything(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    workload.play(store, clock, 2)
    export_completed_runs(dsn, archive, clock=clock)
    for bad in (timedelta(seconds=-1), "-1d", "7 days", 7, None):
        with pytest.raises(InvalidArgument):
            prune(dsn, bad, now=clock.now)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="timezone-aware"):
        prune(dsn, "1d", now=datetime(2030, 1, 1))
    with pytest.raises(InvalidArgument, match="batch_size"):
        prune(dsn, "1d", now=clock.now, batch_size=0)
    assert len(archive_checks.run_ids(db)) == 2
    assert prune(dsn, "7d", now=clock.now) == 0
    assert prune(dsn, "1h", now=clock.now + timedelta(hours=2)) == 2
    assert prune(dsn, "1h", now=datetime(2100, 1, 1, tzinfo=UTC)) == 0
