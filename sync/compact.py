"""Compaction: Delta's optimize over partitions with several files, a checkpoint, then a vacuum.

An export every minute leaves a file per minute in today's partition; readers pay
for every file they open. Under the same lock as export, compaction picks the
partition dates with more than one data file, verifies every file it would
rewrite against the SHA-256 recorded when it was written (``sync.integrity``: a
date holding a file that differs is left as it is and reported), and has delta-rs
rewrite the others sorted by start time (z-order on one column) in ONE commit,
which PostgreSQL then records as the version readers use, with the hashes of the
files the rewrite wrote. A checkpoint follows, so readers load the log from one file.
Files the rewrite removed stay on storage: a reader still on an older version
keeps reading them. ``vacuum`` deletes them only once they have been out of the
table for the retention window (``vacuum_after``, default 6 hours); their hashes
go with them. The search index of every file optimize wrote (or that an export left
without one) is written before the checkpoint, and the index of every file vacuum
deletes goes with it (``sync.search_index``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import date, timedelta
from typing import NamedTuple

from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA
from oltp.errors import InvalidArgument
from sync import bookkeeping, crash_points, file_hashes, search_index
from sync.archive_identity import claim
from sync.archive_location import ArchiveLocation
from sync.archive_lock import archive_lock, job_target
from sync.archive_table import ArchiveTable, DataFile
from sync.arrow_connection import ArrowConnection
from sync.errors import ArchiveCorrupt
from sync.export import check_batch_size, finish_pending
from sync.integrity import FileCheck, WrittenFiles, verify_partitions
from sync.progress import Progress, ProgressUpdate, no_progress
from sync.v1_archive import is_v1_name, require_upgraded, upgrade_required

DEFAULT_MAX_FILE_ROWS = 1_000_000
DEFAULT_VACUUM_AFTER = timedelta(hours=6)
_MAX_FILE_ROWS_LIMIT = 100_000_000
# Bytes per archived run in a compacted file, to turn a row cap into delta-rs's byte target.
_BYTES_PER_ROW = 256


class CompactReport(NamedTuple):
    """What one compaction did: partition dates rewritten, files removed and written, rows dropped (always 0)."""

    partitions: int
    files_removed: int
    files_written: int
    rows_dropped: int
    seconds: float
    files_vacuumed: int = 0


def compact(
    dsn: str,
    archive: str | os.PathLike[str] | ArchiveLocation,
    *,
    schema: str = DEFAULT_SCHEMA,
    clock: Clock | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    max_rows_per_file: int = DEFAULT_MAX_FILE_ROWS,
    vacuum_after: timedelta = DEFAULT_VACUUM_AFTER,
    storage_options: Mapping[str, str] | None = None,
) -> CompactReport:
    """Rewrite each partition's files into few sorted ones, checkpoint, vacuum; ``ArchiveBusy`` if a job runs."""
    max_rows = check_batch_size(max_rows_per_file, _MAX_FILE_ROWS_LIMIT, "max_rows_per_file")
    if not isinstance(vacuum_after, timedelta) or vacuum_after < timedelta(0):
        raise InvalidArgument(f"vacuum_after must be a timedelta >= 0, got {vacuum_after!r}")
    schema, wait, location = job_target(archive, schema, wait, storage_options)
    require_upgraded(location)
    now_of = clock or wall_clock
    show = progress or no_progress
    started = time.monotonic()
    with ArrowConnection(dsn, schema) as conn, archive_lock(conn, schema, wait=wait):
        crash_points.reached("lock_acquired")
        table = ArchiveTable.open(location)
        state = claim(conn, location, table, checked_now(now_of))
        check = FileCheck(location)
        new_files = WrittenFiles(table, state.version, check)
        state = finish_pending(conn, table, state, now_of, new_files)
        if not table.exists:
            return CompactReport(0, 0, 0, 0, time.monotonic() - started)
        _refuse_v1_files(table)
        dates, corrupt = _dates_to_compact(conn, table.files(), check)
        show(ProgressUpdate("compact", 0, len(dates), 0, time.monotonic() - started))
        removed = written = 0
        if dates:
            metrics = table.optimize(dates, target_size=max_rows * _BYTES_PER_ROW)
            removed, written = int(metrics.get("numFilesRemoved", 0)), int(metrics.get("numFilesAdded", 0))
            crash_points.reached("compact_committed")
            assert table.version is not None
            hashes = new_files.hashes(table)
            with conn.transaction():
                bookkeeping.record_version(conn, table.version, checked_now(now_of))
                file_hashes.record(conn, hashes, file_hashes.WRITE, checked_now(now_of))
            state = state._replace(version=table.version)
            crash_points.reached("compact_recorded")
        if table.version is not None and table.version > state.version:
            # Also finishes a compaction killed between its Delta commit and this record.
            hashes = new_files.hashes(table)
            with conn.transaction():
                bookkeeping.record_version(conn, table.version, checked_now(now_of))
                file_hashes.record(conn, hashes, file_hashes.WRITE, checked_now(now_of))
        # The files optimize wrote, and any an export killed before writing them left without one.
        search_index.write_missing(location, table.files())
        table.checkpoint()
        crash_points.reached("compact_checkpointed")
        vacuumed = table.vacuum(vacuum_after)
        search_index.sweep(location)  # the indexes of what vacuum deleted, now or by a killed job
        crash_points.reached("compact_vacuumed")
        with conn.transaction():
            file_hashes.forget(conn, vacuumed)
    seconds = time.monotonic() - started
    show(ProgressUpdate("compact", len(dates), len(dates), written, seconds, finished=True))
    if corrupt:
        raise corrupt[0]
    return CompactReport(len(dates), removed, written, 0, seconds, len(vacuumed))


def _dates_to_compact(
    conn: ArrowConnection, files: list[DataFile], check: FileCheck
) -> tuple[list[date], list[ArchiveCorrupt]]:
    """Dates with more than one file whose files all verify; the errors of the others."""
    by_date: dict[date, list[DataFile]] = {}
    for file in files:
        by_date.setdefault(file.started_date, []).append(file)
    several = [f for group in by_date.values() if len(group) > 1 for f in group]
    failed = verify_partitions(conn, check, several)
    dates = sorted({f.started_date for f in several} - failed.keys())
    return dates, [failed[day] for day in sorted(failed)]


def _refuse_v1_files(table: ArchiveTable) -> None:
    """Refuse before anything changes when the vacuum would take v1 files out of the table's directory.

    ``require_upgraded`` looks for the v1 marker; this catches v1 data files whose marker
    was removed by hand (the log does not list them, so a full vacuum deletes them).
    """
    strays = [path for path in table.untracked_files() if is_v1_name(path)]
    if strays:
        raise upgrade_required(table.location, table.location.file_uri(strays[0]))
