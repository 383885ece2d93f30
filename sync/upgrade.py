"""Upgrade a v1 archive (hand-written Parquet files) into the Delta table, exactly once, then retire it.

Migration 0006 re-queues the runs still in PostgreSQL; the runs v1 had pruned
live only in its files. Under the archive lock (no export or compaction runs
meanwhile) the upgrade reads the v1 files one partition date at a time
(``sync.v1_archive``), keeps each run at its newest revision, and leaves out the
runs PostgreSQL still holds (the export writes those from the system of record)
and those the table already holds (``archived_runs.batch > 0``: converted by an
earlier, interrupted upgrade, or exported). The rest become table rows through
the export's one row builder (``sync.archive_rows``: nesting, ids as text, search
document) and are committed with the export's protocol: runs filed in
``archive_pending``, ONE Delta commit with the app transaction ``(store_id, n)``,
ONE PostgreSQL transaction recording batch and version, the hashes of the
files written (``sync.file_hashes``) and moving ``archived_runs`` up; then
each new file gets its search index (``sync.search_index``). A ``kill -9``
anywhere is finished by running the upgrade again: a committed batch is recorded
from the table's transaction version (``sync.export.finish_pending``), an
uncommitted one is read again, a missing index is written. Only when every run
is in the table are the v1 files moved to ``<archive>/_v1/`` (the
marker last), out of the reach of a vacuum; an upgrade finding nothing of v1
says so and changes nothing. Runs whose v1 steps or attempts remain but whose
run rows are nowhere (a vacuum of a table created over the v1 files, by a
version without this upgrade, deleted their run files) are counted as ``lost``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA
from sync import bookkeeping, crash_points, file_hashes, search_index
from sync.archive_identity import claim
from sync.archive_location import ArchiveLocation
from sync.archive_lock import archive_lock, job_target
from sync.archive_rows import RowBuilder
from sync.archive_table import ArchiveTable
from sync.arrow_connection import ArrowConnection, array_param, scalar_param
from sync.arrow_schemas import storage
from sync.bookkeeping import ArchiveState
from sync.errors import ArchiveConflict
from sync.export import DEFAULT_BATCH_SIZE, check_batch_size, finish_pending
from sync.integrity import FileCheck, WrittenFiles
from sync.progress import Progress, ProgressUpdate, no_progress
from sync.v1_archive import MARKER, RETIRED, V1Files, V1Reader, chunks


class UpgradeReport(NamedTuple):
    """What one upgrade did; ``retired_to`` is '' when there was no v1 archive to upgrade."""

    runs: int  # v1 runs this call wrote into the table
    steps: int
    attempts: int
    commits: int  # Delta commits
    skipped: int  # v1 runs left out: still in PostgreSQL (the export writes them) or already in the table
    lost: int  # runs with v1 steps or attempts but no run row anywhere (a vacuum took their run files)
    files: int  # v1 files moved out of the table's directory
    seconds: float
    retired_to: str


# Runs among $1 that PostgreSQL still holds, or that the table holds already (batch 0
# marks a run only the v1 archive holds, as migration 0006 left it).
_KNOWN = """
SELECT id FROM flow_runs WHERE id = ANY($1::uuid[])
UNION
SELECT run_id FROM archived_runs WHERE run_id = ANY($1::uuid[]) AND batch > 0
"""
_IDENTITY = """
SELECT current_database(), d.oid::int8, n.nspname, n.oid::int8
  FROM pg_database d, pg_namespace n
 WHERE d.datname = current_database() AND n.nspname = $1
