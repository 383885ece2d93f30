"""Compaction: fewer files, no superseded copies, the same newest rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from oltp.store import RunStore
from sync import compact, export_completed_runs
from tests.conftest import FakeClock
from tests.sync import archive_checks, workload

KEYS = {
    "runs": "id, revision",
    "steps": "run_id, revision, step_key",
    "attempts": "run_id, revision, step_key, attempt",
}


def _newest(archive: str, db: Any) -> dict[str, list[tuple[Any, ...]]]:
    archived = set(db.execute("SELECT run_id, revision FROM archived_runs").fetchall())
    return {
        kind: sorted(r for r in archive_checks.query(archive, kind, f"SELECT {cols}, * FROM t") if r[:2] in archived)
        for kind, cols in KEYS.items()
    }


def _exports(store: RunStore, clock: FakeClock, dsn: str, archive: str) -> list[Any]:
    ids = []
    for _ in range(4):  # an export every few runs: several small files per partition
        ids += workload.play(store, clock, 3, hours_apart=3)
        export_completed_runs(dsn, archive, batch_size=2, clock=clock)
    workload.reopen_and_complete(store, clock, ids[0])
    workload.reopen_and_complete(store, clock, ids[5])
    export_completed_runs(dsn, archive, clock=clock)
    return ids


def test_compaction_merges_partitions_and_keeps_the_newest_rows_identical(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    _exports(store, clock, dsn, archive)
    before = _newest(archive, db)
    files_before = len(archive_checks.parquet_files(archive))
    days = db.execute("SELECT count(DISTINCT started_date) FROM archive_files").fetchone()[0]

    report = compact(dsn, archive, clock=clock)

    assert _newest(archive, db) == before  # every column of every newest row, byte for byte
    files_after = len(archive_checks.parquet_files(archive))
    assert files_after == 3 * days  # one file per kind and partition
    assert files_after == report.files_written + (files_before - report.files_removed)
    assert 0 < report.partitions <= days
    assert report.rows_dropped > 0  # the two superseded copies, with their steps and attempts
    assert db.execute("SELECT count(*) FROM archive_superseded").fetchone() == (0,)
    archive_checks.assert_exactly_once(db, archive)
    for rel in archive_checks.parquet_files(archive):
        kind = rel.split("/")[0]
        start = pq.read_table(Path(archive) / rel).column("started_at" if kind == "runs" else "run_started_at")
        assert start.to_pylist() == sorted(start.to_pylist())
    assert compact(dsn, archive, clock=clock).partitions == 0  # nothing left to do


def test_compaction_bounds_file_size_and_leaves_foreign_files_alone(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    _exports(store, clock, dsn, archive)
    before = _newest(archive, db)
    readme = Path(archive) / "runs" / "README.txt"
    readme.write_text("kept")

    compact(dsn, archive, clock=clock, max_rows_per_file=4)

    assert _newest(archive, db) == before
    sizes = db.execute("SELECT kind, row_count FROM archive_files").fetchall()
    # A group never exceeds the limit unless a single input file did.
    assert all(n <= 4 or kind != "runs" for kind, n in sizes)
    days = db.execute("SELECT count(DISTINCT started_date) FROM archive_files").fetchone()[0]
    assert len([kind for kind, _ in sizes if kind == "runs"]) > days  # some partitions kept several files
    assert readme.read_text() == "kept"
    archive_checks.assert_exactly_once(db, archive)
