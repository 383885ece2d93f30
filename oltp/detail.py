"""Reading one run with its steps and every attempt, from one snapshot."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import replace

import psycopg

from oltp.records import FlowRunRecord, FlowStepAttemptRecord
from oltp.rows import ATTEMPT_COLUMNS, RUN_COLUMNS, STEP_COLUMNS, attempt_record, order_steps, run_record, step_record

Conn = psycopg.Connection[tuple[object, ...]]


def run_detail(conn: Conn, run_id: uuid.UUID) -> FlowRunRecord | None:
    """The run with steps and attempts, or None; three reads in one repeatable-read transaction."""
    # Pipeline mode sends BEGIN, the three SELECTs and COMMIT in one round trip.
    with conn.pipeline(), conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        run_cur = conn.execute(f"SELECT {RUN_COLUMNS} FROM flow_runs WHERE id = %s", (run_id,))
        step_cur = conn.execute(f"SELECT {STEP_COLUMNS} FROM flow_steps WHERE run_id = %s", (run_id,))
        attempt_cur = conn.execute(
            f"SELECT {ATTEMPT_COLUMNS} FROM flow_step_attempts WHERE run_id = %s ORDER BY step_key, attempt",
            (run_id,),
        )
    run_row = run_cur.fetchone()
    if run_row is None:
        return None
    attempts: dict[str, list[FlowStepAttemptRecord]] = defaultdict(list)
    for row in attempt_cur.fetchall():
        attempts[str(row[1])].append(attempt_record(row))
    steps = [step_record(row, attempts.get(str(row[1]), [])) for row in step_cur.fetchall()]
    return replace(run_record(run_row), steps=order_steps(steps))
