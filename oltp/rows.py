"""Column lists and row-to-record conversion for the lifecycle tables."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from oltp.records import FlowRunRecord, FlowStepAttemptRecord, FlowStepRecord, RunStatus, StepStatus

RUN_COLUMNS = (
    "id, flow_id, flow_name, status, trigger_key, trigger_data_json, background_job_id,"
    " started_at, completed_at, source_run_id"
)
STEP_COLUMNS = (
    "run_id, step_key, step_type, status, input_json, output_json, error_message, job_id,"
    " started_at, completed_at, attempt_count"
)
ATTEMPT_COLUMNS = (
    "run_id, step_key, attempt, step_type, status, input_json, output_json, error_message, job_id,"
    " started_at, completed_at"
)


def utc(value: datetime | None) -> datetime | None:
    """Normalise a driver timestamp to UTC (the session is UTC already; this is a guard)."""
    return None if value is None else value.astimezone(UTC)


def run_record(row: Sequence[Any]) -> FlowRunRecord:
    """Build a run from a row in ``RUN_COLUMNS`` order."""
    return FlowRunRecord(
        id=row[0],
        flow_id=row[1],
        flow_name=row[2],
        status=RunStatus(row[3]),
        trigger_key=row[4],
        trigger_data_json=row[5],
        background_job_id=row[6],
        started_at=utc(row[7]),  # type: ignore[arg-type]
        completed_at=utc(row[8]),
        source_run_id=row[9],
    )


def attempt_record(row: Sequence[Any]) -> FlowStepAttemptRecord:
    """Build an attempt from a row in ``ATTEMPT_COLUMNS`` order."""
    return FlowStepAttemptRecord(
        run_id=row[0],
        step_key=row[1],
        attempt=row[2],
        step_type=row[3],
        status=StepStatus(row[4]),
        input_json=row[5],
        output_json=row[6],
        error_message=row[7],
        job_id=row[8],
        started_at=utc(row[9]),  # type: ignore[arg-type]
        completed_at=utc(row[10]),
    )


def step_record(row: Sequence[Any], attempts: Sequence[FlowStepAttemptRecord]) -> FlowStepRecord:
    """Build a step from a row in ``STEP_COLUMNS`` order and its attempts."""
    return FlowStepRecord(
        run_id=row[0],
        step_key=row[1],
        step_type=row[2],
        status=StepStatus(row[3]),
        input_json=row[4],
        output_json=row[5],
        error_message=row[6],
        job_id=row[7],
        started_at=utc(row[8]),
        completed_at=utc(row[9]),
        attempt_count=row[10],
        attempts=tuple(attempts),
    )


def order_steps(steps: Sequence[FlowStepRecord]) -> tuple[FlowStepRecord, ...]:
    """Detail order: by the newest attempt's start, then step key; attempts ascending."""
    epoch = datetime.min.replace(tzinfo=UTC)

    def key(step: FlowStepRecord) -> tuple[datetime, str]:
        newest = step.attempts[-1].started_at if step.attempts else (step.started_at or epoch)
        return (newest, step.step_key)

    return tuple(sorted(steps, key=key))


def as_uuid(value: Any) -> uuid.UUID:
    """Driver UUIDs are ``uuid.UUID`` already; strings from other drivers are parsed."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
