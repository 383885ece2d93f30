"""The archive's Delta table: the one place that writes, lists, optimizes and vacuums it.

Every commit goes through ``deltalake`` (delta-rs): an export batch is one commit
carrying an app transaction (``store_id``, batch number), so a job can ask the
table whether a batch landed; an append commits the files ``sync.data_files``
wrote (pyarrow), as add actions; a batch holding runs exported before is a MERGE on
``(started_date, id)`` over the dates of those runs only, in that one commit, so a re-exported run replaces its
earlier row (with its steps and attempts) and the visible table holds one row per
run; compaction is Delta's optimize (z-order on start time); files it removes stay
on storage until a vacuum after the retention window. Readers list a version's
files here, with their partition date, size and row count from the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

import pyarrow as pa
from deltalake import (
    CommitProperties,
    DeltaTable,
    PostCommitHookProperties,
    Schema,
    Transaction,
)
from deltalake.exceptions import DeltaError, SchemaMismatchError, TableNotFoundError
from deltalake.transaction import create_table_with_add_actions

from sync import crash_points, data_files
from sync.archive_location import ArchiveLocation
from sync.arrow_schemas import PARTITION, RUNS
from sync.data_files import WRITER
from sync.errors import ArchiveConflict

# Readers skip row groups by run start time; z-order on one column is a sort.
SORT_COLUMNS = ["started_at"]
CONFIGURATION: dict[str, str | None] = {
    # Files a compaction removed stay this long at least (vacuum is told the same, or more).
    "delta.deletedFileRetentionDuration": "interval 1 hours",
}
# Delta's default `delta.checkpointInterval`: the post-commit hook checkpoints every this many commits.
_CHECKPOINT_INTERVAL = 100
# The post-commit hook of a commit that writes no checkpoint: no expired-log cleanup. The cleanup
# lists the whole _delta_log (a LIST on S3) after every commit, yet removes only commits older than
# the log retention and than a checkpoint: it still runs with each commit that checkpoints.
_NO_LOG_CLEANUP = PostCommitHookProperties(create_checkpoint=True, cleanup_expired_logs=False)


class DataFile(NamedTuple):
    """One active data file of a table version, as the Delta log describes it."""

    path: str  # relative to the table, '/'-separated
    size: int  # bytes
    rows: int
    started_date: date


def older_copy(location: ArchiveLocation, found: int, recorded: int, advice: str | None = None) -> ArchiveConflict:
    """The table at ``location`` is at version ``found``, older than the ``recorded`` one: a copy put back."""
    advice = advice or "put back a copy of the archive made after that version"
    return ArchiveConflict(
        f"the table at {location.table_uri} is at version {found}, older than the version {recorded}"
        f" this database recorded: {advice}"
    )


class ArchiveTable:
    """The Delta table at a location (which may not exist yet)."""

    def __init__(self, location: ArchiveLocation, table: DeltaTable | None) -> None:
        self.location = location
        self._table = table
        # ``files`` of one loaded version (a job asks several times per commit; the log lists every file).
        self._files: tuple[int, list[DataFile]] | None = None

    @classmethod
    def open(cls, location: ArchiveLocation, version: int | None = None) -> ArchiveTable:
        """The table at its newest version (or ``version``); an empty handle when there is none."""
        try:
            with location.reached():
                table = DeltaTable(location.table_uri, version=version, storage_options=dict(location.storage_options))
        except TableNotFoundError:
            return cls(location, None)
        except DeltaError as exc:
            if version is None:
                raise
            newest = cls.open(location).version
            if newest is not None and newest < version:
                # An older copy put back over the archive (a restore): delta-rs says only "LogSegment end version".
                raise older_copy(location, newest, version) from exc
            raise
        return cls(location, table)

    @property
    def exists(self) -> bool:
        """True once the first batch has created the table."""
        return self._table is not None

    @property
    def table_id(self) -> str | None:
        """The Delta table's id (its identity, kept in PostgreSQL)."""
        return None if self._table is None else str(self._table.metadata().id)

    @property
    def version(self) -> int | None:
        """The loaded version."""
        return None if self._table is None else int(self._table.version())

    def committed_batch(self, store_id: str) -> int | None:
        """The newest batch number ``store_id`` committed to this table."""
        if self._table is None:
            return None
        found = self._table.transaction_version(store_id)
        return None if found is None else int(found)

    def refresh(self) -> None:
        """Move to the newest version."""
        if self._table is None:
            fresh = ArchiveTable.open(self.location)
            self._table = fresh._table
        else:
            with self.location.reached():  # a reader's next call, maybe long after the store was last reached
                self._table.update_incremental()

    def write(self, rows: pa.Table, store_id: str, batch: int, *, replace: Sequence[date] = ()) -> int:
        """Commit ``rows`` as batch ``batch`` of ``store_id``, merged over the earlier rows in dates ``replace``."""
        commit = CommitProperties(
            app_transactions=[Transaction(store_id, batch)], custom_metadata={"flowrun.batch": str(batch)}
        )
        if not replace:
            # A commit of add actions takes any schema without a word (write_deltalake refused another
            # one): the files must hold the table's columns, or readers would miss some or read nulls.
            schema = Schema.from_arrow(rows.schema)
            if self._table is not None and self._table.schema() != schema:
                raise SchemaMismatchError(
                    f"the rows' schema is not the schema of the Delta table at {self.location.describe()}"
                )
            # pyarrow writes the files (half delta-rs's CPU, with page checksums); delta-rs commits them.
            actions = data_files.write(self.location, rows)
            crash_points.reached("files_written")  # a job killed here leaves files no version lists
            if self._table is None:
                create_table_with_add_actions(
                    self.location.table_uri,
                    schema,
                    actions,
                    mode="append",
                    partition_by=[PARTITION],
                    configuration=CONFIGURATION,
                    storage_options=dict(self.location.storage_options),
                    commit_properties=commit,
                )
                self.refresh()
            else:
                self._table.create_write_transaction(
                    list(actions),  # a list of adds and removes: a copy, for the type
                    mode="append",
                    schema=schema,
                    partition_by=[PARTITION],
                    commit_properties=commit,
                    post_commithook_properties=self._post_commit(),
                )
                # Unlike write_deltalake, a commit of add actions leaves the handle at the version it had.
                self._table.update_incremental()
        else:
            assert self._table is not None  # runs to replace were exported into it before
            # A run's start date never changes, so the earlier rows are in the dates ``replace`` lists. delta-rs
            # prunes the files the merge reads by a literal partition filter only (with the join alone it
            # reads every file of the table): the merge touches nothing outside those dates.
            days = ", ".join(f"'{d.isoformat()}'" for d in sorted(set(replace)))
            (
                self._table.merge(
                    rows,
                    predicate=f"t.{PARTITION} IN ({days}) AND t.{PARTITION} = s.{PARTITION} AND t.id = s.id",
                    source_alias="s",
                    target_alias="t",
                    writer_properties=WRITER,
                    commit_properties=commit,
                    post_commithook_properties=self._post_commit(),
                )
                .when_matched_update_all(predicate="s.revision > t.revision")
                .when_not_matched_insert_all()
                .execute()
            )
        assert self._table is not None
        return int(self._table.version())

    def _post_commit(self) -> PostCommitHookProperties | None:
        """The post-commit hook of the next commit: the table's own settings if it writes a checkpoint."""
        assert self._table is not None
        interval = self._table.metadata().configuration.get("delta.checkpointInterval")
        try:
            every = int(interval) if interval is not None else _CHECKPOINT_INTERVAL
        except ValueError:
            every = 0
        committed = self._table.version() + 1
        # A value other writers accept but that is no positive interval: delta-rs's own hook decides.
        if every <= 0 or (committed + 1) % every == 0:
            return None
        return _NO_LOG_CLEANUP

    def files(self) -> list[DataFile]:
        """The active data files of the loaded version."""
        if self._table is None:
            return []
        version = int(self._table.version())
        if self._files is None or self._files[0] != version:
            self._files = (version, self._listed())
        return list(self._files[1])

    def _listed(self) -> list[DataFile]:
        assert self._table is not None
        actions = pa.table(self._table.get_add_actions(flatten=True))
        columns = [
            actions.column(n).to_pylist() for n in ("path", "size_bytes", "num_records", f"partition.{PARTITION}")
        ]
        return [DataFile(p, int(s), int(n or 0), d) for p, s, n, d in zip(*columns, strict=True)]

    def optimize(self, dates: Sequence[date], target_size: int | None = None) -> dict[str, Any]:
        """Rewrite the files of ``dates`` sorted by start time, in one commit; Delta's metrics."""
        assert self._table is not None
        filters: Any = [(PARTITION, "in", [d.isoformat() for d in dates])]
        metrics: dict[str, Any] = self._table.optimize.z_order(
            SORT_COLUMNS, partition_filters=filters, target_size=target_size, writer_properties=WRITER
        )
        self.refresh()
        return metrics

    def checkpoint(self) -> None:
        """Write a checkpoint, so a reader loads the table from one file instead of every commit."""
        assert self._table is not None
        self._table.create_checkpoint()

    def untracked_files(self) -> list[str]:
        """Files in the table's directory that no version in the retention window lists (a dry-run vacuum)."""
        assert self._table is not None
        found: list[str] = self._table.vacuum(
            retention_hours=0, dry_run=True, enforce_retention_duration=False, full=True
        )
        return found

    def vacuum(self, retention: timedelta) -> list[str]:
        """Delete files out of the table (removed, or never committed by a crashed write) for ``retention``."""
        assert self._table is not None
        hours = max(0, int(retention.total_seconds() // 3600))
        removed: list[str] = self._table.vacuum(
            retention_hours=hours, dry_run=False, enforce_retention_duration=False, full=True
        )
        return removed


def schema() -> pa.Schema:
    """The table's Arrow schema."""
    return RUNS
