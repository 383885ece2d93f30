"""Crash safety with real process kills: SIGKILL at exact moments of export and compaction, then rerun.

Every case starts from the same prepared state (an archive with history, new runs
queued, two runs completed again), built once per module and cloned for each
case: the database as a PostgreSQL template, the archive as a copied directory
at the one location that database records. Each case runs an export (or compaction, or prune) in a child process that
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

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oltp.store import RunStore
from sync import compact, export_completed_runs, prune
from tests.conftest import FakeClock, PgServer, new_database
from tests.sync import archive_checks, killable, workload

BATCH = 3
# A killed job's server session ends a moment after the process: the next job waits for its lock.
WAIT = 30.0

# (job, stage) kills applied in order before the final run; a stage is "<name>:<n-th time>".
EXPORT_KILLS = [
    [("export", "lock_acquired:1")],
    [("export", "snapshot_read:1")],
    [("export", "pending_written:1")],
    [("export", "files_written:1")],
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


@dataclass(frozen=True)
class Prepared:
    """The prepared state: a template database, the archive it records, a copy of that archive, the clock."""

    database: str
    archive: Path
    template: Path
    now: datetime


@pytest.fixture(scope="module")
def prepared(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    """``_prepare`` once; every case of the module starts from a clone of its result."""
    root = tmp_path_factory.mktemp("crash")
    archive, clock = root / "archive", FakeClock()
    with new_database(pg_server, "flowrun_crash") as (name, dsn):
        with RunStore(dsn, clock=clock, migrate_schema=False, max_connections=4) as store:
            _prepare(store, clock, dsn, str(archive))
        shutil.copytree(archive, root / "template")
        yield Prepared(name, archive, root / "template", clock.now)


@pytest.fixture
def dsn(pg_server: PgServer, prepared: Prepared) -> Iterator[str]:
    """A clone of the prepared database, its archive reset to the prepared one (the location it records)."""
    shutil.rmtree(prepared.archive, ignore_errors=True)
    shutil.copytree(prepared.template, prepared.archive)
    with new_database(pg_server, "flowrun_crash", template=prepared.database) as (_, cloned):
        yield cloned


@pytest.fixture
def archive(prepared: Prepared) -> str:
    return str(prepared.archive)


@pytest.fixture
def clock(prepared: Prepared) -> FakeClock:
    return FakeClock(prepared.now)


@pytest.fixture(scope="module")
def spares() -> Iterator[killable.Spares]:
    spare = killable.Spares()
    yield spare
    spare.close()


@pytest.fixture
def children(request: pytest.FixtureRequest, tmp_path: Path, spares: killable.Spares) -> Iterator[list[killable.Child]]:
    """One child process per kill of the case, taken from the processes started (and imported) ahead."""
    spawned = [spares.take(stage, tmp_path) for _, stage in request.param]
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
        ids = [r[0] for r in archive_checks.Version(archive, version).query("runs", "SELECT id FROM t")]
        assert len(ids) == len(set(ids)), f"a run appears twice in version {version}"


def _newest_rows(archive: str, db: Any) -> dict[str, set[tuple[Any, ...]]]:
    """The (run, revision, ...) rows at each run's archived revision, per kind."""
    archived = set(db.execute("SELECT run_id, revision FROM archived_runs").fetchall())
    keys = {
        "runs": "id, revision",
        "steps": "run_id, revision, step_key",
        "attempts": "run_id, revision, step_key, attempt",
    }
    newest = archive_checks.Version(archive)
    return {
        kind: {row for row in newest.query(kind, f"SELECT {cols} FROM t") if row[:2] in archived}
        for kind, cols in keys.items()
    }


def _case(kills: list[tuple[str, str]]) -> Any:
    return pytest.param(kills, kills, id="+".join(stage for _, stage in kills))


@pytest.mark.parametrize(("kills", "children"), [_case(k) for k in EXPORT_KILLS], indirect=["children"])
def test_export_killed_then_rerun_archives_every_run_once(
    kills: list[tuple[str, str]],
    children: list[killable.Child],
    clock: FakeClock,
    dsn: str,
    archive: str,
    db: Any,
) -> None:
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
    clock: FakeClock,
    dsn: str,
    archive: str,
    db: Any,
) -> None:
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
    clock: FakeClock, dsn: str, archive: str, db: Any, tmp_path: Path, spares: killable.Spares
) -> None:
    child = spares.take("prune_batch:1", tmp_path)
    export_completed_runs(dsn, archive, batch_size=BATCH, clock=clock)
    completed = archive_checks.run_ids(db, "status <> 'Running'")

    child.run("prune", dsn, archive, clock.now.isoformat(), 2)
    child.kill_when_paused()
    assert len(completed - archive_checks.run_ids(db)) == 2  # the first batch committed, nothing else
    assert prune(dsn, timedelta(0), now=clock.now, batch_size=2) == len(completed) - 2

    assert archive_checks.run_ids(db) == archive_checks.run_ids(db, "status = 'Running'")
    archived = {r[0] for r in archive_checks.query(archive, "runs", "SELECT id FROM t")}
    assert completed <= archived
