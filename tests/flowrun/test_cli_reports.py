"""Reporting commands through the real ``flowrun`` executable, checked against the store's own answers.

The seeded store holds a demo workload with its older half exported and pruned,
so every command answers from PostgreSQL and the Parquet archive together.
Independent invocations of a test run at once: each is a whole process start-up.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from flowrun import FlowRunStore, Granularity, RunStatus
from flowrun.jsonable import jsonable
from tests.flowrun.conftest import Cli, Seeded, clean_env


def test_stats_and_environment_variables(seeded: Seeded, seeded_cli: Cli, store: FlowRunStore) -> None:
    expected = jsonable(store.get_statistics())
    env = clean_env(FLOWRUN_DSN=seeded.dsn, FLOWRUN_ARCHIVE=str(seeded.archive), FLOWRUN_HOME=str(seeded_cli.home))
    as_json, table = seeded_cli.run_many(["stats", "--json"], ["stats"])
    from_env = seeded_cli.run("stats", "--json", env=env, target=False)
    assert json.loads(as_json.stdout) == expected
    assert json.loads(from_env.stdout) == expected
    assert "active runs" in table.stdout and f"│ {expected['total_flows']} │" in table.stdout
    assert not seeded_cli.home.exists()  # a DSN was configured: no embedded server was started


def test_runs_pages_filters_and_search(seeded: Seeded, seeded_cli: Cli, store: FlowRunStore) -> None:
    page = store.get_runs_page(take=50)
    assert page.total_count == seeded.summary.played.runs
    flow = page.runs[0].flow_id
    failed = store.get_runs_page(status=RunStatus.FAILED, skip=1, take=3)
    searched = store.get_runs_page(flow_id=flow, search="OK", take=10)
    everything, failures, search, table = seeded_cli.run_many(
        ["runs", "--json"],
        ["runs", "--status", "failed", "--skip", "1", "--take", "3", "--json"],
        ["runs", "--flow", str(flow), "--search", "OK", "--take", "10", "--json"],
        ["runs", "--take", "7"],
    )
    assert json.loads(everything.stdout) == {"total_count": page.total_count, "runs": jsonable(page.runs)}
    got = json.loads(failures.stdout)
    assert got == {"total_count": failed.total_count, "runs": jsonable(failed.runs)}
    assert got["runs"] and all(run["status"] == "Failed" for run in got["runs"])
    got = json.loads(search.stdout)
    assert got == {"total_count": searched.total_count, "runs": jsonable(searched.runs)} and got["runs"]
    assert f"runs 1-7 of {page.total_count}" in table.stdout
    assert str(page.runs[0].id) in table.stdout


def test_show_live_and_archived_runs(seeded_cli: Cli, store: FlowRunStore) -> None:
    newest = store.get_runs(take=1)[0].id
    oldest = uuid.UUID(str(store.runs().sort("started_at")["id"][0]))  # pruned from PostgreSQL: archived only
    details = [store.get_run_detail(run_id) for run_id in (newest, oldest)]
    outputs = seeded_cli.run_many(
        ["show", str(newest), "--json"], ["show", str(oldest), "--json"], ["show", str(newest)], ["show", str(oldest)]
    )
    for detail, as_json, table in zip(details, outputs[:2], outputs[2:], strict=True):
        assert detail is not None and detail.steps
        assert json.loads(as_json.stdout) == jsonable(detail)
        assert str(detail.id) in table.stdout and detail.steps[0].step_key in table.stdout
        assert "#1" in table.stdout  # the attempts are listed


def test_timeseries_day_and_hour(seeded_cli: Cli, store: FlowRunStore) -> None:
    until = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    since = until - timedelta(days=30)
    daily = store.get_run_timeseries(Granularity.DAY, since, until)
    flow = store.get_runs(take=1)[0].flow_id
    # An offset other than UTC names the same instant.
    start = (until - timedelta(days=3)).astimezone(datetime.now().astimezone().tzinfo)
    hourly = store.get_run_timeseries(Granularity.HOUR, start, until, flow)
    day_json, hour_json, default_table, default_hour = seeded_cli.run_many(
        ["timeseries", "--day", "--since", since.isoformat(), "--until", until.isoformat(), "--json"],
        [
            "timeseries",
            "--hour",
            "--since",
            start.isoformat(),
            "--until",
            until.isoformat(),
            "--flow",
            str(flow),
            "--json",
        ],
        ["timeseries"],
        ["timeseries", "--hour", "--json"],
    )
    got = json.loads(day_json.stdout)
    assert got == jsonable(daily) and sum(bucket["total"] for bucket in got) > 0
    got = json.loads(hour_json.stdout)
    assert got == jsonable(hourly) and len(got) == 72
    assert "Runs per day" in default_table.stdout and "p95" in default_table.stdout
    assert len(json.loads(default_hour.stdout)) == 24


def test_sql(seeded_cli: Cli, store: FlowRunStore) -> None:
    query = "select status, count(*) as n from runs group by status order by status"
    as_json, table = seeded_cli.run_many(["sql", query, "--json"], ["sql", "select count(*) as total from attempts"])
    assert json.loads(as_json.stdout) == jsonable(store.sql(query).to_dicts())
    assert "total" in table.stdout and str(store.attempts().height) in table.stdout
    bad = seeded_cli.run("sql", "select nope from nowhere", code=2)
    assert bad.stderr.startswith("error:") and "Traceback" not in bad.stderr and bad.stdout == ""
