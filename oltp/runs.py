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

_INSERT_RUN = f"""
INSERT INTO flow_runs (id, flow_id, flow_name, status, trigger_key, trigger_data_json,
                       background_job_id, started_at, source_run_id)
VALUES (%(id)s, %(flow_id)s, %(flow_name)s, 'Running', %(trigger_key)s, %(trigger_data_json)s,
        %(job_id)s, %(now)s, %(source_run_id)s)
RETURNING {RUN_COLUMNS}
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
    """Insert a Running run; an id already present raises ``RunAlreadyExists``."""
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
        row = conn.execute(_INSERT_RUN, params).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise RunAlreadyExists(run_id) from exc
    assert row is not None
    return run_record(row)


# The run row is locked first (as every write does) so that the status check, the
# revision bump and the outbox entry all see the same, newest version of the run.
_COMPLETE_RUN = """
WITH run AS (
    SELECT id, status FROM flow_runs WHERE id = %(id)s FOR NO KEY UPDATE
), done AS (
    UPDATE flow_runs r
       SET status = %(status)s, completed_at = %(now)s, revision = r.revision + 1
     WHERE r.id = %(id)s AND (SELECT status FROM run) = 'Running'
 RETURNING r.id, r.revision
), queued AS (
    INSERT INTO export_outbox (run_id, revision, enqueued_at)
    SELECT id, revision, %(now)s FROM done
    ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision, enqueued_at = EXCLUDED.enqueued_at
)
SELECT run.status, (SELECT count(*) FROM done) FROM run
"""


def complete_run(conn: Conn, *, run_id: uuid.UUID, status: RunStatus, now: datetime) -> None:
    """Move a Running run to a terminal status; the same status again is a no-op."""
    row = conn.execute(_COMPLETE_RUN, {"id": run_id, "status": status.value, "now": now}).fetchone()
    if row is None:
        raise RunNotFound(run_id)
    previous, changed = row
    if changed or previous == status.value:
        return
    raise InvalidTransition(f"run {run_id} is already {previous}; it cannot become {status.value}")


_ACTIVE_RUNS = f"""
SELECT {RUN_COLUMNS} FROM flow_runs
 WHERE status = 'Running'
 ORDER BY started_at DESC, id DESC
"""


def active_runs(conn: Conn) -> list[FlowRunRecord]:
    """Every Running run, newest start first."""
    return [run_record(row) for row in conn.execute(_ACTIVE_RUNS)]
