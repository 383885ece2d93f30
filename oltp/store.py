"""``RunStore``: the lifecycle contract on PostgreSQL.

Each public method validates its arguments (``oltp.arguments``), takes "now"
from the injected clock, and runs one transaction through the pool; the SQL
lives beside each concern in ``runs``, ``attempts``, ``dispatch`` and ``detail``.
"""

from __future__ import annotations

import uuid
from types import TracebackType

from oltp import arguments as arg
from oltp import attempts, detail, dispatch, migrate, runs
from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA, Database
from oltp.records import FlowRunRecord, RunStatus, StepStatus


class RunStore:
    """Lifecycle writes, the dispatch guard and run detail on PostgreSQL (thread-safe)."""

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
        if migrate_schema:
            migrate.upgrade(dsn, schema)
        else:
            migrate.check(dsn, schema)
        self.dsn = dsn
        self.schema = schema
        self._clock: Clock = clock or wall_clock
        self.db = Database(dsn, schema, min_size=min_connections, max_size=max_connections, timeout=timeout)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.db.close()

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
        fields = {
            "flow_id": arg.run_id(flow_id, "flow_id"),
            "flow_name": arg.text(flow_name, "flow_name"),
            "run_id": arg.run_id(run_id),
            "trigger_key": arg.text(trigger_key, "trigger_key"),
            "trigger_data_json": arg.json_text(trigger_data, "trigger_data"),
            "job_id": arg.optional_text(job_id, "job_id"),
            "source_run_id": arg.optional_uuid(source_run_id, "source_run_id"),
            "now": checked_now(self._clock),
        }
        return self.db.run(lambda conn: runs.start_run(conn, **fields))  # type: ignore[arg-type]

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
        self.db.run(
            lambda conn: attempts.record_step_start(
                conn, run_id=rid, step_key=key, step_type=kind, input_json=inputs, job_id=job, now=now
            )
        )

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
        self.db.run(
            lambda conn: attempts.record_step_complete(
                conn, run_id=rid, step_key=key, status=st, output_json=output, error_message=error, now=now
            )
        )

    def complete_run(self, run_id: uuid.UUID, status: RunStatus | str) -> None:
        """Give a Running run its terminal status and ``completed_at``."""
        rid = arg.run_id(run_id)
        st = arg.run_status(status, terminal=True)
        now = checked_now(self._clock)
        self.db.run(lambda conn: runs.complete_run(conn, run_id=rid, status=st, now=now))

    def retry_step(self, run_id: uuid.UUID, step_key: str) -> None:
        """Reset the step to Pending and the run to Running, clearing the dispatch."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        self.db.run(lambda conn: attempts.retry_step(conn, run_id=rid, step_key=key))

    def try_record_dispatch(self, run_id: uuid.UUID, step_key: str) -> bool:
        """True for exactly one caller per (run, step) until the dispatch is released."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        now = checked_now(self._clock)
        return self.db.run(lambda conn: dispatch.try_record(conn, rid, key, now))

    def release_dispatch(self, run_id: uuid.UUID, step_key: str) -> None:
        """Make the step dispatchable again; unknown runs and steps are a no-op."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        self.db.run(lambda conn: dispatch.release(conn, rid, key))

    def annotate_dispatch(self, run_id: uuid.UUID, step_key: str, job_id: str) -> None:
        """Attach the dispatcher's job id; a missing dispatch record is ignored."""
        rid = arg.run_id(run_id)
        key = arg.step_key(step_key)
        job = arg.text(job_id, "job_id")
        self.db.run(lambda conn: dispatch.annotate(conn, rid, key, job))

    def get_dispatched_step_keys(self, run_id: uuid.UUID) -> frozenset[str]:
        """Step keys dispatched and not released (empty for an unknown run)."""
        rid = arg.run_id(run_id)
        return self.db.run(lambda conn: dispatch.dispatched_keys(conn, rid))

    def get_active_runs(self) -> list[FlowRunRecord]:
        """Running runs, newest first."""
        return self.db.run(runs.active_runs)

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        """The run with its steps and their attempts, or None when it is not in PostgreSQL."""
        rid = arg.run_id(run_id)
        return self.db.run(lambda conn: detail.run_detail(conn, rid))
