"""Reading one run with its steps and every attempt, from one snapshot."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import replace

from oltp.plan import Plan, Query, Result, Snapshot
from oltp.records import FlowRunRecord, FlowStepAttemptRecord
from oltp.rows import ATTEMPT_COLUMNS, RUN_COLUMNS, STEP_COLUMNS, attempt_record, order_steps, run_record, step_record


def run_detail(run_id: uuid.UUID) -> Plan[FlowRunRecord | None]:
    """The run with steps and attempts, or None; three reads in one repeatable-read transaction."""
    replies: list[Result] = yield Snapshot(
        (
            Query(f"SELECT {RUN_COLUMNS} FROM flow_runs WHERE id = %s", (run_id,)),
            Query(f"SELECT {STEP_COLUMNS} FROM flow_steps WHERE run_id = %s", (run_id,)),
            Query(
                f"SELECT {ATTEMPT_COLUMNS} FROM flow_step_attempts WHERE run_id = %s ORDER BY step_key, attempt",
                (run_id,),
            ),
        )
    )
    runs, steps, attempt_rows = replies
    if not runs.rows:
        return None
    attempts: dict[str, list[FlowStepAttemptRecord]] = defaultdict(list)
    for row in attempt_rows.rows:
        attempts[str(row[1])].append(attempt_record(row))
    records = [step_record(row, attempts.get(str(row[1]), [])) for row in steps.rows]
    return replace(run_record(runs.rows[0]), steps=order_steps(records))
