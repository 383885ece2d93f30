"""Run control: cancel requests and deadlines, beside the run they control.

A cancel request is a timestamp on the run, set once while it is Running, that
workers read cheaply (one primary-key lookup) between units of work; the
engine then ends the run with ``complete_run(..., "Cancelled")``. A deadline is
the instant by which a run should be complete; ``overdue_runs`` lists Running
runs past theirs (a partial index holds only Running runs with a deadline), for
the engine to end as TimedOut. Neither makes a new version of the run: they
steer the engine and are not part of the archived history.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from oltp.calls import Deadline
from oltp.errors import RunNotFound
from oltp.plan import Plan, Query, Result
from oltp.records import FlowRunRecord
from oltp.rows import RUN_COLUMNS, run_record

_REQUEST_CANCEL = """
UPDATE flow_runs SET cancel_requested_at = GREATEST(%s, started_at)
 WHERE id = %s AND status = 'Running' AND cancel_requested_at IS NULL
"""


def request_cancel(run_id: uuid.UUID, now: datetime) -> Plan[bool]:
    """Record the request: True when this call made it, False when already requested or terminal."""
    reply: Result = yield Query(_REQUEST_CANCEL, (now, run_id))
    if reply.rowcount == 1:
        return True
    exists: Result = yield Query("SELECT 1 FROM flow_runs WHERE id = %s", (run_id,))
    if not exists.rows:
        raise RunNotFound(run_id)
    return False


def cancel_requested(run_id: uuid.UUID) -> Plan[bool]:
    """Whether a cancel request is on the run (False for an unknown run)."""
    reply: Result = yield Query("SELECT cancel_requested_at IS NOT NULL FROM flow_runs WHERE id = %s", (run_id,))
    return bool(reply.rows and reply.rows[0][0])


def set_deadline(call: Deadline) -> Plan[None]:
    """Set or clear the run's deadline."""
    reply: Result = yield Query("UPDATE flow_runs SET deadline = %s WHERE id = %s", (call.deadline, call.run_id))
    if reply.rowcount != 1:
        raise RunNotFound(call.run_id)


_OVERDUE = f"""
SELECT {RUN_COLUMNS} FROM flow_runs
 WHERE status = 'Running' AND deadline < %s
 ORDER BY deadline, id
 LIMIT %s
"""


def overdue_runs(limit: int, now: datetime) -> Plan[list[FlowRunRecord]]:
    """Running runs whose deadline has passed, most overdue first."""
    reply: Result = yield Query(_OVERDUE, (now, limit))
    return [run_record(row) for row in reply.rows]
