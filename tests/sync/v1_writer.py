"""A v1 archive written the way the v1 exporter wrote it, for the upgrade tests.

v1 (before the Delta table) published ``<kind>/started_date=YYYY-MM-DD/<batch_id>.parquet``
per kind, date and batch, with the schemas below (ids Parquet UUID, statuses
dictionary-encoded, the run's start time and revision on every step and attempt,
``flowrun.archive.format = "1"``), and ``_flowrun_archive.json`` naming the owning
database and schema. Its bookkeeping moved ``archived_runs`` up and deleted the
outbox rows in the same transaction; migration 0006 then kept the rows of the runs
prune had removed (``batch`` 0) and re-queued the runs still in PostgreSQL.
``export`` and ``after_migration`` do the same to a test database, so a test can
build every state a v1 user upgrades from, including superseded copies and the
duplicates a killed job left.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

UUID = pa.uuid()
TS = pa.timestamp("us", tz="UTC")
STATUS = pa.dictionary(pa.int32(), pa.string())
_METADATA = {b"flowrun.archive.format": b"1"}


def _schema(*fields: tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(n, t, nullable=not required) for n, t, required in fields], metadata=_METADATA)


SCHEMAS = {
    "runs": _schema(
        ("id", UUID, True),
        ("flow_id", UUID, True),
        ("flow_name", pa.string(), True),
        ("status", STATUS, True),
        ("trigger_key", pa.string(), True),
        ("trigger_data_json", pa.string(), False),
        ("background_job_id", pa.string(), False),
        ("started_at", TS, True),
        ("completed_at", TS, False),
        ("source_run_id", UUID, False),
        ("revision", pa.int64(), True),
        ("exported_at", TS, True),
    ),
    "steps": _schema(
        ("run_id", UUID, True),
        ("step_key", pa.string(), True),
        ("step_type", pa.string(), True),
        ("status", STATUS, True),
        ("input_json", pa.string(), False),
        ("output_json", pa.string(), False),
        ("error_message", pa.string(), False),
        ("job_id", pa.string(), False),
        ("started_at", TS, False),
        ("completed_at", TS, False),
        ("attempt_count", pa.int32(), True),
        ("run_started_at", TS, True),
        ("revision", pa.int64(), True),
        ("exported_at", TS, True),
    ),
    "attempts": _schema(
        ("run_id", UUID, True),
        ("step_key", pa.string(), True),
        ("attempt", pa.int32(), True),
        ("step_type", pa.string(), True),
        ("status", STATUS, True),
        ("input_json", pa.string(), False),
        ("output_json", pa.string(), False),
        ("error_message", pa.string(), False),
        ("job_id", pa.string(), False),
        ("started_at", TS, True),
        ("completed_at", TS, False),
        ("run_started_at", TS, True),
        ("revision", pa.int64(), True),
        ("exported_at", TS, True),
    ),
}

_READ = {
    "runs": "SELECT r.id, r.flow_id, r.flow_name, r.status, r.trigger_key, r.trigger_data_json, r.background_job_id,"
    " r.started_at, r.completed_at, r.source_run_id, r.revision FROM flow_runs r WHERE r.id = ANY(%s)"
    " ORDER BY r.started_at, r.id",
    "steps": "SELECT s.run_id, s.step_key, s.step_type, s.status, s.input_json, s.output_json, s.error_message,"
    " s.job_id, s.started_at, s.completed_at, s.attempt_count, r.started_at, r.revision"
    " FROM flow_steps s JOIN flow_runs r ON r.id = s.run_id WHERE s.run_id = ANY(%s)"
    " ORDER BY r.started_at, s.run_id, s.step_key",
    "attempts": "SELECT a.run_id, a.step_key, a.attempt, a.step_type, a.status, a.input_json, a.output_json,"
    " a.error_message, a.job_id, a.started_at, a.completed_at, r.started_at, r.revision"
    " FROM flow_step_attempts a JOIN flow_runs r ON r.id = a.run_id WHERE a.run_id = ANY(%s)"
    " ORDER BY r.started_at, a.run_id, a.step_key, a.attempt",
}
_RUN_START = {"runs": "started_at", "steps": "run_started_at", "attempts": "run_started_at"}


_V1_NAME = re.compile(r"^(compacted-)?\d{8}T\d{12}Z-[0-9a-f]{8}(-\d+)?\.parquet$")


def is_v1_file(relative: str) -> bool:
    """True for a v1 data file's path (relative to the archive) under ``runs/``."""
    return relative.startswith("runs/") and bool(_V1_NAME.match(relative.rsplit("/", 1)[-1]))


