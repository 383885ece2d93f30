"""Reporting speed of ``olap.RunAnalytics`` against PostgreSQL-only ways, on the same data, in one run.

The dataset (``bench/olap_data.py``): an archive of ``--runs`` runs (50 flows, 5 steps
per run, 90 days) plus ``--runs / 100`` live runs (at least 1,000) in the store's tables,
the completed ones also archived. Every figure is timed warm (median of ``--repeat``
runs after one warm-up) and set against baselines measured here, on this data:

* floor: the bare DuckDB query over the archive's Parquet files alone;
* PostgreSQL: plain SQL (``percentile_cont``, ``ILIKE`` without a trigram index) over one
  ``baseline.flow_runs`` table holding all runs once, with sensible indexes;
* seed: the PostgreSQL store's own way, every run of the window fetched and aggregated
  in Python (timed once at scale: it is slow).

    python bench/olap.py --runs 100000          # smoke, a minute
    python bench/olap.py --runs 10000000        # the issue's scale: ~15 min to build, kept for reruns
    python bench/olap.py --runs 1000000 --s3    # the same archive read from an S3 server (moto) on 127.0.0.1
    python bench/olap.py --only search --cold   # only the search figures, the fresh process also on a cold cache

``--cold`` (root only) empties the page cache before one more fresh process's search:
what a reader meets after a reboot or after other work pushed the archive out of memory.
It empties the cache of the whole machine (PostgreSQL's files too): run it on a quiet one.

The data (embedded PostgreSQL + archive) lives in ``--data`` (default
``/work/bench-data/olap-<runs>``) and is reused when it already holds the same dataset.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg

# This script's directory comes first on sys.path, where "olap" would name this very file:
# drop it, so "olap" is the package, and load the dataset module by its path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
# The repository root, for the S3 server the tests use (tests/fixtures/s3_server.py).
sys.path.append(str(_HERE.parent))
_spec = importlib.util.spec_from_file_location("olap_bench_data", _HERE / "olap_data.py")
assert _spec is not None and _spec.loader is not None
olap_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(olap_data)

import pyarrow.fs as pafs  # noqa: E402

from flowrun import embedded  # noqa: E402
from olap import RunAnalytics  # noqa: E402
from oltp import migrate  # noqa: E402
from sync.archive_identity import relocate  # noqa: E402
from tests.fixtures import s3_server  # noqa: E402

END = olap_data.END
DAYS = 90
SEARCH = "from service-17"  # in 1/40 of failed runs' error messages (services are numbered 0-39)
SECTIONS = ("timeseries", "search", "statistics", "page")


# A new process: import, open a reader, one search. Nothing is built or warmed before it.
_FRESH_SEARCH = """
import json, sys, time
began = time.perf_counter()
from olap import RunAnalytics
reader = RunAnalytics(sys.argv[1], sys.argv[2])
opened = time.perf_counter()
page = reader.get_runs_page(search=sys.argv[3], take=50)
done = time.perf_counter()
print(json.dumps({"first_call": done - opened, "with_import": done - began, "total": page.total_count}))
"""


def fresh_search(dsn: str, archive_uri: str, *, cold: bool = False) -> dict[str, Any]:
    """The first search of a new process; ``cold`` empties the page cache first (root only)."""
    if cold:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_SEARCH, dsn, archive_uri, SEARCH], check=True, capture_output=True, text=True
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls after one warm-up, and the last answer."""
    result = fn()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples), result


