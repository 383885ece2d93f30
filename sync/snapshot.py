"""Reading export batches from PostgreSQL as Arrow, each batch from one snapshot.

A batch is read in one ``REPEATABLE READ`` transaction: the next outbox rows,
their runs, then the steps and the attempts of the runs to export (all three
probed by primary key with ``= ANY(...)`` of a uuid array); the attempts may be
read on a second connection that imports the same snapshot, in parallel with
the steps. Every row therefore belongs to the same revision of its run, the
newest as of the snapshot. Steps and attempts carry only their run's id: the
row builder finds their run by it (``sync.archive_rows``), so the plans stay
index probes without a join. Their ids come from a temporary table on each
connection, one array filled in the transaction and emptied by its commit, not
from a bound parameter, because ADBC reads a statement without parameters
through binary ``COPY`` straight into Arrow but one with parameters through a
whole libpq result converted value by value: reading 20,000 runs' 100,000 steps
took 106 against 137 ms of client CPU and 239 against 312 ms of wall time, with
the same PostgreSQL CPU (205 against 209 ms, the fill included; 60 batches each).
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from sync.arrow_connection import ArrowConnection, array_param, scalar_param
from sync.arrow_schemas import TS, UUID, storage

# The outbox rows of one batch, oldest first; then their runs as of the snapshot, by key.
# A row is exportable when its run is terminal; a run reopened to Running is only dropped.
# The writers queue each (run, revision) once, in the transaction that makes it, and an
# export deletes the row in the transaction that archives it, so a queued revision is
# never archived already: checking archived_runs here would cost a probe per run. The
# runs are read with the queued ids as one array, not joined: a join probes the primary
# key once per run (four buffer visits each), the array probes it in key order, visiting
# each index page once (PostgreSQL 17+), and reads the heap pages in their order.
_QUEUE = """
SELECT run_id, enqueued_at FROM export_outbox {after} ORDER BY enqueued_at, run_id LIMIT $1
"""
_AFTER = "WHERE (enqueued_at, run_id) > ($2, $3)"
_RUNS = """
SELECT id, flow_id, flow_name, status, trigger_key, trigger_data_json, background_job_id,
       started_at, completed_at, source_run_id, revision
  FROM flow_runs WHERE id = ANY($1::uuid[])
"""

# The runs to export, per connection (see the module docstring): one row holding them as an array
# (a single toasted value, not 20,000 rows to insert). CREATE is refused in a READ ONLY
# transaction, so the table is made once, before; INSERT into a temporary table is allowed in one.
# Emptied at every commit (and by a rollback), it never holds another batch's ids. The runs
# themselves are still read with the ids bound: for their 20,000 rows the COPY path saved no
# client CPU and cost PostgreSQL more.
_CREATE_IDS = "CREATE TEMPORARY TABLE export_batch_ids (ids uuid[]) ON COMMIT DELETE ROWS"
_FILL_IDS = "INSERT INTO pg_temp.export_batch_ids VALUES ($1::uuid[])"
# The subquery is computed once (an initplan; the cast makes it an array, not ANY's subquery form)
# and the primary key probed with the whole array, as with a bound one: the same plan and buffers
# (EXPLAIN ANALYZE, 20,000 runs).
_STEPS = """
SELECT run_id, step_key, step_type, status, input_json, output_json, error_message, job_id,
       started_at, completed_at, attempt_count
  FROM flow_steps WHERE run_id = ANY((SELECT ids FROM pg_temp.export_batch_ids)::uuid[])
"""
_ATTEMPTS = """
SELECT run_id, step_key, attempt, step_type, status, input_json, output_json, error_message, job_id,
       started_at, completed_at
  FROM flow_step_attempts WHERE run_id = ANY((SELECT ids FROM pg_temp.export_batch_ids)::uuid[])
