"""One battery of reporting questions, each answer compared with the workload's oracle."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone

from olap import RunAnalytics
from oltp.records import RunTimeseriesBucket
from tests.olap.workload import (
    FLOWS,
    START,
    Run,
    expected_derived,
    expected_page,
    expected_runs,
    expected_statistics,
    expected_timeseries,
)

SEARCHES = [
    None,
    "",
    "   ",
    "billing",
    "BILLING",
    " Billing",
    "ärger",
    "ÖL",
    "100%",
    "%",
    "_",
    "t_a",
    "\\",
    "\\to",
    "'",
    '"quoted"',
    "o'brien",
    "x' OR '1'='1",
    "'; DROP TABLE flow_runs; --",
    "timedout",
    "RUNNING",
    "http 503",
    'rows": 1',
    "load_all",
    "KeyError: 'user_id'",
    "job-1",
    "schedule",
    "-4",
    "nothing matches this",
]


def assert_buckets(actual: list[RunTimeseriesBucket], expected: list[RunTimeseriesBucket]) -> None:
    """Counts equal, percentiles equal up to 1e-9 relative."""
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert (a.timestamp, a.total, a.succeeded, a.failed, a.cancelled, a.timed_out, a.skipped, a.running) == (
            e.timestamp,
            e.total,
            e.succeeded,
            e.failed,
            e.cancelled,
            e.timed_out,
            e.skipped,
            e.running,
        ), (a, e)
        for x, y in (
            (a.p50_duration_ms, e.p50_duration_ms),
            (a.p95_duration_ms, e.p95_duration_ms),
            (a.p99_duration_ms, e.p99_duration_ms),
        ):
            assert (x is None) == (y is None), (a, e)
            if x is not None and y is not None:
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (a, e)


def check(analytics: RunAnalytics, runs: list[Run], now: datetime) -> None:
    """Every reporting method against the oracle over ``runs``."""
    flows = [f for f, _ in FLOWS]
    by_id = sorted(runs, key=lambda r: r.id)
    # get_runs
    assert analytics.get_runs() == expected_runs(runs)
    assert analytics.get_runs(flow_id=flows[1], skip=3, take=7) == expected_runs(runs, flows[1], 3, 7)
    assert analytics.get_runs(skip=13, take=9) == expected_runs(runs, None, 13, 9)
    assert analytics.get_runs(skip=5000, take=1000) == []
    # get_runs_page: search terms, statuses in any case, paging across ties
    terms = [*SEARCHES]
    if by_id:
        terms += [str(by_id[0].id)[:8].upper(), str(by_id[-1].id)]
    for term in terms:
        page = analytics.get_runs_page(search=term, take=20)
        assert (page.runs, page.total_count) == expected_page(runs, search=term, take=20), term
    for status in ("succeeded", "FAILED", "Running", "timedout", "Skipped", "cancelled"):
        page = analytics.get_runs_page(flow_id=flows[0], status=status, skip=1, take=5)
        assert (page.runs, page.total_count) == expected_page(runs, flows[0], status, 1, 5), status
    for skip in range(0, 40, 9):
        page = analytics.get_runs_page(skip=skip, take=9)
        assert (page.runs, page.total_count) == expected_page(runs, skip=skip, take=9)
    page = analytics.get_runs_page(status="Failed", search="timeout", take=1000)
    assert (page.runs, page.total_count) == expected_page(runs, status="Failed", search="timeout", take=1000)
    # statistics on the clock's day
    assert analytics.get_statistics() == expected_statistics(runs, now)
    # timeseries: aligned, unaligned, per flow, non-UTC input
    week = START + timedelta(days=8)
    assert_buckets(analytics.get_run_timeseries("hour", START, week), expected_timeseries(runs, "hour", START, week))
    since, until = START - timedelta(days=1), START + timedelta(days=9)
    assert_buckets(
        analytics.get_run_timeseries("day", since, until, flow_id=flows[2]),
        expected_timeseries(runs, "day", since, until, flows[2]),
    )
    odd = timezone(timedelta(hours=5, minutes=30))
    since = (START + timedelta(days=2, hours=3, minutes=17)).astimezone(odd)
    until = (START + timedelta(days=3, hours=5, minutes=3, microseconds=7)).astimezone(odd)
    assert_buckets(analytics.get_run_timeseries("hour", since, until), expected_timeseries(runs, "hour", since, until))
    assert_buckets(analytics.get_run_timeseries("day", since, until), expected_timeseries(runs, "day", since, until))
    # lineage
    sources = sorted({r.source_run_id for r in runs if r.source_run_id is not None})[:4]
    for source in [*sources, uuid.UUID(int=7)]:
        assert analytics.get_derived_runs(source) == expected_derived(runs, source)
    # analyst frames
    frame = analytics.runs()
    assert frame["id"].to_list() == [str(r.id) for r in expected_runs(runs, take=10**9)]
    assert frame["status"].to_list() == [r.status.value for r in expected_runs(runs, take=10**9)]
    assert frame["completed_at"].to_list() == [r.completed_at for r in expected_runs(runs, take=10**9)]
    steps = analytics.steps()
    expected_steps = sorted(
        (str(r.id), k, s.status.value, s.output_json, s.error_message, len(s.attempts))
        for r in runs
        for k, s in r.steps.items()
    )
    got_steps = list(
        steps.select("run_id", "step_key", "status", "output_json", "error_message", "attempt_count").iter_rows()
    )
    assert got_steps == expected_steps
    attempts = analytics.attempts()
    expected_attempts = sorted(
        (str(r.id), k, n, a.status.value, a.output_json, a.started_at)
        for r in runs
        for k, s in r.steps.items()
        for n, a in enumerate(s.attempts, start=1)
    )
    got = list(attempts.select("run_id", "step_key", "attempt", "status", "output_json", "started_at").iter_rows())
    assert got == expected_attempts
    by_status = analytics.sql("SELECT status, count(*) AS n FROM runs GROUP BY status ORDER BY status")
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    assert list(by_status.iter_rows()) == sorted(counts.items())
