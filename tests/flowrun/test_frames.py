"""The analyst frames: durations as polars Durations, revisions, retries told apart from polls, UTC timeseries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from flowrun import FlowRunStore, Granularity
from tests.conftest import FakeClock


def test_frames_carry_duration_revision_and_retries_not_polls(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    with FlowRunStore.open(dsn=dsn, archive=tmp_path / "archive", clock=clock) as store:
        run = uuid.uuid4()
        store.start_run(uuid.uuid4(), "etl", run, "manual")
        # "fetch" fails once and is retried; "wait" polls twice (Pending) before it succeeds.
        store.record_step_start(run, "fetch", "http")
        clock.advance(seconds=2)
        store.record_step_complete(run, "fetch", "Failed", error_message="503")
        store.retry_step(run, "fetch")
        store.record_step_start(run, "fetch", "http")
        clock.advance(seconds=3)
        store.record_step_complete(run, "fetch", "Succeeded", output_json="{}")
        for status in ("Pending", "Pending", "Succeeded"):
            store.record_step_start(run, "wait", "poll")
            clock.advance(seconds=1)
            store.record_step_complete(run, "wait", status)
        store.complete_run(run, "Succeeded")
        runs, steps, attempts = store.runs(), store.steps(), store.attempts()
        store.export()  # archived: the same answers from the Delta archive
        archived = (store.runs(), store.steps(), store.attempts())

    assert runs.schema["duration"] == pl.Duration("us")
    assert runs.row(0, named=True)["duration"] == timedelta(seconds=8)
    assert runs.row(0, named=True)["revision"] >= 1
    by_step = {row["step_key"]: row for row in steps.iter_rows(named=True)}
    assert (by_step["fetch"]["attempt_count"], by_step["fetch"]["retries"], by_step["fetch"]["retried"]) == (2, 1, True)
    assert (by_step["wait"]["attempt_count"], by_step["wait"]["retries"], by_step["wait"]["retried"]) == (3, 0, False)
    assert by_step["fetch"]["duration"] == timedelta(seconds=3)
    assert attempts.filter(pl.col("retry")).select("step_key", "attempt").rows() == [("fetch", 2)]
    assert attempts.schema["duration"] == pl.Duration("us")
    for live, stored in zip((runs, steps, attempts), archived, strict=True):
        assert stored.equals(live)


def test_timeseries_frame_keeps_utc(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    with FlowRunStore.open(dsn=dsn, archive=tmp_path / "archive", clock=clock) as store:
        run = uuid.uuid4()
        store.start_run(uuid.uuid4(), "etl", run, "manual")
        store.complete_run(run, "Succeeded")
        since = datetime(2026, 3, 1, tzinfo=UTC)
        frame = store.timeseries_frame(Granularity.HOUR, since, since + timedelta(days=1))
        buckets = store.get_run_timeseries(Granularity.HOUR, since, since + timedelta(days=1))
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert frame["timestamp"].to_list() == [b.timestamp for b in buckets]
    assert frame["total"].sum() == 1 and frame.height == 24
