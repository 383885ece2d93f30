"""One archived run with its steps and attempts, as the archive holds it (its newest exported revision).

With a DSN, ``archived_runs`` names the run's start day, so only that day's files
are opened; an archive-only reader looks through every file for the id. The
Delta table holds one row per run, steps and attempts nested in it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from olap import frames, live, unified
from olap.live import Snapshot
from olap.session import Sources
from oltp.records import FlowRunRecord

_ID = "r.id = $id"


def archived_detail(sources: Sources, run_id: uuid.UUID) -> FlowRunRecord | None:
    """The archived copy of a run, or None when it was never archived."""
    if sources.archive is None:
        return None
    found: list[Any] = []

    def read(snap: Snapshot) -> dict[str, pa.Table]:
        found.extend(live.archived_revision(snap, str(run_id)))
        return {}

    with sources.call(read) as call:
        files = call.manifest.select()
        if sources.live is not None:
            if not found:
                return None
            files = call.manifest.select(*_day(found[1]))
        if not files:
            return None
        params = {"id": str(run_id)}
        row = call.run(f"SELECT {unified.RUN_FIELDS} FROM {call.relation('runs', files, _ID)} a", params).fetchone()
        if row is None:
            return None
        # The run's start day holds its row: its steps and attempts are nested in it.
        files = call.manifest.select(*_day(row[7].astimezone(UTC).date()))
        steps = call.run(f"SELECT {unified.STEP_FIELDS} FROM {call.relation('steps', files, _ID)} a", params)
        step_rows = steps.fetchall()
        attempts = call.run(f"SELECT {unified.ATTEMPT_FIELDS} FROM {call.relation('attempts', files, _ID)} a", params)
        attempt_rows = attempts.fetchall()
    return frames.detail_record(row, step_rows, attempt_rows)


def _day(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)