def batch_id(now: datetime, prefix: str = "") -> str:
    """v1's batch id: UTC time to the microsecond, then a random suffix."""
    return f"{prefix}{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}"


def write_files(
    dsn: str, archive: Path, run_ids: Sequence[uuid.UUID], now: datetime, *, kinds: Sequence[str] = tuple(SCHEMAS)
) -> str:
    """Write the runs' current rows as one v1 batch (files only, no bookkeeping); returns the batch id."""
    stem = batch_id(now)
    with psycopg.connect(dsn) as conn:
        conn.execute("SET search_path TO flowrun, public")
        for kind in kinds:
            rows = conn.execute(_READ[kind], (list(run_ids),)).fetchall()
            schema = SCHEMAS[kind]
            columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * (len(schema) - 1)
            data: dict[str, Any] = {}
            for field, values in zip(schema, [*columns, [now] * len(rows)], strict=True):
                if field.type == UUID:
                    values = [v.bytes if v is not None else None for v in values]
                    data[field.name] = pa.ExtensionArray.from_storage(UUID, pa.array(values, pa.binary(16)))
                elif field.type == STATUS:
                    data[field.name] = pa.array(values, pa.string()).dictionary_encode()
                else:
                    data[field.name] = pa.array(values, field.type)
            table = pa.table(data).cast(schema)  # rows come sorted as v1 sorted them
            days = pc.cast(table.column(_RUN_START[kind]), pa.date32())
            for day in sorted(set(days.to_pylist())):
                part = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
                directory = archive / kind / f"started_date={day.isoformat()}"
                directory.mkdir(parents=True, exist_ok=True)
                pq.write_table(part, directory / f"{stem}.parquet", compression="zstd", row_group_size=131_072)
    return stem


def write_marker(dsn: str, archive: Path) -> None:
    """``_flowrun_archive.json`` naming the test database and its ``flowrun`` schema, as v1's first export did."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT current_database(), d.oid::int8, n.nspname, n.oid::int8 FROM pg_database d, pg_namespace n"
            " WHERE d.datname = current_database() AND n.nspname = 'flowrun'"
        ).fetchone()
    assert row is not None
    marker = dict(zip(("database", "database_oid", "schema", "schema_oid"), row, strict=True))
    archive.mkdir(parents=True, exist_ok=True)
    (archive / "_flowrun_archive.json").write_text(json.dumps({**marker, "format": "1"}))


def export(dsn: str, archive: Path, run_ids: Sequence[uuid.UUID], now: datetime) -> str:
    """A v1 export of these (completed) runs: the files, then ``archived_runs`` up and their outbox rows gone."""
    stem = write_files(dsn, archive, run_ids, now)
    with psycopg.connect(dsn) as conn:
        conn.execute("SET search_path TO flowrun, public")
        conn.execute(
            "INSERT INTO archived_runs (run_id, revision, started_date, batch)"
            " SELECT id, revision, (started_at AT TIME ZONE 'UTC')::date, 0 FROM flow_runs WHERE id = ANY(%s)"
            " ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision",
            (list(run_ids),),
        )
        conn.execute(
            "DELETE FROM export_outbox o USING flow_runs r"
            " WHERE o.run_id = r.id AND r.id = ANY(%s) AND o.revision <= r.revision",
            (list(run_ids),),
        )
    return stem


def after_migration(dsn: str) -> None:
    """What migration 0006 does to the bookkeeping: runs still in PostgreSQL are queued again."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET search_path TO flowrun, public")
        conn.execute("DELETE FROM archived_runs a USING flow_runs r WHERE r.id = a.run_id")
        conn.execute(
            "INSERT INTO export_outbox (run_id, revision, enqueued_at)"
            " SELECT id, revision, now() FROM flow_runs WHERE status <> 'Running' ON CONFLICT (run_id) DO NOTHING"
        )
