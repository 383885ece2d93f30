"""``FlowRunStore``: the whole contract in one object.

Writes go to ``oltp.RunStore`` on PostgreSQL (this class is one); reports go to an
``olap.RunAnalytics`` over live and archived runs; export, prune and compaction
call the ``sync`` package with the store's own DSN, archive, schema and clock.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import polars as pl

from flowrun import embedded
from flowrun.config import Settings
from olap.analytics import RunAnalytics
from oltp.clock import Clock, checked_now
from oltp.records import DashboardStatistics, FlowRunRecord, Granularity, RunsPage, RunTimeseriesBucket
from oltp.store import RunStore
from sync.compact import DEFAULT_MAX_FILE_ROWS, CompactReport, compact
from sync.durations import retention
from sync.export import DEFAULT_BATCH_SIZE, ExportReport, export_completed_runs
from sync.progress import Progress
from sync.prune import prune


class FlowRunStore(RunStore):
    """Lifecycle writes on PostgreSQL plus reporting over live and archived runs."""

    def __init__(self, settings: Settings, dsn: str, *, clock: Clock | None, migrate: bool, server: Any) -> None:
        super().__init__(
            dsn, schema=settings.schema, clock=clock, migrate_schema=migrate, max_connections=settings.pool_size
        )
        self.settings = settings
        self._server = server
        self.analytics = RunAnalytics(dsn, settings.archive, schema=settings.schema, clock=clock)

    @classmethod
    def open(
        cls,
        dsn: str | None = None,
        archive: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        migrate: bool = True,
        *,
        home: str | os.PathLike[str] | None = None,
        schema: str | None = None,
    ) -> FlowRunStore:
        """Open the store; with no DSN anywhere, on the embedded server in the data dir."""
        settings = Settings.resolve(dsn=dsn, archive=archive, home=home, schema=schema)
        server = None
        target = settings.dsn
        if target is None:
            server = embedded.start(settings.pgdata)
            target = embedded.dsn(server)
        return cls(settings, target, clock=clock, migrate=migrate, server=server)

    def __enter__(self) -> FlowRunStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the reporting reader and the connection pool."""
        self.analytics.close()
        super().close()

    # -- reporting: live UNION archive (olap.RunAnalytics) --------------------------------------

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        """The run with steps and attempts from PostgreSQL, else from the archive once pruned."""
        found = super().get_run_detail(run_id)
        return found if found is not None else self.analytics.get_run_detail(run_id)

    def get_runs(self, flow_id: uuid.UUID | None = None, skip: int = 0, take: int = 50) -> list[FlowRunRecord]:
        """A page of runs, newest ``started_at`` first."""
        return self.analytics.get_runs(flow_id, skip, take)

    def get_runs_page(
        self,
        flow_id: uuid.UUID | None = None,
        status: str | None = None,
        skip: int = 0,
        take: int = 50,
        search: str | None = None,
    ) -> RunsPage:
        """A page of runs matching flow, status and search, with the total count."""
        return self.analytics.get_runs_page(flow_id, status, skip, take, search)

    def get_statistics(self) -> DashboardStatistics:
        """Dashboard counts; "today" is the store clock's UTC day."""
        return self.analytics.get_statistics()

    def get_run_timeseries(
        self, granularity: Granularity | str, since: datetime, until: datetime, flow_id: uuid.UUID | None = None
    ) -> list[RunTimeseriesBucket]:
        """Counts and duration percentiles per UTC hour or day."""
        return self.analytics.get_run_timeseries(granularity, since, until, flow_id)

    def get_derived_runs(self, source_run_id: uuid.UUID) -> list[FlowRunRecord]:
        """Runs re-run from ``source_run_id``, newest first."""
        return self.analytics.get_derived_runs(source_run_id)

    def runs(self) -> pl.DataFrame:
        """Every run, live and archived, as a polars frame."""
        return self.analytics.runs()

    def steps(self) -> pl.DataFrame:
        """Every step at its run's newest version, as a polars frame."""
        return self.analytics.steps()

    def attempts(self) -> pl.DataFrame:
        """Every attempt at its run's newest version, as a polars frame."""
        return self.analytics.attempts()

    def sql(self, query: str) -> pl.DataFrame:
        """DuckDB SQL over the views ``runs``, ``steps`` and ``attempts``."""
        return self.analytics.sql(query)

    # -- export and retention (sync) -------------------------------------------------------------

    def export(
        self, batch_size: int = DEFAULT_BATCH_SIZE, *, progress: Progress | None = None, wait: float = 0.0
    ) -> ExportReport:
        """Move every completed run waiting in the outbox to the Parquet archive, exactly once."""
        return export_completed_runs(
            self.dsn,
            self.settings.archive,
            batch_size,
            schema=self.schema,
            clock=self._clock,
            progress=progress,
            wait=wait,
        )

    def prune(self, older_than: timedelta | str, *, progress: Progress | None = None) -> int:
        """Delete from PostgreSQL the archived runs completed before now - ``older_than``; returns the count."""
        keep = retention(older_than)
        return prune(self.dsn, keep, now=checked_now(self._clock), schema=self.schema, progress=progress)

    def compact(
        self, *, max_rows_per_file: int = DEFAULT_MAX_FILE_ROWS, progress: Progress | None = None, wait: float = 0.0
    ) -> CompactReport:
        """Merge each archive partition's small files and drop superseded run versions."""
        return compact(
            self.dsn,
            self.settings.archive,
            schema=self.schema,
            clock=self._clock,
            progress=progress,
            wait=wait,
            max_rows_per_file=max_rows_per_file,
        )
