"""``FlowRunStore``: the whole contract in one object, composed of its parts.

It holds a lifecycle store (``self.lifecycle``, an ``oltp.RunStore`` on
PostgreSQL) and a reader (``self.analytics``, an ``olap.RunAnalytics`` over live
and archived runs) and delegates to each with explicit, typed one-line methods;
``tests/flowrun/test_composition.py`` checks that every public method of both
parts is present here with the same signature, so a method added to either
cannot be silently missing. Export, prune, compaction, verify, move and upgrade
are ``flowrun.archive_jobs``'s (shared with ``AsyncFlowRunStore``): the ``sync``
jobs with the store's own DSN, archive, schema and clock. The embedded server,
when no DSN is configured, is ``flowrun.embedded``'s business.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from flowrun import archive_jobs, embedded
from flowrun.config import Settings
from olap.analytics import RunAnalytics
from oltp.clock import Clock, wall_clock
from oltp.records import (
    DashboardStatistics,
    DispatchRecord,
    FlowRunRecord,
    FlowStepAttemptRecord,
    Granularity,
    RunsPage,
    RunStatus,
    RunTimeseriesBucket,
    StepStatus,
)
from oltp.store import RunStore
from sync.compact import DEFAULT_MAX_FILE_ROWS, DEFAULT_VACUUM_AFTER, CompactReport
from sync.export import DEFAULT_BATCH_SIZE, ExportReport
from sync.progress import Progress
from sync.upgrade import UpgradeReport
from sync.verify import VerifyReport

if TYPE_CHECKING:
    import polars as pl


class FlowRunStore:
    """Lifecycle writes on PostgreSQL plus reporting over live and archived runs."""

    def __init__(self, settings: Settings, lifecycle: RunStore, analytics: RunAnalytics, *, clock: Clock) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.analytics = analytics
        self._clock = clock

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
        storage_options: Mapping[str, str] | None = None,
    ) -> FlowRunStore:
        """Open the store; with no DSN anywhere, on the embedded server in the data dir."""
        settings = Settings.resolve(dsn=dsn, archive=archive, home=home, schema=schema, storage_options=storage_options)
        target = settings.dsn if settings.dsn is not None else embedded.start(settings.pgdata).dsn()
        lifecycle = RunStore(
            target, schema=settings.schema, clock=clock, migrate_schema=migrate, max_connections=settings.pool_size
        )
        try:
            analytics = archive_jobs.reader(settings, target, clock)
        except BaseException:
            lifecycle.close()
            raise
        return cls(settings, lifecycle, analytics, clock=clock or wall_clock)

    @property
    def dsn(self) -> str:
        """The PostgreSQL DSN in use (the embedded server's when none was configured)."""
        return self.lifecycle.dsn

    @property
    def schema(self) -> str:
        """The PostgreSQL schema of the store's tables."""
        return self.lifecycle.schema

    def __enter__(self) -> FlowRunStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the reporting reader and the connection pool."""
        try:
            self.analytics.close()
        finally:
            self.lifecycle.close()

    # -- lifecycle (oltp.RunStore) -----------------------------------------------------------

    def start_run(
        self,
        flow_id: uuid.UUID,
        flow_name: str,
        run_id: uuid.UUID,
        trigger_key: str,
        trigger_data: str | None = None,
        job_id: str | None = None,
        source_run_id: uuid.UUID | None = None,
        *,
        idempotency_key: str | None = None,
        deadline: datetime | None = None,
    ) -> FlowRunRecord:
        """Create a Running run and return it; a repeated ``idempotency_key`` returns the first run instead."""
        return self.lifecycle.start_run(
            flow_id, flow_name, run_id, trigger_key, trigger_data, job_id, source_run_id,
            idempotency_key=idempotency_key, deadline=deadline,
        )  # fmt: skip

    def record_step_start(
        self,
        run_id: uuid.UUID,
        step_key: str,
        step_type: str,
        input_json: str | None = None,
        job_id: str | None = None,
    ) -> FlowStepAttemptRecord:
        """Open the step's next attempt (the step becomes Running) and return it."""
        return self.lifecycle.record_step_start(run_id, step_key, step_type, input_json, job_id)

    def record_step_complete(
        self,
        run_id: uuid.UUID,
        step_key: str,
        status: StepStatus | str,
        output_json: str | None = None,
        error_message: str | None = None,
        *,
        attempt: int | None = None,
    ) -> None:
        """Close the step's newest attempt (``attempt``: only if it is still that one) with this outcome."""
        self.lifecycle.record_step_complete(run_id, step_key, status, output_json, error_message, attempt=attempt)

    def complete_run(self, run_id: uuid.UUID, status: RunStatus | str) -> bool:
        """Give a Running run its terminal status: True; False when it already had that status."""
        return self.lifecycle.complete_run(run_id, status)

    def retry_step(self, run_id: uuid.UUID, step_key: str) -> None:
        """Reset the step to Pending and the run to Running, clearing the dispatch."""
        self.lifecycle.retry_step(run_id, step_key)

    def try_record_dispatch(
        self,
        run_id: uuid.UUID,
        step_key: str,
        owner: str | None = None,
        lease: timedelta | float | None = None,
    ) -> bool:
        """True for exactly one caller per (run, step) until the dispatch is released (or its lease claimed)."""
        return self.lifecycle.try_record_dispatch(run_id, step_key, owner, lease)

    def heartbeat(self, run_id: uuid.UUID, step_key: str, owner: str, lease: timedelta | float) -> bool:
        """Renew ``owner``'s lease on a dispatch: True; False when the dispatch is no longer its own."""
        return self.lifecycle.heartbeat(run_id, step_key, owner, lease)

    def claim_expired_dispatches(self, owner: str, lease: timedelta | float, limit: int = 100) -> list[DispatchRecord]:
        """Take over dispatches of Running runs whose lease expired; each goes to exactly one claimer."""
        return self.lifecycle.claim_expired_dispatches(owner, lease, limit)

    def get_dispatches(self, run_id: uuid.UUID) -> list[DispatchRecord]:
        """The run's open dispatches with owner, job id and lease expiry, by step key."""
        return self.lifecycle.get_dispatches(run_id)

    def release_dispatch(self, run_id: uuid.UUID, step_key: str) -> None:
        """Make the step dispatchable again; unknown runs and steps are a no-op."""
        self.lifecycle.release_dispatch(run_id, step_key)

    def annotate_dispatch(self, run_id: uuid.UUID, step_key: str, job_id: str) -> None:
        """Attach the dispatcher's job id; a missing dispatch record is ignored."""
        self.lifecycle.annotate_dispatch(run_id, step_key, job_id)

    def get_dispatched_step_keys(self, run_id: uuid.UUID) -> frozenset[str]:
        """Step keys dispatched and not released (empty for an unknown run)."""
        return self.lifecycle.get_dispatched_step_keys(run_id)

    def request_cancel(self, run_id: uuid.UUID) -> bool:
        """Ask a Running run's workers to stop: True for the first request, False after it or once terminal."""
        return self.lifecycle.request_cancel(run_id)

    def is_cancel_requested(self, run_id: uuid.UUID) -> bool:
        """Whether cancelling the run was requested (one primary-key read; False for an unknown run)."""
        return self.lifecycle.is_cancel_requested(run_id)

    def set_deadline(self, run_id: uuid.UUID, deadline: datetime | None) -> None:
        """Set (or with None clear) the instant by which the run should be complete."""
        self.lifecycle.set_deadline(run_id, deadline)

    def get_overdue_runs(self, limit: int = 100) -> list[FlowRunRecord]:
        """Running runs past their deadline, most overdue first."""
        return self.lifecycle.get_overdue_runs(limit)

    def get_active_runs(self) -> list[FlowRunRecord]:
        """Running runs, newest first."""
        return self.lifecycle.get_active_runs()

    # -- reporting: live UNION archive (olap.RunAnalytics) --------------------------------------

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        """The run with steps and attempts from PostgreSQL, else from the archive once pruned."""
        found = self.lifecycle.get_run_detail(run_id)
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

    def warm_search(self) -> None:
        """Build the archive's search documents now rather than on the first search."""
        self.analytics.warm_search()

    def timeseries_frame(
        self,
        granularity: Granularity | str,
        since: datetime,
        until: datetime,
        flow_id: uuid.UUID | None = None,
    ) -> pl.DataFrame:
        """``get_run_timeseries`` as a polars frame; ``timestamp`` stays UTC."""
        return self.analytics.timeseries_frame(granularity, since, until, flow_id)

    def runs(self) -> pl.DataFrame:
        """Every run (live UNION archive, once each), newest first, with its ``revision`` and ``duration``."""
        return self.analytics.runs()

    def steps(self) -> pl.DataFrame:
        """Every step at its run's winning version, with ``duration``, ``retries`` and ``retried``."""
        return self.analytics.steps()

    def attempts(self) -> pl.DataFrame:
        """Every attempt at its run's winning version, with ``duration`` and ``retry`` (follows a failure)."""
        return self.analytics.attempts()

    def flows(self) -> pl.DataFrame:
        """Every flow: ``flow_id``, its newest ``flow_name``, ``runs``, ``last_run`` and ``last_status``."""
        return self.analytics.flows()

    def resolve_flow(self, flow: str | uuid.UUID) -> uuid.UUID:
        """The flow id for a flow name, an id, or a unique id prefix (reports take ids)."""
        return self.analytics.resolve_flow(flow)

    def resolve_run(self, run: str | uuid.UUID) -> uuid.UUID | None:
        """The run id for an id or a unique prefix of one; None when no run matches."""
        return self.analytics.resolve_run(run)

    def sql(self, query: str) -> pl.DataFrame:
        """DuckDB SQL over the views ``runs``, ``steps`` and ``attempts``."""
        return self.analytics.sql(query)

    # -- export and retention (sync) -------------------------------------------------------------

    def export(
        self, batch_size: int = DEFAULT_BATCH_SIZE, *, progress: Progress | None = None, wait: float = 0.0
    ) -> ExportReport:
        """Move every completed run waiting in the outbox to the Delta archive, exactly once."""
        return archive_jobs.export(self, self._clock, batch_size, progress=progress, wait=wait)

    def prune(self, older_than: timedelta | str, *, progress: Progress | None = None) -> int:
        """Delete from PostgreSQL the archived runs completed before now - ``older_than``; returns the count."""
        return archive_jobs.prune(self, self._clock, older_than, progress=progress)

    def compact(
        self,
        *,
        max_rows_per_file: int = DEFAULT_MAX_FILE_ROWS,
        progress: Progress | None = None,
        wait: float = 0.0,
        vacuum_after: timedelta = DEFAULT_VACUUM_AFTER,
    ) -> CompactReport:
        """Optimize the archive's partitions (sorted by start time), checkpoint, vacuum after ``vacuum_after``."""
        return archive_jobs.compact(
            self, self._clock,
            max_rows_per_file=max_rows_per_file, progress=progress, wait=wait, vacuum_after=vacuum_after,
        )  # fmt: skip

    def verify_archive(self, *, progress: Progress | None = None) -> VerifyReport:
        """Read every file of the recorded archive version back: size, row count, SHA-256 as written."""
        return archive_jobs.verify_archive(self, self._clock, progress=progress)

    def move_archive(self, archive: str | os.PathLike[str], *, wait: float = 0.0) -> str:
        """Record that the archive was copied to ``archive`` (same table) and read from there; the old location."""
        return archive_jobs.move_archive(self, self._clock, archive, wait=wait)

    def upgrade_archive(
        self, batch_size: int = DEFAULT_BATCH_SIZE, *, progress: Progress | None = None, wait: float = 0.0
    ) -> UpgradeReport:
        """Convert a v1 Parquet archive at the store's location into the Delta table (a no-op once done)."""
        return archive_jobs.upgrade_archive(self, self._clock, batch_size, progress=progress, wait=wait)
