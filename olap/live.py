"""Live rows from PostgreSQL as Arrow tables, all read from one snapshot.

Reads go through one ``adbc-driver-postgresql`` connection, which turns result
sets into Arrow in C (binary COPY for parameterless queries), so a hundred
thousand live rows cost milliseconds rather than a Python loop. Every reporting
call opens one ``REPEATABLE READ, READ ONLY`` transaction and makes all its live
reads (the archive version PostgreSQL recorded, live rows, counts) inside it,
so totals, pages and the archived rows always agree with each other.
Queries with parameters run as unnamed statements, planned for their actual
values each time, so a trigram search never falls back to a generic plan.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import adbc_driver_manager as adbc_api
import pyarrow as pa
from psycopg import sql

from oltp import rows
from oltp.connection import schema_name
from oltp.errors import FlowRunStoreError
from oltp.sqlstate import error_for, first_line
from sync.arrow_connection import adbc
from sync.bookkeeping import ArchiveState

# The record columns of oltp, plus the run's revision that decides which copy of a run wins.
RUN_COLUMNS = rows.RUN_COLUMNS + ", revision"
STEP_COLUMNS = rows.STEP_COLUMNS
ATTEMPT_COLUMNS = rows.ATTEMPT_COLUMNS


class Snapshot:
    """Reads inside one repeatable-read transaction."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def table(self, query: str, params: Sequence[str] = ()) -> pa.Table:
        """Run ``query`` (``$n`` placeholders bound to text ``params``) and return its rows as Arrow."""
        if params:
            self._cursor.execute(query, parameters=tuple(params))
        else:
            self._cursor.execute(query)
        result: pa.Table = self._cursor.fetch_arrow_table()
        return result

    def row(self, query: str, params: Sequence[str] = ()) -> tuple[Any, ...]:
        """The single row of ``query`` as Python values."""
        rows = self.table(query, params).to_pylist()
        return tuple(rows[0].values()) if rows else ()


class LiveSource:
    """One PostgreSQL connection for reporting reads, opened lazily and reopened after a failure."""

    def __init__(self, dsn: str, schema: str) -> None:
        self._dsn = dsn
        self._setup = sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema_name(schema)))
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        conn = adbc.connect(self._dsn, autocommit=True)
        cur = conn.cursor()
        cur.execute(self._setup.as_string(None))
        cur.close()
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """A read-only repeatable-read transaction; driver errors come out translated."""
        with self._lock, _translated():
            if self._conn is None:
                self._conn = self._connect()
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                try:
                    yield Snapshot(cur)
                finally:
                    cur.execute("ROLLBACK")  # read only: ending it either way is the same
            except adbc_api.Error:
                self._drop()
                raise
            finally:
                if self._conn is not None:
                    cur.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # The connection may be broken already; a new one is opened next time.
            with suppress(adbc_api.Error):
                conn.close()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._drop()


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except FlowRunStoreError:
        raise
    except adbc_api.Error as exc:
        connection_error = isinstance(exc, adbc_api.OperationalError | adbc_api.InterfaceError)
        raise error_for(exc.sqlstate or None, first_line(exc), connection_error=connection_error) from exc


_ARCHIVE_STATE = "SELECT uri, table_id, store_id, batch, version FROM archive_state"
_ARCHIVED_REVISION = "SELECT revision, started_date FROM archived_runs WHERE run_id = $1::uuid"
# A loose index scan over ix_flow_runs_flow_started: one probe per distinct flow.
_FLOW_IDS = """
WITH RECURSIVE f AS (
    (SELECT flow_id FROM flow_runs ORDER BY flow_id LIMIT 1)
    UNION ALL
    SELECT (SELECT r.flow_id FROM flow_runs r WHERE r.flow_id > f.flow_id ORDER BY r.flow_id LIMIT 1)
      FROM f WHERE f.flow_id IS NOT NULL
)
SELECT flow_id FROM f WHERE flow_id IS NOT NULL
"""
# Each count is served by its own partial index (running, completed_at).
_LIVE_STATISTICS = """
SELECT (SELECT count(*) FROM flow_runs WHERE status = 'Running') AS active_runs,
       (SELECT count(*) FROM flow_runs WHERE completed_at >= $1::timestamptz AND completed_at < $2::timestamptz
           AND status = 'Succeeded') AS completed_today,
       (SELECT count(*) FROM flow_runs WHERE completed_at >= $1::timestamptz AND completed_at < $2::timestamptz
           AND status = 'Failed') AS failed_today
"""


def archive_state(snap: Snapshot) -> ArchiveState | None:
    """Where the archive lives and the table version to read, or None before the first export."""
    rows = snap.table(_ARCHIVE_STATE).to_pylist()
    return ArchiveState(**rows[0]) if rows else None


def archived_revision(snap: Snapshot, run_id: str) -> tuple[Any, ...]:
    """(revision, started_date) of a run's newest archived copy, or ()."""
    return snap.row(_ARCHIVED_REVISION, (run_id,))


def runs(snap: Snapshot, where: str, params: Sequence[str], tail: str = "") -> pa.Table:
    """Live runs matching ``where`` (with their revision), ``tail`` appended (ORDER BY / LIMIT)."""
    return snap.table(f"SELECT {RUN_COLUMNS} FROM flow_runs WHERE {where} {tail}", params)


def run_keys(snap: Snapshot, where: str, params: Sequence[str]) -> pa.Table:
    """(id, started_at) of live runs matching ``where``: the runs whose archived copies are hidden."""
    return snap.table(f"SELECT id, started_at FROM flow_runs WHERE {where}", params)


def count(snap: Snapshot, where: str, params: Sequence[str]) -> int:
    """The number of live runs matching ``where``."""
    return int(snap.row(f"SELECT count(*) FROM flow_runs WHERE {where}", params)[0])


def steps(snap: Snapshot) -> pa.Table:
    """Every live step."""
    return snap.table(f"SELECT {STEP_COLUMNS} FROM flow_steps")


def attempts(snap: Snapshot) -> pa.Table:
    """Every live attempt."""
    return snap.table(f"SELECT {ATTEMPT_COLUMNS} FROM flow_step_attempts")


def flow_ids(snap: Snapshot) -> pa.Table:
    """Distinct flow ids of live runs."""
    return snap.table(_FLOW_IDS)


def statistics(snap: Snapshot, day_start: str, day_end: str) -> tuple[int, int, int]:
    """(active_runs, completed_today, failed_today) over live runs."""
    row = snap.row(_LIVE_STATISTICS, (day_start, day_end))
    return int(row[0]), int(row[1]), int(row[2])
