"""Run rows: creating a run, completing it, and listing the active ones.

Each function is one statement on an autocommit connection, so it is its own
transaction and costs one round trip (two on the rare path that has to explain
why a ``complete_run`` changed nothing).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
import psycopg.errors

from oltp.errors import InvalidTransition, RunAlreadyExists, RunNotFound
from oltp.records import FlowRunRecord, RunStatus
from oltp.rows import RUN_COLUMNS, run_record

Conn = psycopg.Connection[tuple[object, ...]]

# A run pruned to the archive keeps its row in archived_runs: its id is taken for good.
# Reusing it would start a second run under one id (shown twice, its new revisions never
# exported past the archived one, and pruned as if already archived).
_INSERT_RUN = """
INSERT INTO flow_runs (id, flow_id, flow_name, status, trigger_key, trigger_data_json,
                       background_job_id, started_at, source_run_id)
SELECT %(id)s, %(flow_id)s, %(flow_name)s, 'Running', %(trigger_key)s, %(trigger_data_json)s,
       %(job_id)s, %(now)s, %(source_run_id)s
 WHERE NOT EXISTS (SELECT 1 FROM archived_runs WHERE run_id = %(id)s)
"""


def start_run(
    conn: Conn,
    *,
    run_id: uuid.UUID,
    flow_id: uuid.UUID,
    flow_name: str,
    trigger_key: str,
    trigger_data_json: str | None,
    job_id: str | None,
    source_run_id: uuid.UUID | None,
    now: datetime,
) -> FlowRunRecord:
    """Insert a Running run; an id already live or archived raises ``RunAlreadyExists``."""
    params = {
        "id": run_id,
        "flow_id": flow_id,
        "flow_name": flow_name,
        "trigger_key": trigger_key,
        "trigger_data_json": trigger_data_json,
        "job_id": job_id,
        "now": now,
        "source_run_id": source_run_id,
    }
    try:
        inserted = conn.execute(_INSERT_RUN, params).rowcount
    except psycopg.errors.UniqueViolation as exc:
        raise RunAlreadyExists(run_id) from exc
    if inserted != 1:
        raise RunAlreadyExists(run_id)
    # Every column is known here (the clock gave started_at, at the microsecond precision
    # PostgreSQL keeps), so the record is built without shipping the row back.
    return FlowRunRecord(
        id=run_id,
        flow_id=flow_id,
        flow_name=flow_name,
        status=RunStatus.RUNNING,
        trigger_key=trigger_key,
        trigger_data_json=trigger_data_json,
        background_job_id=job_id,
        started_at=now,
        completed_at=None,
        source_run_id=source_run_id,
    )


# The status test sits in the UPDATE's own WHERE clause: a concurrent writer's commit is
# re-checked against the newest version of the row (READ COMMITTED re-evaluation), so
# exactly one of two racing completions wins, and the outbox entry commits with it.
_COMPLETE_RUN = """
WITH done AS (
    UPDATE flow_runs
       SET status = %(status)s, completed_at = %(now)s, revision = revision + 1
     WHERE id = %(id)s AND status = 'Running'
 RETURNING id, revision
), queued AS (
    INSERT INTO export_outbox (run_id, revision, enqueued_at)
    SELECT id, revision, %(now)s FROM done
    ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision, enqueued_at = EXCLUDED.enqueued_at
)
SELECT count(*) FROM done
"""
_RUN_STATUS = "SELECT status FROM flow_runs WHERE id = %s"


def complete_run(conn: Conn, *, run_id: uuid.UUID, status: RunStatus, now: datetime) -> None:
    """Move a Running run to a terminal status; the same status again is a no-op."""
    params = {"id": run_id, "status": status.value, "now": now}
    while True:
        row = conn.execute(_COMPLETE_RUN, params).fetchone()
        if row is not None and row[0]:
            return
        # Nothing changed: find out why, from a fresh snapshot (the rare path).
        current = conn.execute(_RUN_STATUS, (run_id,)).fetchone()
        if current is None:
            raise RunNotFound(run_id)
        if current[0] == status.value:
            return
        if current[0] != RunStatus.RUNNING.value:
            raise InvalidTransition(f"run {run_id} is already {current[0]}; it cannot become {status.value}")
        # A retry_step reopened the run between the two reads: complete the reopened run.


_ACTIVE_RUNS = f"""
SELECT {RUN_COLUMNS} FROM flow_runs
 WHERE status = 'Running'
 ORDER BY started_at DESC, id DESC
"""


def active_runs(conn: Conn) -> list[FlowRunRecord]:
    """Every Running run, newest start first."""
    return [run_record(row) for row in conn.execute(_ACTIVE_RUNS)]
