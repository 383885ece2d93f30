"""Record types and status enums shared by every part of flowrun-store.

This module is the system of record for the shapes the store hands out: the
lifecycle store builds them from PostgreSQL rows, the in-memory store from its
dictionaries, the reporting side from Arrow/polars frames. They are frozen so a
record handed to a caller can never drift from what was stored.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class RunStatus(enum.StrEnum):
    """Status of a flow run; every status but ``Running`` is terminal."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"
    SKIPPED = "Skipped"

    @property
    def is_terminal(self) -> bool:
        """True for every status a run can end in."""
        return self is not RunStatus.RUNNING


class StepStatus(enum.StrEnum):
    """Status of a step (and of each of its attempts)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class Granularity(enum.StrEnum):
    """Bucket size of a run timeseries."""

    HOUR = "hour"
    DAY = "day"


TERMINAL_RUN_STATUSES: frozenset[RunStatus] = frozenset(s for s in RunStatus if s.is_terminal)


@dataclass(frozen=True, slots=True)
class FlowStepAttemptRecord:
    """One execution attempt of a step; attempts are numbered from 1."""

    run_id: uuid.UUID
    step_key: str
    attempt: int
    step_type: str
    status: StepStatus
    input_json: str | None
    output_json: str | None
    error_message: str | None
    job_id: str | None
    started_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class FlowStepRecord:
    """A step of a run; its fields mirror its newest attempt unless a retry reset it."""

    run_id: uuid.UUID
    step_key: str
    step_type: str
    status: StepStatus
    input_json: str | None
    output_json: str | None
    error_message: str | None
    job_id: str | None
    started_at: datetime | None
    completed_at: datetime | None
    attempt_count: int
    attempts: tuple[FlowStepAttemptRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class FlowRunRecord:
    """A flow run; ``steps`` is None except in the answer of ``get_run_detail``."""

    id: uuid.UUID
    flow_id: uuid.UUID
    flow_name: str
    status: RunStatus
    trigger_key: str
    trigger_data_json: str | None
    background_job_id: str | None
    started_at: datetime
    completed_at: datetime | None
    source_run_id: uuid.UUID | None
    steps: tuple[FlowStepRecord, ...] | None = None


@dataclass(frozen=True, slots=True)
class DashboardStatistics:
    """Counts for the dashboard overview panel."""

    total_flows: int
    active_runs: int
    completed_today: int
    failed_today: int


@dataclass(frozen=True, slots=True)
class RunTimeseriesBucket:
    """Counts and duration percentiles of the runs started in one UTC bucket."""

    timestamp: datetime
    total: int
    succeeded: int
    failed: int
    cancelled: int
    timed_out: int
    skipped: int
    running: int
    p50_duration_ms: float | None
    p95_duration_ms: float | None
    p99_duration_ms: float | None


class RunsPage(NamedTuple):
    """One page of runs and the number of runs matching the filter."""

    runs: list[FlowRunRecord]
    total_count: int


@dataclass(frozen=True, slots=True)
class DispatchRecord:
    """An open dispatch of a step: who holds it, the job it became, and until when its lease runs.

    ``owner`` and ``lease_expires_at`` are None for a dispatch recorded without a lease
    (the seed's guard); ``job_id`` is what ``annotate_dispatch`` attached, if anything.
    """

    run_id: uuid.UUID
    step_key: str
    dispatched_at: datetime
    job_id: str | None
    owner: str | None
    lease_expires_at: datetime | None
