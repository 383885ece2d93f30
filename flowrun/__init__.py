"""flowrun-store: run history for workflow engines, on PostgreSQL, a Delta Lake archive and DuckDB."""

from typing import TYPE_CHECKING

from oltp import lazy_names
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

if TYPE_CHECKING:
    from flowrun.async_store import AsyncFlowRunStore
    from flowrun.store import FlowRunStore
    from oltp.async_store import AsyncRunStore
    from oltp.contract import LifecycleStore
    from oltp.memory import InMemoryRunStore
    from sync.errors import ArchiveConflict, ArchiveCorrupt, ArchiveUnavailable, ArchiveUpgradeRequired

# The stores load on first use (PEP 562): the CLI and the web app import only what their command needs.
# So do the archive's errors: ``sync`` loads pyarrow, deltalake and DuckDB, which the ``flowrun``
# command configures first (``flowrun.job_process``).
_LAZY = {
    "ArchiveConflict": "sync.errors",
    "ArchiveCorrupt": "sync.errors",
    "ArchiveUnavailable": "sync.errors",
    "ArchiveUpgradeRequired": "sync.errors",
    "AsyncFlowRunStore": "flowrun.async_store",
    "AsyncRunStore": "oltp.async_store",
    "FlowRunStore": "flowrun.store",
    "InMemoryRunStore": "oltp.memory",
    "LifecycleStore": "oltp.contract",
}

__all__ = [
    "ArchiveBusy",
    "ArchiveConflict",
    "ArchiveCorrupt",
    "ArchiveUnavailable",
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


if not TYPE_CHECKING:  # mypy reads the imports above; at run time each class loads on first use
    __getattr__, __dir__ = lazy_names.loader(__name__, _LAZY, globals(), __all__)
