"""Recording a filed batch (``sync.bookkeeping.record_batch``): which revisions win, which queue rows go.

The protocol never files a revision older than the archived one (batches are read
and recorded in order), so the export tests cannot reach the rule that guards it;
here the tables are set up by hand, on real PostgreSQL, and one batch is recorded.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pyarrow as pa

from oltp.store import RunStore
from sync import bookkeeping
from sync.arrow_connection import ArrowConnection
from tests.conftest import FakeClock

DAY = date(2026, 3, 1)


def _uuids(ids: list[uuid.UUID]) -> pa.Array:
    return pa.array([i.bytes for i in ids], pa.uuid())


def test_a_recorded_batch_never_lowers_a_revision_and_keeps_the_queue_rows_written_after_it(
    store: RunStore, clock: FakeClock, dsn: str, db: Any
) -> None:
    older, from_v1, new, done, again, dropped = runs = sorted(uuid.uuid4() for _ in range(6))
    for rid in runs:  # queued runs (the outbox's foreign key); their revisions are set below
        store.start_run(uuid.uuid4(), "f", rid, "manual")
        store.complete_run(rid, "Succeeded")
    db.execute(
        "INSERT INTO archived_runs (run_id, revision, started_date, batch) VALUES (%s, 6, %s, 3), (%s, 2, %s, 0)",
        (older, DAY, from_v1, DAY),
    )
    # ``again`` was written after the batch's snapshot: its queue row is at a newer revision.
    db.execute("UPDATE export_outbox SET revision = 7 WHERE run_id = %s", (again,))
    filed = {older: 5, from_v1: 2, new: 2, done: 2, again: 5, dropped: 2}
    dates = [None if rid == dropped else DAY for rid in filed]  # dropped: Running again in the snapshot
    with ArrowConnection(dsn, "flowrun") as conn:
        with conn.transaction(by_key=True):
            bookkeeping.write_pending(
                conn, 4, _uuids(list(filed)), pa.array(filed.values(), pa.int64()), pa.array(dates, pa.date32())
            )
        with conn.transaction(by_key=True):
            bookkeeping.record_batch(conn, 4, 9, "t", clock.now)
        with conn.transaction():
            assert bookkeeping.pending_batch(conn) is None

    archived = {
        rid: (rev, batch) for rid, rev, batch in db.execute("SELECT run_id, revision, batch FROM archived_runs")
    }
    assert archived == {
        older: (6, 3),  # an older revision never replaces a newer one
        from_v1: (2, 4),  # a v1-only row (batch 0) is taken over at the same revision
        new: (2, 4),
        done: (2, 4),
        again: (5, 4),
    }
    assert db.execute("SELECT run_id, revision FROM export_outbox").fetchall() == [(again, 7)]


def test_a_batch_of_runs_the_archive_never_held_is_inserted_as_filed(
    store: RunStore, clock: FakeClock, dsn: str, db: Any
) -> None:
    new, other, dropped = runs = sorted(uuid.uuid4() for _ in range(3))
    for rid in runs:
        store.start_run(uuid.uuid4(), "f", rid, "manual")
        store.complete_run(rid, "Succeeded")
    filed = {new: 2, other: 3, dropped: 2}
    dates = [None if rid == dropped else DAY for rid in filed]
    with ArrowConnection(dsn, "flowrun") as conn:
        with conn.transaction(by_key=True):
            bookkeeping.write_pending(
                conn, 1, _uuids(list(filed)), pa.array(filed.values(), pa.int64()), pa.array(dates, pa.date32())
            )
        with conn.transaction(by_key=True):
            bookkeeping.record_batch(conn, 1, 0, "t", clock.now, first_time=True)
    archived = db.execute("SELECT run_id, revision, started_date, batch FROM archived_runs ORDER BY run_id").fetchall()
    assert archived == [(new, 2, DAY, 1), (other, 3, DAY, 1)]  # the dropped run is not archived
    assert db.execute("SELECT count(*) FROM export_outbox").fetchone() == (0,)  # the dropped one's goes too
