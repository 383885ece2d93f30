"""One archived run with its steps and attempts, at its newest archived revision.

With a DSN, ``archived_runs`` names the revision and start day, so only that day's
files are opened; a files-only reader looks through every runs file for the id
and takes its highest revision. Steps and attempts come from the same day's files
at that revision.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from olap import archive, frames, live, unified
from olap.live import Snapshot
from olap.session import Sources
from oltp.records import FlowRunRecord


def archived_detail(sources: Sources, run_id: uuid.UUID) -> FlowRunRecord | None:
    """The newest archived copy of a run, or None when it was never archived."""
    if sources.archive_root is None:
        return None
    found: list[Any] = []

    def read(snap: Snapshot) -> dict[str, pa.Table]:
        found.extend(live.archived_revision(snap, str(run_id)))
        return {}

    with sources.call(read) as call:
        runs_files = call.manifest.select("runs")
        if sources.live is not None:
            if not found:
                return None
            runs_files = call.manifest.select("runs", *_day(found[1]))
        if not runs_files:
            return None
        row = call.run(
            f"SELECT {unified.RUN_FIELDS}, revision FROM {archive.parquet_scan(runs_files)}"
            " WHERE id = $id ORDER BY revision DESC LIMIT 1",
            {"id": run_id},
        ).fetchone()
        if row is None:
            return None
        revision, started_at = int(row[-1]), row[7]
        detail: dict[str, list[Any]] = {"steps": [], "attempts": []}
        for kind, fields in (("steps", unified.STEP_FIELDS), ("attempts", unified.ATTEMPT_FIELDS)):
            files = call.manifest.select(kind, *_day(started_at.astimezone(UTC).date()))
            if files:
                detail[kind] = call.run(
                    f"SELECT {fields} FROM {archive.parquet_scan(files)} WHERE run_id = $id AND revision = $revision",
                    {"id": run_id, "revision": revision},
                ).fetchall()
    return frames.detail_record(row[:-1], detail["steps"], detail["attempts"])


def _day(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)
