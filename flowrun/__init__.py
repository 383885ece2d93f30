"""flowrun-store: run history for workflow engines, on PostgreSQL, a Delta Lake archive and DuckDB."""

from flowrun.async_store import AsyncFlowRunStore
from flowrun.store import FlowRunStore
from oltp.async_store import AsyncRunStore
from oltp.contract import LifecycleStore
from oltp.errors import (
    ArchiveBusy,
    DatabaseError,
    FlowRunStoreError,
    InvalidArgument,
    InvalidJson,
    InvalidPaging,
    InvalidQuery,
    InvalidStatus,
    InvalidTimeRange,
    InvalidTransition,
    MigrationRequired,
    NaiveDatetime,
    QueryRefused,
    RunAlreadyExists,
    RunNotFound,
    StaleAttempt,
    StepNotFound,
    StoreUnavailable,
)
from oltp.memory import InMemoryRunStore
from oltp.records import (
    DashboardStatistics,
    DispatchRecord,
    FlowRunRecord,
    FlowStepAttemptRecord,
    FlowStepRecord,
    Granularity,
    RunsPage,
    RunStatus,
    RunTimeseriesBucket,
    StepStatus,
)
from sync.errors import ArchiveConflict, ArchiveCorrupt, ArchiveUpgradeRequired

__all__ = [
    "ArchiveBusy",
    "ArchiveConflict",
    "ArchiveCorrupt",
    "ArchiveUpgradeRequired",
    "AsyncFlowRunStore",
    "AsyncRunStore",
    "DashboardStatistics",
    "DatabaseError",
    "DispatchRecord",
    "FlowRunRecord",
    "FlowRunStore",
    "FlowRunStoreError",
    "FlowStepAttemptRecord",
    "FlowStepRecord",
    "Granularity",
    "InMemoryRunStore",
    "InvalidArgument",
    "InvalidJson",
    "InvalidPaging",
    "InvalidQuery",
    "InvalidStatus",
    "InvalidTimeRange",
    "InvalidTransition",
    "LifecycleStore",
    "MigrationRequired",
    "NaiveDatetime",
    "QueryRefused",
    "RunAlreadyExists",
    "RunNotFound",
    "RunStatus",
    "RunTimeseriesBucket",
    "RunsPage",
    "StaleAttempt",
    "StepNotFound",
    "StepStatus",
    "StoreUnavailable",
]
