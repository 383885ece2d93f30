"""flowrun-store's transactional side: run lifecycle writes and the dispatch guard on PostgreSQL."""

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
from oltp.store import RunStore

__all__ = [
    "DashboardStatistics",
    "FlowRunRecord",
    "FlowRunStoreError",
    "FlowStepAttemptRecord",
    "FlowStepRecord",
    "Granularity",
    "InvalidArgument",
    "InvalidTransition",
    "RunAlreadyExists",
    "RunNotFound",
    "RunStatus",
    "RunStore",
    "RunTimeseriesBucket",
    "RunsPage",
    "StepNotFound",
    "StepStatus",
    "StoreUnavailable",
]
