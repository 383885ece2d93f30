"""The analyst surface: DuckDB SQL over views ``runs``, ``steps``, ``attempts`` of the unified data.

The views are built per call from a fresh snapshot: every live row (analysts ask
open questions, so nothing is pushed down) UNION the visible archive rows, steps
and attempts at their run's winning revision. Results come back as polars frames
with times labelled UTC.
"""

from __future__ import annotations

import duckdb
import polars as pl
import pyarrow as pa

from olap import frames, live, unified
from olap.live import Snapshot
from olap.session import Sources
from oltp.errors import InvalidArgument

_VIEWS = (("runs", unified.RUN_FIELDS), ("steps", unified.STEP_FIELDS), ("attempts", unified.ATTEMPT_FIELDS))


def sql(sources: Sources, query: str) -> pl.DataFrame:
    """Run ``query`` over the unified views; a query DuckDB cannot parse or bind is an ``InvalidArgument``."""

    def read(snap: Snapshot) -> dict[str, pa.Table]:
        runs = live.runs(snap, "TRUE", ())
        return {
            "live_keys": runs.select(["id", "started_at"]),
            "live_runs": runs,
            "live_steps": live.steps(snap),
            "live_attempts": live.attempts(snap),
        }

    with sources.call(read) as call:
        for kind, fields in _VIEWS:
            parts = [f"SELECT {fields} FROM live_{kind}", *call.archive_parts(kind, fields)]
            call.run(f"CREATE OR REPLACE TEMP VIEW {kind} AS {unified.union(parts, '')}")
        try:
            relation = call.cur.sql(query)
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException) as exc:
            raise InvalidArgument(f"invalid query: {exc}") from exc
        if relation is None:  # a statement without a result
            return pl.DataFrame()
        return frames.utc_frame(relation.pl())
