"""Export completed runs from the outbox to the Delta archive, exactly once, PostgreSQL the referee.

Under the archive lock the job checks that the archive is this schema's
(``sync.archive_identity``), finishes a batch a crashed job left between its two
commits, then drains the outbox in batches. Batch ``n`` is read from one snapshot,
then:

1. its outbox rows are filed in ``archive_pending`` (one transaction);
2. its runs are committed to the Delta table in ONE commit carrying the app
   transaction ``(store_id, n)``, appended, or merged over the earlier rows of runs
   the archive already holds (re-exported runs replace their row);
3. ONE PostgreSQL transaction records table version and batch ``n`` in
   ``archive_state``, moves ``archived_runs`` up and deletes the outbox rows filed.

A crash before 2 leaves the filed rows, which the next job discards (the runs are
still queued). A crash between 2 and 3 leaves a Delta commit PostgreSQL has not
recorded; the next job sees ``n`` as the table's transaction version for the store
and runs 3 from the filed rows, without writing the batch again. Readers with a DSN
read the version PostgreSQL recorded, so they never see a batch before its outbox
rows are gone. After both commits the job writes the search index of each file the
commit added (``sync.search_index``); a file left without one is scanned by searches
until the next compaction indexes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA
from oltp.errors import InvalidArgument
from sync import bookkeeping, crash_points, file_hashes, search_index, snapshot
from sync.archive_identity import claim
from sync.archive_location import ArchiveLocation
from sync.archive_lock import archive_lock, job_target
from sync.archive_rows import RowBuilder
from sync.archive_table import ArchiveTable
from sync.arrow_connection import ArrowConnection
from sync.arrow_schemas import PARTITION, storage
from sync.bookkeeping import ArchiveState
from sync.errors import ArchiveCorrupt
from sync.integrity import FileCheck, WrittenFiles, verify_partitions
from sync.prefetch import BatchPrefetcher
from sync.progress import Progress, ProgressUpdate, no_progress
from sync.snapshot import Batch
from sync.v1_archive import require_upgraded

DEFAULT_BATCH_SIZE = 20_000
MAX_BATCH_SIZE = 1_000_000


class ExportReport(NamedTuple):
    """What one export call wrote: distinct runs, rows of each kind, Delta commits, wall time."""

    runs: int
    steps: int
    attempts: int
    files: int  # Delta commits (one per batch)
    seconds: float


def check_batch_size(value: object, maximum: int = MAX_BATCH_SIZE, name: str = "batch_size") -> int:
    """A batch size: an integer between 1 and ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidArgument(f"{name} must be an integer between 1 and {maximum}, got {value!r}")
    return value


def export_completed_runs(
    dsn: str,
    archive: str | os.PathLike[str] | ArchiveLocation,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    schema: str = DEFAULT_SCHEMA,
    clock: Clock | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    storage_options: Mapping[str, str] | None = None,
) -> ExportReport:
    """Archive every completed run waiting in the outbox; ``ArchiveBusy`` if another job holds the lock."""
    size = check_batch_size(batch_size)
    schema, wait, location = job_target(archive, schema, wait, storage_options)
    require_upgraded(location)
    now_of = clock or wall_clock
    show = progress or no_progress
    started = time.monotonic()
    totals = [0, 0, 0, 0]  # runs, steps, attempts, commits
    with ArrowConnection(dsn, schema) as conn, archive_lock(conn, schema, wait=wait):
        crash_points.reached("lock_acquired")
        # Reading has no side effect: the first batch is read while the archive is checked.
        with BatchPrefetcher(dsn, schema, size) as batches:
            table = ArchiveTable.open(location)
            state = claim(conn, location, table, checked_now(now_of))
            check = FileCheck(location)
            written = WrittenFiles(table, state.version, check)
            state = finish_pending(conn, table, state, now_of, written)
            with conn.transaction():
                queued = snapshot.outbox_size(conn)
            first_batch = state.batch + 1
            rows = RowBuilder()
            indexer = search_index.IndexWriter()
            job = _Job(conn, table, check, written, rows, indexer, now_of, first_batch)
            try:
                for batch in batches:
                    crash_points.reached("snapshot_read")
                    number = state.batch + 1
                    counts = job.export_batch(state, number, batch)
                    # A batch of only dropped rows commits nothing to Delta and takes no number.
                    state = state._replace(batch=number if counts[3] else state.batch)
                    totals = [a + b for a, b in zip(totals, counts, strict=True)]
                    show(ProgressUpdate("export", totals[0], queued, sum(totals[:3]), time.monotonic() - started))
                    crash_points.reached("between_batches")
                indexer.close()
            finally:
                indexer.shutdown()
                rows.close()
    seconds = time.monotonic() - started
    show(ProgressUpdate("export", totals[0], queued, sum(totals[:3]), seconds, finished=True))
    if job.corrupt:
        raise job.corrupt[0]
    return ExportReport(totals[0], totals[1], totals[2], totals[3], seconds)


def finish_pending(
    conn: ArrowConnection, table: ArchiveTable, state: ArchiveState, now_of: Clock, written: WrittenFiles
) -> ArchiveState:
    """Record a batch a crashed job committed to Delta but not to PostgreSQL; forget one it never committed."""
    with conn.transaction():
        pending = bookkeeping.pending_batch(conn)
    if pending is None:
        return state
    committed = table.committed_batch(state.store_id)
    hashes = written.hashes(table) if committed is not None and committed >= pending else []
    with conn.transaction(by_key=True):
        if committed is not None and committed >= pending:
            assert table.version is not None and table.table_id is not None
            bookkeeping.record_batch(conn, pending, table.version, table.table_id, checked_now(now_of))
            file_hashes.record(conn, hashes, file_hashes.WRITE, checked_now(now_of))
            crash_points.reached("pending_recorded")
            return state._replace(batch=pending, version=table.version, table_id=table.table_id)
        bookkeeping.discard_pending(conn)
    return state


