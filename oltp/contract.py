"""The lifecycle contract every store implementation fulfils (PostgreSQL and in-memory)."""

from __future__ import annotations

import uuid
from typing import Protocol

from oltp.records import FlowRunRecord, RunStatus, StepStatus


class LifecycleStore(Protocol):
    """What an engine calls while it runs flows; semantics are fixed by docs/semantics.md."""

    def start_run(
        self,
        flow_id: uuid.UUID,
        flow_name: str,
        run_id: uuid.UUID,
        trigger_key: str,
        trigger_data: str | None = None,
        job_id: str | None = None,
        source_run_id: uuid.UUID | None = None,
    ) -> FlowRunRecord: ...

    def record_step_start(
        self,
        run_id: uuid.UUID,
        step_key: str,
        step_type: str,
        input_json: str | None = None,
        job_id: str | None = None,
    ) -> None: ...

    def record_step_complete(
        self,
        run_id: uuid.UUID,
        step_key: str,
        status: StepStatus | str,
        output_json: str | None = None,
        error_message: str | None = None,
    ) -> None: ...

    def complete_run(self, run_id: uuid.UUID, status: RunStatus | str) -> None: ...

    def retry_step(self, run_id: uuid.UUID, step_key: str) -> None: ...

    def try_record_dispatch(self, run_id: uuid.UUID, step_key: str) -> bool: ...

    def release_dispatch(self, run_id: uuid.UUID, step_key: str) -> None: ...

    def annotate_dispatch(self, run_id: uuid.UUID, step_key: str, job_id: str) -> None: ...

    def get_dispatched_step_keys(self, run_id: uuid.UUID) -> frozenset[str]: ...

    def get_active_runs(self) -> list[FlowRunRecord]: ...

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None: ...
