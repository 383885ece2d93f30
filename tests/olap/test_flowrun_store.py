"""``FlowRunStore`` answers reporting calls over live UNION archive, and reads pruned runs back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from flowrun import FlowRunStore
from tests.conftest import FakeClock
from tests.olap import archive_writer


def test_the_front_door_reports_over_both_places(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    with FlowRunStore.open(dsn=dsn, archive=root, clock=clock, home=tmp_path / "home") as store:
        flow, old, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        store.start_run(flow, "nightly", old, "schedule", None, "job-old")
        store.record_step_start(old, "fetch", "http", '{"u": 1}')
        clock.advance(seconds=3)
        store.record_step_complete(old, "fetch", "Succeeded", '{"rows": 7}')
        store.complete_run(old, "Succeeded")
        clock.advance(days=1)
        store.start_run(flow, "nightly", new, "manual", None, None, old)
        expected_old = store.get_run_detail(old)
        assert expected_old is not None and expected_old.steps
        archive_writer.export(dsn, root, clock.now)
        assert archive_writer.prune(dsn, clock.now - timedelta(hours=1)) == 1
        # Gone from PostgreSQL, still there for every reader.
        assert store.get_run_detail(old) == expected_old
        assert store.get_run_detail(uuid.uuid4()) is None
        assert [r.id for r in store.get_runs()] == [new, old]
        assert [r.id for r in store.get_derived_runs(old)] == [new]
        page = store.get_runs_page(status="SUCCEEDED", search='ROWS": 7')
        assert ([r.id for r in page.runs], page.total_count) == ([old], 1)
        stats = store.get_statistics()
        assert (stats.total_flows, stats.active_runs, stats.completed_today) == (1, 1, 0)
        buckets = store.get_run_timeseries("day", clock.now - timedelta(days=2), clock.now + timedelta(seconds=1))
        assert [b.total for b in buckets] == [0, 1, 1]
        assert buckets[1].p50_duration_ms == 3000.0
        assert store.runs().height == 2
        assert store.steps()["output_json"].to_list() == ['{"rows": 7}']
        assert store.attempts().height == 1
        assert store.sql("SELECT count(*) AS n FROM runs WHERE status = 'Running'")["n"].to_list() == [1]
