"""``InMemoryRunStore``: the lifecycle contract in process memory.

For engine authors' unit tests and as the reference model the PostgreSQL
stores are checked against. Arguments go through the same front
(``oltp.calls``) as the PostgreSQL stores; everything sits behind one lock
(thread-safe), and the rules are the same: fenced completions, times monotone
per run, terminal transitions, attempts, the dispatch guard with leases, run
control. The clamps mirror the SQL of the migrations (``GREATEST(now, ...)``).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from oltp import calls
from oltp.clock import Clock, checked_now, wall_clock
from oltp.errors import InvalidTransition, RunAlreadyExists, RunNotFound, StaleAttempt, StepNotFound
from oltp.records import DispatchRecord, FlowRunRecord, FlowStepAttemptRecord, FlowStepRecord, RunStatus, StepStatus
from oltp.rows import order_steps
from oltp.runs import new_run_record

TERMINAL_STEP = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED})


@dataclass
class _Step:
    record: FlowStepRecord
    attempts: list[FlowStepAttemptRecord] = field(default_factory=list)


@dataclass
class _Run:
    record: FlowRunRecord
    steps: dict[str, _Step] = field(default_factory=dict)
    dispatched: dict[str, DispatchRecord] = field(default_factory=dict)
    revision: int = 1
    idempotency_key: str | None = None
    cancel_requested_at: datetime | None = None
    deadline: datetime | None = None


class InMemoryRunStore:
    """The lifecycle contract held in a dictionary; nothing survives the process."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or wall_clock
        self._lock = threading.Lock()
        self._runs: dict[uuid.UUID, _Run] = {}
        self._archived: set[uuid.UUID] = set()

    def close(self) -> None:
        """Nothing to release; present so every store is used the same way."""

    def _now(self) -> datetime:
        return checked_now(self._clock)

    def _run(self, run_id: uuid.UUID) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def _touch_if_terminal(self, run: _Run) -> None:
        # A step write to a terminal run makes a new version of it (mirrors the revision bump).
        if run.record.status.is_terminal:
            run.revision += 1

    def start_run(
        self,
        flow_id: uuid.UUID,
        flow_name: str,
        run_id: uuid.UUID,
        trigger_key: str,
        trigger_data: str | None = None,
        job_id: str | None = None,
        source_run_id: uuid.UUID | None = None,
        *,
        idempotency_key: str | None = None,
        deadline: datetime | None = None,
    ) -> FlowRunRecord:
        """Create a Running run and return it; a repeated ``idempotency_key`` returns the first run instead."""
        call = calls.start_run(
            flow_id, flow_name, run_id, trigger_key, trigger_data, job_id, source_run_id, idempotency_key, deadline
        )
        now = self._now()
        with self._lock:
            if call.idempotency_key is not None:
                for existing in self._runs.values():
                    same_flow = existing.record.flow_id == call.flow_id
                    if same_flow and existing.idempotency_key == call.idempotency_key:
                        return existing.record
            if call.run_id in self._runs or call.run_id in self._archived:
                raise RunAlreadyExists(call.run_id)
            record = new_run_record(call, now)
            self._runs[call.run_id] = _Run(record, idempotency_key=call.idempotency_key, deadline=call.deadline)
        return record

    def record_step_start(
        self,
        run_id: uuid.UUID,
        step_key: str,
        step_type: str,
        input_json: str | None = None,
        job_id: str | None = None,
    ) -> FlowStepAttemptRecord:
        """Open the step's next attempt (the step becomes Running) and return it."""
        call = calls.step_start(run_id, step_key, step_type, input_json, job_id)
        now = self._now()
        with self._lock:
            run = self._run(call.run_id)
            at = max(now, run.record.started_at)
            step = run.steps.get(call.step_key)
            number = 1 if step is None else step.record.attempt_count + 1
            attempt = FlowStepAttemptRecord(
                call.run_id, call.step_key, number, call.step_type, StepStatus.RUNNING,
                call.input_json, None, None, call.job_id, at, None,
            )  # fmt: skip
            record = FlowStepRecord(
                call.run_id, call.step_key, call.step_type, StepStatus.RUNNING,
                call.input_json, None, None, call.job_id, at, None, number,
            )  # fmt: skip
            if step is None:
                run.steps[call.step_key] = _Step(record, [attempt])
            else:
                step.record = record
                step.attempts.append(attempt)
            self._touch_if_terminal(run)
        return attempt

    def record_step_complete(
        self,
        run_id: uuid.UUID,
        step_key: str,
        status: StepStatus | str,
        output_json: str | None = None,
        error_message: str | None = None,
        *,
        attempt: int | None = None,
    ) -> None:
        """Close the step's newest attempt (``attempt``: only if it is still that one) with this outcome."""
        call = calls.step_complete(run_id, step_key, status, output_json, error_message, attempt)
        now = self._now()
        with self._lock:
            run = self._run(call.run_id)
            step = run.steps.get(call.step_key)
            if step is None:
                raise StepNotFound(call.run_id, call.step_key)
            newest = step.attempts[-1]
            if call.attempt is not None and call.attempt != newest.attempt:
                raise StaleAttempt(call.run_id, call.step_key, call.attempt, newest.attempt)
            current = step.record  # mirrors the newest attempt, except when retry_step reopened it
            if current.status in TERMINAL_STEP:
                if (current.status, current.output_json, current.error_message) == call[2:5]:
                    return  # the same outcome again: a retried acknowledgement
                raise InvalidTransition(
                    f"attempt {newest.attempt} of step {call.step_key!r} in run {call.run_id} is already closed"
                    f" with another outcome; it cannot be completed again as {call.status.value}"
                )
            outcome = {
                "status": call.status,
                "output_json": call.output_json,
                "error_message": call.error_message,
                "completed_at": max(now, newest.started_at),
            }
            step.attempts[-1] = replace(newest, **outcome)  # type: ignore[arg-type]
            step.record = replace(step.record, **outcome)  # type: ignore[arg-type]
            self._touch_if_terminal(run)

    def complete_run(self, run_id: uuid.UUID, status: RunStatus | str) -> bool:
        """Give a Running run its terminal status: True; False when it already had that status."""
        call = calls.complete_run(run_id, status)
        now = self._now()
        with self._lock:
            run = self._run(call.run_id)
            if run.record.status is RunStatus.RUNNING:
                run.record = replace(run.record, status=call.status, completed_at=max(now, run.record.started_at))
                run.revision += 1
                return True
            if run.record.status is not call.status:
                raise InvalidTransition(
                    f"run {call.run_id} is already {run.record.status}; it cannot become {call.status}"
                )
            return False

    def retry_step(self, run_id: uuid.UUID, step_key: str) -> None:
        """Reset the step to Pending and the run to Running, clearing the dispatch."""
        call = calls.step_ref(run_id, step_key)
        with self._lock:
            run = self._run(call.run_id)
            step = run.steps.get(call.step_key)
            if step is None:
                raise StepNotFound(call.run_id, call.step_key)
            step.record = replace(
                step.record, status=StepStatus.PENDING, completed_at=None, output_json=None, error_message=None
            )
            run.record = replace(run.record, status=RunStatus.RUNNING, completed_at=None)
            run.revision += 1
            run.cancel_requested_at = None
            run.dispatched.pop(call.step_key, None)

    def try_record_dispatch(
        self,
        run_id: uuid.UUID,
        step_key: str,
        owner: str | None = None,
        lease: timedelta | float | None = None,
    ) -> bool:
        """True for exactly one caller per (run, step) until the dispatch is released (or its lease claimed)."""
        call = calls.dispatch(run_id, step_key, owner, lease)
        now = self._now()
        with self._lock:
            run = self._run(call.run_id)
            if call.step_key in run.dispatched:
                return False
            expiry = None if call.lease is None else now + call.lease
            run.dispatched[call.step_key] = DispatchRecord(call.run_id, call.step_key, now, None, call.owner, expiry)
            return True

    def heartbeat(self, run_id: uuid.UUID, step_key: str, owner: str, lease: timedelta | float) -> bool:
        """Renew ``owner``'s lease on a dispatch: True; False when the dispatch is no longer its own."""
        call = calls.heartbeat(run_id, step_key, owner, lease)
        now = self._now()
        with self._lock:
            run = self._runs.get(call.run_id)
            held = None if run is None else run.dispatched.get(call.step_key)
            if run is None or held is None or held.owner != call.owner:
                return False
            assert call.lease is not None
            run.dispatched[call.step_key] = replace(held, lease_expires_at=now + call.lease)
            return True

    def claim_expired_dispatches(self, owner: str, lease: timedelta | float, limit: int = 100) -> list[DispatchRecord]:
        """Take over dispatches of Running runs whose lease expired; each goes to exactly one claimer."""
        call = calls.claim(owner, lease, limit)
        now = self._now()
        with self._lock:
            expired = [
                (d.lease_expires_at, d.run_id, d.step_key)
                for run in self._runs.values()
                if run.record.status is RunStatus.RUNNING
                for d in run.dispatched.values()
                if d.lease_expires_at is not None and d.lease_expires_at < now
            ]
            claimed = []
            for _, rid, key in sorted(expired)[: call.limit]:
                run = self._runs[rid]
                taken = replace(
                    run.dispatched[key], owner=call.owner, lease_expires_at=now + call.lease, dispatched_at=now
                )
                run.dispatched[key] = taken
                claimed.append(taken)
        return sorted(claimed, key=lambda d: (d.run_id, d.step_key))

    def get_dispatches(self, run_id: uuid.UUID) -> list[DispatchRecord]:
        """The run's open dispatches with owner, job id and lease expiry, by step key."""
        rid = calls.run(run_id)
        with self._lock:
            run = self._runs.get(rid)
            return [] if run is None else [run.dispatched[k] for k in sorted(run.dispatched)]

    def release_dispatch(self, run_id: uuid.UUID, step_key: str) -> None:
        """Make the step dispatchable again; unknown runs and steps are a no-op."""
        call = calls.step_ref(run_id, step_key)
        with self._lock:
            run = self._runs.get(call.run_id)
            if run is not None:
                run.dispatched.pop(call.step_key, None)

    def annotate_dispatch(self, run_id: uuid.UUID, step_key: str, job_id: str) -> None:
        """Attach the dispatcher's job id; a missing dispatch record is ignored."""
        call = calls.annotate(run_id, step_key, job_id)
        with self._lock:
            run = self._runs.get(call.run_id)
            if run is not None and call.step_key in run.dispatched:
                run.dispatched[call.step_key] = replace(run.dispatched[call.step_key], job_id=call.job_id)

    def get_dispatched_step_keys(self, run_id: uuid.UUID) -> frozenset[str]:
        """Step keys dispatched and not released (empty for an unknown run)."""
        rid = calls.run(run_id)
        with self._lock:
            run = self._runs.get(rid)
            return frozenset(run.dispatched) if run else frozenset()

    def request_cancel(self, run_id: uuid.UUID) -> bool:
        """Ask a Running run's workers to stop: True for the first request, False after it or once terminal."""
        rid = calls.run(run_id)
        now = self._now()
        with self._lock:
            run = self._run(rid)
            if run.record.status is not RunStatus.RUNNING or run.cancel_requested_at is not None:
                return False
            run.cancel_requested_at = max(now, run.record.started_at)
            return True

    def is_cancel_requested(self, run_id: uuid.UUID) -> bool:
        """Whether cancelling the run was requested (False for an unknown run)."""
        rid = calls.run(run_id)
        with self._lock:
            run = self._runs.get(rid)
            return run is not None and run.cancel_requested_at is not None

    def set_deadline(self, run_id: uuid.UUID, deadline: datetime | None) -> None:
        """Set (or with None clear) the instant by which the run should be complete."""
        call = calls.deadline(run_id, deadline)
        with self._lock:
            self._run(call.run_id).deadline = call.deadline

    def get_overdue_runs(self, limit: int = 100) -> list[FlowRunRecord]:
        """Running runs past their deadline, most overdue first."""
        take = calls.row_limit(limit)
        now = self._now()
        with self._lock:
            overdue = [
                (r.deadline, r.record.id.bytes, r.record)
                for r in self._runs.values()
                if r.record.status is RunStatus.RUNNING and r.deadline is not None and r.deadline < now
            ]
        return [record for _, _, record in sorted(overdue, key=lambda o: o[:2])][:take]

    def get_active_runs(self) -> list[FlowRunRecord]:
        """Running runs, newest first."""
        with self._lock:
            active = [r.record for r in self._runs.values() if r.record.status is RunStatus.RUNNING]
        return sorted(active, key=lambda r: (r.started_at, r.id.int), reverse=True)

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        """The run with its steps and their attempts, or None."""
        rid = calls.run(run_id)
        with self._lock:
            run = self._runs.get(rid)
            if run is None:
                return None
            steps = [replace(s.record, attempts=tuple(s.attempts)) for s in run.steps.values()]
            return replace(run.record, steps=order_steps(steps))

    def dispatch_job_id(self, run_id: uuid.UUID, step_key: str) -> str | None:
        """The job id annotated on a dispatch (for tests of ``annotate_dispatch``)."""
        with self._lock:
            run = self._runs.get(calls.run(run_id))
            held = None if run is None else run.dispatched.get(step_key)
            return None if held is None else held.job_id
