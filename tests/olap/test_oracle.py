"""Every reporting answer equals the oracle's, before and after every archive operation.

One seeded workload goes through the real store; the same battery of questions is
asked in each state — before export, after export, after prune, after compaction,
after a run is reopened and completed again (before and after its re-export) — of
the union reader, and of the live-only and archive-only readers over their own
part of the data. Since every answer equals the oracle in every state, every
answer is also the same in every state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest

import sync
from olap import RunAnalytics
from oltp.records import RunStatus, StepStatus
from oltp.store import RunStore
from tests.conftest import FakeClock
from tests.olap import archive_writer
from tests.olap.oracle import check
from tests.olap.workload import START, Run, play, snapshot_runs


class ArchiveJobs(Protocol):
    def export(self) -> int: ...
    def prune(self, cutoff: datetime) -> int: ...
    def compact(self) -> int: ...


class SyncJobs:
    """The real exporter, prune and compaction of the ``sync`` package."""

    def __init__(self, dsn: str, root: Path, clock: FakeClock) -> None:
        self.dsn, self.root, self.clock = dsn, root, clock

    def export(self) -> int:
        # Small batches leave several files per partition day, for compaction to merge.
        return sync.export_completed_runs(self.dsn, self.root, batch_size=60, clock=self.clock).runs

    def prune(self, cutoff: datetime) -> int:
        return sync.prune(self.dsn, self.clock.now - cutoff, now=self.clock.now)

    def compact(self) -> int:
        return sync.compact(self.dsn, self.root, clock=self.clock, vacuum_after=timedelta(0)).files_written


class WriterJobs:
    """The tests' own writer of docs/archive.md (tiny row groups, its own file naming)."""

    def __init__(self, dsn: str, root: Path, clock: FakeClock) -> None:
        self.dsn, self.root, self.clock = dsn, root, clock

    def export(self) -> int:
        return archive_writer.export(self.dsn, self.root, self.clock.now)

    def prune(self, cutoff: datetime) -> int:
        return archive_writer.prune(self.dsn, cutoff)

    def compact(self) -> int:
        return archive_writer.compact(self.dsn, self.root, self.clock.now)


@pytest.mark.parametrize("jobs_kind", [SyncJobs, WriterJobs], ids=["sync", "test-writer"])
def test_every_answer_matches_the_oracle_in_every_state(
    dsn: str, clock: FakeClock, tmp_path: Path, jobs_kind: Callable[[str, Path, FakeClock], ArchiveJobs]
) -> None:
    store = RunStore(dsn, clock=clock)
    model = play(store, clock)
    root = tmp_path / "archive"
    jobs: ArchiveJobs = jobs_kind(dsn, root, clock)
    union = RunAnalytics(dsn, str(root), clock=clock)
    live_only = RunAnalytics(dsn, None, clock=clock)
    files_only = RunAnalytics(None, str(root), clock=clock)
    archived: dict[object, Run] = {}

    def everything() -> list[Run]:
        return list(model.runs.values())

    def export() -> None:
        before = {r.id for r in snapshot_runs(model) if r.status is not RunStatus.RUNNING}
        written = jobs.export()
        assert written > 0
        for r in snapshot_runs(model):
            if r.id in before:
                archived[r.id] = r

    # (a) everything live, nothing archived yet
    check(union, everything(), clock.now)
    check(live_only, everything(), clock.now)
    check(files_only, [], clock.now)

    # (b) completed runs exported, still live too
    export()
    check(union, everything(), clock.now)
    check(files_only, list(archived.values()), clock.now)

    # (c) the older half pruned from PostgreSQL
    cutoff = START + timedelta(days=4)
    pruned = jobs.prune(cutoff)
    gone = {r.id for r in everything() if r.completed_at is not None and r.completed_at < cutoff}
    assert pruned == len(gone) > 0
    check(union, everything(), clock.now)
    check(live_only, [r for r in everything() if r.id not in gone], clock.now)
    check(files_only, list(archived.values()), clock.now)
    some = sorted(gone)[:5]
    for rid in some:
        expected = model.runs[rid].record(detail=True)
        assert union.get_run_detail(rid) == expected
        assert files_only.get_run_detail(rid) == expected
    assert union.get_run_detail(sorted(gone)[0].__class__(int=3)) is None

    # (d) compaction rewrites the files
    assert jobs.compact() > 0
    check(union, everything(), clock.now)
    check(files_only, list(archived.values()), clock.now)

    # (e) an archived, still-live run is reopened: Running while its archived copy says otherwise
    reopened = next(
        r for r in everything() if r.id in archived and r.id not in gone and r.steps and r.status is RunStatus.SUCCEEDED
    )
    key = next(iter(reopened.steps))
    model.retry(reopened.id, key)
    check(union, everything(), clock.now)
    clock.advance(seconds=30)
    model.step_start(reopened.id, key, "task", None, "job-again")
    clock.advance(seconds=4)
    model.step_complete(reopened.id, key, StepStatus.FAILED, None, "second try failed: quota")
    model.complete(reopened.id, RunStatus.FAILED)
    check(union, everything(), clock.now)
    export()  # the archive now holds two versions of the run
    check(union, everything(), clock.now)
    check(files_only, list(archived.values()), clock.now)
    assert files_only.get_run_detail(reopened.id) == model.runs[reopened.id].record(detail=True)
    assert union.get_run_detail(reopened.id) == model.runs[reopened.id].record(detail=True)
    clock.advance(seconds=1)
    assert jobs.prune(clock.now) > 0  # everything archived leaves PostgreSQL
    check(union, everything(), clock.now)
    jobs.compact()  # the merge left the run's partition whole: there may be nothing to rewrite
    check(union, everything(), clock.now)
    check(files_only, list(archived.values()), clock.now)
    for reader in (union, live_only, files_only):
        reader.close()
    store.close()
