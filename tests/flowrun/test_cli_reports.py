"""Reporting commands through the real ``flowrun`` executable, checked against the store's own answers.

The seeded store holds a demo workload with its older half exported and pruned,
so every command answers from PostgreSQL and the Delta archive together.
Independent invocations of a test run at once: each is a whole process start-up.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowrun import FlowRunStore, Granularity, RunStatus
from flowrun.jsonable import jsonable
from tests.flowrun.conftest import FLOWRUN, Cli, Seeded, clean_env, shows

# The flow column's narrowest width in ``flowrun.tables.runs_table`` (it shrinks to make room
# for the optional trigger and re-run columns).
FLOW_MIN_WIDTH = 8


def test_stats_and_environment_variables(seeded: Seeded, seeded_cli: Cli, store: FlowRunStore) -> None:
    expected = jsonable(store.get_statistics())
    env = clean_env(FLOWRUN_DSN=seeded.dsn, FLOWRUN_ARCHIVE=str(seeded.archive), FLOWRUN_HOME=str(seeded_cli.home))
    as_json, table = seeded_cli.run_many(["stats", "--json"], ["stats"])
    from_env = seeded_cli.run("stats", "--json", env=env, target=False)
    assert json.loads(as_json.stdout) == expected
    assert json.loads(from_env.stdout) == expected
    # The table's words and numbers, never its cell widths (they depend on the data and the time of day).
    assert "active runs" in table.stdout
    numbers = [int(word) for word in table.stdout.split() if word.isdigit()]
    assert numbers == [expected[k] for k in ("total_flows", "active_runs", "completed_today", "failed_today")]
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
    assert str(page.runs[0].id)[:8] in table.stdout  # a short unique prefix, as git shows ids


def test_show_live_and_archived_runs(seeded_cli: Cli, store: FlowRunStore) -> None:
    newest = store.get_runs(take=1)[0].id
    oldest = uuid.UUID(str(store.runs().sort("started_at")["id"][0]))  # pruned from PostgreSQL: archived only
    details = [store.get_run_detail(run_id) for run_id in (newest, oldest)]
    outputs = seeded_cli.run_many(
        ["show", str(newest), "--json"], ["show", str(oldest), "--json"], ["show", str(newest)], ["show", str(oldest)]
    )
    for detail, as_json, table in zip(details, outputs[:2], outputs[2:], strict=True):
        assert detail is not None and detail.steps
        got = json.loads(as_json.stdout)
        derived = got.pop("derived_runs")
        assert got == jsonable(detail)
        assert [r["id"] for r in derived] == [str(r.id) for r in store.get_derived_runs(detail.id)]
        assert str(detail.id) in table.stdout and detail.steps[0].step_key in table.stdout
        attempts = sum(len(step.attempts) for step in detail.steps)
        assert f"{len(detail.steps)} step(s), {attempts} attempt(s)" in table.stdout  # one row per attempt
    by_prefix = seeded_cli.json("show", str(newest)[:8])
    assert by_prefix["id"] == str(newest)


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
    as_json, table, narrow = seeded_cli.run_many(
        ["sql", query, "--json"], ["sql", "select count(*) as total from attempts"], ["sql", "select 42 as n"]
    )
    assert json.loads(as_json.stdout) == jsonable(store.sql(query).to_dicts())
    assert "total" in table.stdout and str(store.attempts().height) in table.stdout
    # A one-column answer narrower than its caption: the caption stays on one line.
    assert [line.strip() for line in narrow.stdout.splitlines()] == ["n", "42", "1 row(s)"]
    bad = seeded_cli.run("sql", "select nope from nowhere", code=2)
    assert bad.stderr.startswith("error:") and "Traceback" not in bad.stderr and bad.stdout == ""


def test_flows_and_flow_names(seeded_cli: Cli, store: FlowRunStore) -> None:
    flows = store.flows()
    first = flows.row(0, named=True)
    listed, by_name, by_id, csv_text = seeded_cli.run_many(
        ["flows", "--json"],
        ["runs", "--flow", first["flow_name"], "--take", "1000", "--json"],
        ["runs", "--flow", str(first["flow_id"]), "--take", "1000", "--json"],
        ["runs", "--flow", first["flow_name"], "--take", "1000", "--format", "csv"],
    )
    assert json.loads(listed.stdout) == jsonable(flows.to_dicts())
    assert sum(f["runs"] for f in json.loads(listed.stdout)) == store.get_runs_page(take=1).total_count
    named = json.loads(by_name.stdout)
    assert named == json.loads(by_id.stdout) and named["total_count"] == first["runs"]
    assert {r["flow_name"] for r in named["runs"]} == {first["flow_name"]}
    rows = list(csv.DictReader(io.StringIO(csv_text.stdout)))
    assert [r["id"] for r in rows] == [r["id"] for r in named["runs"]]


def _seen_at_80(text: str, runs: list[dict[str, Any]]) -> None:
    """Every line fits 80 columns, and each run's row shows its short id, flow, status and duration."""
    lines = text.splitlines()
    assert lines and max(len(line.rstrip()) for line in lines) <= 80, text
    for run in runs:
        row = next(line for line in lines if line.startswith(run["id"][:8]))
        assert shows(row, run["flow_name"], FLOW_MIN_WIDTH) and run["status"] in row, row
        duration = row.split(run["status"])[1].split()
        assert duration and (duration[2] == "-") == (run["completed_at"] is None), row


