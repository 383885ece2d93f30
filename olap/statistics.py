"""Dashboard statistics over live and archived runs.

Live counts come from PostgreSQL in the call's snapshot, each served by a partial
index; archived runs add their Succeeded/Failed runs completed on the day (row
groups outside the day are skipped by their ``completed_at`` statistics). The
archive's distinct flows depend on its files alone (a run's flow never changes),
so they are computed once per table version.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pyarrow as pa

from olap import live, unified
from olap.live import Snapshot
from olap.session import Call, Sources
from oltp.records import DashboardStatistics

_DONE_ON_DAY = "a.completed_at >= $day AND a.completed_at < $next_day AND a.status IN ('Succeeded', 'Failed')"


def statistics(sources: Sources, day: datetime, next_day: datetime) -> DashboardStatistics:
    """Distinct flows, Running runs, and runs Succeeded / Failed with ``completed_at`` in ``[day, next_day)``."""
    counts = [0, 0, 0]
    live_flows: set[uuid.UUID] = set()

    def read(snap: Snapshot) -> dict[str, pa.Table]:
        counts[:] = live.statistics(snap, day.isoformat(), next_day.isoformat())
        live_flows.update(_uuids(live.flow_ids(snap).column("flow_id")))
        return {"live_keys": live.run_keys(snap, "TRUE", ())}

    with sources.call(read) as call:
        succeeded = failed = 0
        parts = call.archive_parts("runs", "status", _DONE_ON_DAY, None, next_day)
        if parts:
            row = call.run(
                "SELECT count(*) FILTER (WHERE status = 'Succeeded'), count(*) FILTER (WHERE status = 'Failed')"
                f" FROM ({unified.union(parts, '')})",
                {"day": day, "next_day": next_day},
            ).fetchone()
            if row is not None:
                succeeded, failed = int(row[0]), int(row[1])
        flows = live_flows | _archive_flow_ids(call)
    return DashboardStatistics(
        total_flows=len(flows),
        active_runs=counts[0],
        completed_today=counts[1] + succeeded,
        failed_today=counts[2] + failed,
    )


def _archive_flow_ids(call: Call) -> frozenset[uuid.UUID]:
    if call.cache.flow_ids is None:
        files = call.manifest.select()
        rows = call.run(f"SELECT DISTINCT flow_id FROM {call.relation('runs', files)}").fetchall() if files else []
        call.cache.flow_ids = frozenset(r[0] for r in rows)
    return call.cache.flow_ids


def _uuids(column: pa.ChunkedArray) -> list[uuid.UUID]:
    return [v if isinstance(v, uuid.UUID) else uuid.UUID(bytes=v) for v in column.to_pylist()]
