"""A small archive writer for the reporting tests, following docs/archive.md to the letter.

It plays the exporter's part (queued completed runs -> one Parquet file per kind and
partition day, listed in ``archive_files``, bookkeeping in ``archived_runs`` and
``archive_superseded``), prune's part and compaction's part, so the reporting tests
can check every state of the archive independently of the ``sync`` package.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TS = pa.timestamp("us", tz="UTC")
UUID = pa.uuid()
STATUS = pa.dictionary(pa.int32(), pa.string())

RUNS = pa.schema(
    [
        ("id", UUID),
        ("flow_id", UUID),
        ("flow_name", pa.string()),
        ("status", STATUS),
        ("trigger_key", pa.string()),
        ("trigger_data_json", pa.string()),
        ("background_job_id", pa.string()),
        ("started_at", TS),
        ("completed_at", TS),
        ("source_run_id", UUID),
        ("revision", pa.int64()),
        ("exported_at", TS),
    ]
)
STEPS = pa.schema(
    [
        ("run_id", UUID),
        ("step_key", pa.string()),
        ("step_type", pa.string()),
        ("status", STATUS),
        ("input_json", pa.string()),
        ("output_json", pa.string()),
        ("error_message", pa.string()),
        ("job_id", pa.string()),
        ("started_at", TS),
        ("completed_at", TS),
        ("attempt_count", pa.int32()),
        ("run_started_at", TS),
        ("revision", pa.int64()),
        ("exported_at", TS),
    ]
)
ATTEMPTS = pa.schema(
    [
        ("run_id", UUID),
        ("step_key", pa.string()),
        ("attempt", pa.int32()),
        ("step_type", pa.string()),
        ("status", STATUS),
        ("input_json", pa.string()),
        ("output_json", pa.string()),
        ("error_message", pa.string()),
        ("job_id", pa.string()),
        ("started_at", TS),
        ("completed_at", TS),
        ("run_started_at", TS),
        ("revision", pa.int64()),
        ("exported_at", TS),
    ]
)
SCHEMAS = {"runs": RUNS, "steps": STEPS, "attempts": ATTEMPTS}
SORT = {
    "runs": [("started_at", "ascending"), ("id", "ascending")],
    "steps": [("run_started_at", "ascending"), ("run_id", "ascending")],
    "attempts": [("run_started_at", "ascending"), ("run_id", "ascending")],
}


def _connect(dsn: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn)
    conn.execute("SET search_path TO flowrun, public; SET TIME ZONE 'UTC'")
    return conn


def _column(values: list[Any], type_: pa.DataType) -> pa.Array:
    if type_ == UUID:
        storage = pa.array([None if v is None else v.bytes for v in values], pa.binary(16))
        return pa.ExtensionArray.from_storage(UUID, storage)
    if type_ == STATUS:
        return pa.array(values, pa.string()).dictionary_encode()
    return pa.array(values, type_)


def _table(kind: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = SCHEMAS[kind]
    table = pa.table({f.name: _column([r[f.name] for r in rows], f.type) for f in schema}, schema=schema)
    return _sorted(table, kind)


def _sorted(table: pa.Table, kind: str) -> pa.Table:
    # Arrow cannot sort extension columns; sort on the UUID's bytes instead.
    keys = pa.table(
        {
            name: (table.column(name).combine_chunks().storage if name in ("id", "run_id") else table.column(name))
            for name, _ in SORT[kind]
        }
    )
    return table.take(pc.sort_indices(keys, sort_keys=SORT[kind]))


def write_file(archive: Path, kind: str, day: date, batch: str, table: pa.Table) -> str:
    """Write one file under a temporary name, fsync, rename; returns its relative path."""
    rel = f"{kind}/started_date={day.isoformat()}/{batch}.parquet"
    final = archive / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{batch}.parquet.tmp"
    pq.write_table(table, tmp, compression="zstd", row_group_size=64)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return rel


def _batch_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(4)


def _register(
    conn: psycopg.Connection[Any], rel: str, kind: str, day: date, batch: str, table: pa.Table, now: datetime
) -> None:
    column = "started_at" if kind == "runs" else "run_started_at"
    times = table.column(column)
    conn.execute(
        "INSERT INTO archive_files (path, kind, started_date, batch_id, row_count, min_started_at, max_started_at,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (rel, kind, day, batch, table.num_rows, pc.min(times).as_py(), pc.max(times).as_py(), now),
    )


_RUN_COLS = (
    "id, flow_id, flow_name, status, trigger_key, trigger_data_json, background_job_id,"
    " started_at, completed_at, source_run_id, revision"
)


def export(dsn: str, archive: Path, now: datetime) -> int:
    """Write every queued completed run at its queued revision; returns how many runs were written."""
    archive = Path(archive)
    with _connect(dsn) as conn, conn.transaction():
        queued = conn.execute(
            f"SELECT {', '.join('r.' + c.strip() for c in _RUN_COLS.split(','))} FROM flow_runs r"
            " JOIN export_outbox o ON o.run_id = r.id AND o.revision = r.revision"
            " WHERE r.status <> 'Running' FOR UPDATE OF r"
        ).fetchall()
        if not queued:
            return 0
        names = [c.strip() for c in _RUN_COLS.split(",")]
        runs = [dict(zip(names, row, strict=True)) | {"exported_at": now} for row in queued]
        ids = [r["id"] for r in runs]
        by_id = {r["id"]: r for r in runs}
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        steps = cur.execute("SELECT * FROM flow_steps WHERE run_id = ANY(%s)", (ids,)).fetchall()
        attempts = cur.execute("SELECT * FROM flow_step_attempts WHERE run_id = ANY(%s)", (ids,)).fetchall()
        for row in [*steps, *attempts]:
            run = by_id[row["run_id"]]
            row.update(run_started_at=run["started_at"], revision=run["revision"], exported_at=now)
        batch = _batch_id(now)
        groups: dict[date, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for r in runs:
            groups[r["started_at"].astimezone(UTC).date()]["runs"].append(r)
        for row in steps:
            groups[row["run_started_at"].astimezone(UTC).date()]["steps"].append(row)
        for row in attempts:
            groups[row["run_started_at"].astimezone(UTC).date()]["attempts"].append(row)
        for day, kinds in sorted(groups.items()):
            for kind in ("runs", "steps", "attempts"):
                if kinds[kind]:
                    table = _table(kind, kinds[kind])
                    rel = write_file(archive, kind, day, batch, table)
                    _register(conn, rel, kind, day, batch, table, now)
        for r in runs:
            day = r["started_at"].astimezone(UTC).date()
            old = conn.execute("SELECT revision FROM archived_runs WHERE run_id = %s", (r["id"],)).fetchone()
            if old is not None:
                conn.execute(
                    "INSERT INTO archive_superseded (run_id, revision, started_date) VALUES (%s, %s, %s)",
                    (r["id"], old[0], day),
                )
                conn.execute(
                    "UPDATE archived_runs SET revision = %s, batch_id = %s WHERE run_id = %s",
                    (r["revision"], batch, r["id"]),
                )
            else:
                conn.execute(
                    "INSERT INTO archived_runs (run_id, revision, started_date, batch_id) VALUES (%s, %s, %s, %s)",
                    (r["id"], r["revision"], day, batch),
                )
            conn.execute("DELETE FROM export_outbox WHERE run_id = %s AND revision = %s", (r["id"], r["revision"]))
        return len(runs)


def prune(dsn: str, cutoff: datetime) -> int:
    """Delete runs completed before ``cutoff`` that are archived at their live revision."""
    with _connect(dsn) as conn, conn.transaction():
        cur = conn.execute(
            "DELETE FROM flow_runs r USING archived_runs a WHERE a.run_id = r.id AND a.revision = r.revision"
            " AND r.completed_at < %s AND NOT EXISTS (SELECT 1 FROM export_outbox o WHERE o.run_id = r.id)",
            (cutoff,),
        )
        return cur.rowcount


def compact(dsn: str, archive: Path, now: datetime) -> int:
    """Rewrite every partition into one file per kind without superseded copies; returns files written."""
    archive = Path(archive)
    written = 0
    with _connect(dsn) as conn, conn.transaction():
        listed = conn.execute("SELECT path, kind, started_date FROM archive_files").fetchall()
        hidden = {(r, v) for r, v in conn.execute("SELECT run_id, revision FROM archive_superseded").fetchall()}
        groups: dict[tuple[str, date], list[str]] = defaultdict(list)
        for path, kind, day in listed:
            groups[(kind, day)].append(path)
        batch = "compacted-" + _batch_id(now)
        removed: list[str] = []
        for (kind, day), paths in sorted(groups.items()):
            table = pa.concat_tables([pq.read_table(archive / p, schema=SCHEMAS[kind]) for p in paths])
            id_col = "id" if kind == "runs" else "run_id"
            keep = [
                (uuid.UUID(bytes=i) if isinstance(i, bytes) else i, v) not in hidden
                for i, v in zip(table.column(id_col).to_pylist(), table.column("revision").to_pylist(), strict=True)
            ]
            table = _sorted(table.filter(pa.array(keep, pa.bool_())), kind)
            conn.execute("DELETE FROM archive_files WHERE path = ANY(%s)", (paths,))
            removed.extend(paths)
            if table.num_rows:
                rel = write_file(archive, kind, day, batch, table)
                _register(conn, rel, kind, day, batch, table, now)
                written += 1
        conn.execute("DELETE FROM archive_superseded")
    for path in removed:
        (archive / path).unlink()
    return written


def day_after(value: datetime) -> datetime:
    """Midnight UTC after ``value``."""
    d = value.astimezone(UTC).date() + timedelta(days=1)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
