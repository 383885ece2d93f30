"""The archive jobs of a front door, written once for ``FlowRunStore`` and ``AsyncFlowRunStore``.

Each function runs one ``sync`` job (export, prune, compaction, verify, move,
upgrade) with a store's DSN, schema, archive location, storage options and
clock. ``FlowRunStore`` calls them directly; ``AsyncFlowRunStore`` calls the same
functions in a worker thread, since they block on PostgreSQL, DuckDB and
storage. ``move_archive`` also points the store's settings and reader at the new
location, so the store goes on reading and exporting where the archive now lives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Protocol, TypedDict

import sync
from flowrun.config import Settings
from olap.analytics import RunAnalytics
from oltp.clock import Clock, checked_now
from sync import CompactReport, ExportReport, Progress, UpgradeReport, VerifyReport
from sync.archive_location import archive_uri
from sync.durations import retention


class ArchiveFront(Protocol):
    """What the jobs use of a store: its database, settings and reader (``move_archive`` replaces the last two)."""

    settings: Settings
    analytics: RunAnalytics

    @property
    def dsn(self) -> str: ...

    @property
    def schema(self) -> str: ...


def reader(settings: Settings, dsn: str, clock: Clock | None) -> RunAnalytics:
    """The reporting reader over the live runs in ``dsn`` and the archive ``settings`` locate."""
    return RunAnalytics(
        dsn, settings.archive, schema=settings.schema, clock=clock, storage_options=settings.storage_options
    )


class _Where(TypedDict):
    """The keyword arguments every job on the archive takes from the store."""

    schema: str
    clock: Clock
    storage_options: Mapping[str, str] | None


def _where(store: ArchiveFront, clock: Clock) -> _Where:
    return {"schema": store.schema, "clock": clock, "storage_options": store.settings.storage_options}


def export(
    store: ArchiveFront, clock: Clock, batch_size: int, *, progress: Progress | None, wait: float
) -> ExportReport:
    """``sync.export_completed_runs`` on the store's database and archive."""
    archive = store.settings.archive
    return sync.export_completed_runs(
        store.dsn, archive, batch_size, progress=progress, wait=wait, **_where(store, clock)
    )


def prune(store: ArchiveFront, clock: Clock, older_than: timedelta | str, *, progress: Progress | None) -> int:
    """``sync.prune`` of the runs completed before the clock's now - ``older_than``."""
    keep = retention(older_than)
    return sync.prune(store.dsn, keep, now=checked_now(clock), schema=store.schema, progress=progress)


def compact(
    store: ArchiveFront,
    clock: Clock,
    *,
    max_rows_per_file: int,
    progress: Progress | None,
    wait: float,
    vacuum_after: timedelta,
) -> CompactReport:
    """``sync.compact`` of the store's archive."""
    return sync.compact(
        store.dsn, store.settings.archive,
        max_rows_per_file=max_rows_per_file, progress=progress, wait=wait, vacuum_after=vacuum_after,
        **_where(store, clock),
    )  # fmt: skip


def verify_archive(store: ArchiveFront, clock: Clock, *, progress: Progress | None) -> VerifyReport:
    """``sync.verify_archive`` of the store's archive."""
    return sync.verify_archive(store.dsn, store.settings.archive, progress=progress, **_where(store, clock))


def upgrade_archive(
    store: ArchiveFront, clock: Clock, batch_size: int, *, progress: Progress | None, wait: float
) -> UpgradeReport:
    """``sync.upgrade_archive`` of a v1 archive at the store's location."""
    archive = store.settings.archive
    return sync.upgrade_archive(store.dsn, archive, batch_size, progress=progress, wait=wait, **_where(store, clock))


def move_archive(store: ArchiveFront, clock: Clock, archive: str | os.PathLike[str], *, wait: float) -> str:
    """``sync.relocate`` to ``archive``, then the store's settings and reader point there; the old location.

    The old reader is closed: a report already running on it (another thread's) finishes first,
    and one started on it after the move is ``StoreUnavailable`` (the store's next call uses the new one).
    """
    old = sync.relocate(store.dsn, archive, wait=wait, **_where(store, clock))
    moved = replace(store.settings, archive=archive_uri(os.fspath(archive)))
    previous, store.analytics = store.analytics, reader(moved, store.dsn, clock)
    store.settings = moved
    previous.close()
    return old
