"""Compaction: Delta optimize sorted by start time, a checkpoint, a vacuum only after the retention window."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from olap import RunAnalytics
from oltp.store import RunStore
from sync import compact, export_completed_runs
from tests.conftest import FakeClock
from tests.sync import archive_checks, workload


def _exports(store: RunStore, clock: FakeClock, dsn: str, archive: str) -> list[Any]:
    ids = []
    for _ in range(4):  # an export every few runs: several small files per partition
        ids += workload.play(store, clock, 3, hours_apart=3)
        export_completed_runs(dsn, archive, batch_size=2, clock=clock)
    workload.reopen_and_complete(store, clock, ids[0])
    workload.reopen_and_complete(store, clock, ids[5])
    export_completed_runs(dsn, archive, clock=clock)
    return ids


def _per_partition(archive: str) -> Counter[str]:
    return Counter(f.split("/")[0] for f in archive_checks.data_files(archive))


def test_compaction_merges_partitions_sorted_and_keeps_every_row(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    _exports(store, clock, dsn, archive)
    before = sorted(archive_checks.query(archive, "runs", "SELECT * EXCLUDE (steps, attempts) FROM t"))
    steps_before = sorted(archive_checks.query(archive, "attempts"))
    files_before = sum(_per_partition(archive).values())
    days = len(_per_partition(archive))
    assert files_before > days

    report = compact(dsn, archive, clock=clock)

    assert sorted(archive_checks.query(archive, "runs", "SELECT * EXCLUDE (steps, attempts) FROM t")) == before
    assert sorted(archive_checks.query(archive, "attempts")) == steps_before
    assert set(_per_partition(archive).values()) == {1}  # one file per partition
    assert files_before - report.files_removed + report.files_written == days
    assert 0 < report.partitions <= days
    archive_checks.assert_exactly_once(db, archive)  # PostgreSQL records the optimized version
    for rel in archive_checks.data_files(archive):
        start = pq.read_table(Path(archive) / "runs" / rel).column("started_at").to_pylist()
        assert start == sorted(start)
    assert (Path(archive) / "runs" / "_delta_log" / "_last_checkpoint").exists()
    assert compact(dsn, archive, clock=clock).partitions == 0  # nothing left to do


def test_removed_files_stay_for_the_retention_window_so_older_versions_stay_readable(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    _exports(store, clock, dsn, archive)
    old_version = archive_checks.state(db)[4]  # type: ignore[index]
    old_rows = sorted(archive_checks.query(archive, "runs", "SELECT id, revision FROM t", old_version))

    report = compact(dsn, archive, clock=clock)  # default retention: hours
    assert report.files_vacuumed == 0
    assert sorted(archive_checks.query(archive, "runs", "SELECT id, revision FROM t", old_version)) == old_rows

    # The files the compaction removed, and those the merge of the re-exported runs removed.
    assert compact(dsn, archive, clock=clock, vacuum_after=timedelta(0)).files_vacuumed > report.files_removed
    assert sorted(archive_checks.query(archive, "runs", "SELECT id, revision FROM t")) == old_rows
    archive_checks.assert_exactly_once(db, archive)


def test_readers_run_through_back_to_back_compactions_without_a_failed_call(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    _exports(store, clock, dsn, archive)
    with_dsn = RunAnalytics(dsn, archive, clock=clock)
    files_only = RunAnalytics(None, archive, clock=clock)
    base = {reader: {r.id for r in reader.get_runs(take=1000)} for reader in (with_dsn, files_only)}
    stop = threading.Event()
    failures: list[BaseException] = []
    calls = Counter[str]()

    def read(name: str, reader: RunAnalytics) -> None:
        while not stop.is_set():
            try:
                ids = [r.id for r in reader.get_runs(take=1000)]
                # Every run once, none lost, whatever version the call read.
                assert len(ids) == len(set(ids)) and base[reader] <= set(ids)
                assert len(reader.get_runs_page(search="fetch", take=1000).runs) > 0
                calls[name] += 1
            except BaseException as exc:  # every failed call counts
                failures.append(exc)

    threads = [threading.Thread(target=read, args=(n, r)) for n, r in (("dsn", with_dsn), ("files", files_only))]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(4):
            # New small files, then a compaction that rewrites them: readers always mid-flight.
            ids = workload.play(store, clock, 2, hours_apart=1)
            export_completed_runs(dsn, archive, batch_size=1, clock=clock)
            assert set(ids) <= {r.id for r in files_only.get_runs(take=1000)}
            compact(dsn, archive, clock=clock, vacuum_after=timedelta(hours=1 + round_))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert calls["dsn"] > 0 and calls["files"] > 0
    with_dsn.close()
    files_only.close()
