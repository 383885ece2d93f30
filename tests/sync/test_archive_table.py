"""The archive's Delta table handle: the files of its loaded version, and the log it keeps."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from sync.archive_location import ArchiveLocation
from sync.archive_table import ArchiveTable
from sync.arrow_schemas import RUNS

DAY = date(2026, 1, 1)


def _row() -> pa.Table:
    started = datetime(2026, 1, 1, 12, tzinfo=UTC)
    run: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "flow_id": str(uuid.uuid4()),
        "flow_name": "nightly",
        "status": "Succeeded",
        "trigger_key": "manual",
        "trigger_data_json": None,
        "background_job_id": None,
        "started_at": started,
        "completed_at": started,
        "source_run_id": None,
        "revision": 1,
        "exported_at": started,
        "search_doc": "nightly",
        "steps": [],
        "attempts": [],
        "started_date": DAY,
    }
    return pa.Table.from_pylist([run], schema=RUNS)


def _commits(log: Path) -> list[int]:
    return sorted(int(p.name.split(".")[0]) for p in log.glob("*.json"))


def _age(log: Path, days: int) -> None:
    """Make every commit file of ``log`` look ``days`` old (expired-log cleanup goes by modification time)."""
    then = time.time() - days * 86_400
    for path in log.glob("*.json"):
        os.utime(path, (then, then))


def test_expired_commits_go_after_the_commit_that_checkpoints_and_batches_stay_known(tmp_path: Path) -> None:
    location = ArchiveLocation.resolve(tmp_path)
    table = ArchiveTable.open(location)
    log = Path(location.table_uri) / "_delta_log"
    assert table.write(_row(), "store", 1) == 0
    DeltaTable(location.table_uri).alter.set_table_properties({"delta.checkpointInterval": "4"})
    table.refresh()
    assert len(table.files()) == 1
    table.checkpoint()  # at version 1: the expired commit before it (0) may go from now on

    _age(log, 40)
    assert table.write(_row(), "store", 2) == 2
    # A commit that writes no checkpoint leaves the log alone (it does not even list it).
    assert _commits(log) == [0, 1, 2]
    assert len(table.files()) == 2

    _age(log, 40)
    assert table.write(_row(), "store", 3) == 3
    # Version 3 is the fourth commit: its hook checkpoints, then removes the expired commits before a checkpoint.
    assert _commits(log) == [1, 2, 3]
    assert (log / "00000000000000000003.checkpoint.parquet").exists()
    assert [f.path for f in table.files()] == [f.path for f in ArchiveTable.open(location).files()]
    assert len(table.files()) == 3
    reopened = ArchiveTable.open(location)
    assert (reopened.version, reopened.committed_batch("store")) == (3, 3)


def test_a_table_whose_checkpoint_interval_is_no_positive_number_takes_batches(tmp_path: Path) -> None:
    # delta-rs accepts such a setting (another writer may have made it); the hook is then its own.
    location = ArchiveLocation.resolve(tmp_path)
    table = ArchiveTable.open(location)
    table.write(_row(), "store", 1)
    for batch, interval in enumerate(("0", "-5", "every"), start=2):
        DeltaTable(location.table_uri).alter.set_table_properties({"delta.checkpointInterval": interval})
        table.refresh()
        assert table.write(_row(), "store", batch) == ArchiveTable.open(location).version
    assert (table.committed_batch("store"), len(table.files())) == (4, 4)
