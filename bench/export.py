"""Export throughput of ``sync.export_completed_runs`` against a bare Arrow copy, in one run.

N completed runs (5 steps each, 1 attempt per step, spread over 30 days, with
their outbox rows) are bulk-loaded with COPY (ADBC ingestion), exactly as the
store would hold them. Two measurements follow, each in a fresh process so that
its peak RSS is its own:

* baseline: the same rows (runs, steps, attempts) fetched with
  ``adbc-driver-postgresql`` ``fetch_arrow_table`` - one query per table, no
  bookkeeping - and each table written to one zstd Parquet file;
* export: ``sync.export_completed_runs`` draining the outbox into the
  archive's Delta table (snapshots, nesting steps and attempts under their run,
  search documents, sorting, one Delta commit and one PostgreSQL transaction per
  batch).

Both processes set their allocators as the ``flowrun`` command's process does
(``flowrun.job_process``: freed memory kept for reuse instead of faulted in again
for every batch); ``--default-allocators`` measures both with the libraries'
defaults instead.

It prints runs/s, rows/s, peak RSS and the ratio export / baseline (goal >= 0.6),
and where the machine's CPU went during each measurement: the measured process,
the PostgreSQL server, and everything else. Both measurements need most of two
cores, so other work on the machine slows them, by amounts that differ between
the two: a ratio from a run whose "other" CPU (or CPU "stolen" by the virtual
machine's host) is not near zero was measured on a busy machine.

    python bench/export.py [--runs 1000000] [--batch-size N] [--dsn DSN] [--workdir DIR] [--default-allocators] [--s3]
                           [--pairs N]

``--pairs N`` measures baseline then export N times in a row, the run queued
again before each export, and prints each pair and the median of the pairs'
ratios: the host's speed drifts within minutes, and one pair's ratio moves with it.

``--s3`` writes the export's archive to a bucket on the tests' S3-compatible server
(moto, ``tests/fixtures/s3_server.py``) on 127.0.0.1, started for the measurements and
stopped after them; the export finds it through the ``AWS_*``/``FLOWRUN_S3_*``
variables ``sync.archive_location`` reads, as the ``flowrun`` command would. The
baseline still writes its Parquet files to local disk. moto's CPU is reported in a
column of its own: it shares the machine's cores with both processes.

Without ``--dsn`` it starts a private embedded PostgreSQL (default settings) in
the work directory (a temporary one unless given). With a ``--workdir`` that
already holds the same number of runs, the data is reused: the archive
bookkeeping is emptied and every run queued again, as right after loading.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

# This script's directory comes first on sys.path, where "olap" names bench/olap.py: drop it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
# The repository root, for the S3 server the tests use (tests/fixtures/s3_server.py).
sys.path.append(str(_HERE.parent))

from flowrun import embedded  # noqa: E402
from oltp import migrate, rows  # noqa: E402
from sync import DEFAULT_BATCH_SIZE  # noqa: E402
from tests.fixtures import s3_server  # noqa: E402

STEPS = ("extract", "validate", "transform", "load", "notify")
CHUNK = 50_000
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
TS = pa.timestamp("us", tz="UTC")

RUN_COLUMNS = rows.RUN_COLUMNS + ", revision"
STEP_COLUMNS = rows.STEP_COLUMNS
ATTEMPT_COLUMNS = rows.ATTEMPT_COLUMNS


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    storage = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(raw.tobytes())])
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


def _text(prefix: str, numbers: pa.Array, suffix: str = "") -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(numbers, pa.string()), suffix, "")


def _micros(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("datetime64[us]"), pa.timestamp("us")).cast(TS)


def chunk_tables(first: int, n: int, total: int, rng: np.random.Generator) -> dict[str, pa.Table]:
    """Runs ``first .. first+n`` of ``total``: the rows of every table, like the store writes them."""
    index = pa.array(np.arange(first, first + n, dtype=np.int64))
    spread = np.int64(DAYS * 86_400 * 1_000_000) // max(total, 1)
    began = np.datetime64(START.replace(tzinfo=None), "us") + (
        np.arange(first, first + n, dtype=np.int64) * spread + rng.integers(0, max(int(spread), 1), n)
    ).astype("timedelta64[us]")
    step_length = rng.integers(50_000, 5_000_000, size=(n, len(STEPS))).astype("timedelta64[us]")
    step_start = began[:, None] + np.cumsum(step_length, axis=1) - step_length
    step_end = step_start + step_length
    completed = step_end[:, -1] + np.timedelta64(1000, "us")
    ids = _uuids(rng, n)
    flows = np.asarray(_uuids(np.random.default_rng(7), 50).storage.to_numpy(zero_copy_only=False))
    flow_pick = rng.integers(0, 50, n)
    failed = rng.random(n) < 0.05
    runs = pa.table(
        {
            "id": ids,
            "flow_id": pa.ExtensionArray.from_storage(pa.uuid(), pa.array(flows[flow_pick].tolist(), pa.binary(16))),
            "flow_name": _text("flow-", pa.array(flow_pick)),
            "status": pa.array(np.where(failed, "Failed", "Succeeded")),
            "trigger_key": pa.array(np.where(flow_pick % 3 == 0, "manual", "schedule")),
            "trigger_data_json": _text('{"batch": ', index, ', "source": "bench"}'),
            "background_job_id": _text("job-", index),
            "started_at": _micros(began),
            "completed_at": _micros(completed),
            "source_run_id": pa.nulls(n, pa.uuid()),
            "revision": pa.array(np.full(n, 2, dtype=np.int64)),
        }
    )
    per_step = n * len(STEPS)
    run_of_step = np.repeat(np.arange(n), len(STEPS))
    step_ids = pc.take(ids, pa.array(run_of_step))
    keys = pa.array(np.tile(np.array(STEPS, dtype=object), n).tolist(), pa.string())
    step_failed = np.zeros((n, len(STEPS)), dtype=bool)
    step_failed[:, -1] = failed
    failed_steps = step_failed.ravel()
    status = pa.array(np.where(failed_steps, "Failed", "Succeeded"))
    step_index = pa.array(np.arange(first * len(STEPS), first * len(STEPS) + per_step, dtype=np.int64))
    common = {
        "run_id": step_ids,
        "step_key": keys,
        "step_type": pa.array(np.tile(np.array(["http", "sql", "python", "sql", "email"], dtype=object), n).tolist()),
        "status": status,
        "input_json": _text('{"step": ', step_index, ', "args": {"limit": 1000, "dry_run": false}}'),
        "output_json": pc.if_else(
            pa.array(failed_steps), pa.nulls(per_step, pa.string()), _text('{"rows": ', step_index, ', "ok": true}')
        ),
        "error_message": pc.if_else(
            pa.array(failed_steps),
            pa.scalar("upstream returned 503: service unavailable"),
            pa.nulls(per_step, pa.string()),
        ),
        "job_id": _text("hf-", step_index),
        "started_at": _micros(step_start.ravel()),
        "completed_at": _micros(step_end.ravel()),
    }
    steps = pa.table({**common, "attempt_count": pa.array(np.ones(per_step, dtype=np.int32))})
    attempts = pa.table(
        {
            **{k: v for k, v in common.items() if k in ("run_id", "step_key")},
            "attempt": pa.array(np.ones(per_step, dtype=np.int32)),
            **{k: v for k, v in common.items() if k not in ("run_id", "step_key")},
        }
    )
    outbox = pa.table({"run_id": ids, "revision": runs.column("revision"), "enqueued_at": runs.column("completed_at")})
    return {"flow_runs": runs, "flow_steps": steps, "flow_step_attempts": attempts, "export_outbox": outbox}


def loaded_runs(dsn: str) -> int:
    """Runs already in the database (0 for a fresh one)."""
    migrate.upgrade(dsn)
    with adbc.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM flowrun.flow_runs")
        row = cur.fetchone()
    return int(row[0]) if row else 0


def requeue(dsn: str, archive: Path) -> None:
    """Forget every export: empty the archive bookkeeping and queue every run again."""
    with adbc.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE flowrun.archive_state, flowrun.archived_runs, flowrun.archive_pending")
        cur.execute("TRUNCATE flowrun.export_outbox")
        cur.execute("INSERT INTO flowrun.export_outbox SELECT id, revision, completed_at FROM flowrun.flow_runs")
        cur.execute("VACUUM ANALYZE flowrun.export_outbox")
        cur.execute("VACUUM ANALYZE flowrun.archived_runs")
    shutil.rmtree(archive, ignore_errors=True)


def load(dsn: str, runs: int) -> None:
    """Bulk-load ``runs`` completed runs with COPY into an empty schema."""
    rng = np.random.default_rng(2026)
    with adbc.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        for first in range(0, runs, CHUNK):
            for table, data in chunk_tables(first, min(CHUNK, runs - first), runs, rng).items():
                cur.adbc_ingest(table, data, mode="append", db_schema_name="flowrun")
            print(f"  loaded {min(first + CHUNK, runs):,} runs", file=sys.stderr, flush=True)
        cur.execute("VACUUM ANALYZE flowrun.flow_runs")
        cur.execute("VACUUM ANALYZE flowrun.flow_steps")
        cur.execute("VACUUM ANALYZE flowrun.flow_step_attempts")
        cur.execute("VACUUM ANALYZE flowrun.export_outbox")


_BASELINE = """
import json, resource, sys, time
import adbc_driver_postgresql.dbapi as adbc
import pyarrow.parquet as pq
dsn, out, columns = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rows, started = 0, time.perf_counter()
with adbc.connect(dsn) as conn, conn.cursor() as cur:
    for table, cols in columns.items():
        cur.execute(f"SELECT {cols} FROM flowrun.{table}")
        data = cur.fetch_arrow_table()
        pq.write_table(data, f"{out}/{table}.parquet", compression="zstd")
        rows += data.num_rows
        del data
