"""One Delta table with nested attempts, or a flat table per kind: write and read costs, measured.

200,000 runs with 5 attempts each, written in 10 batches (one append per batch and
table), then an hourly timeseries with p95 (run columns only) and step error
counts (every attempt) read by DuckDB over the active files; best of 7. The
result decides the archive's layout (docs/archive.md, "One table").

    python bench/archive_layout.py [--runs 200000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, WriterProperties, write_deltalake

BATCHES = 10
WRITER = WriterProperties(compression="ZSTD")

_RUNS = """
CREATE TABLE runs AS
SELECT uuid()::VARCHAR AS id, 'flow ' || (i % 20) AS flow_name, ['Succeeded', 'Failed'][1 + (i % 2)] AS status,
       TIMESTAMPTZ '2026-01-01' + to_seconds(i * 30) AS started_at,
       TIMESTAMPTZ '2026-01-01' + to_seconds(i * 30 + 60 + (i % 97)) AS completed_at,
       CAST(TIMESTAMPTZ '2026-01-01' + to_seconds(i * 30) AS DATE) AS started_date
  FROM range($n) t(i)
"""
_ATTEMPTS = """
CREATE TABLE attempts AS
SELECT r.id AS run_id, r.started_date, r.started_at AS run_started_at, 'step-' || k AS step_key, 1 AS attempt,
       'Failed' AS status, CASE WHEN k = 2 THEN 'error ' || r.id END AS error_message,
       '{"rows": ' || k || ', "msg": "ok ok ok"}' AS output_json
  FROM runs r, range(5) s(k)
 ORDER BY r.started_at
"""
_NESTED = """
SELECT r.*, a.attempts
  FROM runs r JOIN (
        SELECT run_id, list(struct_pack(step_key := step_key, attempt := attempt, status := status,
                                        error_message := error_message, output_json := output_json)) AS attempts
          FROM attempts GROUP BY run_id) a ON a.run_id = r.id
 ORDER BY started_at
"""
_TIMESERIES = (
    "SELECT date_trunc('hour', started_at), count(*), quantile_cont(epoch(completed_at - started_at), 0.95)"
    " FROM read_parquet({files}) GROUP BY 1"
)
_ERRORS_NESTED = (
    "SELECT a.step_key, count(*) FROM (SELECT unnest(attempts) AS a FROM read_parquet({files}))"
    " WHERE a.error_message IS NOT NULL GROUP BY 1"
)
_ERRORS_FLAT = "SELECT step_key, count(*) FROM read_parquet({files}) WHERE error_message IS NOT NULL GROUP BY 1"


def _write(path: Path, table: pa.Table, per_batch: int) -> None:
    for start in range(0, table.num_rows, per_batch):
        write_deltalake(
            str(path),
            table.slice(start, per_batch),
            mode="append",
            partition_by=["started_date"],
            writer_properties=WRITER,
        )


def _best(query: str, files: list[str], repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        relation = duckdb.sql(query.format(files=files))
        assert relation is not None
        relation.fetchall()
        best = min(best, time.perf_counter() - started)
    return best


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="flowrun-layout-"))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(_RUNS, {"n": args.runs})
    con.execute(_ATTEMPTS)
    runs, attempts = con.sql("SELECT * FROM runs").to_arrow_table(), con.sql("SELECT * FROM attempts").to_arrow_table()
    nested = con.sql(_NESTED).to_arrow_table()
    per_batch = args.runs // BATCHES
    for sub in ("nested", "flat"):
        shutil.rmtree(work / sub, ignore_errors=True)

    started = time.perf_counter()
    _write(work / "nested", nested, per_batch)
    nested_write = time.perf_counter() - started
    started = time.perf_counter()
    _write(work / "flat" / "runs", runs, per_batch)
    _write(work / "flat" / "attempts", attempts, per_batch * 5)
    flat_write = time.perf_counter() - started

    nested_files = DeltaTable(str(work / "nested")).file_uris()
    flat_runs = DeltaTable(str(work / "flat" / "runs")).file_uris()
    flat_attempts = DeltaTable(str(work / "flat" / "attempts")).file_uris()
    print(
        f"write {args.runs:,} runs x 5 attempts in {BATCHES} batches:"
        f" nested {nested_write:.2f} s, flat {flat_write:.2f} s"
    )
    print(f"bytes: nested {_bytes(work / 'nested') / 1e6:.1f} MB, flat {_bytes(work / 'flat') / 1e6:.1f} MB")
    print(
        f"hourly timeseries + p95: nested {_best(_TIMESERIES, nested_files):.3f} s,"
        f" flat {_best(_TIMESERIES, flat_runs):.3f} s"
    )
    print(
        f"step error counts: nested {_best(_ERRORS_NESTED, nested_files):.3f} s,"
        f" flat {_best(_ERRORS_FLAT, flat_attempts):.3f} s"
    )


if __name__ == "__main__":
    main()
