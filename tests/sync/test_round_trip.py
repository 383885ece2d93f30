"""Every field of every run, step and attempt survives the trip to the Delta table, read back without our code."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

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
    return uuid.UUID(value) if isinstance(value, str) and len(value) == 36 and value.count("-") == 4 else value


def _flatten(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ...]:
    """Run rows with nested lists -> flat runs, steps and attempts rows (ids as UUID)."""
    flat_runs, steps, attempts = [], [], []
    for run in runs:
        rid = uuid.UUID(run["id"])
        flat_runs.append({k: _as_uuid(v) for k, v in run.items() if k not in ("steps", "attempts")})
        steps += [{**s, "run_id": rid} for s in run["steps"]]
        attempts += [{**a, "run_id": rid} for a in run["attempts"]]
    return flat_runs, steps, attempts


def _deltalake_rows(archive: str) -> list[dict[str, Any]]:
    return pa.table(DeltaTable(f"{archive}/runs").to_pyarrow_table()).to_pylist()  # type: ignore[no-any-return]


def _duckdb_rows(archive: str) -> list[dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = ", ".join(f"'{f}'" for f in DeltaTable(f"{archive}/runs").file_uris())
    rel = con.sql(f"SELECT * FROM read_parquet([{files}])")
    return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]


def _polars_rows(archive: str) -> list[dict[str, Any]]:
    return pl.scan_delta(f"{archive}/runs").collect().to_dicts()


def test_every_field_round_trips_through_deltalake_duckdb_and_polars(
    store: RunStore, clock: FakeClock, dsn: str, archive: str
) -> None:
    ids = workload.play(store, clock, 12)
    report = export_completed_runs(dsn, archive, batch_size=5, clock=clock)
    assert (report.runs, report.steps, report.attempts) == (12, 27, 31)

    expected = {rid: store.get_run_detail(rid) for rid in ids}
    for reader in (_deltalake_rows, _duckdb_rows, _polars_rows):
        got = _records(*_flatten(reader(archive)))
        assert got == expected, reader.__name__


def test_the_table_follows_the_archive_contract(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    ids = workload.play(store, clock, 10)
    export_completed_runs(dsn, archive, batch_size=4, clock=clock)

    table = DeltaTable(f"{archive}/runs")
    assert table.metadata().partition_columns == ["started_date"]
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    days = {r[0] for r in db.execute("SELECT (started_at AT TIME ZONE 'UTC')::date FROM flow_runs")}
    assert {a["partition.started_date"] for a in actions} == days
    for action in actions:
        path = Path(archive) / "runs" / action["path"]
        assert action["size_bytes"] == path.stat().st_size
        meta = pq.read_metadata(path)
        schema = pq.read_schema(path)
        assert schema.field("id").type == pa.string() and not schema.field("id").nullable
        assert schema.field("started_at").type == pa.timestamp("us", tz="UTC")
        assert schema.field("exported_at").type == pa.timestamp("us", tz="UTC")
        assert "started_date" not in schema.names  # the partition key lives in the Delta log and the path
        assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}
        rows = pq.read_table(path)
        start = rows.column("started_at").to_pylist()
        assert start == sorted(start)
        assert {t.date() for t in start} == {action["partition.started_date"]}  # every row in its partition
        assert rows.column("exported_at").to_pylist() == [clock.now] * rows.num_rows
        for rid in rows.column("id").to_pylist():
            assert rid == str(uuid.UUID(rid))  # canonical lower-case text
    revisions = dict(db.execute("SELECT id, revision FROM flow_runs").fetchall())
    assert dict(archive_checks.query(archive, "runs", "SELECT id, revision FROM t")) == revisions
    assert set(revisions) == set(ids)


def test_each_run_carries_its_lower_cased_search_document(
    store: RunStore, clock: FakeClock, dsn: str, archive: str
) -> None:
    ids = workload.play(store, clock, 3)
    export_completed_runs(dsn, archive, clock=clock)
    docs = dict(archive_checks.query(archive, "runs", "SELECT id, search_doc FROM t"))
    for rid in ids:
        run = store.get_run_detail(rid)
        assert run is not None and run.steps is not None
        fields = [str(rid), run.flow_name, run.trigger_key, run.status.value, run.background_job_id or ""]
        for step in sorted(run.steps, key=lambda s: s.step_key):
            for attempt in step.attempts or ():
                fields += [attempt.step_key, attempt.error_message or "", attempt.output_json or ""]
        assert docs[rid] == "\x1f".join(fields).lower()


def test_plain_duckdb_polars_and_pyarrow_read_the_table(
    store: RunStore, clock: FakeClock, dsn: str, archive: str
) -> None:
    ids = workload.play(store, clock, 6)
    export_completed_runs(dsn, archive, clock=clock)

    # Exactly the lines a user types, with no help from our code.
    frame = pl.read_delta(f"{archive}/runs")
    assert frame.schema["started_at"] == pl.Datetime("us", "UTC")
    assert frame.schema["id"] == pl.String
    assert {uuid.UUID(i) for i in frame["id"]} == set(ids)
    assert frame["started_date"].dtype == pl.Date
    steps = frame.select("id", pl.col("steps")).explode("steps").unnest("steps")
    details = [store.get_run_detail(i) for i in ids]
    assert steps.height == sum(len(d.steps or ()) for d in details if d is not None)

    dataset = DeltaTable(f"{archive}/runs").to_pyarrow_dataset()
    assert {uuid.UUID(i) for i in dataset.to_table(columns=["id"]).column("id").to_pylist()} == set(ids)

    files = DeltaTable(f"{archive}/runs").file_uris()
    rel = duckdb.sql(f"select * from read_parquet({files!r})")
    assert rel is not None
    types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    assert types["id"] == "VARCHAR" and types["started_at"] == "TIMESTAMP WITH TIME ZONE"
    assert datetime(2026, 3, 1, tzinfo=UTC) < min(frame["started_at"])
