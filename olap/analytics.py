"""``RunAnalytics``: reporting over live runs in PostgreSQL UNION the Delta archive.

Each call validates its arguments, reads what it needs from PostgreSQL in one
repeatable-read snapshot (the archive table version PostgreSQL recorded and the
live rows of its scope, filters pushed down), registers those Arrow tables in a
DuckDB cursor of the instance's one DuckDB database, and lets DuckDB answer over
both sides as one table (``olap.unified``). Either side may be absent: no DSN
reads the archive alone (its newest table version), no archive reads PostgreSQL
alone. The DuckDB database, the table version's file list and what is derived
from it are cached per instance and refreshed when the version changes.
Thread-safe: PostgreSQL reads are serialised on one connection, DuckDB work runs
on a cursor per call.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from olap import addressing, analyst, detail, frames, pages, statistics, timeseries
from olap.scope import RunScope
from olap.search import search_term
from olap.session import Sources
from oltp import arguments as arg
from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA, schema_name
from oltp.errors import InvalidArgument
from oltp.records import (
    DashboardStatistics,
    FlowRunRecord,
    Granularity,
    RunsPage,
    RunTimeseriesBucket,
)
from sync.archive_location import ArchiveLocation

if TYPE_CHECKING:
    import polars as pl


class RunAnalytics:
    """Reporting over live and archived runs as one table (see DESIGN.md, "Reporting")."""

    def __init__(
        self,
        dsn: str | None,
        archive: str | os.PathLike[str] | ArchiveLocation | None,
        *,
        schema: str = DEFAULT_SCHEMA,
        clock: Clock | None = None,
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        if dsn is None and archive is None:
            raise InvalidArgument("RunAnalytics needs a DSN, an archive location, or both")
        location = None if archive is None else ArchiveLocation.resolve(archive, storage_options)
        self._sources = Sources(dsn, location, schema_name(schema))
        self._clock: Clock = clock or wall_clock

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> RunAnalytics:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Refuse new reports; close the PostgreSQL connection and DuckDB database when those in progress end."""
        self._sources.close()

    # -- reporting -------------------------------------------------------------------------

    def get_runs(self, flow_id: uuid.UUID | None = None, skip: int = 0, take: int = 50) -> list[FlowRunRecord]:
        """A page of runs, newest ``started_at`` first (ties by id descending)."""
        scope = RunScope(flow_id=arg.optional_uuid(flow_id, "flow_id"))
        first, size = arg.paging(skip, take)
        return self._sources.retry(lambda: pages.page(self._sources, scope, first, size, with_count=False)).runs

    def get_runs_page(
        self,
        flow_id: uuid.UUID | None = None,
        status: str | None = None,
        skip: int = 0,
        take: int = 50,
        search: str | None = None,
    ) -> RunsPage:
        """A page of runs matching flow, status and search, and how many match in all."""
        scope = RunScope(
            flow_id=arg.optional_uuid(flow_id, "flow_id"),
            status=None if status is None else arg.run_status(status, case_insensitive=True),
            search=search_term(search),
        )
        first, size = arg.paging(skip, take)
        return self._sources.retry(lambda: pages.page(self._sources, scope, first, size, with_count=True))

    def get_derived_runs(self, source_run_id: uuid.UUID) -> list[FlowRunRecord]:
        """Runs re-run from ``source_run_id``, newest first."""
        scope = RunScope(source_run_id=arg.run_id(source_run_id, "source_run_id"))
        return self._sources.retry(lambda: pages.all_runs(self._sources, scope))

    def get_statistics(self) -> DashboardStatistics:
        """Distinct flows, running runs, and runs succeeded/failed on the clock's current UTC day."""
        now = checked_now(self._clock)
        day = datetime(now.year, now.month, now.day, tzinfo=UTC)
        return self._sources.retry(lambda: statistics.statistics(self._sources, day, day + timedelta(days=1)))

    def get_run_timeseries(
        self,
        granularity: Granularity | str,
        since: datetime,
        until: datetime,
        flow_id: uuid.UUID | None = None,
    ) -> list[RunTimeseriesBucket]:
        """Counts and p50/p95/p99 durations per UTC bucket of ``[since aligned down, until)``."""
        win = timeseries.window(granularity, since, until)
        scope = RunScope(flow_id=arg.optional_uuid(flow_id, "flow_id"), since=win.since, until=win.until)
        if win.buckets == 0:
            return []
        return self._sources.retry(lambda: timeseries.buckets(self._sources, win, scope))

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        """An archived run with steps and attempts at its newest archived revision, or None."""
        rid = arg.run_id(run_id)
        return self._sources.retry(lambda: detail.archived_detail(self._sources, rid))

    def warm_search(self) -> None:
        """Kept for callers of the first archive format: search documents are now written by the export."""

    # -- analyst surface -------------------------------------------------------------------

    def runs(self) -> pl.DataFrame:
        """Every run (live UNION archive, once each), newest first, with its ``revision`` and ``duration``."""
        return frames.with_duration(self.sql(frames.RUNS_FRAME))

    def steps(self) -> pl.DataFrame:
        """Every step at its run's winning version, with ``duration``, ``retries`` and ``retried``."""
        return frames.with_duration(self.sql(frames.STEPS_FRAME))

    def attempts(self) -> pl.DataFrame:
        """Every attempt at its run's winning version, with ``duration`` and ``retry`` (follows a failure)."""
        return frames.with_duration(self.sql(frames.ATTEMPTS_FRAME))

    def timeseries_frame(
        self,
        granularity: Granularity | str,
        since: datetime,
        until: datetime,
        flow_id: uuid.UUID | None = None,
    ) -> pl.DataFrame:
        """``get_run_timeseries`` as a polars frame; ``timestamp`` stays UTC."""
        return frames.timeseries_frame(self.get_run_timeseries(granularity, since, until, flow_id))

    def flows(self) -> pl.DataFrame:
        """Every flow: ``flow_id``, its newest ``flow_name``, ``runs``, ``last_run`` and ``last_status``."""
        return self.sql(addressing.FLOWS)

    def resolve_flow(self, flow: str | uuid.UUID) -> uuid.UUID:
        """The flow id for a flow name, an id, or a unique id prefix (reports take ids)."""
        return addressing.resolve(flow, self.sql)

    def resolve_run(self, run: str | uuid.UUID) -> uuid.UUID | None:
        """The run id for an id or a unique prefix of one; None when no run matches."""
        return addressing.resolve_run(run, self.sql)

    def sql(self, query: str) -> pl.DataFrame:
        """Run DuckDB SQL over the views ``runs``, ``steps`` and ``attempts`` of the unified data."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgument("query must be a non-empty SQL string")
        return self._sources.retry(lambda: analyst.sql(self._sources, query))