"""
_NO_DATE = pa.scalar(None, pa.date32())
_OUTBOX_SIZE = "SELECT count(*) FROM export_outbox"
_EXPORT_SNAPSHOT = "SELECT pg_export_snapshot()"


class QueueKey(NamedTuple):
    """Position in the outbox: batches are taken in (enqueued_at, run_id) order."""

    enqueued_at: datetime
    run_id: uuid.UUID


class Batch(NamedTuple):
    """One snapshot's worth of work: the outbox rows taken, and the rows to archive."""

    taken_ids: pa.Array  # run id of every outbox row read
    taken_revisions: pa.Array  # each run's revision in the snapshot
    taken_dates: pa.Array  # each run's start date, null for a run still Running (not exported)
    runs: pa.Table  # the exportable runs (archive columns but exported_at)
    steps: pa.Table
    attempts: pa.Table
    last: QueueKey | None  # where the next batch starts

    @property
    def empty(self) -> bool:
        """True when the outbox had nothing past the previous batch."""
        return len(self.taken_ids) == 0


def create_id_table(conn: ArrowConnection) -> None:
    """Create ``conn``'s table of a batch's run ids: once per connection, before it reads a batch."""
    with conn.transaction():
        conn.execute(_CREATE_IDS)


def outbox_size(conn: ArrowConnection) -> int:
    """Rows in the outbox now (a progress bar's total; runs come and go meanwhile)."""
    with conn.transaction():
        return int(conn.rows(_OUTBOX_SIZE)[0][0])


class Helper:
    """A second connection (and the thread that drives it) reading attempts in the same snapshot."""

    def __init__(self, conn: ArrowConnection) -> None:
        self.conn = conn
        try:
            create_id_table(conn)
        except BaseException:
            conn.close()  # the helper owns the connection from here on
            raise
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowrun-export-helper")

    def attempts(self, snapshot_id: str, ids: pa.Array) -> Future[pa.Table]:
        """Start reading the attempts of ``ids`` in the exported snapshot ``snapshot_id``."""

        def read() -> pa.Table:
            with self.conn.transaction(snapshot=True):
                # Must come before any query of the transaction; a utility statement takes no parameters.
                self.conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)).as_string())
                self.conn.execute("SET LOCAL enable_seqscan = off")  # see ArrowConnection.transaction
                self.conn.execute(_FILL_IDS, array_param(ids))
                return self.conn.query(_ATTEMPTS)

        return self._pool.submit(read)

    def close(self) -> None:
        """Stop the thread and close the connection."""
        self._pool.shutdown(wait=True)
        self.conn.close()


def read_batch(conn: ArrowConnection, after: QueueKey | None, limit: int, helper: Helper | None = None) -> Batch:
    """The next ``limit`` outbox rows after ``after``, and every row of their exportable runs.

    With a ``helper``, attempts are read on its connection while steps are read on ``conn``,
    both in the snapshot of ``conn``'s transaction (exported with ``pg_export_snapshot``).
    ``conn`` has its id table (``create_id_table``).
    """
    with conn.transaction(snapshot=True, by_key=True):
        params = [scalar_param(limit, pa.int64())]
        if after is not None:
            params += [scalar_param(after.enqueued_at, TS), scalar_param(after.run_id.bytes, UUID)]
        queue = conn.query(_QUEUE.format(after=_AFTER if after is not None else ""), *params).combine_chunks()
        queued = queue.column("run_id").combine_chunks()
        # Every queued run is there in the same snapshot (the outbox's foreign key): in queue order.
        found = conn.query(_RUNS, array_param(queued))
        taken = found.take(pc.index_in(storage(queued), value_set=storage(found.column("id").combine_chunks())))
        exportable = pc.not_equal(taken.column("status"), "Running")
        runs = taken.filter(exportable)
        ids = runs.column("id").combine_chunks()
        if len(ids):
            pending = helper.attempts(conn.rows(_EXPORT_SNAPSHOT)[0][0], ids) if helper else None
            conn.execute(_FILL_IDS, array_param(ids))
            steps = conn.query(_STEPS)
            # The exporting transaction stays open until the helper has read in its snapshot.
            attempts = pending.result() if pending else conn.query(_ATTEMPTS)
    last = None
    if queue.num_rows:
        last = QueueKey(queue.column("enqueued_at")[-1].as_py(), queued[-1].as_py())
    if not len(ids):
        steps = attempts = pa.table({})
    return Batch(
        taken_ids=taken.column("id").combine_chunks(),
        taken_revisions=taken.column("revision").combine_chunks(),
        taken_dates=pc.if_else(exportable, pc.cast(taken.column("started_at"), pa.date32()), _NO_DATE).combine_chunks(),
        runs=runs,
        steps=steps,
        attempts=attempts,
        last=last,
    )
