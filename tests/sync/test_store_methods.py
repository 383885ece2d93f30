"""The archive jobs on both front doors: the store's clock, archive and progress callback are used.

Each test runs once on ``FlowRunStore`` and once on ``AsyncFlowRunStore`` (the
``front`` fixture): the same calls, the same answers, the same typed errors.
"""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flowrun import ArchiveConflict, ArchiveCorrupt, FlowRunStore, StoreUnavailable
from sync.progress import ProgressUpdate
from tests.conftest import FakeClock
from tests.sync import archive_checks, workload


def test_store_exports_prunes_and_compacts_with_its_clock(
    front: FlowRunStore, dsn: str, archive: str, clock: FakeClock, db: Any
) -> None:
    ids = workload.play(front, clock, 4, hours_apart=1)
    updates: list[ProgressUpdate] = []
    assert front.export(batch_size=1, progress=updates.append).runs == 4
    assert (updates[-1].task, updates[-1].finished, updates[-1].rows > 0) == ("export", True, True)
    first = clock.now
    workload.reopen_and_complete(front, clock, ids[0])
    assert front.export().runs == 1
    stamps = {r[0] for r in archive_checks.query(archive, "runs", "SELECT DISTINCT exported_at FROM t")}
    assert stamps == {first, clock.now}

    assert front.prune(timedelta(days=1)) == 0  # the store's clock says they are all recent
    clock.advance(days=2)
    assert front.prune("1d") == 4

    report = front.compact()
    assert report.partitions == 1 and report.files_removed > report.files_written == 1
    assert front.get_run_detail(ids[0]) is not None  # read back from the archive
    archive_checks.assert_exactly_once(db, archive)


def test_verify_archive_names_a_damaged_file_and_compaction_refuses_it(
    front: FlowRunStore, archive: str, clock: FakeClock
) -> None:
    workload.play(front, clock, 3, hours_apart=1)
    assert front.export(batch_size=1).runs == 3  # one file a run, one partition: compaction would merge them
    updates: list[ProgressUpdate] = []
    clean = front.verify_archive(progress=updates.append)
    assert clean.clean and clean.files == 3 and updates[-1].task == "verify"

    victim = Path(archive) / "runs" / archive_checks.data_files(archive)[1]
    data = bytearray(victim.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])  # same size, other bytes
    victim.write_bytes(bytes(data))

    report = front.verify_archive()
    assert [Path(c.path).name for c in report.corrupt] == [victim.name] and report.files == 3
    with pytest.raises(ArchiveCorrupt, match=victim.name):
        front.compact()
    assert len(archive_checks.data_files(archive)) == 3  # nothing merged


def test_move_archive_refuses_a_wrong_copy_and_the_store_then_reads_and_exports_at_the_new_place(
    front: FlowRunStore, archive: str, clock: FakeClock, db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = workload.play(front, clock, 3)
    front.export()
    stale = tmp_path / "stale"
    shutil.copytree(archive, stale)  # a copy taken before the next export
    clock.advance(days=2)
    ids += workload.play(front, clock, 1)
    front.export()
    assert front.prune("1d") == 3  # the first three now live only in the archive

    moved = str(tmp_path / "moved")
    with pytest.raises(ArchiveConflict, match="missing"):
        front.move_archive(moved)  # nothing copied there yet
    with pytest.raises(ArchiveConflict, match="older than the version"):
        front.move_archive(stale)
    assert front.settings.archive == archive  # a refused move changes nothing
    assert len(front.get_runs()) == 4

    shutil.copytree(archive, moved)
    monkeypatch.chdir(tmp_path)
    assert front.move_archive("moved") == str(Path(archive).resolve())  # relative to the directory of the call
    shutil.rmtree(archive)  # the store no longer needs the old place
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the store keeps the place the move named
    assert front.settings.archive == moved
    assert {r.id for r in front.get_runs()} == set(ids)
    assert front.get_run_detail(ids[0]) is not None  # pruned: read from the moved archive
    ids += workload.play(front, clock, 1)
    assert front.export().runs == 1
    assert not Path(archive).exists()
    archive_checks.assert_exactly_once(db, moved)


def test_move_archive_during_a_report_lets_it_finish_then_closes_the_old_reader(
    front: FlowRunStore, archive: str, clock: FakeClock, tmp_path: Path
) -> None:
    ids = workload.play(front, clock, 2)
    front.export()
    moved = str(tmp_path / "moved")
    shutil.copytree(archive, moved)
    old = front.analytics
    sources = old._sources
    # No public report can be held mid-query: a DuckDB function that waits stands in for a long one,
    # run in one reporting call's cursor (another thread's report, in flight in DuckDB).
    entered, release = threading.Event(), threading.Event()

    def gate(value: int) -> int:
        entered.set()
        release.wait(60)
        return value

    sources._duck.create_function("gate", gate)
    answers: list[object] = []

    def report() -> None:
        try:
            with sources.call(lambda snap: {}) as call:
                answers.append(call.cur.execute("SELECT gate(7)").fetchall())
        except BaseException as exc:  # handed to the test thread
            answers.append(exc)

    reporting = threading.Thread(target=report)
    reporting.start()
    try:
        assert entered.wait(60)
        assert front.move_archive(moved) == str(Path(archive).resolve())  # not DuckDB's "busy" error
    finally:
        release.set()
        reporting.join(60)
    assert answers == [[(7,)]]  # the report in flight finished on the old reader
    with pytest.raises(StoreUnavailable):
        old.get_runs()
    with pytest.raises(duckdb.ConnectionException):  # its DuckDB database was closed after the report
        sources._duck.execute("SELECT 1")
    assert {r.id for r in front.get_runs()} == set(ids)