def test_tables_at_80_columns(seeded_cli: Cli) -> None:
    env = clean_env(FLOWRUN_HOME=str(seeded_cli.home), COLUMNS="80")
    page = seeded_cli.json("runs", "--take", "20")
    newest = page["runs"][0]["id"]
    outputs = [
        seeded_cli.run(*args, env=env).stdout
        for args in (
            ["runs", "--take", "20"],
            ["timeseries"],
            ["show", newest],
            ["flows"],
            ["sql", "select flow_name, status, trigger_key, trigger_data_json from runs limit 20"],
        )
    ]
    _seen_at_80(outputs[0], page["runs"])
    for text in outputs:
        assert max(len(line.rstrip()) for line in text.splitlines()) <= 80, text
    assert "p95" in outputs[1] and "failed" in outputs[1]
    assert "Attempts" in outputs[2] and newest in outputs[2]
    wide = seeded_cli.run("runs", "--take", "20", "--wide", env=env).stdout
    assert all(run["id"] in wide for run in page["runs"])  # full ids with --wide


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_runs_in_a_tmux_pane_of_80_by_24(seeded_cli: Cli, tmp_path: Path) -> None:
    page = seeded_cli.json("runs", "--take", "15")
    done = tmp_path / "done"
    socket = f"flowrun-test-{uuid.uuid4().hex[:8]}"
    command = " ".join(
        shlex.quote(part)
        for part in [
            str(FLOWRUN),
            "--dsn",
            seeded_cli.dsn,
            "--archive",
            str(seeded_cli.archive),
            "runs",
            "--take",
            "15",
        ]
    )
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    env = clean_env(FLOWRUN_HOME=str(seeded_cli.home))
    env.pop("COLUMNS"), env.pop("LINES")  # the pane's size, as a terminal tells it
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "80", "-y", "24", f"{command}; touch {shlex.quote(str(done))}; sleep 60"],
        check=True,
        env=env,
        timeout=30,
    )
    try:
        deadline = time.monotonic() + 120
        while not done.exists():
            assert time.monotonic() < deadline, "flowrun did not finish in the pane"
            time.sleep(0.1)
        pane = subprocess.run(
            [*tmux, "capture-pane", "-p", "-J"], check=True, capture_output=True, text=True, timeout=30
        ).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30)
    _seen_at_80(pane, page["runs"][:12])  # what 24 lines show of the table (its top scrolled away)


def test_dashboard_for_the_runs_already_stored(seeded_cli: Cli, store: FlowRunStore) -> None:
    board, table = seeded_cli.run_many(["dashboard", "--json"], ["dashboard"])
    got = json.loads(board.stdout)
    assert got["statistics"] == jsonable(store.get_statistics())
    assert sum(row["runs"] for row in got["status_totals"]) == store.get_runs_page(take=1).total_count
    assert "Runs by status" in table.stdout and "Statistics" in table.stdout
