"""The dispatch guard, and leases on it: at most one dispatcher per (run, step).

``try_record`` is a single ``INSERT ... ON CONFLICT DO NOTHING``: the primary key
decides the race inside PostgreSQL, so exactly one of any number of concurrent
callers (threads or processes) sees its row inserted.

A dispatch recorded with a lease carries its owner and an expiry. The owner
renews it (``heartbeat``); when a worker dies the lease runs out and
``claim_expired`` hands the dispatch to one new owner. Claimers lock the rows
they take with ``FOR UPDATE SKIP LOCKED`` and re-check the expiry on the newest
row version, so any number of concurrent claimers take each expired dispatch
exactly once, and a heartbeat racing a claim either renews the lease (the claim
skips it) or finds the dispatch gone to the claimer (and returns False).
"""

from __future__ import annotations

from datetime import datetime

import psycopg.errors

from oltp.calls import Annotate, Claim, Dispatch, StepRef
from oltp.errors import RunNotFound
from oltp.plan import Plan, Query, Result
from oltp.records import DispatchRecord
from oltp.rows import utc

_TRY_RECORD = """
INSERT INTO flow_dispatches (run_id, step_key, dispatched_at, owner, lease_expires_at)
VALUES (%(run_id)s, %(step_key)s, %(now)s, %(owner)s, %(now)s + %(lease)s)
ON CONFLICT (run_id, step_key) DO NOTHING
"""
DISPATCH_COLUMNS = "run_id, step_key, dispatched_at, job_id, owner, lease_expires_at"


def dispatch_record(row: tuple[object, ...]) -> DispatchRecord:
    """Build a dispatch from a row in ``DISPATCH_COLUMNS`` order."""
    return DispatchRecord(row[0], row[1], utc(row[2]), row[3], row[4], utc(row[5]))  # type: ignore[arg-type]


def try_record(call: Dispatch, now: datetime) -> Plan[bool]:
    """True when this call recorded the dispatch, False when it was already recorded."""
    try:
        reply: Result = yield Query(_TRY_RECORD, {**call._asdict(), "now": now})
    except psycopg.errors.ForeignKeyViolation as exc:
        raise RunNotFound(call.run_id) from exc
    return reply.rowcount == 1


_HEARTBEAT = """
UPDATE flow_dispatches SET lease_expires_at = %(now)s + %(lease)s
 WHERE run_id = %(run_id)s AND step_key = %(step_key)s AND owner = %(owner)s
"""


def heartbeat(call: Dispatch, now: datetime) -> Plan[bool]:
    """Renew the owner's lease: True, or False when the dispatch is released or claimed by another."""
    reply: Result = yield Query(_HEARTBEAT, {**call._asdict(), "now": now})
    return reply.rowcount == 1


# Oldest expiry first, so a backlog is worked off in the order workers died. Only Running
# runs: a dispatch left on a terminal run has nothing to recover.
_CLAIM_EXPIRED = f"""
WITH expired AS (
    SELECT d.run_id, d.step_key
      FROM flow_dispatches d JOIN flow_runs r ON r.id = d.run_id
     WHERE d.lease_expires_at < %(now)s AND r.status = 'Running'
     ORDER BY d.lease_expires_at, d.run_id, d.step_key
     LIMIT %(limit)s
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE flow_dispatches d
   SET owner = %(owner)s, lease_expires_at = %(now)s + %(lease)s, dispatched_at = %(now)s
  FROM expired e
 WHERE d.run_id = e.run_id AND d.step_key = e.step_key
RETURNING {", ".join("d." + c for c in DISPATCH_COLUMNS.split(", "))}
"""


def claim_expired(call: Claim, now: datetime) -> Plan[list[DispatchRecord]]:
    """Take up to ``limit`` expired dispatches for ``owner``, with a fresh lease."""
    reply: Result = yield Query(_CLAIM_EXPIRED, {**call._asdict(), "now": now})
    return sorted((dispatch_record(row) for row in reply.rows), key=lambda d: (d.run_id, d.step_key))


def open_dispatches(run_id: object) -> Plan[list[DispatchRecord]]:
    """The run's dispatches not released, by step key."""
    query = f"SELECT {DISPATCH_COLUMNS} FROM flow_dispatches WHERE run_id = %s ORDER BY step_key"
    reply: Result = yield Query(query, (run_id,))
    return [dispatch_record(row) for row in reply.rows]


def release(call: StepRef) -> Plan[None]:
    """Forget the dispatch so the step can be dispatched again; no record is fine."""
    yield Query("DELETE FROM flow_dispatches WHERE run_id = %s AND step_key = %s", call)


def annotate(call: Annotate) -> Plan[None]:
    """Attach the dispatcher's job id to the record, if there is one."""
    yield Query("UPDATE flow_dispatches SET job_id = %s WHERE run_id = %s AND step_key = %s", (call[2], *call[:2]))


def dispatched_keys(run_id: object) -> Plan[frozenset[str]]:
    """Step keys dispatched and not released."""
    reply: Result = yield Query("SELECT step_key FROM flow_dispatches WHERE run_id = %s", (run_id,))
    return frozenset(str(row[0]) for row in reply.rows)
