"""Step and attempt writes: starting a step, recording its outcome, retrying it.

Every write locks the run row first (``FOR NO KEY UPDATE``), so writes to one run
are serialised in a single lock order and cannot deadlock with each other or
with ``complete_run``. A step write to a run that is already terminal makes a
new version of it: the revision is bumped and the run is queued for export in
the same statement. Attempt numbers come from the step row's ``attempt_count``,
incremented by an upsert, so concurrent starts of one step get distinct numbers.

Completing and retrying a step lock the run in a statement of their own before
they write (see ``_after_run_lock``), so that what they update and delete is read
after the lock is theirs, not before it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg

from oltp.errors import RunNotFound, StepNotFound
from oltp.records import StepStatus

Conn = psycopg.Connection[tuple[object, ...]]

# Shared head of the step writes: lock the run, and when the run is terminal and the
# step write below happens, bump its revision and (re)queue it for export.
_BUMP_IF_TERMINAL = """
bumped AS (
    UPDATE flow_runs r SET revision = r.revision + 1
     WHERE r.id = %(run_id)s AND (SELECT status FROM run) <> 'Running' AND EXISTS (SELECT 1 FROM step)
 RETURNING r.id, r.revision
), queued AS (
    INSERT INTO export_outbox (run_id, revision, enqueued_at)
    SELECT id, revision, %(now)s FROM bumped
    ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision, enqueued_at = EXCLUDED.enqueued_at
)"""

_LOCK_RUN = "SELECT 1 FROM flow_runs WHERE id = %(run_id)s FOR NO KEY UPDATE"


def _after_run_lock(conn: Conn, statement: str, params: dict[str, object]) -> tuple[object, ...]:
    """Run ``statement`` in a transaction whose previous statement locked the run row.

    Under READ COMMITTED a statement reads from the snapshot it took when it began. Had
    the write waited for the run lock inside its own statement, it would then miss the
    rows the lock holder inserted meanwhile (the attempt a concurrent start opened, the
    outbox entry a concurrent ``complete_run`` queued) and close the wrong attempt or
    leave a reopened run queued for export. Locking in a statement of its own makes the
    write's snapshot start after the lock is ours; pipelined, it is still one round trip.
    """
    with conn.pipeline(), conn.transaction():
        conn.execute(_LOCK_RUN, params)
        cur = conn.execute(statement, params)
    row = cur.fetchone()
    assert row is not None
    return row


_STEP_START = f"""
WITH run AS (
    SELECT id, status FROM flow_runs WHERE id = %(run_id)s FOR NO KEY UPDATE
), step AS (
    INSERT INTO flow_steps AS s (run_id, step_key, step_type, status, input_json, output_json,
                                 error_message, job_id, started_at, completed_at, attempt_count)
    SELECT id, %(step_key)s, %(step_type)s, 'Running', %(input_json)s, NULL, NULL, %(job_id)s, %(now)s, NULL, 1
      FROM run
    ON CONFLICT (run_id, step_key) DO UPDATE
       SET step_type = EXCLUDED.step_type, status = 'Running', input_json = EXCLUDED.input_json,
           output_json = NULL, error_message = NULL, job_id = EXCLUDED.job_id,
           started_at = EXCLUDED.started_at, completed_at = NULL, attempt_count = s.attempt_count + 1
 RETURNING s.run_id, s.attempt_count
), attempt AS (
    INSERT INTO flow_step_attempts (run_id, step_key, attempt, step_type, status, input_json, job_id, started_at)
    SELECT run_id, %(step_key)s, attempt_count, %(step_type)s, 'Running', %(input_json)s, %(job_id)s, %(now)s
      FROM step
), {_BUMP_IF_TERMINAL}
SELECT count(*) FROM run
"""


def record_step_start(
    conn: Conn,
    *,
    run_id: uuid.UUID,
    step_key: str,
    step_type: str,
    input_json: str | None,
    job_id: str | None,
    now: datetime,
) -> None:
    """Open the step's next attempt and make the step Running."""
    params = {
        "run_id": run_id,
        "step_key": step_key,
        "step_type": step_type,
        "input_json": input_json,
        "job_id": job_id,
        "now": now,
    }
    row = conn.execute(_STEP_START, params).fetchone()
    if not row or not row[0]:
        raise RunNotFound(run_id)


_STEP_COMPLETE = f"""
WITH run AS (
    SELECT id, status FROM flow_runs WHERE id = %(run_id)s FOR NO KEY UPDATE
), step AS (
    UPDATE flow_steps s
       SET status = %(status)s, output_json = %(output_json)s, error_message = %(error_message)s,
           completed_at = %(now)s
     WHERE s.run_id = %(run_id)s AND s.step_key = %(step_key)s AND EXISTS (SELECT 1 FROM run)
 RETURNING s.attempt_count
), attempt AS (
    UPDATE flow_step_attempts a
       SET status = %(status)s, output_json = %(output_json)s, error_message = %(error_message)s,
           completed_at = %(now)s
     WHERE a.run_id = %(run_id)s AND a.step_key = %(step_key)s AND a.attempt = (SELECT attempt_count FROM step)
), {_BUMP_IF_TERMINAL}
SELECT (SELECT count(*) FROM run), (SELECT count(*) FROM step)
"""


def record_step_complete(
    conn: Conn,
    *,
    run_id: uuid.UUID,
    step_key: str,
    status: StepStatus,
    output_json: str | None,
    error_message: str | None,
    now: datetime,
) -> None:
    """Close the step's newest attempt with this outcome; the step mirrors it."""
    params = {
        "run_id": run_id,
        "step_key": step_key,
        "status": status.value,
        "output_json": output_json,
        "error_message": error_message,
        "now": now,
    }
    row = _after_run_lock(conn, _STEP_COMPLETE, params)
    if not row[0]:
        raise RunNotFound(run_id)
    if not row[1]:
        raise StepNotFound(run_id, step_key)


# Reopening a run: the step goes back to Pending (its attempts keep their history), the
# run to Running at a new revision, the step's dispatch record is dropped so it can be
# dispatched again, and any pending export of the run is withdrawn (it is no longer a
# completed run; complete_run queues it again).
_RETRY_STEP = """
WITH run AS (
    SELECT id, status FROM flow_runs WHERE id = %(run_id)s FOR NO KEY UPDATE
), step AS (
    UPDATE flow_steps s
       SET status = 'Pending', completed_at = NULL, output_json = NULL, error_message = NULL
     WHERE s.run_id = %(run_id)s AND s.step_key = %(step_key)s AND EXISTS (SELECT 1 FROM run)
 RETURNING s.run_id
), reopened AS (
    UPDATE flow_runs r
       SET status = 'Running', completed_at = NULL, revision = r.revision + 1
     WHERE r.id = %(run_id)s AND EXISTS (SELECT 1 FROM step)
), released AS (
    DELETE FROM flow_dispatches d
     WHERE d.run_id = %(run_id)s AND d.step_key = %(step_key)s AND EXISTS (SELECT 1 FROM step)
), withdrawn AS (
    DELETE FROM export_outbox o WHERE o.run_id = %(run_id)s AND EXISTS (SELECT 1 FROM step)
)
SELECT (SELECT count(*) FROM run), (SELECT count(*) FROM step)
"""


def retry_step(conn: Conn, *, run_id: uuid.UUID, step_key: str) -> None:
    """Reset a step to Pending and reopen its run, in one transaction."""
    row = _after_run_lock(conn, _RETRY_STEP, {"run_id": run_id, "step_key": step_key})
    if not row[0]:
        raise RunNotFound(run_id)
    if not row[1]:
        raise StepNotFound(run_id, step_key)
