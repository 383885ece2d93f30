"""Export, prune and compact through the real ``flowrun`` executable, checked against PostgreSQL and the store."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg
import pyarrow as pa
from deltalake import DeltaTable

from flowrun import FlowRunStore
from flowrun.demo import play
from flowrun.demo_clock import ThreadClock
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
    assert (cli.archive / "runs" / "_delta_log").is_dir()

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
    table = DeltaTable(str(cli.archive / "runs"))
    per_partition = Counter(pa.table(table.get_add_actions(flatten=True)).column("partition.started_date").to_pylist())
    assert per_partition and set(per_partition.values()) == {1}  # one active file per partition
    with FlowRunStore.open(dsn=cli.dsn, archive=cli.archive, migrate=False) as store:
        # Live UNION archive is one table: pruning and compacting change no answer.
        assert (store.get_statistics(), store.get_runs_page(take=1000)) == before
    assert cli.json("compact")["partitions"] == 0  # nothing left to merge


def _exporter(cli: Cli, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(FLOWRUN), "--dsn", cli.dsn, "--archive", str(cli.archive), "export", "--every", "0.2s", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(FLOWRUN_HOME=str(cli.home)),
    )


def _finish(cli: Cli) -> uuid.UUID:
    with FlowRunStore.open(dsn=cli.dsn, archive=cli.archive) as store:
        run = store.start_run(uuid.uuid4(), "scheduled", uuid.uuid4(), "manual")
        store.complete_run(run.id, "Succeeded")
    return run.id


def test_export_every_says_nothing_when_idle_and_stops_with_one_line(cli: Cli) -> None:
    first = _finish(cli)
    with _exporter(cli, "--json") as proc:
        second = _idle_then_sigterm(cli, proc)
    with FlowRunStore.open(dsn=cli.dsn, archive=cli.archive, migrate=False) as store:
        details = [store.get_run_detail(r) for r in (first, second)]
    assert [d.status if d else None for d in details] == ["Succeeded", "Succeeded"]
    assert _count(cli.dsn, "archived_runs") == 2


def _idle_then_sigterm(cli: Cli, proc: subprocess.Popen[str]) -> uuid.UUID:
    """Read the first round's line, finish a second run, read its round, stop with SIGTERM; the second run."""
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = json.loads(proc.stdout.readline())
        assert line["runs"] == 1 and datetime.fromisoformat(line["at"]).tzinfo is not None  # JSON Lines with a time
        second = _finish(cli)
        # Idle rounds in between print nothing: the next line is the next round that archived something.
        assert json.loads(proc.stdout.readline())["runs"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        assert proc.stdout.read() == ""
        stderr = proc.stderr.read().strip().splitlines()
        assert stderr[-1].startswith("stopped by SIGTERM:") and "2 run(s) archived" in stderr[-1], stderr
        assert "Traceback" not in "\n".join(stderr)
        return second
    finally:
        if proc.poll() is None:
            proc.kill()


def test_export_every_verbose_reports_idle_rounds_and_sigint_ends_with_one_line(cli: Cli) -> None:
    with _exporter(cli, "--json", "--verbose") as proc:
        _idle_round_then_sigint(proc)


def _idle_round_then_sigint(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["runs"] == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        last = proc.stderr.read().strip().splitlines()[-1]
        assert last.startswith("stopped by SIGINT:") and "export round(s) finished, 0 run(s) archived" in last
    finally:
        if proc.poll() is None:
            proc.kill()
