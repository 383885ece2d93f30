"""Export, prune and compact through the real ``flowrun`` executable, checked against PostgreSQL and the store."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg

from flowrun import FlowRunStore
from flowrun.demo import play
from flowrun.demo_clock import ThreadClock
from flowrun.jsonable import jsonable
from tests.flowrun.conftest import FLOWRUN, Cli, clean_env


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM flowrun.{table}").fetchone()  # table names are literals here
    assert row is not None
    return int(row[0])


def test_export_prune_compact(cli: Cli) -> None:
    clock = ThreadClock()
    with FlowRunStore.open(dsn=cli.dsn, archive=cli.archive, clock=clock) as store:
        played = play(store, clock, 80, threads=2, seed=11)
        runs = store.runs()
    completed = runs.filter(pl.col("completed_at").is_not_null())
    assert _count(cli.dsn, "export_outbox") == completed.height

    exported = cli.run("export", "--batch-size", "25").stdout
    assert f"exported {completed.height} run(s)" in exported
    assert _count(cli.dsn, "export_outbox") == 0 and _count(cli.dsn, "archived_runs") == completed.height
    assert len(list(cli.archive.glob("runs/started_date=*/*.parquet"))) >= 3

    cutoff = datetime.now(UTC) - timedelta(days=14)
    old = completed.filter(pl.col("completed_at") < cutoff).height
    assert 0 < old < played.runs
    with FlowRunStore.open(dsn=cli.dsn, archive=cli.archive, migrate=False) as store:
        before = (store.get_statistics(), store.get_runs_page(take=1000))
    pruned = cli.json("prune", "--older-than", "14d")
    assert pruned == {"pruned": old, "older_than_seconds": 14 * 86400.0}
    assert _count(cli.dsn, "flow_runs") == played.runs - old

    compacted = cli.run("compact").stdout
    assert "compacted" in compacted and "partition(s)" in compacted
    partitions = [d for d in cli.archive.glob("*/started_date=*") if d.is_dir()]
    assert partitions and all(len(list(d.glob("*.parquet"))) == 1 for d in partitions)  # one file per partition
    with FlowRunStore.open(dsn=cli.dsn, archive=cli.archive, migrate=False) as store:
        # Live UNION archive is one table: pruning and compacting change no answer.
        assert (store.get_statistics(), store.get_runs_page(take=1000)) == before
    assert cli.json("compact")["partitions"] == 0  # nothing left to merge


def test_export_every_runs_rounds_until_interrupted(cli: Cli) -> None:
    proc = subprocess.Popen(
        [str(FLOWRUN), "--dsn", cli.dsn, "--archive", str(cli.archive), "export", "--every", "0.5s", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(FLOWRUN_HOME=str(cli.home)),
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["runs"] == 0
        with FlowRunStore.open(dsn=cli.dsn, archive=cli.archive) as store:
            run = store.start_run(uuid.uuid4(), "scheduled", uuid.uuid4(), "manual")
            store.complete_run(run.id, "Succeeded")
        deadline = time.monotonic() + 30
        exported = 0
        while exported == 0 and time.monotonic() < deadline:
            exported = json.loads(proc.stdout.readline())["runs"]  # one JSON document per line and round
        assert exported == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) in (0, 130)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with FlowRunStore.open(dsn=cli.dsn, archive=cli.archive, migrate=False) as store:
        assert jsonable(store.get_run_detail(run.id))["status"] == "Succeeded"
    assert _count(cli.dsn, "archived_runs") == 1
