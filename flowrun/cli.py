"""The ``flowrun`` command line."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console

from flowrun.store import FlowRunStore
from oltp import migrate as migrations
from oltp.errors import FlowRunStoreError

app = typer.Typer(no_args_is_help=True, help="Run history for workflow engines: PostgreSQL, Parquet, DuckDB.")
console = Console()


@app.command()
def demo(runs: int = typer.Option(300, help="Number of flow runs to play.")) -> None:
    """Play an engine workload on the embedded server and show what the store says."""
    start = datetime.now(UTC) - timedelta(days=1)
    now = [start]
    with FlowRunStore.open(clock=lambda: now[0]) as store:
        rng = random.Random(7)
        for _ in range(runs):
            now[0] += timedelta(seconds=rng.randint(1, 200))
            rid = uuid.uuid4()
            store.start_run(uuid.UUID(int=rng.randint(1, 5)), "demo-flow", rid, "schedule", json.dumps({"n": 1}))
            for key in ("fetch", "transform", "load"):
                if store.try_record_dispatch(rid, key):
                    store.record_step_start(rid, key, "task")
                    now[0] += timedelta(milliseconds=rng.randint(10, 5000))
                    store.record_step_complete(rid, key, "Succeeded", "{}")
            if rng.random() < 0.9:
                store.complete_run(rid, "Succeeded")
        active = store.get_active_runs()
        console.print(f"played {runs} runs; {len(active)} still running")
        if active:
            console.print(store.get_run_detail(active[0].id))


@app.command()
def migrate() -> None:
    """Create or upgrade the store's schema."""
    with FlowRunStore.open(migrate=False) as store:
        console.print(f"schema {store.schema} at revision {migrations.upgrade(store.dsn, store.schema)}")


def main() -> None:
    try:
        app()
    except FlowRunStoreError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
