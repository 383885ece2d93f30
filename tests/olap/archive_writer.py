"""A small archive writer for the reporting tests, following docs/archive.md to the letter.

It plays the exporter's part with ``deltalake`` directly (queued completed runs ->
one row per run with nested steps and attempts and its search document, appended
to the Delta table, or merged over the run's earlier row; ``archive_state`` and
``archived_runs`` updated as the page says), prune's part and compaction's part,
so the reporting tests can check every state of the archive independently of the
``sync`` package.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

TS = pa.timestamp("us", tz="UTC")
STEP = pa.struct(
    [
        ("step_key", pa.string()),
        ("step_type", pa.string()),
        ("status", pa.string()),
        ("input_json", pa.string()),
        ("output_json", pa.string()),
        ("error_message", pa.string()),
        ("job_id", pa.string()),
        ("started_at", TS),
        ("completed_at", TS),
        ("attempt_count", pa.int32()),
    ]
)
ATTEMPT = pa.struct(
    [
        ("step_key", pa.string()),
        ("attempt", pa.int32()),
        ("step_type", pa.string()),
        ("status", pa.string()),
        ("input_json", pa.string()),
        ("output_json", pa.string()),
        ("error_message", pa.string()),
        ("job_id", pa.string()),
        ("started_at", TS),
        ("completed_at", TS),
    ]
)
RUNS = pa.schema(
    [
        ("id", pa.string()),
        ("flow_id", pa.string()),
        ("flow_name", pa.string()),
        ("status", pa.string()),
        ("trigger_key", pa.string()),
        ("trigger_data_json", pa.string()),
        ("background_job_id", pa.string()),
        ("started_at", TS),
        ("completed_at", TS),
        ("source_run_id", pa.string()),
        ("revision", pa.int64()),
        ("exported_at", TS),
        ("search_doc", pa.string()),
        ("steps", pa.list_(STEP)),
        ("attempts", pa.list_(ATTEMPT)),
        ("started_date", pa.date32()),
    ]
)
_SEP = chr(31)


def _connect(dsn: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn)
    conn.execute("SET search_path TO flowrun, public; SET TIME ZONE 'UTC'")
    return conn


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _row(
    run: dict[str, Any], steps: list[dict[str, Any]], attempts: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    steps = sorted(steps, key=lambda s: s["step_key"])
    attempts = sorted(attempts, key=lambda a: (a["step_key"], a["attempt"]))
    own = [str(run["id"]), run["flow_name"], run["trigger_key"], run["status"], run["background_job_id"] or ""]
    for a in attempts:
        own += [a["step_key"], a["error_message"] or "", a["output_json"] or ""]
    return {
        **{k: run[k] for k in ("flow_name", "status", "trigger_key", "trigger_data_json", "background_job_id")},
        "id": str(run["id"]),
        "flow_id": str(run["flow_id"]),
        "source_run_id": _text(run["source_run_id"]),
        "started_at": run["started_at"],
        "completed_at": run["completed_at"],
        "revision": run["revision"],
        "exported_at": now,
        "search_doc": _SEP.join(own).lower(),
        "steps": [{f: s[f] for f in STEP.names} for s in steps],
        "attempts": [{f: a[f] for f in ATTEMPT.names} for a in attempts],
        "started_date": run["started_at"].astimezone(UTC).date(),
    }


_RUN_COLS = (
    "id, flow_id, flow_name, status, trigger_key, trigger_data_json, background_job_id,"
    " started_at, completed_at, source_run_id, revision"
)


def _table(archive: Path) -> DeltaTable | None:
    try:
        return DeltaTable(str(archive / "runs"))
    except TableNotFoundError:
        return None


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
        runs = [dict(zip(names, row, strict=True)) for row in queued]
        ids = [r["id"] for r in runs]
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        steps = cur.execute("SELECT * FROM flow_steps WHERE run_id = ANY(%s)", (ids,)).fetchall()
        attempts = cur.execute("SELECT * FROM flow_step_attempts WHERE run_id = ANY(%s)", (ids,)).fetchall()
        rows = [
            _row(r, [s for s in steps if s["run_id"] == r["id"]], [a for a in attempts if a["run_id"] == r["id"]], now)
            for r in runs
        ]
        data = pa.Table.from_pylist(rows, schema=RUNS)
        table = _table(archive)
        repeated = conn.execute("SELECT count(*) FROM archived_runs WHERE run_id = ANY(%s)", (ids,)).fetchone()
        if table is None or not repeated or repeated[0] == 0:
            # Several commits, so partitions hold several files for compaction to merge.
            for start in range(0, data.num_rows, 40):
                write_deltalake(
                    str(archive / "runs"), data.slice(start, 40), mode="append", partition_by=["started_date"]
                )
        else:
            (
                table.merge(data, "t.started_date = s.started_date AND t.id = s.id", source_alias="s", target_alias="t")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        table = _table(archive)
        assert table is not None
        conn.execute(
            "INSERT INTO archive_state (uri, table_id, store_id, batch, version, updated_at)"
            " VALUES (%s, %s, 'test-writer', 1, %s, %s) ON CONFLICT (singleton) DO UPDATE"
            " SET batch = archive_state.batch + 1, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
            (str(archive.resolve()), table.metadata().id, table.version(), now),
        )
        for r in runs:
            conn.execute(
                "INSERT INTO archived_runs (run_id, revision, started_date, batch) VALUES (%s, %s, %s, 1)"
                " ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision",
                (r["id"], r["revision"], r["started_at"].astimezone(UTC).date()),
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
    """Delta's own compaction of every partition, recorded in PostgreSQL; returns files written."""
    table = _table(Path(archive))
    assert table is not None
    metrics = table.optimize.compact()
    with _connect(dsn) as conn, conn.transaction():
        conn.execute("UPDATE archive_state SET version = %s, updated_at = %s", (table.version(), now))
    return int(metrics["numFilesAdded"])


def day_after(value: datetime) -> datetime:
    """Midnight UTC after ``value``."""
    d = value.astimezone(UTC).date() + timedelta(days=1)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