seconds = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": rows, "seconds": seconds, "rss": rss}))
"""

_EXPORT = """
import json, logging, resource, sys, time
import sync
logging.basicConfig(level=logging.INFO, format="  %(message)s", stream=sys.stderr)
dsn, out, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
report = sync.export_completed_runs(dsn, out, batch_size=batch, progress=sync.log_progress(10))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({**report._asdict(), "rss": rss}))
"""


def _machine_cpu() -> tuple[float, float]:
    """CPU seconds all cores have spent busy since boot (all processes), and stolen by the hypervisor."""
    times = psutil.cpu_times()._asdict()
    # Linux counts guest time inside user time already; idle and iowait are not busy; steal is
    # time this virtual machine wanted a core and the host gave it to someone else.
    busy = sum(v for k, v in times.items() if k not in ("idle", "iowait", "guest", "guest_nice", "steal"))
    return float(busy), float(times.get("steal", 0.0))


def _server_cpu(pid: int | None) -> dict[int, float]:
    """CPU seconds of a server's processes by pid; the main process's entry includes its exited children."""
    if pid is None:
        return {}
    try:
        main = psutil.Process(pid)
        own = main.cpu_times()
        cpu = {pid: own.user + own.system + own.children_user + own.children_system}
        for child in main.children():
            try:
                times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            cpu[child.pid] = times.user + times.system
    except psutil.NoSuchProcess:
        return {}
    return cpu


def _server_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """Server CPU between two readings: a backend that exited in between is counted once, in the postmaster's."""
    gone = sum(cpu for pid, cpu in before.items() if pid not in after)
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()) - gone


