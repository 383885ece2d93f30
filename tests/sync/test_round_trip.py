"""Every field of every run, step and attempt survives the trip to Parquet, read back without our code."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from oltp.records import FlowRunRecord, FlowStepAttemptRecord, FlowStepRecord, RunStatus, StepStatus
from oltp.rows import order_steps
from oltp.store import RunStore
from sync import export_completed_runs
from tests.conftest import FakeClock
from tests.sync import archive_checks, workload

RUN_FIELDS = [f for f in FlowRunRecord.__slots__ if f != "steps"]
STEP_FIELDS = [f for f in FlowStepRecord.__slots__ if f != "attempts"]
ATTEMPT_FIELDS = list(FlowStepAttemptRecord.__slots__)


def _records(
    runs: list[dict[str, Any]], steps: list[dict[str, Any]], attempts: list[dict[str, Any]]
) -> dict[uuid.UUID, FlowRunRecord]:
    """Rebuild detail records from archive rows (the newest revision of each run)."""
    by_step: dict[tuple[uuid.UUID, str], list[FlowStepAttemptRecord]] = defaultdict(list)
    for a in sorted(attempts, key=lambda a: a["attempt"]):
        by_step[(a["run_id"], a["step_key"])].append(
            FlowStepAttemptRecord(**{f: a[f] for f in ATTEMPT_FIELDS} | {"status": StepStatus(a["status"])})
        )
    by_run: dict[uuid.UUID, list[FlowStepRecord]] = defaultdict(list)
    for s in steps:
        fields = {f: s[f] for f in STEP_FIELDS} | {"status": StepStatus(s["status"])}
        by_run[s["run_id"]].append(FlowStepRecord(**fields, attempts=tuple(by_step[(s["run_id"], s["step_key"])])))
    return {
        r["id"]: FlowRunRecord(
            **{f: r[f] for f in RUN_FIELDS} | {"status": RunStatus(r["status"])}, steps=order_steps(by_run[r["id"]])
        )
        for r in runs
    }


def _as_uuid(value: Any) -> Any:
    return uuid.UUID(bytes=value) if isinstance(value, bytes) else value


def _pyarrow_rows(archive: str, kind: str) -> list[dict[str, Any]]:
    table = ds.dataset(f"{archive}/{kind}", format="parquet", partitioning="hive").to_table()
    return [{k: _as_uuid(v) for k, v in row.items()} for row in table.to_pylist()]


def _duckdb_rows(archive: str, kind: str) -> list[dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(f"SELECT * FROM read_parquet('{archive}/{kind}/**/*.parquet', hive_partitioning = true)")
    return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]


def test_every_field_round_trips_through_pyarrow_and_duckdb(
    store: RunStore, clock: FakeClock, dsn: str, archive: str
) -> None:
    ids = workload.play(store, clock, 12)
    report = export_completed_runs(dsn, archive, batch_size=5, clock=clock)
    assert (report.runs, report.steps, report.attempts) == (12, 27, 31)

    expected = {rid: store.get_run_detail(rid) for rid in ids}
    for reader in (_pyarrow_rows, _duckdb_rows):
        got = _records(reader(archive, "runs"), reader(archive, "steps"), reader(archive, "attempts"))
        assert got == expected, reader.__name__


def test_files_follow_the_archive_contract(store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any) -> None:
    ids = workload.play(store, clock, 10)
    export_completed_runs(dsn, archive, batch_size=4, clock=clock)

    files = archive_checks.parquet_files(archive)
    assert files == archive_checks.listed(db)
    days = {r[0] for r in db.execute("SELECT (started_at AT TIME ZONE 'UTC')::date FROM flow_runs")}
    assert {f.split("/")[1] for f in files} == {f"started_date={d.isoformat()}" for d in days}
    for rel in files:
        path = Path(archive) / rel
        meta = pq.read_metadata(path)
        kind = rel.split("/")[0]
        schema = pq.read_schema(path)
        id_field = schema.field("id" if kind == "runs" else "run_id")
        assert id_field.type == pa.uuid() and not id_field.nullable
        assert meta.schema.column(0).logical_type.type == "UUID"
        assert schema.field("status").type == pa.dictionary(pa.int32(), pa.string())
        assert schema.field("exported_at").type == pa.timestamp("us", tz="UTC")
        assert "started_date" not in schema.names  # the partition key lives in the path only
        assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}
        table = pq.read_table(path)
        start = table.column("started_at" if kind == "runs" else "run_started_at").to_pylist()
        assert start == sorted(start)
        # Every row of the file belongs to the file's partition day.
        assert {t.date().isoformat() for t in start} == {rel.split("/")[1].split("=")[1]}
        assert table.column("exported_at").to_pylist() == [clock.now] * table.num_rows
        listed = db.execute(
            "SELECT kind, row_count, min_started_at, max_started_at FROM archive_files WHERE path = %s", (rel,)
        ).fetchone()
        assert listed == (kind, table.num_rows, start[0], start[-1])
    revisions = dict(db.execute("SELECT id, revision FROM flow_runs").fetchall())
    assert dict(archive_checks.query(archive, "runs", "SELECT id, revision FROM t")) == revisions
    assert set(revisions) == set(ids)


def test_plain_duckdb_and_polars_read_the_archive(store: RunStore, clock: FakeClock, dsn: str, archive: str) -> None:
    ids = workload.play(store, clock, 6)
    export_completed_runs(dsn, archive, clock=clock)

    # Exactly the line a user types, with no help from our code.
    rel = duckdb.sql(f"select * from read_parquet('{archive}/runs/**/*.parquet', hive_partitioning=true)")
    assert rel is not None
    types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    assert types["id"] == "UUID" and types["started_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["started_date"] == "DATE"
    assert {row[0] for row in rel.select("id").fetchall()} == set(ids)

    frame = pl.read_parquet(f"{archive}/runs/**/*.parquet", hive_partitioning=True)
    assert frame.schema["started_at"] == pl.Datetime("us", "UTC")
    assert frame.schema["id"] == pl.Binary  # polars has no UUID type: 16 raw bytes, see docs/archive.md
    assert {uuid.UUID(bytes=b) for b in frame["id"]} == set(ids)
    as_text = frame.select(pl.col("id").bin.encode("hex"))["id"]
    assert {uuid.UUID(h) for h in as_text} == set(ids)
    assert frame["started_date"].dtype == pl.Date
    steps = pl.scan_parquet(f"{archive}/steps/**/*.parquet", hive_partitioning=True).collect()
    details = [store.get_run_detail(i) for i in ids]
    step_counts = [len(d.steps) for d in details if d is not None and d.steps is not None]
    assert len(step_counts) == len(ids) and steps.height == sum(step_counts)
    assert steps["status"].dtype == pl.Categorical
    assert datetime(2026, 3, 1, tzinfo=UTC) < min(frame["started_at"])
