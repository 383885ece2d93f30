"""flowrun-store's transactional side: run lifecycle writes, the dispatch guard and run control on PostgreSQL."""

from oltp.async_store import AsyncRunStore
from oltp.contract import LifecycleStore
from oltp.errors import (
    ArchiveBusy,
    DatabaseError,
    FlowRunStoreError,
    InvalidArgument,
    InvalidJson,
    InvalidPaging,
    InvalidStatus,
    InvalidTimeRange,
    InvalidTransition,
    MigrationRequired,
    NaiveDatetime,
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
from oltp.store import RunStore

__all__ = [
    "ArchiveBusy",
    "AsyncRunStore",
    "DashboardStatistics",
    "DatabaseError",
    "DispatchRecord",
    "FlowRunRecord",
    "FlowRunStoreError",
    "FlowStepAttemptRecord",
    "FlowStepRecord",
    "Granularity",
    "InMemoryRunStore",
    "InvalidArgument",
    "InvalidJson",
    "InvalidPaging",
    "InvalidStatus",
    "InvalidTimeRange",
    "InvalidTransition",
    "LifecycleStore",
    "MigrationRequired",
    "NaiveDatetime",
    "RunAlreadyExists",
    "RunNotFound",
    "RunStatus",
    "RunStore",
    "RunTimeseriesBucket",
    "RunsPage",
    "StaleAttempt",
    "StepNotFound",
    "StepStatus",
    "StoreUnavailable",
]
