"""Exporters and writers at the same time: the archive lock, and writes racing an export batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oltp.errors import ArchiveBusy
from oltp.store import RunStore
from sync import compact, export_completed_runs
from tests.conftest import FakeClock
from tests.sync import archive_checks, killable, workload


def test_two_exporter_processes_at_once_write_each_of_5000_runs_once(
    dsn: str, archive: str, db: Any, tmp_path: Path
) -> None:
    exporters = [killable.Child(None, tmp_path), killable.Child(None, tmp_path)]
    ids = workload.bulk_load(dsn, 5000)
    for child in exporters:  # both import meanwhile; the jobs start together
        child.run("export", dsn, archive, "2026-03-01T00:00:00+00:00", 400, wait=120)
    results = [child.result() for child in exporters]

    assert [code for code, _ in results] == [0, 0]
    assert sorted(report["runs"] for _, report in results) == [0, 5000]  # the second found nothing left
    archive_checks.assert_exactly_once(db, archive)
    assert {r[0] for r in archive_checks.query(archive, "runs", "SELECT id FROM t")} == set(ids)


def test_a_second_job_is_told_the_archive_is_busy(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any, tmp_path: Path
) -> None:
    holder = killable.Child("between_batches:1", tmp_path)
    workload.play(store, clock, 6)
    holder.run("export", dsn, archive, clock.now.isoformat(), 2)
    holder.wait_paused()

    for job in (lambda: export_completed_runs(dsn, archive, clock=clock), lambda: compact(dsn, archive, clock=clock)):
        with pytest.raises(ArchiveBusy, match=r"another export or compaction of schema 'flowrun' is running \(held by"):
            job()
    with pytest.raises(ArchiveBusy):
        export_completed_runs(dsn, archive, clock=clock, wait=0.3)  # waits, then gives up

    holder.resume()
    assert holder.result()[1]["runs"] == 6
    assert export_completed_runs(dsn, archive, clock=clock).runs == 0
    archive_checks.assert_exactly_once(db, archive)


def test_a_wait_gets_the_lock_once_the_holder_finishes(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any, tmp_path: Path
) -> None:
    holder = killable.Child("after_commit:1", tmp_path)
    workload.play(store, clock, 4)
    holder.run("export", dsn, archive, clock.now.isoformat(), 2)
    holder.wait_paused()
    holder.resume()
    # Blocks until the holder's export has drained the outbox and released the lock.
    assert export_completed_runs(dsn, archive, clock=clock, wait=60).runs == 0
    assert holder.result()[1]["runs"] == 4
    archive_checks.assert_exactly_once(db, archive)


@pytest.mark.parametrize("moment", ["snapshot_read:1", "delta_committed:1"])
def test_a_run_written_again_during_its_batch_is_exported_again_at_the_new_revision(
    moment: str, store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any, tmp_path: Path
) -> None:
    exporter = killable.Child(moment, tmp_path)
    ids = workload.play(store, clock, 4)
    exporter.run("export", dsn, archive, clock.now.isoformat(), 2)
    exporter.wait_paused()
    # The batch holds ids[0] and ids[1] at revision 2; ids[0] is completed again, ids[1]
    # gets a late step write, both after the batch's snapshot was taken.
    clock.advance(minutes=1)
    workload.reopen_and_complete(store, clock, ids[0])
    store.record_step_start(ids[1], "late", "audit")
    store.record_step_complete(ids[1], "late", "Succeeded")
    exporter.resume()
    code, report = exporter.result()

    assert (code, report["runs"]) == (0, 4)
    # The batch's commit kept both queue rows (their revision moved past the snapshot). The
    # same call exports them again if its reader had not read past them yet; otherwise the next.
    export_completed_runs(dsn, archive, clock=clock)
    archive_checks.assert_exactly_once(db, archive)
    # One row per run in the table: the newer revision replaced the batch's.
    copies = archive_checks.query(archive, "runs", "SELECT id, revision FROM t ORDER BY revision")
    assert [rev for rid, rev in copies if rid == ids[0]] == [4]
    assert [rev for rid, rev in copies if rid == ids[1]] == [4]  # start and complete: two writes
