"""Retention: delete from PostgreSQL the runs the archive already holds at their newest version.

A run is pruned only when it completed before ``now - older_than``, its live
revision equals the revision ``archived_runs`` records, and no newer version
waits in the outbox; never-completed runs are never touched. Deleting the run
row cascades to its steps, attempts, dispatch records and outbox row. The work
is done in batches, each one short autocommit statement that locks its rows
with ``SKIP LOCKED``, so a large prune never blocks the engine's writers for
long and a run being written at that moment is simply left for the next prune.
"""

from __future__ import annotations

import time
from contextlib import closing
from datetime import datetime, timedelta

from oltp import arguments as arg
from oltp.clock import wall_clock
from oltp.connection import DEFAULT_SCHEMA, connect, schema_name, translate_errors
from sync import crash_points
from sync.durations import retention
from sync.export import check_batch_size
from sync.progress import Progress, ProgressUpdate, no_progress

DEFAULT_PRUNE_BATCH = 1_000
_MAX_PRUNE_BATCH = 100_000

# The revision check sits in the locking query, so a run written again after the
# snapshot is re-checked on its new version (READ COMMITTED re-evaluates locked rows).
_PRUNE_BATCH = """
WITH doomed AS (
    SELECT r.id FROM flow_runs r
      JOIN archived_runs a ON a.run_id = r.id AND a.revision = r.revision
     WHERE r.completed_at < %(cutoff)s AND r.status <> 'Running'
       AND NOT EXISTS (SELECT 1 FROM export_outbox o WHERE o.run_id = r.id)
     ORDER BY r.completed_at
     LIMIT %(limit)s
       FOR UPDATE OF r SKIP LOCKED
)
DELETE FROM flow_runs r USING doomed WHERE r.id = doomed.id
"""


def prune(
    dsn: str,
    older_than: timedelta | str,
    *,
    now: datetime | None = None,
    schema: str = DEFAULT_SCHEMA,
    batch_size: int = DEFAULT_PRUNE_BATCH,
    progress: Progress | None = None,
) -> int:
    """Delete archived runs completed before ``now - older_than``; returns how many were deleted."""
    keep = retention(older_than)
    instant = arg.aware_utc(now, "now") if now is not None else wall_clock()
    size = check_batch_size(batch_size, _MAX_PRUNE_BATCH)
    schema = schema_name(schema)
    show = progress or no_progress
    cutoff = instant - keep
    started = time.monotonic()
    deleted = 0
    with closing(connect(dsn, schema)) as conn, translate_errors():
        while True:
            count = conn.execute(_PRUNE_BATCH, {"cutoff": cutoff, "limit": size}).rowcount
            deleted += max(count, 0)
            crash_points.reached("prune_batch")
            show(ProgressUpdate("prune", deleted, None, deleted, time.monotonic() - started))
            # Fewer than a full batch: every eligible run not locked by a writer is gone.
            if count < size:
                break
    show(ProgressUpdate("prune", deleted, None, deleted, time.monotonic() - started, finished=True))
    return deleted
