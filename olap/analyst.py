"""The analyst surface: DuckDB SQL over views ``runs``, ``steps``, ``attempts`` of the unified data.

The views are built per call from a fresh snapshot: every live row (analysts ask
open questions, so nothing is pushed down) UNION the visible archive rows, steps
and attempts at their run's winning revision. The query runs in ``olap.sandbox``:
its own DuckDB database that sees the live rows as registered Arrow tables and
may open exactly the archive files the snapshot lists, read-only, and nothing
else. Results come back as polars frames with times labelled UTC and intervals
as ``Duration``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from olap import live, sandbox, unified
from olap.live import Snapshot
from olap.session import Sources

if TYPE_CHECKING:
    import polars as pl

# Runs carry their revision (how many times the run's record changed; the newest copy wins).
_VIEWS = (
    ("runs", unified.RUN_FIELDS + ", revision"),
    ("steps", unified.STEP_FIELDS),
    ("attempts", unified.ATTEMPT_FIELDS),
)


class _Relations(dict[str, object]):
    """Arrow objects for the sandbox, collected where the archive reader would register them in DuckDB."""

    def register(self, name: str, source: object) -> None:
        self[name] = source


def sql(sources: Sources, query: str) -> pl.DataFrame:
    """Run ``query`` over the unified views; a refused or failing query raises ``InvalidQuery`` (or a subclass)."""
    sandbox.read_only_statement(query)  # refuse before reading anything
    tables: dict[str, pa.Table] = {}

    def read(snap: Snapshot) -> dict[str, pa.Table]:
        runs = live.runs(snap, "TRUE", ())
        tables["live_keys"] = runs.select(["id", "started_at"])
        tables["live_runs"] = runs
        tables["live_steps"] = live.steps(snap)
        tables["live_attempts"] = live.attempts(snap)
        return tables

    with sources.call(read) as call:
        relations = _Relations(tables)
        views = {name: relation for name, relation in unified.EMPTY_LIVE.items() if name not in relations}
        files = call.manifest.select()
        readable: list[str] = []
        for kind, fields in _VIEWS:
            parts = [f"SELECT {fields} FROM live_{kind}"]
            if call.reader is not None and files:
                parts += unified.archive_parts(call.reader, relations, kind, files, call.shadowed, fields)
            views[kind] = unified.union(parts, "")
        if call.reader is not None:
            readable = call.reader.readable(files)
        # Inside the call: the files of its table version are the ones the query reads.
        return sandbox.run(query, relations, views, readable)
