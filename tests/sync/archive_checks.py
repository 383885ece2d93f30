"""Reading the archive back without the exporter's code, and the invariants every state must keep.

Everything here reads the Delta table through ``deltalake`` and DuckDB directly
and the database through plain SQL, so a test's verdict never depends on the code
under test. ``assert_exactly_once`` is the crash tests' oracle.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

# Each kind as a flat view over the table's rows (ids as UUID, like the live tables).
_VIEWS = {
    "runs": "SELECT * REPLACE (CAST(id AS UUID) AS id, CAST(flow_id AS UUID) AS flow_id,"
    " CAST(source_run_id AS UUID) AS source_run_id) FROM raw",
    "steps": "SELECT CAST(id AS UUID) AS run_id, revision, started_at AS run_started_at, started_date,"
    " unnest(steps, recursive := true) FROM raw",
    "attempts": "SELECT CAST(id AS UUID) AS run_id, revision, started_at AS run_started_at, started_date,"
    " unnest(attempts, recursive := true) FROM raw",
}


def table(archive: str, version: int | None = None) -> DeltaTable | None:
    """The archive's Delta table (newest version, or ``version``), or None before the first export."""
    try:
        return DeltaTable(f"{archive}/runs", version=version)
    except TableNotFoundError:
        return None


def rows(archive: str, version: int | None = None) -> pa.Table:
    """Every row of the table at a version (empty before the first export)."""
    found = table(archive, version)
    return pa.table(found.to_pyarrow_table()) if found is not None else pa.table({})


def data_files(archive: str, version: int | None = None) -> list[str]:
    """Paths (relative to the table) of the active data files of a version."""
    found = table(archive, version)
    if found is None:
        return []
    return sorted(pa.table(found.get_add_actions(flatten=True)).column("path").to_pylist())


class Version:
    """One version of the table read once, with a DuckDB connection over its rows (many queries, one read)."""

    def __init__(self, archive: str, version: int | None = None) -> None:
        self.table = table(archive, version)
        raw = pa.table(self.table.to_pyarrow_table()) if self.table is not None else pa.table({})
        self._con: duckdb.DuckDBPyConnection | None = None
        if raw.num_rows:
            self._con = duckdb.connect()
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.register("raw", raw)

    def query(self, kind: str, sql: str = "SELECT * FROM t") -> list[tuple[Any, ...]]:
        """Run ``sql`` over table ``t`` = this version's rows of ``kind`` (runs, or flattened steps / attempts)."""
        if self._con is None:
            return []
        self._con.execute(f"CREATE OR REPLACE TEMP VIEW t AS {_VIEWS[kind]}")
        return self._con.execute(sql).fetchall()


def query(archive: str, kind: str, sql: str = "SELECT * FROM t", version: int | None = None) -> list[tuple[Any, ...]]:
    """Run ``sql`` over table ``t`` = the archive's rows of ``kind`` (runs, or flattened steps / attempts)."""
    return Version(archive, version).query(kind, sql)


def state(db: psycopg.Connection[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """(uri, table_id, store_id, batch, version) of ``archive_state``."""
    return db.execute("SELECT uri, table_id, store_id, batch, version FROM archive_state").fetchone()


def assert_every_file_whole(archive: str, found: DeltaTable | None = None) -> None:
    """Every active data file has a readable footer with the row count the log lists."""
    found = found if found is not None else table(archive)
    if found is None:
        return
    actions = pa.table(found.get_add_actions(flatten=True)).to_pylist()
    for action in actions:
        meta = pq.read_metadata(Path(archive) / "runs" / action["path"])
        assert meta.num_rows == action["num_records"], action["path"]


def assert_exactly_once(db: psycopg.Connection[tuple[Any, ...]], archive: str) -> None:
    """Every completed run is archived once at its newest revision, with exactly its rows; nothing is pending."""
    assert db.execute("SELECT count(*) FROM export_outbox").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM archive_pending").fetchone() == (0,)
    newest = Version(archive)  # read once: nothing writes the archive while a test checks it
    assert_every_file_whole(archive, newest.table)
    recorded = state(db)
    found = newest.table
    if found is not None:
        assert recorded is not None
        _uri, table_id, store_id, batch, version = recorded
        assert table_id == found.metadata().id
        assert found.transaction_version(store_id) == batch, "Delta and PostgreSQL disagree on the last batch"
        # Every file of the recorded version has the hash of its bytes, recorded by the job that wrote it.
        hashes = {
            p: bytes(h)
            for p, h in db.execute("SELECT path, sha256 FROM archive_file_hashes WHERE recorded_by = 'write'")
        }
        for path in data_files(archive, version):
            assert hashes.get(path) == hashlib.sha256((Path(archive) / "runs" / path).read_bytes()).digest(), path
        # Readers with a DSN read the recorded version: it must hold the same rows as the newest.
        assert sorted(Version(archive, version).query("runs", "SELECT id, revision FROM t")) == sorted(
            newest.query("runs", "SELECT id, revision FROM t")
        )

    live = {r[0]: r[1] for r in db.execute("SELECT id, revision FROM flow_runs WHERE status <> 'Running'")}
    copies = Counter(r[0] for r in newest.query("runs", "SELECT id FROM t"))
    doubled = [key for key, n in copies.items() if n > 1]
    assert doubled == [], f"runs archived twice: {doubled}"
    archived_revision = dict(newest.query("runs", "SELECT id, revision FROM t"))
    assert {rid: archived_revision.get(rid) for rid in live} == live, "a completed run is missing or not newest"

    archived = dict(db.execute("SELECT run_id, revision FROM archived_runs").fetchall())
    assert {rid: archived.get(rid) for rid in live} == live
    assert {rid: archived.get(rid) for rid in archived_revision} == archived_revision

    for kind, source, key in (
        ("steps", "flow_steps", "step_key"),
        ("attempts", "flow_step_attempts", "step_key, attempt"),
    ):
        found_rows = Counter(newest.query(kind, f"SELECT run_id, revision, {key} FROM t"))
        assert [k for k, n in found_rows.items() if n > 1] == [], f"{kind} rows doubled"
        expected = Counter(
            (r[0], live[r[0]], *r[1:]) for r in db.execute(f"SELECT run_id, {key} FROM {source}") if r[0] in live
        )
        assert Counter(k for k in found_rows if k[0] in live) == expected, f"{kind} differ from the live rows"


def run_ids(db: psycopg.Connection[tuple[Any, ...]], where: str = "TRUE") -> set[uuid.UUID]:
    """Ids of the live runs matching ``where``."""
    return {r[0] for r in db.execute(f"SELECT id FROM flow_runs WHERE {where}")}
