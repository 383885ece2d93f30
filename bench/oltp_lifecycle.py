"""Lifecycle write throughput of ``oltp.RunStore`` against raw psycopg, on one server, in one run.

A realistic lifecycle per run: start_run; five steps each dispatched
(try_record_dispatch), started and completed; complete_run - 17 calls. The
baseline is the cheapest write PostgreSQL offers a client: one single-statement
autocommit INSERT per call on a plain psycopg connection, against the same server
with the same number of client threads. The ratio (our calls/s over raw
INSERTs/s) is what the store costs on top of the server's own commit rate.

    python -P bench/oltp_lifecycle.py [--seconds 5] [--rounds 3] [--threads 1 4] [--dsn DSN]
                                      [--async-tasks 64] [--sync-threads 8]

The async figure runs the same lifecycle as ``--async-tasks`` concurrent asyncio
tasks on one event loop (``oltp.AsyncRunStore``) and as ``--sync-threads``
threads on the sync store, both with a pool of ``--sync-threads`` connections,
and prints the two rates side by side (0 tasks skips it).

Without ``--dsn`` it starts a private embedded PostgreSQL (default settings,
fsync on) in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from flowrun import embedded
from oltp import migrate
from oltp.async_store import AsyncRunStore
from oltp.store import RunStore

STEPS = ("extract", "validate", "transform", "load", "notify")
CALLS_PER_RUN = 1 + 3 * len(STEPS) + 1


def timed(threads: int, seconds: float, work: Callable[[int], int]) -> float:
    """Run ``work(thread_index)`` in a loop on ``threads`` threads; return units per second."""
    stop = time.perf_counter() + seconds
    counts = [0] * threads

    def loop(index: int) -> None:
        while time.perf_counter() < stop:
            counts[index] += work(index)

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - start)


def raw_inserts(dsn: str, threads: int, seconds: float) -> float:
    """Single-statement autocommit INSERTs per second, one connection per thread."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id uuid PRIMARY KEY, k text, at timestamptz)")
        conn.execute("TRUNCATE bench_raw")
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(threads)]

    def work(i: int) -> int:
        conns[i].execute("INSERT INTO bench_raw VALUES (%s, %s, now())", (uuid.uuid4(), "step"))
        return 1

    try:
        return timed(threads, seconds, work)
    finally:
        for c in conns:
            c.close()


def lifecycle(store: RunStore, threads: int, seconds: float) -> float:
    """Whole runs per second through the store's public API."""
    flow = uuid.uuid4()

    def work(_: int) -> int:
        run = uuid.uuid4()
        store.start_run(flow, "bench-flow", run, "schedule", '{"source": "bench"}', "job-1")
        for key in STEPS:
            if store.try_record_dispatch(run, key):
                store.record_step_start(run, key, "task", '{"n": 1}', f"job-{key}")
                store.record_step_complete(run, key, "Succeeded", '{"rows": 10}')
        store.complete_run(run, "Succeeded")
        return 1

    return timed(threads, seconds, work)


async def async_lifecycle(store: AsyncRunStore, tasks: int, seconds: float) -> float:
    """Whole runs per second from ``tasks`` concurrent tasks on this event loop."""
    flow = uuid.uuid4()
    stop = time.perf_counter() + seconds
    counts = [0] * tasks

    async def loop(index: int) -> None:
        while time.perf_counter() < stop:
            run = uuid.uuid4()
            await store.start_run(flow, "bench-flow", run, "schedule", '{"source": "bench"}', "job-1")
            for key in STEPS:
                if await store.try_record_dispatch(run, key):
                    await store.record_step_start(run, key, "task", '{"n": 1}', f"job-{key}")
                    await store.record_step_complete(run, key, "Succeeded", '{"rows": 10}')
            await store.complete_run(run, "Succeeded")
            counts[index] += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(tasks)))
    return sum(counts) / (time.perf_counter() - start)


def async_versus_threads(dsn: str, tasks: int, threads: int, seconds: float, rounds: int) -> None:
    """Print calls/s of ``tasks`` asyncio tasks on one loop beside ``threads`` threads on the sync store."""

    async def measure_async() -> list[float]:
        rates = []
        async with AsyncRunStore(dsn, schema="flowrun_bench", max_connections=threads) as store:
            await async_lifecycle(store, tasks, 1.0)  # warm up
            for _ in range(rounds):
                rates.append(await async_lifecycle(store, tasks, seconds))
        return rates

    sync_rates = []
    with RunStore(dsn, schema="flowrun_bench", max_connections=threads) as store:
        lifecycle(store, threads, 1.0)
        for _ in range(rounds):
            sync_rates.append(lifecycle(store, threads, seconds))
    async_rates = asyncio.run(measure_async())
    a, t = statistics.median(async_rates) * CALLS_PER_RUN, statistics.median(sync_rates) * CALLS_PER_RUN
    print(f"\n{'client':>28} {'connections':>11} {'lifecycle calls/s':>18}")
    print(f"{f'{tasks} asyncio tasks, one loop':>28} {threads:>11} {a:>18,.0f}")
    print(f"{f'{threads} threads, sync store':>28} {threads:>11} {t:>18,.0f}")
    print(f"{'async / threads':>28} {'':>11} {a / t:>18.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/store measurements; medians reported")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--dsn")
    parser.add_argument("--async-tasks", type=int, default=64, help="asyncio tasks for the async figure (0: skip)")
    parser.add_argument("--sync-threads", type=int, default=8, help="threads (and pool size) it is compared with")
    args = parser.parse_args()
    dsn = args.dsn
    if dsn is None:
        server = embedded.start(Path(tempfile.mkdtemp(prefix="flowrun-bench-")) / "pgdata", delete_on_exit=True)
        dsn = embedded.dsn(server)
    migrate.upgrade(dsn, "flowrun_bench")
    print(f"{'threads':>7} {'raw INSERT/s':>13} {'lifecycle calls/s':>18} {'ratio':>6} {'runs/s':>8}")
    for threads in args.threads:
        raws: list[float] = []
        runs: list[float] = []
        with RunStore(dsn, schema="flowrun_bench", max_connections=max(threads, 1)) as store:
            lifecycle(store, threads, 1.0)  # warm up: pool connections and prepared statements
            # Alternate the two so a change in background load hits both alike.
            for _ in range(args.rounds):
                raws.append(raw_inserts(dsn, threads, args.seconds))
                runs.append(lifecycle(store, threads, args.seconds))
        raw, run_rate = statistics.median(raws), statistics.median(runs)
        calls = run_rate * CALLS_PER_RUN
        print(f"{threads:>7} {raw:>13,.0f} {calls:>18,.0f} {calls / raw:>6.2f} {run_rate:>8,.0f}")
    if args.async_tasks:
        async_versus_threads(dsn, args.async_tasks, args.sync_threads, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
