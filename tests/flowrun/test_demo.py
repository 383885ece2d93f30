"""``flowrun demo`` from a clean FLOWRUN_HOME: its own embedded server, its printed numbers, a second run.

The demo and the checks run in separate processes on the same data dir, each
starting the embedded server it finds stopped and stopping it when it exits;
the test ends by making sure no server is left running in the temporary home.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.flowrun.conftest import FLOWRUN, clean_env, shows

# What the store says, asked by a separate process through the public API (the
# embedded server of the home is started for it and stopped when it exits).
STORE_ANSWERS = """
import json, sys
from datetime import datetime, timedelta
from flowrun import FlowRunStore, Granularity
from flowrun.jsonable import jsonable
day = datetime.fromisoformat(sys.argv[1])
with FlowRunStore.open(migrate=False) as store:
    print(json.dumps(jsonable({
        "statistics": store.get_statistics(),
        "total": store.get_runs_page(take=1).total_count,
        "status_totals": store.sql("select status, count(*) as runs from runs group by status").to_dicts(),
        "daily": store.get_run_timeseries(Granularity.DAY, day - timedelta(days=29), day + timedelta(days=1)),
        # The demo's 30 days reach into a 31st calendar day: every run lies in this window.
        "all_days": store.get_run_timeseries(Granularity.DAY, day - timedelta(days=30), day + timedelta(days=1)),
    })))
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "flowrun-home"
    yield path
    _stop_leftover_server(path / "postgres")


def _stop_leftover_server(pgdata: Path) -> None:
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():  # pragma: no cover - only when a process died without its atexit hook
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # fast shutdown
        for _ in range(100):
            if not pid_file.exists():
                break
            time.sleep(0.1)


def _run(home: Path, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = clean_env(FLOWRUN_HOME=str(home), COLUMNS=str(columns))
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    return done


def _store_answers(home: Path, day: str) -> Any:
    return json.loads(_run(home, sys.executable, "-c", STORE_ANSWERS, day).stdout)


def _by_status(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {row["status"]: row["runs"] for row in rows}


def test_demo_from_a_clean_home_prints_what_the_store_answers(home: Path) -> None:
    assert not home.exists()
    printed = json.loads(_run(home, str(FLOWRUN), "demo", "--runs", "500", "--json").stdout)
    pgdata = home / "postgres"
    assert (pgdata / "PG_VERSION").exists() and (home / "archive" / "runs").is_dir()
    assert not (pgdata / "postmaster.pid").exists()  # the demo stopped the server it started

    demo = printed["demo"]
    played = demo["played"]
    assert played["runs"] == 500 and played["calls"] > 500 * 8
    assert played["step_retries"] > 0 and played["polls"] > 0
    assert demo["exported"]["runs"] == 500 - played["final_status"].get("Running", 0)
    assert 0 < demo["pruned"] < 500
    day = datetime.fromisoformat(printed["at"]).replace(hour=0, minute=0, second=0, microsecond=0)
    truth = _store_answers(home, day.isoformat())

    assert printed["statistics"] == truth["statistics"]
    assert printed["statistics"]["total_flows"] == 6
    assert printed["statistics"]["active_runs"] == played["final_status"].get("Running", 0)
    assert truth["total"] == 500
    assert _by_status(printed["status_totals"]) == _by_status(truth["status_totals"])
    # The players' own tally of how each run ended agrees with what the store reports.
    assert {k: v for k, v in played["final_status"].items() if v} == _by_status(truth["status_totals"])
    assert set(_by_status(truth["status_totals"])) >= {"Succeeded", "Failed", "Skipped", "TimedOut", "Cancelled"}
    assert printed["daily"] == truth["daily"]
    assert sum(bucket["total"] for bucket in truth["all_days"]) == 500
    assert len(printed["hourly"]) == 24
    assert printed["slowest_flows"] and printed["top_errors"]
    assert printed["lineage"]["reruns"] == played["reruns"]
    if played["reruns"]:
        assert printed["lineage"]["derived"]
        source = printed["lineage"]["source"]["id"]
        assert all(run["source_run_id"] == source for run in printed["lineage"]["derived"])

    # A second demo on the same home adds runs with new ids, and draws the dashboard.
    second = _run(home, str(FLOWRUN), "demo", "--runs", "100").stdout
    assert "played 100 runs" in second
    for title in ("Statistics", "Runs per day", "Last 24 hours", "Slowest flows", "Most frequent step errors"):
        assert title in second
    assert "flowrun ui" in second and "http://127.0.0.1:8080/" in second  # how to open the web dashboard
    assert _store_answers(home, day.isoformat())["total"] == 600
    assert not (pgdata / "postmaster.pid").exists()


def test_the_dashboard_at_80_columns_cuts_long_text_and_never_wraps(home: Path) -> None:
    lines = _run(home, str(FLOWRUN), "demo", "--runs", "1000", columns=80).stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, "\n".join(lines)
    board = json.loads(_run(home, str(FLOWRUN), "dashboard", "--json").stdout)  # the same runs, as data

    # The errors table: title, header, then exactly one line per error, each cell whole or cut with "…".
    errors = board["top_errors"]
    title = next(i for i, line in enumerate(lines) if line.startswith("Most frequent step errors"))
    rows = lines[title + 2 : title + 2 + len(errors)]
    for row, error in zip(rows, errors, strict=True):
        assert shows(row, error["flow"], 8) and shows(row, error["step"], 8), row
        assert shows(row, " ".join(error["error"].split()), 10), row
        assert row.split()[-2:] == [str(error["failures"]), str(error["runs"])], row
    assert lines[title + 2 + len(errors)].startswith("Re-runs:")  # no row ran onto a second line
    # Whole, the text columns and the two counts (with their gaps) take more than 80 columns: something is cut.
    whole = sum(max(len(str(e[key])) for e in errors) for key in ("flow", "step", "error")) + 8 + 4 + 4 * 2
    assert whole > 80 and any("…" in row for row in rows), rows

    source = board["lineage"]["source"]
    if source is not None:
        row = next(line for line in lines if line.startswith(source["id"][:8]))
        assert shows(row, source["flow_name"], 8) and source["status"] in row, row
