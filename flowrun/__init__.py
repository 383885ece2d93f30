"""flowrun-store: run history for workflow engines, on PostgreSQL, Parquet and DuckDB."""

from flowrun.store import FlowRunStore
from oltp.errors import (
    FlowRunStoreError,
    InvalidArgument,
    InvalidTransition,
    RunAlreadyExists,
    RunNotFound,
    StepNotFound,
    StoreUnavailable,
)
from oltp.records import (
    DashboardStatistics,
    FlowRunRecord,
    FlowStepAttemptRecord,
    FlowStepRecord,
    Granularity,
    RunsPage,
    RunStatus,
    RunTimeseriesBucket,
    StepStatus,
)

__all__ = [
    "DashboardStatistics",
    "FlowRunRecord",
    "FlowRunStore",
    "FlowRunStoreError",
    "FlowStepAttemptRecord",
    "FlowStepRecord",
    "Granularity",
    "InvalidArgument",
    "InvalidTransition",
    "RunAlreadyExists",
    "RunNotFound",
    "RunStatus",
    "RunTimeseriesBucket",
    "RunsPage",
    "StepNotFound",
    "StepStatus",
    "StoreUnavailable",
]
