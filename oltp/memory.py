"""``InMemoryRunStore``: the lifecycle contract in process memory.

For engine authors' unit tests and as the reference model the PostgreSQL store
is checked against. It shares the argument checks of ``oltp.arguments`` and the
record types, keeps everything behind one lock (thread-safe), and follows the
same rules: validation first, terminal transitions, attempts, dispatch guard.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace

from oltp import arguments as arg
from oltp.clock import Clock, checked_now, wall_clock
from oltp.errors import InvalidTransition, RunAlreadyExists, RunNotFound, StepNotFound
from oltp.records import FlowRunRecord, FlowStepAttemptRecord, FlowStepRecord, RunStatus, StepStatus
from oltp.rows import order_steps


@dataclass
class _Step:
    record: FlowStepRecord
    attempts: list[FlowStepAttemptRecord] = field(default_factory=list)


@dataclass
class _Run:
    record: FlowRunRecord
    steps: dict[str, _Step] = field(default_factory=dict)
    dispatched: dict[str, str | None] = field(default_factory=dict)
    revision: int = 1


class InMemoryRunStore:
    """The lifecycle contract held in a dictionary; nothing survives the process."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or wall_clock
        self._lock = threading.Lock()
        self._runs: dict[uuid.UUID, _Run] = {}

    def close(self) -> None:
        """Nothing to release; present so both stores are used the same way."""

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
    ) -> FlowRunRecord:
        """Create a Running run and return it."""
        # Same order as RunStore: every argument, then the clock.
        fid = arg.run_id(flow_id, "flow_id")
        name = arg.text(flow_name, "flow_name")
        rid = arg.run_id(run_id)
        trigger = arg.text(trigger_key, "trigger_key")
        data = arg.json_text(trigger_data, "trigger_data")
        job = arg.optional_text(job_id, "job_id")
        source = arg.optional_uuid(source_run_id, "source_run_id")
        record = FlowRunRecord(
            id=rid,
            flow_id=fid,
            flow_name=name,
            status=RunStatus.RUNNING,
            trigger_key=trigger,
            trigger_data_json=data,
            background_job_id=job,
            started_at=checked_now(self._clock),
            completed_at=None,
            source_run_id=source,
        )
        with self._lock:
            if record.id in self._runs:
                raise RunAlreadyExists(record.id)
            self._runs[record.id] = _Run(record)
        return record

    def record_step_start(
        self,
        run_id: uuid.UUID,
        step_key: str,
        step_type: str,
        input_json: str | None = None,
        job_id: str | None = None,
    ) -> None:
        """Open the step's next attempt (the step becomes Running)."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        kind = arg.text(step_type, "step_type")
        inputs = arg.json_text(input_json, "input_json")
        job = arg.optional_text(job_id, "job_id")
        now = checked_now(self._clock)
        with self._lock:
            run = self._run(rid)
            step = run.steps.get(key)
            number = 1 if step is None else step.record.attempt_count + 1
            attempt = FlowStepAttemptRecord(
                rid, key, number, kind, StepStatus.RUNNING, inputs, None, None, job, now, None
            )
            record = FlowStepRecord(rid, key, kind, StepStatus.RUNNING, inputs, None, None, job, now, None, number)
            if step is None:
                run.steps[key] = _Step(record, [attempt])
            else:
                step.record = record
                step.attempts.append(attempt)
            self._touch_if_terminal(run)

    def record_step_complete(
        self,
        run_id: uuid.UUID,
        step_key: str,
        status: StepStatus | str,
        output_json: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """Close the step's newest attempt with this outcome."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        st = arg.step_status(status)
        output = arg.json_text(output_json, "output_json")
        error = arg.optional_text(error_message, "error_message")
        now = checked_now(self._clock)
        with self._lock:
            run = self._run(rid)
            step = run.steps.get(key)
            if step is None:
                raise StepNotFound(rid, key)
            outcome = {"status": st, "output_json": output, "error_message": error, "completed_at": now}
            step.attempts[-1] = replace(step.attempts[-1], **outcome)  # type: ignore[arg-type]
            step.record = replace(step.record, **outcome)  # type: ignore[arg-type]
            self._touch_if_terminal(run)

    def complete_run(self, run_id: uuid.UUID, status: RunStatus | str) -> None:
        """Give a Running run its terminal status and ``completed_at``."""
        rid = arg.run_id(run_id)
        st = arg.run_status(status, terminal=True)
        now = checked_now(self._clock)
        with self._lock:
            run = self._run(rid)
            if run.record.status is RunStatus.RUNNING:
                run.record = replace(run.record, status=st, completed_at=now)
                run.revision += 1
            elif run.record.status is not st:
                raise InvalidTransition(f"run {rid} is already {run.record.status}; it cannot become {st}")

    def retry_step(self, run_id: uuid.UUID, step_key: str) -> None:
        """Reset the step to Pending and the run to Running, clearing the dispatch."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        with self._lock:
            run = self._run(rid)
            step = run.steps.get(key)
            if step is None:
                raise StepNotFound(rid, key)
            step.record = replace(
                step.record, status=StepStatus.PENDING, completed_at=None, output_json=None, error_message=None
            )
            run.record = replace(run.record, status=RunStatus.RUNNING, completed_at=None)
            run.revision += 1
            run.dispatched.pop(key, None)

    def try_record_dispatch(self, run_id: uuid.UUID, step_key: str) -> bool:
        """True for exactly one caller per (run, step) until the dispatch is released."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        checked_now(self._clock)
        with self._lock:
            run = self._run(rid)
            if key in run.dispatched:
                return False
            run.dispatched[key] = None
            return True

    def release_dispatch(self, run_id: uuid.UUID, step_key: str) -> None:
        """Make the step dispatchable again; unknown runs and steps are a no-op."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        with self._lock:
            run = self._runs.get(rid)
            if run is not None:
                run.dispatched.pop(key, None)

    def annotate_dispatch(self, run_id: uuid.UUID, step_key: str, job_id: str) -> None:
        """Attach the dispatcher's job id; a missing dispatch record is ignored."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        job = arg.text(job_id, "job_id")
        with self._lock:
            run = self._runs.get(rid)
            if run is not None and key in run.dispatched:
                run.dispatched[key] = job

    def get_dispatched_step_keys(self, run_id: uuid.UUID) -> frozenset[str]:
        """Step keys dispatched and not released (empty for an unknown run)."""
        rid = arg.run_id(run_id)
        with self._lock:
            run = self._runs.get(rid)
            return frozenset(run.dispatched) if run else frozenset()

    def get_active_runs(self) -> list[FlowRunRecord]:
        """Running runs, newest first."""
        with self._lock:
            active = [r.record for r in self._runs.values() if r.record.status is RunStatus.RUNNING]
        return sorted(active, key=lambda r: (r.started_at, r.id.int), reverse=True)

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        """The run with its steps and their attempts, or None."""
        rid = arg.run_id(run_id)
        with self._lock:
            run = self._runs.get(rid)
            if run is None:
                return None
            steps = [replace(s.record, attempts=tuple(s.attempts)) for s in run.steps.values()]
            return replace(run.record, steps=order_steps(steps))

    def dispatch_job_id(self, run_id: uuid.UUID, step_key: str) -> str | None:
        """The job id annotated on a dispatch (for tests of ``annotate_dispatch``)."""
        with self._lock:
            run = self._runs.get(arg.run_id(run_id))
            return None if run is None else run.dispatched.get(step_key)
