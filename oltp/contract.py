"""The lifecycle contract every store fulfils (PostgreSQL sync, in memory; async with awaitables).

``LifecycleStore`` is what the conformance suite is typed against and what an
engine should depend on; ``oltp.RunStore`` and ``oltp.memory.InMemoryRunStore``
satisfy it (checked by mypy below), and ``oltp.AsyncRunStore`` offers the same
methods as coroutines. Semantics: docs/semantics.md.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from oltp.records import DispatchRecord, FlowRunRecord, FlowStepAttemptRecord, RunStatus, StepStatus


class LifecycleStore(Protocol):
    """What an engine calls while it runs flows."""

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
    ) -> FlowRunRecord: ...

    def record_step_start(
        self,
        run_id: uuid.UUID,
        step_key: str,
        step_type: str,
        input_json: str | None = None,
        job_id: str | None = None,
    ) -> FlowStepAttemptRecord: ...

    def record_step_complete(
        self,
        run_id: uuid.UUID,
        step_key: str,
        status: StepStatus | str,
        output_json: str | None = None,
        error_message: str | None = None,
        *,
        attempt: int | None = None,
    ) -> None: ...

    def complete_run(self, run_id: uuid.UUID, status: RunStatus | str) -> bool: ...

    def retry_step(self, run_id: uuid.UUID, step_key: str) -> None: ...

    def try_record_dispatch(
        self, run_id: uuid.UUID, step_key: str, owner: str | None = None, lease: timedelta | float | None = None
    ) -> bool: ...

    def heartbeat(self, run_id: uuid.UUID, step_key: str, owner: str, lease: timedelta | float) -> bool: ...

    def claim_expired_dispatches(
        self, owner: str, lease: timedelta | float, limit: int = 100
    ) -> list[DispatchRecord]: ...

    def get_dispatches(self, run_id: uuid.UUID) -> list[DispatchRecord]: ...

    def release_dispatch(self, run_id: uuid.UUID, step_key: str) -> None: ...

    def annotate_dispatch(self, run_id: uuid.UUID, step_key: str, job_id: str) -> None: ...

    def get_dispatched_step_keys(self, run_id: uuid.UUID) -> frozenset[str]: ...

    def request_cancel(self, run_id: uuid.UUID) -> bool: ...

    def is_cancel_requested(self, run_id: uuid.UUID) -> bool: ...

    def set_deadline(self, run_id: uuid.UUID, deadline: datetime | None) -> None: ...

    def get_overdue_runs(self, limit: int = 100) -> list[FlowRunRecord]: ...

    def get_active_runs(self) -> list[FlowRunRecord]: ...

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None: ...

    def close(self) -> None: ...


if TYPE_CHECKING:  # mypy checks that both sync stores satisfy the protocol
    from oltp.memory import InMemoryRunStore
    from oltp.store import RunStore

    _sync: type[LifecycleStore] = RunStore
    _memory: type[LifecycleStore] = InMemoryRunStore
