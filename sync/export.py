"""Export completed runs from the outbox to the Parquet archive, exactly once.

Under the archive lock, leftovers of a crashed job are removed first; then the
outbox is drained in batches. Each batch is read from one snapshot, written as
three files per partition date (published atomically by ``ArchiveStorage``),
and then recorded in ONE transaction that lists the files, moves the runs'
archived revision up and deletes the outbox rows taken. Until that commit the
new files are unlisted orphans; after it the outbox no longer offers those
revisions. A crash anywhere therefore loses nothing and doubles nothing: the
next export removes the orphans and exports the still-queued runs again.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA, schema_name
from oltp.errors import InvalidArgument
from sync import crash_points, manifest, snapshot
from sync.archive_identity import claim
from sync.archive_lock import archive_lock, check_wait
from sync.archive_rows import conform, sort_rows, split_by_date, start_range
from sync.archive_storage import ArchiveStorage
from sync.arrow_connection import ArrowConnection
from sync.arrow_schemas import KINDS
from sync.layout import FilePath, new_batch_id, partition_dir
from sync.manifest import FileEntry
from sync.orphans import remove_leftovers
from sync.prefetch import BatchPrefetcher
from sync.progress import Progress, ProgressUpdate, no_progress
from sync.snapshot import Batch

DEFAULT_BATCH_SIZE = 20_000
MAX_BATCH_SIZE = 1_000_000


class ExportReport(NamedTuple):
    """What one export call wrote: distinct runs, rows of each kind, files, wall time."""

    runs: int
    steps: int
    attempts: int
    files: int
    seconds: float


def check_batch_size(value: object, maximum: int = MAX_BATCH_SIZE, name: str = "batch_size") -> int:
    """A batch size: an integer between 1 and ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidArgument(f"{name} must be an integer between 1 and {maximum}, got {value!r}")
    return value


def export_completed_runs(
    dsn: str,
    archive: str | os.PathLike[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    schema: str = DEFAULT_SCHEMA,
    clock: Clock | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    filesystem: pafs.FileSystem | None = None,
) -> ExportReport:
    """Archive every completed run waiting in the outbox; ``ArchiveBusy`` if another job holds the lock."""
    size = check_batch_size(batch_size)
    schema = schema_name(schema)
    wait = check_wait(wait)
    now_of = clock or wall_clock
    show = progress or no_progress
    storage = ArchiveStorage.open(archive, filesystem)
    started = time.monotonic()
    totals = [0, 0, 0, 0]  # runs, steps, attempts, files
    with ArrowConnection(dsn, schema) as conn, archive_lock(conn, schema, wait=wait):
        crash_points.reached("lock_acquired")
        # Reading has no side effect: the first batch is read while leftovers are cleaned up.
        with BatchPrefetcher(dsn, schema, size) as batches:
            claim(storage, conn, schema)
            remove_leftovers(storage, conn)
            queued = snapshot.outbox_size(conn)
            batch_ids: list[str] = []
            for batch in batches:
                crash_points.reached("snapshot_read")
                now = checked_now(now_of)
                batch_id = new_batch_id(now)
                files = _write_files(storage, batch, batch_id, now)
                crash_points.reached("files_published")
                with conn.transaction(by_key=True):
                    manifest.add_files(conn, files, now)
                    repeats = manifest.archive_runs(
                        conn,
                        batch.runs.column("id").combine_chunks(),
                        batch.runs.column("revision").combine_chunks(),
                        pc.cast(batch.runs.column("started_at"), pa.date32()).combine_chunks(),
                        batch_id,
                        batch_ids,
                    )
                    manifest.drop_from_outbox(conn, batch.taken_ids, batch.taken_revisions)
                    crash_points.reached("before_commit")
                crash_points.reached("after_commit")
                batch_ids.append(batch_id)
                counts = (batch.runs.num_rows - repeats, batch.steps.num_rows, batch.attempts.num_rows, len(files))
                totals = [a + b for a, b in zip(totals, counts, strict=True)]
                show(ProgressUpdate("export", totals[0], queued, sum(totals[:3]), time.monotonic() - started))
                crash_points.reached("between_batches")
    seconds = time.monotonic() - started
    show(ProgressUpdate("export", totals[0], queued, sum(totals[:3]), seconds, finished=True))
    return ExportReport(totals[0], totals[1], totals[2], totals[3], seconds)


def _write_files(storage: ArchiveStorage, batch: Batch, batch_id: str, now: datetime) -> list[FileEntry]:
    """Publish the batch's rows: one file per kind and partition date; directories synced last."""
    if batch.runs.num_rows == 0:
        return []
    raw = {"runs": batch.runs, "steps": batch.steps, "attempts": batch.attempts}
    entries: list[FileEntry] = []
    directories: set[str] = set()
    for kind in KINDS:
        table = sort_rows(conform(raw[kind], kind, now), kind)
        for day, part in split_by_date(table, kind):
            target = FilePath(kind, day, batch_id)
            storage.write_parquet(target, part)
            low, high = start_range(part, kind)
            entries.append(FileEntry(target.path, kind, day, batch_id, part.num_rows, low, high))
            directories.add(partition_dir(kind, day))
        del table
    for directory in sorted(directories):
        storage.sync_dir(directory)
        crash_points.reached("dir_synced")
    return entries
