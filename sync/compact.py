"""Compaction: merge a partition's small files into few large ones, dropping superseded copies.

An export every minute leaves a file per kind per minute in today's
partition; readers pay for every file they open. Compaction, under the same
lock as export, takes one partition date at a time: it reads the files of a
kind (in groups of at most ``max_rows_per_file`` rows, oldest data first, so
memory stays bounded), drops the rows of superseded run versions, writes one
sorted file per group, then swaps the file lists and forgets the dropped
copies in ONE transaction, and only then deletes the old files. A crash before
the commit leaves an unlisted new file, after it unlisted old files: both are
orphans the next job removes, and the set of (run, revision) rows at the
newest revision is the same before, during and after.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

import pyarrow as pa
import pyarrow.fs as pafs

from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA, schema_name
from sync import crash_points, manifest
from sync.archive_identity import claim
from sync.archive_lock import archive_lock, check_wait
from sync.archive_rows import conform, sort_rows, start_range
from sync.archive_storage import ArchiveStorage
from sync.arrow_connection import ArrowConnection
from sync.arrow_schemas import KINDS, RUN_ID, Kind
from sync.export import check_batch_size
from sync.layout import COMPACTED_PREFIX, FilePath, new_batch_id, partition_dir
from sync.manifest import FileEntry
from sync.orphans import remove_leftovers
from sync.progress import Progress, ProgressUpdate, no_progress

DEFAULT_MAX_FILE_ROWS = 1_000_000
_MAX_FILE_ROWS_LIMIT = 100_000_000


class CompactReport(NamedTuple):
    """What one compaction did: partition dates rewritten, files removed and written, superseded rows dropped."""

    partitions: int
    files_removed: int
    files_written: int
    rows_dropped: int
    seconds: float


@dataclass
class _Rewrite:
    removed: list[str] = field(default_factory=list)
    added: list[FileEntry] = field(default_factory=list)
    rows_written: int = 0
    rows_dropped: int = 0


def compact(
    dsn: str,
    archive: str | os.PathLike[str],
    *,
    schema: str = DEFAULT_SCHEMA,
    clock: Clock | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    max_rows_per_file: int = DEFAULT_MAX_FILE_ROWS,
    filesystem: pafs.FileSystem | None = None,
) -> CompactReport:
    """Merge each partition's files and drop superseded copies; ``ArchiveBusy`` if another job runs."""
    max_rows = check_batch_size(max_rows_per_file, _MAX_FILE_ROWS_LIMIT, "max_rows_per_file")
    schema = schema_name(schema)
    wait = check_wait(wait)
    now_of = clock or wall_clock
    show = progress or no_progress
    storage = ArchiveStorage.open(archive, filesystem)
    started = time.monotonic()
    partitions = removed = written = dropped = rows = 0
    with ArrowConnection(dsn, schema) as conn, archive_lock(conn, schema, wait=wait):
        crash_points.reached("lock_acquired")
        claim(storage, conn, schema)
        remove_leftovers(storage, conn)
        dates = manifest.dates_to_compact(conn)
        for done, day in enumerate(dates, start=1):
            result = _compact_date(conn, storage, day, checked_now(now_of), max_rows)
            if result.removed:
                partitions += 1
                removed += len(result.removed)
                written += len(result.added)
                dropped += result.rows_dropped
                rows += result.rows_written
            show(ProgressUpdate("compact", done, len(dates), rows, time.monotonic() - started))
    seconds = time.monotonic() - started
    show(ProgressUpdate("compact", len(dates), len(dates), rows, seconds, finished=True))
    return CompactReport(partitions, removed, written, dropped, seconds)


def _compact_date(conn: ArrowConnection, storage: ArchiveStorage, day: date, now: datetime, max_rows: int) -> _Rewrite:
    with conn.transaction():
        files = manifest.files_of_date(conn, day)
        superseded = manifest.superseded_of_date(conn, day)
    batch_id = new_batch_id(now, prefix=COMPACTED_PREFIX)
    result = _Rewrite()
    for kind in KINDS:
        groups = plan_groups([f for f in files if f.kind == kind], max_rows)
        for number, group in enumerate(groups):
            # A lone file is rewritten only to drop superseded copies it may hold.
            if len(group) == 1 and superseded.num_rows == 0:
                continue
            stem = batch_id if len(groups) == 1 else f"{batch_id}-{number}"
            _rewrite_group(storage, kind, day, stem, group, superseded, result)
    if not result.removed:
        return result
    for kind in KINDS:
        storage.sync_dir(partition_dir(kind, day))
    with conn.transaction():
        manifest.swap_files(conn, result.removed, result.added, superseded, now)
        crash_points.reached("compact_before_commit")
    crash_points.reached("compact_after_commit")
    for path in result.removed:
        storage.delete(path)
        crash_points.reached("compact_old_removed")
    return result


def plan_groups(files: Sequence[FileEntry], max_rows: int) -> list[list[FileEntry]]:
    """Consecutive files (oldest data first) packed into groups of at most ``max_rows`` rows."""
    ordered = sorted(files, key=lambda f: (f.min_started_at is None, f.min_started_at, f.path))
    groups: list[list[FileEntry]] = []
    size = 0
    for entry in ordered:
        if groups and size + entry.row_count <= max_rows:
            groups[-1].append(entry)
            size += entry.row_count
        else:
            groups.append([entry])
            size = entry.row_count
    return groups


def _rewrite_group(
    storage: ArchiveStorage,
    kind: Kind,
    day: date,
    stem: str,
    group: list[FileEntry],
    superseded: pa.Table,
    result: _Rewrite,
) -> None:
    tables = [conform(storage.read_table(entry.path), kind) for entry in group]
    # Files have their own dictionaries for the status columns; a join needs one per column.
    table = pa.concat_tables(tables).unify_dictionaries()
    before = table.num_rows
    if superseded.num_rows:
        stale = superseded.rename_columns([RUN_ID[kind], "revision"])
        table = conform(table.join(stale, keys=[RUN_ID[kind], "revision"], join_type="left anti"), kind)
    table = sort_rows(table, kind)
    result.removed.extend(entry.path for entry in group)
    result.rows_dropped += before - table.num_rows
    if table.num_rows == 0:
        return
    target = FilePath(kind, day, stem)
    storage.write_parquet(target, table)
    crash_points.reached("compact_written")
    low, high = start_range(table, kind)
    result.added.append(FileEntry(target.path, kind, day, stem, table.num_rows, low, high))
    result.rows_written += table.num_rows