class _Job:
    """One export call's connection, table and file checks; the errors of partitions it could not touch."""

    def __init__(
        self,
        conn: ArrowConnection,
        table: ArchiveTable,
        check: FileCheck,
        written: WrittenFiles,
        builder: RowBuilder,
        indexer: search_index.IndexWriter,
        now_of: Clock,
        first_batch: int,
    ) -> None:
        self.conn, self.table, self.check, self.written = conn, table, check, written
        self.builder, self.indexer, self.now_of, self.first_batch = builder, indexer, now_of, first_batch
        self.corrupt: list[ArchiveCorrupt] = []

    def export_batch(self, state: ArchiveState, number: int, batch: Batch) -> tuple[int, int, int, int]:
        """Steps 1-3 of the protocol for one batch; (new runs, steps, attempts, commits)."""
        conn, table = self.conn, self.table
        run_ids = batch.runs.column("id").combine_chunks()
        with conn.transaction(by_key=True):
            earlier = bookkeeping.archived(conn, run_ids) if len(run_ids) else _NONE_ARCHIVED
        batch, earlier = self._hold_back(batch, earlier)
        with conn.transaction(by_key=True):
            bookkeeping.write_pending(conn, number, batch.taken_ids, batch.taken_revisions, batch.taken_dates)
        crash_points.reached("pending_written")
        commits = 0
        appended = None  # the rows of an append commit: its files' indexes are built from them
        if batch.runs.num_rows:
            now = checked_now(self.now_of)
            rows = self.builder.nest(batch.runs, batch.steps, batch.attempts, now)
            replace = earlier.column("started_date").to_pylist()
            table.write(rows, state.store_id, number, replace=replace)
            if not replace:
                appended = rows.select([*search_index.KEY_COLUMNS, search_index.DOC, PARTITION])
            del rows  # the nested lists are the bulk of a batch: not kept while the index is written
            commits = 1
            crash_points.reached("delta_committed")
        # Also the files of a commit a crashed job left unrecorded (the version recorded next lists them).
        hashes = self.written.hashes(table)
        with conn.transaction(by_key=True):
            version = table.version if table.version is not None else state.version
            recorded = number if commits else state.batch
            now = checked_now(self.now_of)
            first_time = earlier.num_rows == 0
            bookkeeping.record_batch(conn, recorded, version, table.table_id or "", now, first_time=first_time)
            file_hashes.record(conn, hashes, file_hashes.WRITE, now)
            crash_points.reached("before_commit")
        crash_points.reached("after_commit")
        # After both commits, on the indexer's thread while the next batch goes on: a job killed
        # before (or while) writing them leaves files without an index, which searches scan and
        # the next compaction indexes.
        self.indexer.write_added(table.location, table.files(), {h.path for h in hashes}, appended)
        # Runs an earlier batch of this call wrote already are not new to the caller.
        repeats = int(pc.sum(pc.greater_equal(earlier.column("batch"), self.first_batch)).as_py() or 0)
        return batch.runs.num_rows - repeats, batch.steps.num_rows, batch.attempts.num_rows, commits

    def _hold_back(self, batch: Batch, earlier: pa.Table) -> tuple[Batch, pa.Table]:
        """The batch without the runs of dates whose files the merge would rewrite but that fail ``verify``.

        Re-exported runs replace their row, which rewrites the files of their start date: those are
        verified first (SHA-256 against the recorded hash). Every run of a date that fails stays in the
        outbox (not taken), so its files are left as they are; the error is raised after the export.
        """
        if earlier.num_rows == 0:
            return batch, earlier
        days = set(earlier.column("started_date").to_pylist())
        failed = verify_partitions(self.conn, self.check, [f for f in self.table.files() if f.started_date in days])
        if not failed:
            return batch, earlier
        self.corrupt.extend(failed.values())
        run_dates = pc.cast(batch.runs.column("started_at"), pa.date32())
        bad = pa.array(sorted(failed), pa.date32())
        held = storage(batch.runs.column("id").filter(pc.is_in(run_dates, value_set=bad)).combine_chunks())
        keep_taken = pc.invert(pc.is_in(storage(batch.taken_ids), value_set=held))
        kept = batch._replace(
            taken_ids=batch.taken_ids.filter(keep_taken),
            taken_revisions=batch.taken_revisions.filter(keep_taken),
            taken_dates=batch.taken_dates.filter(keep_taken),
            runs=batch.runs.filter(pc.invert(pc.is_in(_storage_column(batch.runs, "id"), value_set=held))),
            steps=_without(batch.steps, held),
            attempts=_without(batch.attempts, held),
        )
        return kept, earlier.filter(pc.invert(pc.is_in(_storage_column(earlier, "run_id"), value_set=held)))


_NONE_ARCHIVED = pa.table(
    {
        "run_id": pa.array([], pa.binary(16)),
        "batch": pa.array([], pa.int64()),
        "started_date": pa.array([], pa.date32()),
    }
)


def _without(rows: pa.Table, held: pa.Array) -> pa.Table:
    """``rows`` (steps or attempts) but those of the runs ``held``."""
    if rows.num_columns == 0:
        return rows
    return rows.filter(pc.invert(pc.is_in(_storage_column(rows, "run_id"), value_set=held)))


def _storage_column(rows: pa.Table, name: str) -> pa.Array:
    return storage(rows.column(name).combine_chunks())
