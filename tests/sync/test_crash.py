"""Crash safety with real process kills: SIGKILL at exact moments of export and compaction, then rerun.

Each case runs an export (or compaction, or prune) in a child process that
stops at one named stage (``sync.crash_points``) and is killed there with
SIGKILL. Right after the kill every active data file must be whole and both
the newest table version (archive-only readers) and the version PostgreSQL
recorded (readers with a DSN) must hold each run at most once. Then the job is
run again to completion in this process and the archive must hold every
completed run exactly once at its newest revision, with exactly its steps and
attempts, Delta's transaction version and PostgreSQL's batch agreeing, and an
empty outbox.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oltp.store import RunStore
from sync import compact, export_completed_runs, prune
from tests.conftest import FakeClock
from tests.sync import archive_checks, killable, workload

BATCH = 3
# A killed job's server session ends a moment after the process: the next job waits for its lock.
WAIT = 30.0

# (job, stage) kills applied in order before the final run; a stage is "<name>:<n-th time>".
EXPORT_KILLS = [
    [("export", "lock_acquired:1")],
    [("export", "snapshot_read:1")],
    [("export", "pending_written:1")],
    [("export", "delta_committed:1")],
    [("export", "before_commit:1")],
    [("export", "after_commit:1")],
    [("export", "between_batches:1")],
    [("export", "snapshot_read:2")],
    [("export", "pending_written:3")],
    [("export", "delta_committed:3")],
    [("export", "before_commit:3")],
    [("export", "after_commit:3")],
    [("export", "delta_committed:1"), ("export", "pending_recorded:1")],
    [("export", "delta_committed:2"), ("export", "delta_committed:1")],
]
COMPACT_KILLS = [
    [("compact", "lock_acquired:1")],
    [("compact", "compact_committed:1")],
    [("compact", "compact_recorded:1")],
    [("compact", "compact_checkpointed:1")],
    [("compact", "compact_vacuumed:1")],
    [("compact", "compact_committed:1"), ("compact", "compact_checkpointed:1")],
]


def _prepare(store: RunStore, clock: FakeClock, dsn: str, archive: str) -> None:
    """An archive with history, and a queue of new runs plus two runs completed again."""
    first = workload.play(store, clock, 6)
    export_completed_runs(dsn, archive, batch_size=BATCH, clock=clock)
    for rid in first[:2]:
        workload.reopen_and_complete(store, clock, rid)
    workload.play(store, clock, 6)
    workload.play(store, clock, 1, complete=False)


@pytest.fixture
def children(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[killable.Child]]:
    """One child process per kill of the case, spawned (and importing) while the test prepares."""
    spawned = [killable.Child(stage, tmp_path) for _, stage in request.param]
    yield spawned
    for child in spawned:
        child.discard()


def _kill(
    kills: list[tuple[str, str]], children: list[killable.Child], dsn: str, archive: str, clock: FakeClock, db: Any
) -> None:
    for (job, _), child in zip(kills, children, strict=True):
        child.run(job, dsn, archive, clock.now.isoformat(), BATCH)
        child.kill_when_paused()
        archive_checks.assert_every_file_whole(archive)
        _assert_no_run_twice(archive, db)


def _assert_no_run_twice(archive: str, db: Any) -> None:
    """Both versions a reader may read hold each run at most once, whatever the kill left."""
    recorded = archive_checks.state(db)
    versions = [None] + ([recorded[4]] if recorded is not None and recorded[4] >= 0 else [])
    for version in versions:
        ids = [r[0] for r in archive_checks.query(archive, "runs", "SELECT id FROM t", version)]
        assert len(ids) == len(set(ids)), f"a run appears twice in version {version}"


def _newest_rows(archive: str, db: Any) -> dict[str, set[tuple[Any, ...]]]:
    """The (run, revision, ...) rows at each run's archived revision, per kind."""
    archived = set(db.execute("SELECT run_id, revision FROM archived_runs").fetchall())
    keys = {
        "runs": "id, revision",
        "steps": "run_id, revision, step_key",
        "attempts": "run_id, revision, step_key, attempt",
    }
    return {
        kind: {row for row in archive_checks.query(archive, kind, f"SELECT {cols} FROM t") if row[:2] in archived}
        for kind, cols in keys.items()
    }


def _case(kills: list[tuple[str, str]]) -> Any:
    return pytest.param(kills, kills, id="+".join(stage for _, stage in kills))


@pytest.mark.parametrize(("kills", "children"), [_case(k) for k in EXPORT_KILLS], indirect=["children"])
def test_export_killed_then_rerun_archives_every_run_once(
    kills: list[tuple[str, str]],
    children: list[killable.Child],
    store: RunStore,
    clock: FakeClock,
    dsn: str,
    archive: str,
    db: Any,
) -> None:
    _prepare(store, clock, dsn, archive)
    _kill(kills, children, dsn, archive, clock, db)

    export_completed_runs(dsn, archive, batch_size=BATCH, clock=clock, wait=WAIT)

    archive_checks.assert_exactly_once(db, archive)
    assert archive_checks.run_ids(db, "status = 'Running'")  # the running run stayed live and unarchived
    running = archive_checks.run_ids(db, "status = 'Running'")
    assert not {r[0] for r in archive_checks.query(archive, "runs", "SELECT id FROM t")} & running


@pytest.mark.parametrize(("kills", "children"), [_case(k) for k in COMPACT_KILLS], indirect=["children"])
def test_compaction_killed_then_rerun_keeps_the_newest_rows(
    kills: list[tuple[str, str]],
    children: list[killable.Child],
    store: RunStore,
    clock: FakeClock,
    dsn: str,
    archive: str,
    db: Any,
) -> None:
    _prepare(store, clock, dsn, archive)
    export_completed_runs(dsn, archive, batch_size=BATCH, clock=clock)
    before = _newest_rows(archive, db)
    assert max(Counter(f.split("/")[0] for f in archive_checks.data_files(archive)).values()) > 1

    _kill(kills, children, dsn, archive, clock, db)
    # Whatever the kill left, the next job (an export here) cleans up first.
    export_completed_runs(dsn, archive, batch_size=BATCH, clock=clock, wait=WAIT)
    archive_checks.assert_exactly_once(db, archive)
    compact(dsn, archive, clock=clock)

    archive_checks.assert_exactly_once(db, archive)
    assert _newest_rows(archive, db) == before
    per_partition = Counter(f.split("/")[0] for f in archive_checks.data_files(archive))
    assert set(per_partition.values()) == {1}


def test_prune_killed_between_batches_keeps_every_deleted_run_archived(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any, tmp_path: Path
) -> None:
    child = killable.Child("prune_batch:1", tmp_path)
    _prepare(store, clock, dsn, archive)
    export_completed_runs(dsn, archive, batch_size=BATCH, clock=clock)
    completed = archive_checks.run_ids(db, "status <> 'Running'")

    child.run("prune", dsn, archive, clock.now.isoformat(), 2)
    child.kill_when_paused()
    assert len(completed - archive_checks.run_ids(db)) == 2  # the first batch committed, nothing else
    assert prune(dsn, timedelta(0), now=clock.now, batch_size=2) == len(completed) - 2

    assert archive_checks.run_ids(db) == archive_checks.run_ids(db, "status = 'Running'")
    archived = {r[0] for r in archive_checks.query(archive, "runs", "SELECT id FROM t")}
    assert completed <= archived
