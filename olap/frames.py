"""DuckDB results as the store's records and as polars frames in UTC."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from oltp import rows
from oltp.records import FlowRunRecord, FlowStepAttemptRecord

if TYPE_CHECKING:
    # Records are built without polars; the frame functions below load it (0.2 s) when first called.
    import polars as pl


def run_record(row: Sequence[Any]) -> FlowRunRecord:
    """A run from a row in ``unified.RUN_FIELDS`` order."""
    return rows.run_record(row)


def detail_record(
    run_row: Sequence[Any], step_rows: Sequence[Sequence[Any]], attempt_rows: Sequence[Sequence[Any]]
) -> FlowRunRecord:
    """A run with its steps and their attempts, in the order ``get_run_detail`` promises."""
    attempts: dict[str, list[FlowStepAttemptRecord]] = defaultdict(list)
    for row in sorted(attempt_rows, key=lambda r: (r[1], r[2])):
        attempts[str(row[1])].append(rows.attempt_record(row))
    steps = [rows.step_record(row, attempts.get(str(row[1]), [])) for row in step_rows]
    return replace(rows.run_record(run_row), steps=rows.order_steps(steps))


def utc_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Label every zoned datetime column ``UTC`` (DuckDB may name the zone ``Etc/UTC``)."""
    import polars as pl

    zoned = [
        pl.col(name).dt.convert_time_zone("UTC")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    ]
    return frame.with_columns(zoned) if zoned else frame


# Analyst frames: the views plus what every analysis computes first. A step is *retried* when an attempt
# follows a Failed attempt (a retry after a failure); an attempt after a Pending one is a poll, not a retry.
RUNS_FRAME = "SELECT * FROM runs ORDER BY started_at DESC, id DESC"
STEPS_FRAME = """
SELECT s.*, coalesce(r.retries, 0) AS retries, coalesce(r.retries, 0) > 0 AS retried
  FROM steps s
  LEFT JOIN (SELECT run_id, step_key, count(*) FILTER (WHERE after_failure) AS retries
               FROM (SELECT run_id, step_key,
                            lag(status) OVER (PARTITION BY run_id, step_key ORDER BY attempt) = 'Failed'
                                AS after_failure
                       FROM attempts)
              GROUP BY run_id, step_key) r USING (run_id, step_key)
 ORDER BY s.run_id, s.step_key
"""
ATTEMPTS_FRAME = """
SELECT *, coalesce(lag(status) OVER (PARTITION BY run_id, step_key ORDER BY attempt) = 'Failed', false) AS retry
  FROM attempts
 ORDER BY run_id, step_key, attempt
"""


def with_duration(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``duration`` = ``completed_at - started_at`` (a polars Duration; null while open)."""
    import polars as pl

    return frame.with_columns((pl.col("completed_at") - pl.col("started_at")).alias("duration"))


def timeseries_frame(buckets: Sequence[Any]) -> pl.DataFrame:
    """Timeseries buckets as a frame whose ``timestamp`` keeps its UTC zone."""
    import polars as pl

    schema: dict[str, Any] = {
        "timestamp": pl.Datetime("us", "UTC"),
        **{name: pl.Int64 for name in ("total", "succeeded", "failed", "cancelled", "timed_out", "skipped", "running")},
        **{f"p{p}_duration_ms": pl.Float64 for p in (50, 95, 99)},
    }
    return pl.DataFrame([[getattr(b, name) for name in schema] for b in buckets], schema=schema, orient="row")
