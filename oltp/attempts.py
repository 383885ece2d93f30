"""Step and attempt writes: starting a step, recording its outcome, retrying it.

Every write locks the run row first (``FOR NO KEY UPDATE``), so writes to one run
are serialised in a single lock order and cannot deadlock with each other or
with ``complete_run``. A step write to a run that is already terminal makes a
new version of it: the revision is bumped and the run is queued for export in
the same transaction. Attempt numbers come from the step row's ``attempt_count``,
incremented by an upsert, so concurrent starts of one step get distinct numbers.
The writes themselves are PL/pgSQL functions created by the migrations (why, and
their current text: ``oltp/migrations/versions/0004_fenced_step_writes.py``);
this module calls them and maps their outcome to the precise error.

Completions are fenced: an attempt already closed with a terminal status takes
the same outcome again as a no-op (a retried acknowledgement) and refuses any
other; a completion aimed at an attempt that is no longer the newest is refused.
"""

from __future__ import annotations

from oltp.calls import StepComplete, StepRef, StepStart
from oltp.errors import InvalidTransition, RunNotFound, StaleAttempt, StepNotFound
from oltp.plan import Plan, Query, Result
from oltp.records import FlowStepAttemptRecord, StepStatus

# Outcomes the functions report (how far they got).
NO_RUN, NO_STEP, DONE, SAME_OUTCOME, OTHER_OUTCOME, STALE = 0, 1, 2, 3, 4, 5

_STEP_START = "SELECT o_outcome, o_attempt, o_started_at FROM flowrun_step_start(%s, %s, %s, %s, %s, %s)"
_STEP_COMPLETE = "SELECT o_outcome, o_newest FROM flowrun_step_complete(%s, %s, %s, %s, %s, %s, %s)"
_STEP_RETRY = "SELECT flowrun_step_retry(%s, %s)"


def record_step_start(call: StepStart, now: object) -> Plan[FlowStepAttemptRecord]:
    """Open the step's next attempt, make the step Running, and return the attempt."""
    reply: Result = yield Query(_STEP_START, (*call, now))
    outcome, number, started_at = reply.rows[0]
    if outcome == NO_RUN:
        raise RunNotFound(call.run_id)
    return FlowStepAttemptRecord(
        call.run_id, call.step_key, number, call.step_type, StepStatus.RUNNING,
        call.input_json, None, None, call.job_id, started_at, None,
    )  # fmt: skip


def record_step_complete(call: StepComplete, now: object) -> Plan[None]:
    """Close the step's newest attempt with this outcome; the step mirrors it."""
    reply: Result = yield Query(_STEP_COMPLETE, (*call[:2], call.status.value, *call[3:5], now, call.attempt))
    outcome, newest = reply.rows[0]
    raise_for(outcome, call, newest)


def raise_for(outcome: int, call: StepComplete, newest: int | None) -> None:
    """Turn a completion's outcome into its error (None for a write or a no-op)."""
    if outcome == NO_RUN:
        raise RunNotFound(call.run_id)
    if outcome == NO_STEP:
        raise StepNotFound(call.run_id, call.step_key)
    if outcome == STALE:
        raise StaleAttempt(call.run_id, call.step_key, call.attempt or 0, newest or 0)
    if outcome == OTHER_OUTCOME:
        raise InvalidTransition(
            f"attempt {newest} of step {call.step_key!r} in run {call.run_id} is already closed with another"
            f" outcome; it cannot be completed again as {call.status.value}"
        )


def retry_step(call: StepRef) -> Plan[None]:
    """Reset a step to Pending and reopen its run, in one transaction."""
    reply: Result = yield Query(_STEP_RETRY, call)
    outcome = reply.rows[0][0]
    if outcome == NO_RUN:
        raise RunNotFound(call.run_id)
    if outcome == NO_STEP:
        raise StepNotFound(call.run_id, call.step_key)