def once(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of one call (for baselines too slow to repeat)."""
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def prepare(data: Path, runs: int, live: int) -> tuple[Any, str, Path]:
    """Start the benchmark's server and build the dataset unless ``data`` already holds it."""
    marker = data / "dataset.json"
    wanted = {"runs": runs, "live": live, "days": DAYS, "version": 4}
    fresh = not marker.exists() or json.loads(marker.read_text()) != wanted
    if fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    server = embedded.start(data / "pgdata")
    admin = embedded.dsn(server)
    dsn = embedded.dsn(server, "bench")
    archive = data / "archive"
    if not fresh:
        _index(archive)  # a dataset built before search indexes gets them (once)
        return server, dsn, archive
    with psycopg.connect(admin, autocommit=True) as conn:
        for setting, value in (
            ("shared_buffers", "'4GB'"),
            ("work_mem", "'256MB'"),
            ("maintenance_work_mem", "'1GB'"),
            ("effective_cache_size", "'16GB'"),
            ("max_parallel_workers_per_gather", "2"),
            ("max_wal_size", "'8GB'"),
            ("fsync", "off"),
            ("synchronous_commit", "off"),
        ):
            conn.execute(f"ALTER SYSTEM SET {setting} = {value}")
        conn.execute("DROP DATABASE IF EXISTS bench")
        conn.execute("CREATE DATABASE bench")
    embedded.restart(server)
    migrate.upgrade(dsn)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # Bounded, spilling to the data dir: the build must not crowd out the server it feeds.
    con.execute("SET memory_limit = '8GB'")
    con.execute(f"SET temp_directory = '{data / 'duckdb-tmp'}'")
    began = time.perf_counter()
    olap_data.write_archive(con, archive, runs, DAYS)
    print(f"archive: {runs:,} runs written in {time.perf_counter() - began:.0f} s", flush=True)
    began = time.perf_counter()
    olap_data.build_live(con, archive, live)
    olap_data.load_live(dsn, con, archive)
    print(f"live: {live:,} runs loaded in {time.perf_counter() - began:.0f} s", flush=True)
    seconds = olap_data.build_baseline(dsn, con, archive)
    print(f"baseline: one PostgreSQL table of all runs built in {seconds:.0f} s", flush=True)
    _index(archive)
    marker.write_text(json.dumps(wanted))
    return server, dsn, archive


def _index(archive: Path) -> None:
    files, runs, seconds = olap_data.write_search_indexes(archive)
    if files:
        print(f"search indexes: {files} files, {runs:,} runs indexed in {seconds:.1f} s", flush=True)


# -- baselines ------------------------------------------------------------------------------------

_FLOOR_TS = """
SELECT (epoch_us(started_at) - $since_us) // $width_us AS bucket, count(*),
       count(*) FILTER (WHERE status = 'Succeeded'), count(*) FILTER (WHERE status = 'Failed'),
       count(*) FILTER (WHERE status = 'Cancelled'), count(*) FILTER (WHERE status = 'TimedOut'),
       count(*) FILTER (WHERE status = 'Skipped'), count(*) FILTER (WHERE status = 'Running'),
       quantile_cont((epoch_us(completed_at) - epoch_us(started_at)) / 1000.0, [0.5, 0.95, 0.99])
  FROM read_parquet('{archive}/runs/*/*.parquet', hive_partitioning = false)
 WHERE started_at >= $since AND started_at < $until
 GROUP BY bucket
"""

_PG_TS = """
SELECT date_trunc('hour', started_at) AS bucket, count(*),
       count(*) FILTER (WHERE status = 'Succeeded'), count(*) FILTER (WHERE status = 'Failed'),
       count(*) FILTER (WHERE status = 'Cancelled'), count(*) FILTER (WHERE status = 'TimedOut'),
       count(*) FILTER (WHERE status = 'Skipped'), count(*) FILTER (WHERE status = 'Running'),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP
           (ORDER BY extract(epoch FROM completed_at - started_at) * 1000)
  FROM baseline.flow_runs
 WHERE started_at >= %(since)s AND started_at < %(until)s
 GROUP BY bucket ORDER BY bucket
"""

_SEED_FETCH = (
    "SELECT started_at, status, completed_at FROM baseline.flow_runs WHERE started_at >= %s AND started_at < %s"
)

_PG_SEARCH_WHERE = """
(r.id::text ILIKE %(p)s OR r.flow_name ILIKE %(p)s OR r.trigger_key ILIKE %(p)s OR r.status ILIKE %(p)s
 OR r.background_job_id ILIKE %(p)s
 OR EXISTS (SELECT 1 FROM baseline.flow_step_attempts a WHERE a.run_id = r.id
            AND (a.step_key ILIKE %(p)s OR a.error_message ILIKE %(p)s OR a.output_json ILIKE %(p)s)))
"""

_PG_STATISTICS = """
SELECT (SELECT count(DISTINCT flow_id) FROM baseline.flow_runs),
       (SELECT count(*) FROM baseline.flow_runs WHERE status = 'Running'),
       (SELECT count(*) FROM baseline.flow_runs WHERE status = 'Succeeded'
           AND completed_at >= %(day)s AND completed_at < %(day)s + interval '1 day'),
       (SELECT count(*) FROM baseline.flow_runs WHERE status = 'Failed'
           AND completed_at >= %(day)s AND completed_at < %(day)s + interval '1 day')
"""


def seed_timeseries(conn: psycopg.Connection[Any], since: Any, until: Any) -> int:
    """The PostgreSQL store's way: every run of the window into Python, bucketed and sorted there."""
    buckets: dict[Any, list[float]] = {}
    counts: dict[Any, dict[str, int]] = {}
    with conn.transaction(), conn.cursor(name="seed") as cur:
        cur.itersize = 50_000
        cur.execute(_SEED_FETCH, (since, until))
        for started, status, completed in cur:
            b = started.replace(minute=0, second=0, microsecond=0)
            c = counts.setdefault(b, {})
            c[status] = c.get(status, 0) + 1
            if completed is not None:
                buckets.setdefault(b, []).append((completed - started) / timedelta(milliseconds=1))
    for values in buckets.values():
        values.sort()
        for q in (0.5, 0.95, 0.99):
            pos = (len(values) - 1) * q
            lo, hi = math.floor(pos), math.ceil(pos)
            values[lo] + (pos - lo) * (values[hi] - values[lo])
    return len(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000_000, help="archived runs")
    parser.add_argument("--live", type=int, default=None, help="live runs (default runs/100, at least 1,000)")
    parser.add_argument("--data", type=Path, default=None, help="where the server and archive live")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed-repeat", type=int, default=1, help="repeats of the slow PostgreSQL baselines")
    parser.add_argument("--s3", action="store_true", help="read the archive from a local S3 server (moto)")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="measure only these parts (repeatable)")
    parser.add_argument("--cold", action="store_true", help="also a fresh search on an emptied page cache (root)")
    args = parser.parse_args()
    live = args.live if args.live is not None else max(1_000, args.runs // 100)
    data = args.data or Path(f"/work/bench-data/olap-{args.runs}")
    server, dsn, archive = prepare(data, args.runs, live)
    del server  # kept alive by the module that started it; stopped at exit
    if not args.s3:
        measure(args, dsn, archive, str(archive), live)
        return
    # The same table copied to a real S3-compatible server on 127.0.0.1 and recorded there with
    # the documented move; moved back afterwards so the local dataset stays reusable.
    with s3_server.serving() as s3:
        os.environ.update(s3.env())
        # Readers keep local copies of the remote files (olap/file_cache.py): here, beside the dataset.
        os.environ["FLOWRUN_ARCHIVE_CACHE"] = str(data / "s3-cache")
        target = s3.uri(f"olap-{args.runs}")
        began = time.perf_counter()
        pafs.copy_files(
            str(archive),
            target.removeprefix("s3://"),
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=s3.filesystem(),
        )
        print(f"archive copied to {target} in {time.perf_counter() - began:.0f} s", flush=True)
        relocate(dsn, target)
        try:
            measure(args, dsn, archive, target, live)
        finally:
            relocate(dsn, str(archive))


def measure(args: argparse.Namespace, dsn: str, archive: Path, archive_uri: str, live: int) -> None:
    """Time every query on the reader of ``archive_uri``; baselines read the local ``archive``."""
    reader = RunAnalytics(dsn, archive_uri, clock=lambda: END - timedelta(hours=2))
    pg = psycopg.connect(dsn, autocommit=True)
    pg.execute("SET TIME ZONE 'UTC'")
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    rows: Rows = []

    def slow(fn: Callable[[], Any]) -> float:
        return min(once(fn)[0] for _ in range(args.seed_repeat))

    def pg_all(query: str, params: Any) -> list[Any]:
        return pg.execute(query, params).fetchall()

    def floor(since: Any, until_: Any) -> list[Any]:
        params = {
            "since": since,
            "until": until_,
            "since_us": int(since.timestamp() * 1_000_000),
            "width_us": 3_600_000_000,
        }
        return duck.execute(_FLOOR_TS.format(archive=archive), params).fetchall()

    only = set(args.only or SECTIONS)
    if "timeseries" in only:
        timeseries(args, reader, rows, slow, pg_all, floor, pg)
    if "search" in only:
        search(args, reader, rows, pg_all, dsn, archive_uri)
    if "statistics" in only or "page" in only:
        reports(args, reader, rows, pg_all, only)

    print()
    where = "on S3 (moto, 127.0.0.1)" if args.s3 else "local"
    title = f"query ({args.runs:,} archived {where} + {live:,} live runs)"
    print(f"| {title} | ours s | baseline | baseline s | baseline / ours | target |")
    print("|---|---:|---|---:|---:|---|")
    for name, ours, base, base_s, target in rows:
        ratio = base_s / ours if ours else float("inf")
        print(f"| {name} | {ours:.3f} | {base} | {base_s:.3f} | {ratio:.2f}x | {target} |")
    reader.close()
    pg.close()


Rows = list[tuple[str, float, str, float, str]]


def timeseries(
    args: argparse.Namespace,
    reader: Any,
    rows: Rows,
    slow: Callable[[Callable[[], Any]], float],
    pg_all: Callable[[str, Any], list[Any]],
    floor: Callable[[Any, Any], list[Any]],
    pg: Any,
) -> None:
    """1. the 90-day hourly timeseries, 2. a 24-hour window."""
    since90, until = END - timedelta(days=DAYS), END
    since24 = END - timedelta(days=3)
    until24 = since24 + timedelta(days=1)
    t_ours, buckets = timed(lambda: reader.get_run_timeseries("hour", since90, until), args.repeat)
    t_floor, _ = timed(lambda: floor(since90, until), args.repeat)
    t_pg = min(timed(lambda: pg_all(_PG_TS, {"since": since90, "until": until}), 1)[0] for _ in range(1))
    t_seed = slow(lambda: seed_timeseries(pg, since90, until))
    runs_in_window = sum(b.total for b in buckets)
    print(f"90-day hourly timeseries over {runs_in_window:,} runs in {len(buckets)} buckets", flush=True)
    rows.append(
        ("timeseries 90 d hourly", t_ours, "floor (DuckDB, files only)", t_floor, "ours <= 1.5x floor (>= 0.67x)")
    )
    rows.append(("", t_ours, "PostgreSQL percentile_cont", t_pg, ">= 6x faster"))
    rows.append(("", t_ours, "seed (fetch + Python)", t_seed, ""))

    # 2. a 24-hour window
    t_ours, _ = timed(lambda: reader.get_run_timeseries("hour", since24, until24), args.repeat)
    t_floor, _ = timed(lambda: floor(since24, until24), args.repeat)
    t_pg, _ = timed(lambda: pg_all(_PG_TS, {"since": since24, "until": until24}), args.repeat)
    t_seed, _ = timed(lambda: seed_timeseries(pg, since24, until24), max(1, args.repeat // 2))
    rows.append(("timeseries 24 h hourly", t_ours, "floor (DuckDB, files only)", t_floor, "< 0.2 s"))
    rows.append(("", t_ours, "PostgreSQL percentile_cont", t_pg, ""))
    rows.append(("", t_ours, "seed (fetch + Python)", t_seed, ""))


def search(
    args: argparse.Namespace,
    reader: Any,
    rows: Rows,
    pg_all: Callable[[str, Any], list[Any]],
    dsn: str,
    archive_uri: str,
) -> None:
    """3. search: a page of 50 and the total count; first the first call of a brand-new process."""
    fresh = fresh_search(dsn, archive_uri)
    cold = fresh_search(dsn, archive_uri, cold=True) if args.cold else None
    warm = fresh_search(dsn, archive_uri)  # right after another: the archive's pages are in memory
    t_ours, page = timed(lambda: reader.get_runs_page(search=SEARCH, take=50), args.repeat)
    pattern = {"p": f"%{SEARCH}%"}

    def pg_search() -> tuple[list[Any], int]:
        found = pg_all(
            f"SELECT r.* FROM baseline.flow_runs r WHERE {_PG_SEARCH_WHERE} ORDER BY started_at DESC, id DESC LIMIT 50",
            pattern,
        )
        total = pg_all(f"SELECT count(*) FROM baseline.flow_runs r WHERE {_PG_SEARCH_WHERE}", pattern)[0][0]
        return found, total

    t_pg, (_, pg_total) = once(pg_search)
    print(f"search {SEARCH!r}: {page.total_count:,} runs match (PostgreSQL counts {pg_total:,})", flush=True)
    repeated = [once(lambda: reader.get_runs_page(search=SEARCH, take=50))[0] for _ in range(8)]
    rows.append(("search page 50 + count", t_ours, "PostgreSQL ILIKE, no index", t_pg, "< 1 s, >= 5x faster"))
    assert fresh["total"] == page.total_count
    rows.append(
        ("search, first call of a fresh process", fresh["first_call"], "PostgreSQL ILIKE, no index", t_pg, "< 1 s")
    )
    rows.append(("", fresh["with_import"], "(the same, imports included)", t_pg, ""))
    if cold is not None:
        assert cold["total"] == page.total_count
        rows.append(("fresh process, page cache emptied first", cold["first_call"], "", t_pg, "< 1 s"))
        rows.append(("", cold["with_import"], "(the same, imports included)", t_pg, ""))
    assert warm["total"] == page.total_count
    rows.append(("fresh process, archive in the page cache", warm["first_call"], "", t_pg, "< 1 s"))
    rows.append(("", warm["with_import"], "(the same, imports included)", t_pg, ""))
    rows.append(("search, slowest of 8 repeats", max(repeated), "PostgreSQL ILIKE, no index", t_pg, "no plan flip"))


def reports(
    args: argparse.Namespace, reader: Any, rows: Rows, pg_all: Callable[[str, Any], list[Any]], only: set[str]
) -> None:
    """4. statistics, 5. the first runs page with its total."""
    if "statistics" not in only:
        _page(args, reader, rows, pg_all)
        return
    t_ours, stats = timed(reader.get_statistics, args.repeat)
    day = END - timedelta(days=1)
    t_pg, _ = timed(lambda: pg_all(_PG_STATISTICS, {"day": day}), max(1, args.repeat // 2))
    print(f"statistics: {stats}", flush=True)
    rows.append(("get_statistics", t_ours, "PostgreSQL, one table", t_pg, "< 0.3 s"))
    if "page" in only:
        _page(args, reader, rows, pg_all)


def _page(args: argparse.Namespace, reader: Any, rows: Rows, pg_all: Callable[[str, Any], list[Any]]) -> None:
    t_ours, first = timed(lambda: reader.get_runs_page(take=50), args.repeat)

    def pg_page() -> Any:
        pg_all("SELECT * FROM baseline.flow_runs ORDER BY started_at DESC, id DESC LIMIT 50", None)
        return pg_all("SELECT count(*) FROM baseline.flow_runs", None)

    t_pg, _ = timed(pg_page, args.repeat)
    rows.append(("get_runs_page page 1 + count", t_ours, "PostgreSQL, one table", t_pg, "< 0.3 s"))
    t_ours, _ = timed(lambda: reader.get_runs(skip=0, take=50), args.repeat)
    t_pg, _ = timed(
        lambda: pg_all("SELECT * FROM baseline.flow_runs ORDER BY started_at DESC, id DESC LIMIT 50", None),
        args.repeat,
    )
    rows.append(("get_runs page 1", t_ours, "PostgreSQL, one table", t_pg, ""))
    print(f"runs: {first.total_count:,} in all", flush=True)


if __name__ == "__main__":
    main()
