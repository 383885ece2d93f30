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
rows are gone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA, schema_name
from oltp.errors import InvalidArgument
from sync import bookkeeping, crash_points, snapshot
from sync.archive_identity import claim
from sync.archive_location import ArchiveLocation
from sync.archive_lock import archive_lock, check_wait
from sync.archive_rows import RowBuilder
from sync.archive_table import ArchiveTable
from sync.arrow_connection import ArrowConnection
from sync.bookkeeping import ArchiveState
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
    schema = schema_name(schema)
    wait = check_wait(wait)
    location = ArchiveLocation.resolve(archive, storage_options)
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
            state = finish_pending(conn, table, state, now_of)
            with conn.transaction():
                queued = snapshot.outbox_size(conn)
            first_batch = state.batch + 1
            rows = RowBuilder()
            try:
                for batch in batches:
                    crash_points.reached("snapshot_read")
                    number = state.batch + 1
                    counts = _export_batch(conn, table, state, number, first_batch, batch, rows, now_of)
                    # A batch of only dropped rows commits nothing to Delta and takes no number.
                    state = state._replace(batch=number if counts[3] else state.batch)
                    totals = [a + b for a, b in zip(totals, counts, strict=True)]
                    show(ProgressUpdate("export", totals[0], queued, sum(totals[:3]), time.monotonic() - started))
                    crash_points.reached("between_batches")
            finally:
                rows.close()
    seconds = time.monotonic() - started
    show(ProgressUpdate("export", totals[0], queued, sum(totals[:3]), seconds, finished=True))
    return ExportReport(totals[0], totals[1], totals[2], totals[3], seconds)


def finish_pending(conn: ArrowConnection, table: ArchiveTable, state: ArchiveState, now_of: Clock) -> ArchiveState:
    """Record a batch a crashed job committed to Delta but not to PostgreSQL; forget one it never committed."""
    with conn.transaction():
        pending = bookkeeping.pending_batch(conn)
    if pending is None:
        return state
    committed = table.committed_batch(state.store_id)
    with conn.transaction(by_key=True):
        if committed is not None and committed >= pending:
            assert table.version is not None and table.table_id is not None
            bookkeeping.record_batch(conn, pending, table.version, table.table_id, checked_now(now_of))
            crash_points.reached("pending_recorded")
            return state._replace(batch=pending, version=table.version, table_id=table.table_id)
        bookkeeping.discard_pending(conn)
    return state


def _export_batch(
    conn: ArrowConnection,
    table: ArchiveTable,
    state: ArchiveState,
    number: int,
    first_batch: int,
    batch: Batch,
    builder: RowBuilder,
    now_of: Clock,
) -> tuple[int, int, int, int]:
    """Steps 1-3 of the protocol for one batch; (new runs, steps, attempts, commits)."""
    run_ids = batch.runs.column("id").combine_chunks()
    with conn.transaction(by_key=True):
        earlier = bookkeeping.archived(conn, run_ids) if len(run_ids) else pa.table({"batch": pa.array([], pa.int64())})
        bookkeeping.write_pending(conn, number, batch.taken_ids, batch.taken_revisions, _started_dates(batch))
    crash_points.reached("pending_written")
    commits = 0
    if batch.runs.num_rows:
        now = checked_now(now_of)
        rows = builder.nest(batch.runs, batch.steps, batch.attempts, now)
        table.write(rows, state.store_id, number, replace=earlier.num_rows > 0)
        commits = 1
        crash_points.reached("delta_committed")
    with conn.transaction(by_key=True):
        version = table.version if table.version is not None else state.version
        recorded = number if commits else state.batch
        bookkeeping.record_batch(conn, recorded, version, table.table_id or "", checked_now(now_of))
        crash_points.reached("before_commit")
    crash_points.reached("after_commit")
    # Runs an earlier batch of this call wrote already are not new to the caller.
    repeats = int(pc.sum(pc.greater_equal(earlier.column("batch"), first_batch)).as_py() or 0)
    return batch.runs.num_rows - repeats, batch.steps.num_rows, batch.attempts.num_rows, commits


def _started_dates(batch: Batch) -> pa.Array:
    """Each taken outbox row's run start date, null for runs the batch drops (still Running)."""
    position = pc.index_in(_storage(batch.taken_ids), value_set=_storage(batch.runs.column("id").combine_chunks()))
    starts = pc.take(batch.runs.column("started_at").combine_chunks(), position)
    return pc.cast(starts, pa.date32())


def _storage(values: pa.Array) -> pa.Array:
    return values.storage if isinstance(values, pa.ExtensionArray) else values
