"""Questions a run-history dashboard asks beyond the store's reporting methods: flows and step errors.

Both the terminal dashboard (``flowrun.dashboard``) and the web one
(``flowrun.web``) ask them here, in DuckDB SQL over the store's unified views
(``FlowRunStore.sql``), so they cover live and archived runs together. The
queries are fixed text: nothing a user types reaches them.
"""

from __future__ import annotations

from typing import Any

from flowrun.store import FlowRunStore

# Per flow id: its newest name, run counts, and duration percentiles (ms) of its completed runs.
FLOWS = """
select flow_id,
       arg_max(flow_name, started_at) as flow,
       count(*) as runs,
       count(completed_at) as completed,
       count(*) filter (where status = 'Running') as running,
       round(coalesce(avg((status = 'Failed')::int) filter (where completed_at is not null), 0) * 100, 1)
           as failed_pct,
       quantile_cont(date_diff('microsecond', started_at, completed_at) / 1000.0, 0.5) as p50_ms,
       quantile_cont(date_diff('microsecond', started_at, completed_at) / 1000.0, 0.95) as p95_ms,
       quantile_cont(date_diff('microsecond', started_at, completed_at) / 1000.0, 0.99) as p99_ms,
       max(started_at) as last_started_at
  from runs
 group by flow_id
 order by flow, flow_id
"""
TOP_ERRORS = """
select r.flow_name as flow, a.step_key as step, a.error_message as error,
       count(*) as failures, count(distinct a.run_id) as runs
  from attempts a join runs r on r.id = a.run_id
 where a.status = 'Failed' and a.error_message is not null
 group by all
 order by failures desc, flow, step, error
 limit 10
"""


def flows(store: FlowRunStore) -> list[dict[str, Any]]:
    """Every flow with a run, by name: counts, failure share and p50/p95/p99 of completed runs."""
    return store.sql(FLOWS).to_dicts()


def slowest_flows(flow_rows: list[dict[str, Any]], limit: int = 6) -> list[dict[str, Any]]:
    """The flows with completed runs, slowest p95 first (``flow_rows`` as ``flows`` returns them)."""
    completed = [row for row in flow_rows if row["completed"]]
    return sorted(completed, key=lambda row: (-row["p95_ms"], row["flow"]))[:limit]


def top_errors(store: FlowRunStore) -> list[dict[str, Any]]:
    """The most frequent (flow, step, error message) of failed attempts, every attempt counted."""
    return store.sql(TOP_ERRORS).to_dicts()
