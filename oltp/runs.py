"""Run rows: creating a run, completing it, and listing the active ones.

Each plan is one statement on an autocommit connection, so it is its own
transaction and costs one round trip (two on the rare paths: a duplicate
trigger reading back the run it duplicates, a ``complete_run`` that changed
nothing finding out why).
"""

from __future__ import annotations

from datetime import datetime

import psycopg.errors

from oltp.calls import CompleteRun, StartRun
from oltp.errors import InvalidTransition, RunAlreadyExists, RunNotFound
from oltp.plan import Plan, Query, Result
from oltp.records import FlowRunRecord, RunStatus
from oltp.rows import RUN_COLUMNS, run_record

# A run pruned to the archive keeps its row in archived_runs: its id is taken for good.
# Reusing it would start a second run under one id (shown twice, its new revisions never
# exported past the archived one, and pruned as if already archived).
_INSERT_RUN = """
INSERT INTO flow_runs (id, flow_id, flow_name, status, trigger_key, trigger_data_json,
                       background_job_id, started_at, source_run_id, idempotency_key, deadline)
SELECT %(id)s, %(flow_id)s, %(flow_name)s, 'Running', %(trigger_key)s, %(trigger_data_json)s,
       %(job_id)s, %(now)s, %(source_run_id)s, %(idempotency_key)s, %(deadline)s
 WHERE NOT EXISTS (SELECT 1 FROM archived_runs WHERE run_id = %(id)s)
"""
# A duplicate trigger waits on the unique index for the first one's commit and then inserts
# nothing: the key, not a read before the write, decides the race.
_INSERT_KEYED_RUN = (
    _INSERT_RUN + "ON CONFLICT (flow_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING\n"
)
_RUN_BY_KEY = f"SELECT {RUN_COLUMNS} FROM flow_runs WHERE flow_id = %s AND idempotency_key = %s"


def start_run(call: StartRun, now: datetime) -> Plan[FlowRunRecord]:
    """Insert a Running run; an id already live or archived raises ``RunAlreadyExists``.

    With an idempotency key already used for this flow, nothing is inserted and the
    run that key started is returned (whatever its status now).
    """
    params = {**call._asdict(), "id": call.run_id, "now": now}
    keyed = call.idempotency_key is not None
    try:
        reply: Result = yield Query(_INSERT_KEYED_RUN if keyed else _INSERT_RUN, params)
    except psycopg.errors.UniqueViolation as exc:
        if not keyed:
            raise RunAlreadyExists(call.run_id) from exc
        reply = Result([], 0)  # the same id and key again: the retried trigger below finds its run
    if reply.rowcount == 1:
        # Every column is known here (the clock gave started_at, at the microsecond precision
        # PostgreSQL keeps), so the record is built without shipping the row back.
        return new_run_record(call, now)
    if keyed:
        first: Result = yield Query(_RUN_BY_KEY, (call.flow_id, call.idempotency_key))
        if first.rows:
            return run_record(first.rows[0])
    raise RunAlreadyExists(call.run_id)


def new_run_record(call: StartRun, now: datetime) -> FlowRunRecord:
    """The record of a run ``call`` has just started at ``now``."""
    return FlowRunRecord(
        id=call.run_id,
        flow_id=call.flow_id,
        flow_name=call.flow_name,
        status=RunStatus.RUNNING,
        trigger_key=call.trigger_key,
        trigger_data_json=call.trigger_data_json,
        background_job_id=call.job_id,
        started_at=now,
        completed_at=None,
        source_run_id=call.source_run_id,
    )


# The status test sits in the UPDATE's own WHERE clause: a concurrent writer's commit is
# re-checked against the newest version of the row (READ COMMITTED re-evaluation), so
# exactly one of two racing completions wins, and the outbox entry commits with it.
# completed_at never precedes started_at, whatever the completing store's clock says.
_COMPLETE_RUN = """
WITH done AS (
    UPDATE flow_runs
       SET status = %(status)s, completed_at = GREATEST(%(now)s, started_at), revision = revision + 1
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


def complete_run(call: CompleteRun, now: datetime) -> Plan[bool]:
    """Move a Running run to a terminal status: True; already in that status: False."""
    params = {"id": call.run_id, "status": call.status.value, "now": now}
    while True:
        reply: Result = yield Query(_COMPLETE_RUN, params)
        if reply.rows[0][0]:
            return True
        # Nothing changed: find out why, from a fresh snapshot (the rare path).
        current: Result = yield Query(_RUN_STATUS, (call.run_id,))
        if not current.rows:
            raise RunNotFound(call.run_id)
        status = current.rows[0][0]
        if status == call.status.value:
            return False
        if status != RunStatus.RUNNING.value:
            raise InvalidTransition(f"run {call.run_id} is already {status}; it cannot become {call.status.value}")
        # A retry_step reopened the run between the two reads: complete the reopened run.


_ACTIVE_RUNS = f"""
SELECT {RUN_COLUMNS} FROM flow_runs
 WHERE status = 'Running'
 ORDER BY started_at DESC, id DESC
"""


def active_runs() -> Plan[list[FlowRunRecord]]:
    """Every Running run, newest start first."""
    reply: Result = yield Query(_ACTIVE_RUNS)
    return [run_record(row) for row in reply.rows]
