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

import polars as pl
import pyarrow as pa

from olap import archive, live, sandbox, unified
from olap.live import Snapshot
from olap.session import Sources

# Runs carry their revision (how many times the run's record changed; the newest copy wins).
_VIEWS = (
    ("runs", unified.RUN_FIELDS + ", revision"),
    ("steps", unified.STEP_FIELDS),
    ("attempts", unified.ATTEMPT_FIELDS),
)
_EMPTY = {
    "live_keys": unified.EMPTY_KEYS,
    "hidden_pairs": unified.EMPTY_HIDDEN,
    **{f"live_{kind}": unified.EMPTY[kind] for kind in archive.KINDS},
}


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
        return tables  # ``Sources.call`` adds the snapshot's ``hidden_pairs``

    with sources.call(read) as call:
        relations: dict[str, object] = dict(tables)
        if call.cache.hidden is not None:
            relations.setdefault("hidden_pairs", call.cache.hidden)
        views = {name: relation for name, relation in _EMPTY.items() if name not in relations}
        readable: list[str] = []
        for kind, fields in _VIEWS:
            readable += (f.location for f in call.manifest.select(kind))
            views[kind] = unified.union([f"SELECT {fields} FROM live_{kind}", *call.archive_parts(kind, fields)], "")
        # Inside the call: the files listed in its snapshot are the ones the query reads.
        return sandbox.run(query, relations, views, readable)
