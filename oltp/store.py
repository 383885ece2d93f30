# Generated from oltp/async_store.py by tools/async_to_sync.py: do not edit; change the async source and run the script.
"""``RunStore``: the lifecycle contract on PostgreSQL.

Each public method checks its arguments at the one front (``oltp.calls``),
takes "now" from the injected clock, and carries out one plan (``runs``,
``attempts``, ``dispatch``, ``control``, ``detail``: the statements, written
once) on a pooled connection. The sync ``RunStore`` (``oltp/store.py``) is
generated from the async one (``oltp/async_store.py``) by
``tools/async_to_sync.py``; a test checks that the two agree.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from types import TracebackType

from oltp import attempts, calls, control, detail, dispatch, migrate, runs
from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA, Database
from oltp.records import DispatchRecord, FlowRunRecord, FlowStepAttemptRecord, RunStatus, StepStatus


class RunStore:
    """Lifecycle writes, the dispatch guard, leases, run control and run detail on PostgreSQL."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        clock: Clock | None = None,
        migrate_schema: bool = True,
        min_connections: int = 1,
        max_connections: int = 8,
        timeout: float = 10.0,
    ) -> None:
        # Migrating (or checking) the schema is a one-off at construction, done synchronously.
        if migrate_schema:
            migrate.upgrade(dsn, schema)
        else:
            migrate.check(dsn, schema)
        self._dsn = dsn
        self._schema = schema
        self._clock: Clock = clock or wall_clock
        self.db = Database(dsn, schema, min_size=min_connections, max_size=max_connections, timeout=timeout)

    @property
    def dsn(self) -> str:
        """The PostgreSQL DSN the store's pool connects to."""
        return self._dsn

    @property
    def schema(self) -> str:
        """The PostgreSQL schema of the store's tables."""
        return self._schema

    def __enter__(self) -> RunStore:
        # The pool opened when the store was made.
        self.db.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.db.close()

    def _now(self) -> datetime:
        return checked_now(self._clock)

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
        return self.db.execute(lambda: runs.start_run(call, now))

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
        return self.db.execute(lambda: attempts.record_step_start(call, now))

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
        self.db.execute(lambda: attempts.record_step_complete(call, now))

    def complete_run(self, run_id: uuid.UUID, status: RunStatus | str) -> bool:
        """Give a Running run its terminal status: True; False when it already had that status."""
        call = calls.complete_run(run_id, status)
        now = self._now()
        return self.db.execute(lambda: runs.complete_run(call, now))

    def retry_step(self, run_id: uuid.UUID, step_key: str) -> None:
        """Reset the step to Pending and the run to Running, clearing the dispatch."""
        call = calls.step_ref(run_id, step_key)
        self.db.execute(lambda: attempts.retry_step(call))

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
        return self.db.execute(lambda: dispatch.try_record(call, now))

    def heartbeat(self, run_id: uuid.UUID, step_key: str, owner: str, lease: timedelta | float) -> bool:
        """Renew ``owner``'s lease on a dispatch: True; False when the dispatch is no longer its own."""
        call = calls.heartbeat(run_id, step_key, owner, lease)
        now = self._now()
        return self.db.execute(lambda: dispatch.heartbeat(call, now))

    def claim_expired_dispatches(self, owner: str, lease: timedelta | float, limit: int = 100) -> list[DispatchRecord]:
        """Take over dispatches of Running runs whose lease expired; each goes to exactly one claimer."""
        call = calls.claim(owner, lease, limit)
        now = self._now()
        return self.db.execute(lambda: dispatch.claim_expired(call, now))

    def get_dispatches(self, run_id: uuid.UUID) -> list[DispatchRecord]:
        """The run's open dispatches with owner, job id and lease expiry, by step key."""
        rid = calls.run(run_id)
        return self.db.execute(lambda: dispatch.open_dispatches(rid))

    def release_dispatch(self, run_id: uuid.UUID, step_key: str) -> None:
        """Make the step dispatchable again; unknown runs and steps are a no-op."""
        call = calls.step_ref(run_id, step_key)
        self.db.execute(lambda: dispatch.release(call))

    def annotate_dispatch(self, run_id: uuid.UUID, step_key: str, job_id: str) -> None:
        """Attach the dispatcher's job id; a missing dispatch record is ignored."""
        call = calls.annotate(run_id, step_key, job_id)
        self.db.execute(lambda: dispatch.annotate(call))

    def get_dispatched_step_keys(self, run_id: uuid.UUID) -> frozenset[str]:
        """Step keys dispatched and not released (empty for an unknown run)."""
        rid = calls.run(run_id)
        return self.db.execute(lambda: dispatch.dispatched_keys(rid))

    def request_cancel(self, run_id: uuid.UUID) -> bool:
        """Ask a Running run's workers to stop: True for the first request, False after it or once terminal."""
        rid = calls.run(run_id)
        now = self._now()
        return self.db.execute(lambda: control.request_cancel(rid, now))

    def is_cancel_requested(self, run_id: uuid.UUID) -> bool:
        """Whether cancelling the run was requested (one primary-key read; False for an unknown run)."""
        rid = calls.run(run_id)
        return self.db.execute(lambda: control.cancel_requested(rid))

    def set_deadline(self, run_id: uuid.UUID, deadline: datetime | None) -> None:
        """Set (or with None clear) the instant by which the run should be complete."""
        call = calls.deadline(run_id, deadline)
        self.db.execute(lambda: control.set_deadline(call))

    def get_overdue_runs(self, limit: int = 100) -> list[FlowRunRecord]:
        """Running runs past their deadline, most overdue first."""
        take = calls.row_limit(limit)
        now = self._now()
        return self.db.execute(lambda: control.overdue_runs(take, now))

    def get_active_runs(self) -> list[FlowRunRecord]:
        """Running runs, newest first."""
        return self.db.execute(runs.active_runs)

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        """The run with its steps and their attempts, or None when it is not in PostgreSQL."""
        rid = calls.run(run_id)
        return self.db.execute(lambda: detail.run_detail(rid))
