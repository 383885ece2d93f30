"""``AsyncFlowRunStore``: the whole contract for asyncio.

Lifecycle calls are ``oltp.AsyncRunStore``'s (this class is one): awaited on
psycopg's async pool, so an engine's event loop never blocks on them. Reports,
export, prune and compaction run the sync ``olap``/``sync`` code in a worker
thread (``asyncio.to_thread``): DuckDB and the archive jobs are blocking
libraries, and a thread keeps the loop free while they work.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from flowrun import embedded
from flowrun.config import Settings
from olap.analytics import RunAnalytics
from oltp.async_store import AsyncRunStore
from oltp.clock import Clock, checked_now
from oltp.records import DashboardStatistics, FlowRunRecord, Granularity, RunsPage, RunTimeseriesBucket
from sync.compact import DEFAULT_MAX_FILE_ROWS, DEFAULT_VACUUM_AFTER, CompactReport, compact
from sync.durations import retention
from sync.export import DEFAULT_BATCH_SIZE, ExportReport, export_completed_runs
from sync.prune import prune
from sync.upgrade import UpgradeReport, upgrade_archive

if TYPE_CHECKING:
    import polars as pl


class AsyncFlowRunStore(AsyncRunStore):
    """Lifecycle writes awaited on PostgreSQL, reports over live and archived runs in a worker thread."""

    def __init__(self, settings: Settings, dsn: str, *, clock: Clock | None, migrate: bool) -> None:
        super().__init__(
            dsn, schema=settings.schema, clock=clock, migrate_schema=migrate, max_connections=settings.pool_size
        )
        self.settings = settings
        self.analytics = RunAnalytics(
            dsn, settings.archive, schema=settings.schema, clock=clock, storage_options=settings.storage_options
        )

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

    async def runs(self) -> pl.DataFrame:
        """Every run, live and archived, as a polars frame."""
        return await asyncio.to_thread(self.analytics.runs)

    async def steps(self) -> pl.DataFrame:
        """Every step at its run's newest version, as a polars frame."""
        return await asyncio.to_thread(self.analytics.steps)

    async def attempts(self) -> pl.DataFrame:
        """Every attempt at its run's newest version, as a polars frame."""
        return await asyncio.to_thread(self.analytics.attempts)

    async def sql(self, query: str) -> pl.DataFrame:
        """DuckDB SQL over the views ``runs``, ``steps`` and ``attempts``."""
        return await asyncio.to_thread(self.analytics.sql, query)

    async def export(self, batch_size: int = DEFAULT_BATCH_SIZE, *, wait: float = 0.0) -> ExportReport:
        """Move every completed run waiting in the outbox to the archive, exactly once."""
        return await asyncio.to_thread(
            export_completed_runs,
            self.dsn,
            self.settings.archive,
            batch_size,
            schema=self.schema,
            clock=self._clock,
            wait=wait,
            storage_options=self.settings.storage_options,
        )

    async def prune(self, older_than: timedelta | str) -> int:
        """Delete from PostgreSQL the archived runs completed before now - ``older_than``; returns the count."""
        keep = retention(older_than)
        now = checked_now(self._clock)
        return await asyncio.to_thread(prune, self.dsn, keep, now=now, schema=self.schema)

    async def compact(
        self,
        *,
        max_rows_per_file: int = DEFAULT_MAX_FILE_ROWS,
        wait: float = 0.0,
        vacuum_after: timedelta = DEFAULT_VACUUM_AFTER,
    ) -> CompactReport:
        """Optimize the archive's partitions (sorted by start time), checkpoint, vacuum after ``vacuum_after``."""
        return await asyncio.to_thread(
            compact,
            self.dsn,
            self.settings.archive,
            schema=self.schema,
            clock=self._clock,
            wait=wait,
            max_rows_per_file=max_rows_per_file,
            vacuum_after=vacuum_after,
            storage_options=self.settings.storage_options,
        )

    async def upgrade_archive(self, batch_size: int = DEFAULT_BATCH_SIZE, *, wait: float = 0.0) -> UpgradeReport:
        """Convert a v1 Parquet archive at the store's location into the Delta table (a no-op once done)."""
        return await asyncio.to_thread(
            upgrade_archive,
            self.dsn,
            self.settings.archive,
            batch_size,
            schema=self.schema,
            clock=self._clock,
            wait=wait,
            storage_options=self.settings.storage_options,
        )
