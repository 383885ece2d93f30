"""``AsyncFlowRunStore``: the whole contract for asyncio.

Lifecycle calls are ``oltp.AsyncRunStore``'s (this class is one): awaited on
psycopg's async pool, so an engine's event loop never blocks on them. Reports
and the archive jobs (export, prune, compaction, verify, move, upgrade) run the
sync code in a worker thread (``asyncio.to_thread``): the reader's methods, and
the very ``flowrun.archive_jobs`` functions ``FlowRunStore`` calls. DuckDB and the
jobs are blocking libraries, and a thread keeps the loop free while they work;
progress callbacks are called from that thread.
``tests/flowrun/test_async_parity.py`` checks that every public name of
``FlowRunStore`` is here, awaited, with the same parameters.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from flowrun import archive_jobs, embedded
from flowrun.config import Settings
from oltp.async_store import AsyncRunStore
from oltp.clock import Clock
from oltp.records import DashboardStatistics, FlowRunRecord, Granularity, RunsPage, RunTimeseriesBucket
from sync.compact import DEFAULT_MAX_FILE_ROWS, DEFAULT_VACUUM_AFTER, CompactReport
from sync.export import DEFAULT_BATCH_SIZE, ExportReport
from sync.progress import Progress
from sync.upgrade import UpgradeReport
from sync.verify import VerifyReport

if TYPE_CHECKING:
    import polars as pl


class AsyncFlowRunStore(AsyncRunStore):
    """Lifecycle writes awaited on PostgreSQL, reports over live and archived runs in a worker thread."""

    def __init__(self, settings: Settings, dsn: str, *, clock: Clock | None, migrate: bool) -> None:
        super().__init__(
            dsn, schema=settings.schema, clock=clock, migrate_schema=migrate, max_connections=settings.pool_size
        )
        self.settings = settings
        self.analytics = archive_jobs.reader(settings, dsn, clock)

    @classmethod
    async def connect(
        cls,
        dsn: str | None = None,
        archive: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        migrate: bool = True,
        *,
        home: str | os.PathLike[str] | None = None,
        schema: str | None = None,
        storage_options: Mapping[str, str] | None = None,
    ) -> AsyncFlowRunStore:
        """Open the store (as ``FlowRunStore.open``: same arguments, same defaults) with its pool ready."""
        settings = Settings.resolve(dsn=dsn, archive=archive, home=home, schema=schema, storage_options=storage_options)

        def build() -> AsyncFlowRunStore:
            # Starting the embedded server and migrating are blocking one-offs: a worker thread does them.
            target = settings.dsn if settings.dsn is not None else embedded.start(settings.pgdata).dsn()
            return cls(settings, target, clock=clock, migrate=migrate)

        store = await asyncio.to_thread(build)
        await store.db.open()
        return store

    async def __aenter__(self) -> AsyncFlowRunStore:
        await self.db.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the reporting reader and the connection pool."""
        await asyncio.to_thread(self.analytics.close)
        await super().close()

    async def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        """The run with steps and attempts from PostgreSQL, else from the archive once pruned."""
        found = await super().get_run_detail(run_id)
        return found if found is not None else await asyncio.to_thread(self.analytics.get_run_detail, run_id)

    async def get_runs(self, flow_id: uuid.UUID | None = None, skip: int = 0, take: int = 50) -> list[FlowRunRecord]:
        """A page of runs, newest ``started_at`` first."""
        return await asyncio.to_thread(self.analytics.get_runs, flow_id, skip, take)

    async def get_runs_page(
        self,
        flow_id: uuid.UUID | None = None,
        status: str | None = None,
        skip: int = 0,
        take: int = 50,
        search: str | None = None,
    ) -> RunsPage:
        """A page of runs matching flow, status and search, with the total count."""
        return await asyncio.to_thread(self.analytics.get_runs_page, flow_id, status, skip, take, search)

    async def get_statistics(self) -> DashboardStatistics:
        """Dashboard counts; "today" is the store clock's UTC day."""
        return await asyncio.to_thread(self.analytics.get_statistics)

    async def get_run_timeseries(
        self, granularity: Granularity | str, since: datetime, until: datetime, flow_id: uuid.UUID | None = None
    ) -> list[RunTimeseriesBucket]:
        """Counts and duration percentiles per UTC hour or day."""
        return await asyncio.to_thread(self.analytics.get_run_timeseries, granularity, since, until, flow_id)

    async def get_derived_runs(self, source_run_id: uuid.UUID) -> list[FlowRunRecord]:
        """Runs re-run from ``source_run_id``, newest first."""
        return await asyncio.to_thread(self.analytics.get_derived_runs, source_run_id)

    async def warm_search(self) -> None:
        """Build the archive's search documents now rather than on the first search."""
        await asyncio.to_thread(self.analytics.warm_search)

    async def timeseries_frame(
        self, granularity: Granularity | str, since: datetime, until: datetime, flow_id: uuid.UUID | None = None
    ) -> pl.DataFrame:
        """``get_run_timeseries`` as a polars frame; ``timestamp`` stays UTC."""
        return await asyncio.to_thread(self.analytics.timeseries_frame, granularity, since, until, flow_id)

    async def runs(self) -> pl.DataFrame:
        """Every run (live UNION archive, once each), newest first, with its ``revision`` and ``duration``."""
        return await asyncio.to_thread(self.analytics.runs)

    async def steps(self) -> pl.DataFrame:
        """Every step at its run's winning version, with ``duration``, ``retries`` and ``retried``."""
        return await asyncio.to_thread(self.analytics.steps)

    async def attempts(self) -> pl.DataFrame:
        """Every attempt at its run's winning version, with ``duration`` and ``retry`` (follows a failure)."""
        return await asyncio.to_thread(self.analytics.attempts)

    async def flows(self) -> pl.DataFrame:
        """Every flow: ``flow_id``, its newest ``flow_name``, ``runs``, ``last_run`` and ``last_status``."""
        return await asyncio.to_thread(self.analytics.flows)

    async def resolve_flow(self, flow: str | uuid.UUID) -> uuid.UUID:
        """The flow id for a flow name, an id, or a unique id prefix (reports take ids)."""
        return await asyncio.to_thread(self.analytics.resolve_flow, flow)

    async def resolve_run(self, run: str | uuid.UUID) -> uuid.UUID | None:
        """The run id for an id or a unique prefix of one; None when no run matches."""
        return await asyncio.to_thread(self.analytics.resolve_run, run)

    async def sql(self, query: str) -> pl.DataFrame:
        """DuckDB SQL over the views ``runs``, ``steps`` and ``attempts``."""
        return await asyncio.to_thread(self.analytics.sql, query)

    # -- export and retention: the sync jobs (flowrun.archive_jobs) in a worker thread ---------------

    async def export(
        self, batch_size: int = DEFAULT_BATCH_SIZE, *, progress: Progress | None = None, wait: float = 0.0
    ) -> ExportReport:
        """Move every completed run waiting in the outbox to the Delta archive, exactly once."""
        return await asyncio.to_thread(archive_jobs.export, self, self._clock, batch_size, progress=progress, wait=wait)

    async def prune(self, older_than: timedelta | str, *, progress: Progress | None = None) -> int:
        """Delete from PostgreSQL the archived runs completed before now - ``older_than``; returns the count."""
        return await asyncio.to_thread(archive_jobs.prune, self, self._clock, older_than, progress=progress)

    async def compact(
        self,
        *,
        max_rows_per_file: int = DEFAULT_MAX_FILE_ROWS,
        progress: Progress | None = None,
        wait: float = 0.0,
        vacuum_after: timedelta = DEFAULT_VACUUM_AFTER,
    ) -> CompactReport:
        """Optimize the archive's partitions (sorted by start time), checkpoint, vacuum after ``vacuum_after``."""
        return await asyncio.to_thread(
            archive_jobs.compact, self, self._clock,
            max_rows_per_file=max_rows_per_file, progress=progress, wait=wait, vacuum_after=vacuum_after,
        )  # fmt: skip

    async def verify_archive(self, *, progress: Progress | None = None) -> VerifyReport:
        """Read every file of the recorded archive version back: size, row count, SHA-256 as written."""
        return await asyncio.to_thread(archive_jobs.verify_archive, self, self._clock, progress=progress)

    async def move_archive(self, archive: str | os.PathLike[str], *, wait: float = 0.0) -> str:
        """Record that the archive was copied to ``archive`` (same table) and read from there; the old location."""
        return await asyncio.to_thread(archive_jobs.move_archive, self, self._clock, archive, wait=wait)

    async def upgrade_archive(
        self, batch_size: int = DEFAULT_BATCH_SIZE, *, progress: Progress | None = None, wait: float = 0.0
    ) -> UpgradeReport:
        """Convert a v1 Parquet archive at the store's location into the Delta table (a no-op once done)."""
        return await asyncio.to_thread(
            archive_jobs.upgrade_archive, self, self._clock, batch_size, progress=progress, wait=wait
        )
