"""Reading the archive back without the exporter's code, and the invariants every state must keep.

Everything here reads the files through DuckDB or pyarrow directly and the
database through plain SQL, so a test's verdict never depends on the code
under test. ``assert_exactly_once`` is the crash tests' oracle.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow.parquet as pq


def parquet_files(archive: str) -> list[str]:
    """Relative paths of the published Parquet files under the kind directories."""
    root = Path(archive)
    return sorted(
        str(p.relative_to(root)) for kind in ("runs", "steps", "attempts") for p in (root / kind).rglob("*.parquet")
    )


def all_files(archive: str) -> list[str]:
    """Relative paths of every file under the archive root, dot files included."""
    root = Path(archive)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def query(archive: str, kind: str, sql: str = "SELECT * FROM t") -> list[tuple[Any, ...]]:
    """Run ``sql`` over table ``t`` = every Parquet file of ``kind``, read by DuckDB with hive partitioning."""
    if not any(f.startswith(kind + "/") for f in parquet_files(archive)):
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = f"{archive}/{kind}/**/*.parquet"
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    return con.execute(sql).fetchall()


def listed(db: psycopg.Connection[tuple[Any, ...]]) -> list[str]:
    """Paths in the manifest."""
    return sorted(str(r[0]) for r in db.execute("SELECT path FROM archive_files"))


def assert_every_file_whole(archive: str) -> None:
    """Every visible Parquet file has a readable footer (no reader ever sees half a file)."""
    for rel in parquet_files(archive):
        pq.read_metadata(Path(archive) / rel)


def assert_exactly_once(db: psycopg.Connection[tuple[Any, ...]], archive: str) -> None:
    """Every completed run is archived once at its newest revision, with exactly its rows; nothing else is left."""
    leftovers = [f for f in all_files(archive) if f.rsplit("/", 1)[-1].startswith(".") or f.endswith(".tmp")]
    assert leftovers == [], f"temporary files visible: {leftovers}"
    assert parquet_files(archive) == listed(db), "files on disk differ from the manifest"
    assert_every_file_whole(archive)
    assert db.execute("SELECT count(*) FROM export_outbox").fetchone() == (0,)

    live = {r[0]: r[1] for r in db.execute("SELECT id, revision FROM flow_runs WHERE status <> 'Running'")}
    run_copies = Counter((r[0], r[1]) for r in query(archive, "runs", "SELECT id, revision FROM t"))
    doubled = [key for key, n in run_copies.items() if n > 1]
    assert doubled == [], f"runs archived twice at one revision: {doubled}"
    newest: dict[uuid.UUID, int] = {}
    for rid, rev in run_copies:
        newest[rid] = max(rev, newest.get(rid, 0))
    assert {rid: newest.get(rid) for rid in live} == live, "a completed run is missing or not at its newest revision"

    archived = dict(db.execute("SELECT run_id, revision FROM archived_runs").fetchall())
    assert {rid: archived.get(rid) for rid in live} == live
    superseded = set(db.execute("SELECT run_id, revision FROM archive_superseded").fetchall())
    older = {(rid, rev) for (rid, rev) in run_copies if rev < newest[rid]}
    assert older == superseded, "older archived copies and archive_superseded disagree"

    for kind, table, key in (
        ("steps", "flow_steps", "step_key"),
        ("attempts", "flow_step_attempts", "step_key, attempt"),
    ):
        rows = Counter(query(archive, kind, f"SELECT run_id, revision, {key} FROM t"))
        assert [k for k, n in rows.items() if n > 1] == [], f"{kind} rows doubled"
        expected = Counter(
            (r[0], live[r[0]], *r[1:]) for r in db.execute(f"SELECT run_id, {key} FROM {table}") if r[0] in live
        )
        newest_rows = Counter(k for k in rows if k[0] in live and k[1] == newest[k[0]])
        assert newest_rows == expected, f"{kind} at the newest revision differ from the live rows"


def run_ids(db: psycopg.Connection[tuple[Any, ...]], where: str = "TRUE") -> set[uuid.UUID]:
    """Ids of the live runs matching ``where``."""
    return {r[0] for r in db.execute(f"SELECT id FROM flow_runs WHERE {where}")}