# First thing in each measured process, as in the ``flowrun`` command (flowrun.launch).
_CONFIGURE = "from flowrun import job_process; job_process.configure(); job_process.keep_heap()\n"


def _child(
    script: str, *args: str, postmaster: int | None = None, s3: int | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``script`` in a new process; its result, and the CPU it, PostgreSQL, the S3 server and the rest used."""
    # The files the previous measurement (or the load) left in the page cache are written out
    # first: otherwise their writeback runs during this one, and PostgreSQL's commits wait behind
    # it (the export's first batch took 5.7-9.9 s instead of about 2.5 s right after the baseline).
    os.sync()
    (busy, steal), server, load = _machine_cpu(), _server_cpu(postmaster), os.getloadavg()[0]
    s3_before = _server_cpu(s3)
    disk = psutil.disk_io_counters()
    started = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, "-c", script, *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stderr.write(done.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    process = ended.ru_utime + ended.ru_stime - started.ru_utime - started.ru_stime
    postgres = _server_delta(server, _server_cpu(postmaster))
    moto = _server_delta(s3_before, _server_cpu(s3))
    busy_after, steal_after = _machine_cpu()
    machine = busy_after - busy
    disk_after = psutil.disk_io_counters()
    if disk is not None and disk_after is not None:
        result["disk"] = {
            "written": disk_after.write_bytes - disk.write_bytes,
            "busy": (getattr(disk_after, "busy_time", 0) - getattr(disk, "busy_time", 0)) / 1000,
        }
    other = max(machine - process - postgres - moto, 0.0)
    result["cpu"] = {"process": process, "postgres": postgres, "s3": moto, "other": other, "steal": steal_after - steal}
    result["load"] = (load, os.getloadavg()[0])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--dsn", help="an empty database to use (default: a private embedded server)")
    parser.add_argument("--workdir", help="where the server, the archive and the baseline files go")
    parser.add_argument(
        "--default-allocators", action="store_true", help="leave both processes' allocators at their defaults"
    )
    parser.add_argument("--s3", action="store_true", help="write the export's archive to a local S3 server (moto)")
    parser.add_argument(
        "--pairs", type=int, default=1, help="measure baseline then export this many times, alternating; median ratio"
    )
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="flowrun-bench-export-"))
    work.mkdir(parents=True, exist_ok=True)
    server = None
    dsn = args.dsn
    if dsn is None:
        server = embedded.start(work / "pgdata", delete_on_exit=args.workdir is None)
        dsn = embedded.dsn(server)
    started = time.perf_counter()
    present = loaded_runs(dsn)
    if present == args.runs:
        requeue(dsn, work / "archive")
        print(f"reusing {args.runs:,} runs in {work}", file=sys.stderr)
    elif present == 0:
        load(dsn, args.runs)
        print(f"loaded {args.runs:,} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    else:
        raise SystemExit(f"the database holds {present:,} runs, not {args.runs:,}: use another --workdir")

    baseline_dir = work / "baseline"
    baseline_dir.mkdir(exist_ok=True)
    columns = {"flow_runs": RUN_COLUMNS, "flow_steps": STEP_COLUMNS, "flow_step_attempts": ATTEMPT_COLUMNS}
    postmaster = embedded.status(server.pgdata).pid if server is not None else None
    prelude = "" if args.default_allocators else _CONFIGURE
    # A fresh server (and bucket) per invocation: nothing of an earlier run's archive is on it.
    ratios = []
    with s3_server.serving() if args.s3 else contextlib.nullcontext() as s3:
        moto = s3.pid if s3 is not None else None
        # The host's speed drifts by tens of percent within minutes on a shared virtual machine: with
        # --pairs the two measurements alternate and the median of the pairs' ratios is the figure.
        for pair in range(1, args.pairs + 1):
            if pair > 1:
                requeue(dsn, work / "archive")
            base = _child(
                prelude + _BASELINE, dsn, str(baseline_dir), json.dumps(columns), postmaster=postmaster, s3=moto
            )
            name = f"export-{args.runs}" + (f"-{pair}" if pair > 1 else "")
            archive = s3.uri(name) if s3 is not None else str(work / "archive")
            # The export reads the endpoint and credentials from the environment, as the flowrun command does.
            env = {**os.environ, **s3.env()} if s3 is not None else None
            ours = _child(
                prelude + _EXPORT, dsn, archive, str(args.batch_size), postmaster=postmaster, s3=moto, env=env
            )
            fs = s3.filesystem() if s3 is not None else pafs.LocalFileSystem()
            ours["bytes"] = _stored_bytes(fs, archive.removeprefix("s3://"))
            ours["archive"] = f"{archive} (moto on 127.0.0.1)" if args.s3 else "local disk"
            if args.pairs > 1:
                print(f"\n### pair {pair} of {args.pairs}")
            report(args, base, ours, measured_postgres=server is not None)
            ratios.append(base["seconds"] / ours["seconds"])
    if args.pairs > 1:
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"\nratios of the {args.pairs} pairs: {shown}; median {statistics.median(ratios):.2f} (goal >= 0.6)")


def _stored_bytes(fs: pafs.FileSystem, path: str) -> int:
    """Bytes of every file under ``path``."""
    found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sum(info.size for info in found if info.type == pafs.FileType.File)


def report(args: argparse.Namespace, base: dict[str, Any], ours: dict[str, Any], *, measured_postgres: bool) -> None:
    """Print both measurements: throughput, then where the machine's CPU went."""
    ours_rows = ours["runs"] + ours["steps"] + ours["attempts"]
    assert ours["runs"] == args.runs and ours_rows == base["rows"], (ours, base)
    allocators = "library defaults" if args.default_allocators else "as the flowrun command sets them"
    print(f"\nexport of {args.runs:,} runs ({base['rows']:,} rows), batch size {args.batch_size:,}", end="")
    print(f", allocators {allocators}", end="")
    print(f", {os.cpu_count()} cores")
    print("| | seconds | runs/s | rows/s | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for name, result in (
        ("baseline: ADBC fetch_arrow_table + one Parquet file per table, on local disk", base),
        (f"sync.export_completed_runs, archive on {ours['archive']}", ours),
    ):
        seconds = result["seconds"]
        print(
            f"| {name} | {seconds:.1f} | {args.runs / seconds:,.0f} | {base['rows'] / seconds:,.0f}"
            f" | {result['rss'] / 2**20:,.0f} MiB |"
        )
    print(f"\nratio export / baseline (rows/s): {base['seconds'] / ours['seconds']:.2f} (goal >= 0.6)", end="")
    print(", the baseline writing to local disk" if args.s3 else "")
    print(f"archive: {ours['files']} Delta commits, {ours['bytes'] / 2**20:,.0f} MiB")
    postgres = "PostgreSQL" if measured_postgres else "PostgreSQL (not measured: --dsn)"
    moto = " S3 server (moto) |" if args.s3 else ""
    print(f"\n| CPU seconds during | its process | {postgres} |{moto} other processes | stolen | load average | disk |")
    print("|---|---:|---:|" + ("---:|" if args.s3 else "") + "---:|---:|---:|---|")
    for name, result in (("baseline", base), ("export", ours)):
        cpu, loads = result["cpu"], result["load"]
        disk = result.get("disk")
        io = f"{disk['written'] / 2**20:,.0f} MiB written, busy {disk['busy']:.1f} s" if disk else ""
        s3 = f" {cpu['s3']:.1f} |" if args.s3 else ""
        print(
            f"| {name} | {cpu['process']:.1f} | {cpu['postgres']:.1f} |{s3} {cpu['other']:.1f} | {cpu['steal']:.1f}"
            f" | {loads[0]:.1f} -> {loads[1]:.1f} | {io} |"
        )


if __name__ == "__main__":
    main()
