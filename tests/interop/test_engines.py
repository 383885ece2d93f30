"""Other engines read the archive with their own readers and get our answers.

Spark reads the table's active files (the list from the Delta log) as plain
Parquet, ``polars.scan_delta`` and ``deltalake`` read the Delta table itself:
each on the local disk and on the S3 server. Each computes, with
no code of ours, the runs per status, the p95 duration per flow and day (linear
interpolation, like ``quantile_cont``) and the failed attempts per step; each
must equal what our archive-only ``RunAnalytics`` says of the same archive.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from olap import RunAnalytics
from oltp.records import Granularity
from tests.fixtures.spark import point_at
from tests.interop.conftest import Exported

# One worker runs the interop tests: one JVM, one export of each archive.
pytestmark = pytest.mark.xdist_group("interop")

STATUSES = ("succeeded", "failed", "cancelled", "timed_out", "skipped", "running")


@dataclass(frozen=True)
class Answers:
    """The three questions, keyed by plain values so every engine's answer compares with ==."""

    by_status: dict[str, int]
    p95_ms: dict[tuple[str, date], float | None]
    failed_attempts: dict[str, int]

    def assert_equal(self, other: Answers) -> None:
        assert self.by_status == other.by_status
        assert self.failed_attempts == other.failed_attempts
        assert self.p95_ms.keys() == other.p95_ms.keys()
        for key, mine in self.p95_ms.items():
            theirs = other.p95_ms[key]
            assert (mine is None) == (theirs is None), key
            assert mine is None or theirs is None or math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-6), key


def _status_key(status: str) -> str:
    # Our buckets name TimedOut ``timed_out``; the archive stores the enum's value.
    return {"TimedOut": "timed_out"}.get(status, status.lower())


_answers: dict[str, Answers] = {}


def ours(exported: Exported) -> Answers:
    """What our archive-only reader answers of ``exported``, through the reporting API (once per archive)."""
    if exported.archive not in _answers:
        _answers[exported.archive] = _ask(exported)
    return _answers[exported.archive]


def _ask(exported: Exported) -> Answers:
    until = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    since = until - timedelta(days=60)
    with RunAnalytics(None, exported.archive, storage_options=exported.storage_options) as reader:
        flows = reader.sql("SELECT DISTINCT flow_id FROM runs")["flow_id"].to_list()
        by_status: Counter[str] = Counter()
        p95: dict[tuple[str, date], float | None] = {}
        for flow in flows:
            for bucket in reader.get_run_timeseries(Granularity.DAY, since, until, flow_id=flow):
                if bucket.total == 0:
                    continue
                by_status.update({name: getattr(bucket, name) for name in STATUSES if getattr(bucket, name)})
                p95[(str(flow), bucket.timestamp.date())] = bucket.p95_duration_ms
        errors = reader.sql("SELECT step_key, count(*) AS n FROM attempts WHERE status = 'Failed' GROUP BY 1")
    assert sum(by_status.values()) > 0 and errors.height > 0
    return Answers(dict(by_status), p95, dict(zip(errors["step_key"], errors["n"], strict=True)))


@pytest.mark.spark
def test_spark_reads_the_active_files_as_plain_parquet(
    spark: Any, exported: Exported, request: pytest.FixtureRequest
) -> None:
    from pyspark.sql import functions as F

    if exported.storage_options:
        point_at(spark, request.getfixturevalue("s3_server"))
    files = DeltaTable(exported.table_uri, storage_options=dict(exported.storage_options)).file_uris()
    if exported.storage_options:
        assert all(f.startswith("s3://") for f in files)  # read through S3A, not a local copy
    runs = spark.read.parquet(*files)
    by_status = {_status_key(r["status"]): r["count"] for r in runs.groupBy("status").count().collect()}
    took_ms = (F.unix_micros("completed_at") - F.unix_micros("started_at")) / 1000.0
    p95 = {
        (r["flow_id"], r["day"]): r["p95"]
        for r in runs.groupBy("flow_id", F.to_date("started_at").alias("day"))
        .agg(F.percentile(took_ms, 0.95).alias("p95"))
        .collect()
    }
    attempts = runs.select(F.explode("attempts").alias("a")).select("a.*")
    failing = attempts.where(F.col("status") == "Failed").groupBy("step_key").count()
    failed = {r["step_key"]: r["count"] for r in failing.collect()}
    ours(exported).assert_equal(Answers(by_status, p95, failed))


def test_polars_scan_delta(exported: Exported) -> None:
    runs = pl.scan_delta(exported.table_uri, storage_options=dict(exported.storage_options))
    by_status = runs.group_by("status").len().collect()
    took_ms = (pl.col("completed_at") - pl.col("started_at")).dt.total_microseconds() / 1000.0
    p95 = (
        runs.group_by("flow_id", pl.col("started_at").dt.date().alias("day"))
        .agg(took_ms.quantile(0.95, interpolation="linear").alias("p95"))
        .collect()
    )
    failed = (
        runs.select(pl.col("attempts").explode().struct.unnest())
        .filter(pl.col("status") == "Failed")
        .group_by("step_key")
        .len()
        .collect()
    )
    ours(exported).assert_equal(
        Answers(
            {_status_key(s): n for s, n in by_status.iter_rows()},
            {(f, d): p for f, d, p in p95.iter_rows()},
            dict(failed.iter_rows()),
        )
    )


def test_deltalake_to_pyarrow(exported: Exported) -> None:
    table = DeltaTable(exported.table_uri, storage_options=dict(exported.storage_options)).to_pyarrow_table()
    statuses = pc.value_counts(table["status"]).to_pylist()
    took_ms = pc.divide(
        pc.subtract(table["completed_at"].cast(pa.int64()), table["started_at"].cast(pa.int64())), 1000.0
    ).to_numpy(zero_copy_only=False)
    groups: dict[tuple[str, date], list[float]] = {}
    for flow, started, took in zip(table["flow_id"].to_pylist(), table["started_at"].to_pylist(), took_ms, strict=True):
        groups.setdefault((flow, started.date()), []).append(took)
    p95: dict[tuple[str, date], float | None] = {}
    for key, values in groups.items():
        done = [v for v in values if not math.isnan(v)]
        p95[key] = float(np.percentile(done, 95)) if done else None
    attempts = pc.list_flatten(table["attempts"])
    failed = attempts.filter(pc.equal(pc.struct_field(attempts, "status"), "Failed"))
    counts = pc.value_counts(pc.struct_field(failed, "step_key")).to_pylist()
    ours(exported).assert_equal(
        Answers(
            {_status_key(c["values"]): c["counts"] for c in statuses},
            p95,
            {c["values"]: c["counts"] for c in counts},
        )
    )
