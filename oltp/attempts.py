"""Step and attempt writes: starting a step, recording its outcome, retrying it.

Every write locks the run row first (``FOR NO KEY UPDATE``), so writes to one run
are serialised in a single lock order and cannot deadlock with each other or
with ``complete_run``. A step write to a run that is already terminal makes a
new version of it: the revision is bumped and the run is queued for export in
the same transaction. Attempt numbers come from the step row's ``attempt_count``,
incremented by an upsert, so concurrent starts of one step get distinct numbers.
The writes themselves are the PL/pgSQL procedures of ``oltp.procedures`` (why:
see there); this module calls them and maps their outcome to errors.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg

from oltp.errors import RunNotFound, StepNotFound
from oltp.records import StepStatus

Conn = psycopg.Connection[tuple[object, ...]]

_STEP_START = "SELECT flowrun_step_start(%s, %s, %s, %s, %s, %s)"
_STEP_COMPLETE = "SELECT flowrun_step_complete(%s, %s, %s, %s, %s, %s)"
_STEP_RETRY = "SELECT flowrun_step_retry(%s, %s)"


def _outcome(conn: Conn, statement: str, params: tuple[object, ...], run_id: uuid.UUID, step_key: str) -> None:
    """Run one procedure and turn how far it got into the precise error."""
    row = conn.execute(statement, params).fetchone()
    assert row is not None
    if row[0] == 0:
        raise RunNotFound(run_id)
    if row[0] == 1:
        raise StepNotFound(run_id, step_key)


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
    params = (run_id, step_key, step_type, input_json, job_id, now)
    _outcome(conn, _STEP_START, params, run_id, step_key)


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
    params = (run_id, step_key, status.value, output_json, error_message, now)
    _outcome(conn, _STEP_COMPLETE, params, run_id, step_key)


def retry_step(conn: Conn, *, run_id: uuid.UUID, step_key: str) -> None:
    """Reset a step to Pending and reopen its run, in one transaction."""
    _outcome(conn, _STEP_RETRY, (run_id, step_key), run_id, step_key)
