"""The dispatch guard: at most one dispatcher per (run, step) until it is released.

``try_record`` is a single ``INSERT ... ON CONFLICT DO NOTHING``: the primary key
decides the race inside PostgreSQL, so exactly one of any number of concurrent
callers (threads or processes) sees its row inserted.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
import psycopg.errors

from oltp.errors import RunNotFound

Conn = psycopg.Connection[tuple[object, ...]]

_TRY_RECORD = """
INSERT INTO flow_dispatches (run_id, step_key, dispatched_at) VALUES (%s, %s, %s)
ON CONFLICT (run_id, step_key) DO NOTHING
"""


def try_record(conn: Conn, run_id: uuid.UUID, step_key: str, now: datetime) -> bool:
    """True when this call recorded the dispatch, False when it was already recorded."""
    try:
        cur = conn.execute(_TRY_RECORD, (run_id, step_key, now))
    except psycopg.errors.ForeignKeyViolation as exc:
        raise RunNotFound(run_id) from exc
    return cur.rowcount == 1


def release(conn: Conn, run_id: uuid.UUID, step_key: str) -> None:
    """Forget the dispatch so the step can be dispatched again; no record is fine."""
    conn.execute("DELETE FROM flow_dispatches WHERE run_id = %s AND step_key = %s", (run_id, step_key))


def annotate(conn: Conn, run_id: uuid.UUID, step_key: str, job_id: str) -> None:
    """Attach the dispatcher's job id to the record, if there is one."""
    conn.execute(
        "UPDATE flow_dispatches SET job_id = %s WHERE run_id = %s AND step_key = %s", (job_id, run_id, step_key)
    )


def dispatched_keys(conn: Conn, run_id: uuid.UUID) -> frozenset[str]:
    """Step keys dispatched and not released."""
    cur = conn.execute("SELECT step_key FROM flow_dispatches WHERE run_id = %s", (run_id,))
    return frozenset(str(row[0]) for row in cur)