"""
_IDENTITY_KEYS = ("database", "database_oid", "schema", "schema_oid")


def upgrade_archive(
    dsn: str,
    archive: str | os.PathLike[str] | ArchiveLocation,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    schema: str = DEFAULT_SCHEMA,
    clock: Clock | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    storage_options: Mapping[str, str] | None = None,
) -> UpgradeReport:
    """Convert the v1 files at ``archive`` into its Delta table, then move them to ``<archive>/_v1/``."""
    size = check_batch_size(batch_size)
    schema, wait, location = job_target(archive, schema, wait, storage_options)
    now_of = clock or wall_clock
    show = progress or no_progress
    started = time.monotonic()
    totals = [0, 0, 0, 0, 0]  # runs, steps, attempts, commits, skipped
    with ArrowConnection(dsn, schema) as conn, archive_lock(conn, schema, wait=wait):
        crash_points.reached("lock_acquired")
        v1 = V1Files.find(location)
        if not v1.pending:
            return UpgradeReport(0, 0, 0, 0, 0, 0, 0, time.monotonic() - started, "")
        _check_owner(conn, schema, location, v1.marker)
        table = ArchiveTable.open(location)
        state = claim(conn, location, table, checked_now(now_of))
        written = WrittenFiles(table, state.version, FileCheck(location))
        state = finish_pending(conn, table, state, now_of, written)
        reader, rows = V1Reader(v1), RowBuilder()
        try:
            for group in _batches(reader, conn, v1.dates(), size):
                state = _commit(conn, table, state, rows, group, written, checked_now(now_of))
                commits = 1 if group.runs.num_rows else 0
                counts = (group.runs.num_rows, group.steps.num_rows, group.attempts.num_rows, commits, group.skipped)
                totals = [a + b for a, b in zip(totals, counts, strict=True)]
                show(ProgressUpdate("upgrade", totals[0], None, sum(totals[:3]), time.monotonic() - started))
                crash_points.reached("between_batches")
            # Counted once every convertible run is known: what is left was lost before the upgrade.
            lost = sum(_unknown(conn, reader.without_run(day)).num_rows for day in v1.dates(None))
        finally:
            reader.close()
            rows.close()
        if table.exists:
            search_index.write_missing(location, table.files())
        if totals[3]:
            table.checkpoint()
        crash_points.reached("upgrade_converted")
        moved = v1.retire()
        crash_points.reached("upgrade_retired")
    seconds = time.monotonic() - started
    show(ProgressUpdate("upgrade", totals[0], totals[0], sum(totals[:3]), seconds, finished=True))
    runs, steps, attempts, commits, skipped = totals
    return UpgradeReport(runs, steps, attempts, commits, skipped, lost, moved, seconds, f"{location.uri}/{RETIRED}")


class _Group(NamedTuple):
    """The flat rows of one batch (several small dates, or part of a big one) and the runs left out."""

    runs: pa.Table
    steps: pa.Table
    attempts: pa.Table
    skipped: int


def _batches(reader: V1Reader, conn: ArrowConnection, dates: list[date], size: int) -> Iterator[_Group]:
    """Groups of at most ``size`` runs to convert, dates in order, each run once at its newest revision."""
    parts: list[tuple[pa.Table, pa.Table, pa.Table]] = []
    held = skipped = 0
    for day in dates:
        newest = reader.newest_runs(day)
        todo = _unknown(conn, newest)
        skipped += newest.num_rows - todo.num_rows
        for chunk in chunks(todo, size):
            if held and held + chunk.num_rows > size:
                yield _group(parts, skipped)
                parts, held, skipped = [], 0, 0
            parts.append((chunk, *reader.children(day, chunk)))
            held += chunk.num_rows
    if parts or skipped:
        yield _group(parts, skipped)


def _group(parts: list[tuple[pa.Table, pa.Table, pa.Table]], skipped: int) -> _Group:
    """One group's tables (a kind no date had rows of stays column-less, as the row builder expects)."""
    tables = []
    for kind in range(3):
        found = [part[kind] for part in parts if part[kind].num_columns]
        tables.append(pa.concat_tables(found) if found else pa.table({}))
    return _Group(tables[0], tables[1], tables[2], skipped)


def _unknown(conn: ArrowConnection, runs: pa.Table) -> pa.Table:
    """The runs neither PostgreSQL nor the table holds yet."""
    if runs.num_rows == 0:
        return runs
    ids = runs.column("id").combine_chunks()
    with conn.transaction(by_key=True):
        known = conn.query(_KNOWN, array_param(ids)).column("id").combine_chunks()
    if len(known) == 0:
        return runs
    return runs.filter(pc.invert(pc.is_in(storage(ids), value_set=storage(known))))


def _commit(
    conn: ArrowConnection,
    table: ArchiveTable,
    state: ArchiveState,
    builder: RowBuilder,
    group: _Group,
    written: WrittenFiles,
    now: datetime,
) -> ArchiveState:
    """One batch by the export's protocol: file it, commit it to Delta, record it in PostgreSQL."""
    if group.runs.num_rows == 0:
        return state  # every run of the last dates is left out: nothing to commit
    runs, steps, attempts = group.runs, group.steps, group.attempts
    number = state.batch + 1
    ids = runs.column("id").combine_chunks()
    dates = pc.cast(runs.column("started_at"), pa.date32()).combine_chunks()
    with conn.transaction(by_key=True):
        bookkeeping.write_pending(conn, number, ids, runs.column("revision").combine_chunks(), dates)
    crash_points.reached("pending_written")
    table.write(builder.nest(runs, steps, attempts, now), state.store_id, number)
    crash_points.reached("delta_committed")
    assert table.version is not None and table.table_id is not None
    hashes = written.hashes(table)
    with conn.transaction(by_key=True):
        bookkeeping.record_batch(conn, number, table.version, table.table_id, now)
        file_hashes.record(conn, hashes, file_hashes.WRITE, now)
    crash_points.reached("after_commit")
    # As the export does; a file a killed upgrade left without one is indexed at the end of the rerun.
    search_index.write_added(table.location, table.files(), {h.path for h in hashes})
    return state._replace(batch=number, version=table.version, table_id=table.table_id)


def _check_owner(conn: ArrowConnection, schema: str, location: ArchiveLocation, marker: dict[str, Any] | None) -> None:
    """The v1 marker must name this database and schema (by name and oid), as v1's jobs required."""
    if marker is None:
        return  # moved away last: an interrupted upgrade of this archive, or removed by hand
    with conn.transaction():
        rows = conn.rows(_IDENTITY, scalar_param(schema, pa.string()))
    ours = dict(zip(_IDENTITY_KEYS, rows[0], strict=True)) if rows else {}
    theirs = {key: marker.get(key) for key in _IDENTITY_KEYS}
    if theirs != ours:
        raise ArchiveConflict(
            f"the v1 archive {location.describe()} belongs to database {theirs['database']!r} (oid"
            f" {theirs['database_oid']}), schema {theirs['schema']!r} (oid {theirs['schema_oid']}), not to this"
            f" store's database {ours.get('database')!r} (oid {ours.get('database_oid')}), schema {schema!r}:"
            f" upgrade it from its own database; after a restore from a backup, put this database's names and"
            f" oids into {MARKER}"
        )
