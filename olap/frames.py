"""DuckDB results as the store's records and as polars frames in UTC."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import polars as pl

from oltp import rows
from oltp.records import FlowRunRecord, FlowStepAttemptRecord


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
    zoned = [
        pl.col(name).dt.convert_time_zone("UTC")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    ]
    return frame.with_columns(zoned) if zoned else frame
