"""flowrun-store's transactional side: run lifecycle writes, the dispatch guard and run control on PostgreSQL."""

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
    from oltp.async_store import AsyncRunStore
    from oltp.contract import LifecycleStore
    from oltp.memory import InMemoryRunStore
    from oltp.store import RunStore

# The stores load on first use (PEP 562): a reader importing oltp's errors or records skips them.
_LAZY = {
    "AsyncRunStore": "oltp.async_store",
    "InMemoryRunStore": "oltp.memory",
    "LifecycleStore": "oltp.contract",
    "RunStore": "oltp.store",
}

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
    "RunStore",
    "RunTimeseriesBucket",
    "RunsPage",
    "StaleAttempt",
    "StepNotFound",
    "StepStatus",
    "StoreUnavailable",
]


if not TYPE_CHECKING:  # mypy reads the imports above; at run time each class loads on first use
    __getattr__, __dir__ = lazy_names.loader(__name__, _LAZY, globals(), __all__)
