"""The reporting benchmark's dataset: an archive written by DuckDB, live runs, and a one-table baseline.

* archive: ``runs`` runs over ``days`` days before the last day, 50 flows, 5 steps (one
  attempt each) per run, built by DuckDB in the layout of docs/archive.md (one row per
  run, steps and attempts nested, search document) and appended to the Delta table a
  day per commit by ``deltalake`` with the exporter's writer settings; its version is
  recorded in ``archive_state`` as an export would record it; each data file gets its
  search index (``sync.search_index``), as the export writes them;
* live: ``live`` runs of the last day in the store's tables (binary-safe CSV COPY), a
  tenth still Running; the completed ones are also archived (exported, not yet pruned),
  as in a steady state, plus a few hundred runs played through the real ``RunStore``;
* baseline: schema ``baseline`` holding the same runs once each in one ``flow_runs``
  table and one ``flow_step_attempts`` table, with the indexes a PostgreSQL-only store
  would have (primary keys, start time, flow + start time, status, attempts by run).

Everything derives from a fixed seed, so two runs build the same data.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import psycopg
from deltalake import DeltaTable, write_deltalake
from psycopg import sql

from oltp.store import RunStore
from sync import search_index
from sync.archive_location import ArchiveLocation
from sync.archive_table import ArchiveTable
from sync.arrow_schemas import RUNS
from sync.data_files import WRITER

END = datetime(2026, 3, 1, tzinfo=UTC)
FLOWS = 50
STEPS = 5

_RUNS = """
CREATE OR REPLACE TABLE {table} AS
WITH r AS (
    SELECT i,
           TIMESTAMPTZ '{start}' + to_microseconds(CAST(hash(i, {salt}, 1) % {span_us} AS BIGINT)) AS started_at,
           hash(i, {salt}, 2) % 1000 AS roll,
           hash(i, {salt}, 3) % {flows} AS flow
      FROM range({n}) t(i)
)
SELECT uuid() AS id,
       md5('flow' || flow)::UUID AS flow_id,
       'flow-' || lpad(flow::VARCHAR, 2, '0') AS flow_name,
       CASE WHEN roll < 850 THEN 'Succeeded' WHEN roll < 930 THEN 'Failed' WHEN roll < 960 THEN 'Cancelled'
            WHEN roll < 980 THEN 'TimedOut' ELSE 'Skipped' END AS status,
       CASE i % 3 WHEN 0 THEN 'schedule' WHEN 1 THEN 'manual' ELSE 'webhook' END AS trigger_key,
       '{{"n": ' || i || '}}' AS trigger_data_json,
       'job-{salt}-' || i AS background_job_id,
       started_at,
       started_at + to_microseconds(
           CAST(1000 + (hash(i, {salt}, 4) % 1000) * (hash(i, {salt}, 5) % 1000) AS BIGINT) * 300) AS completed_at,
       CAST(NULL AS UUID) AS source_run_id,
       2::BIGINT AS revision,
       TIMESTAMPTZ '{end}' AS exported_at,
       i
  FROM r
 ORDER BY started_at
"""

_ATTEMPTS = """
CREATE OR REPLACE TABLE {table} AS
SELECT r.id AS run_id, 'step-' || s AS step_key, CASE WHEN s % 2 = 0 THEN 'http' ELSE 'task' END AS step_type,
       CASE WHEN r.status = 'Failed' AND s = {steps} THEN 'Failed' ELSE 'Succeeded' END AS status,
       '{{"step": ' || s || '}}' AS input_json,
       CASE WHEN r.status = 'Failed' AND s = {steps} THEN NULL
            ELSE '{{"rows": ' || (hash(r.i, s) % 100000) || '}}' END AS output_json,
       CASE WHEN r.status = 'Failed' AND s = {steps}
            THEN 'upstream error ' || (hash(r.i, 7) % 500) || ' from service-' || (hash(r.i, 8) % 40) END
           AS error_message,
       'job-' || r.i || '-' || s AS job_id,
       r.started_at + to_microseconds(CAST(s - 1 AS BIGINT) * 1000) AS started_at,
       r.started_at + to_microseconds(CAST(s AS BIGINT) * 1000) AS completed_at,
       1::INTEGER AS attempt,
       r.started_at AS run_started_at, r.revision, r.exported_at
  FROM {runs} r, range(1, {steps} + 1) t(s)
 WHERE r.status <> 'Running' OR s = 1
 ORDER BY r.started_at, r.id
"""

RUN_COLUMNS = (
    "id, flow_id, flow_name, status, trigger_key, trigger_data_json, background_job_id,"
    " started_at, completed_at, source_run_id, revision"
)
ATTEMPT_COLUMNS = (
    "run_id, step_key, attempt, step_type, status, input_json, output_json, error_message, job_id,"
    " started_at, completed_at"
)
# One archive row per run of a day, steps and attempts nested, search document built, as
# docs/archive.md describes (the benchmark's runs have one attempt per step).
_NESTED = """
SELECT CAST(r.id AS VARCHAR) AS id, CAST(r.flow_id AS VARCHAR) AS flow_id, r.flow_name, r.status, r.trigger_key,
       r.trigger_data_json, r.background_job_id, r.started_at, r.completed_at,
       CAST(r.source_run_id AS VARCHAR) AS source_run_id, r.revision, r.exported_at,
       lower(concat_ws(chr(31), CAST(r.id AS VARCHAR), r.flow_name, r.trigger_key, r.status,
                       coalesce(r.background_job_id, ''), coalesce(a.doc, ''))) AS search_doc,
       coalesce(a.steps, []) AS steps, coalesce(a.attempts, []) AS attempts,
       CAST(timezone('UTC', r.started_at) AS DATE) AS started_date
  FROM {runs} r LEFT JOIN (
        SELECT run_id,
               list(struct_pack(step_key := step_key, step_type := step_type, status := status,
                                input_json := input_json, output_json := output_json, error_message := error_message,
                                job_id := job_id, started_at := started_at, completed_at := completed_at,
                                attempt_count := 1::INTEGER) ORDER BY step_key) AS steps,
               list(struct_pack(step_key := step_key, attempt := attempt, step_type := step_type, status := status,
                                input_json := input_json, output_json := output_json, error_message := error_message,
                                job_id := job_id, started_at := started_at, completed_at := completed_at)
                    ORDER BY step_key, attempt) AS attempts,
               string_agg(concat_ws(chr(31), step_key, coalesce(error_message, ''), coalesce(output_json, '')),
                          chr(31) ORDER BY step_key, attempt) AS doc
          FROM {attempts} WHERE run_started_at >= $lo AND run_started_at < $hi GROUP BY run_id
  ) a ON a.run_id = r.id
 WHERE r.started_at >= $lo AND r.started_at < $hi {only_completed}
 ORDER BY r.started_at
"""


def _generate(con: duckdb.DuckDBPyConnection, prefix: str, n: int, start: datetime, days: int, salt: int) -> None:
    con.execute(
        _RUNS.format(
            table=f"{prefix}_runs",
            start=start.isoformat(),
            end=END.isoformat(),
            span_us=days * 86_400_000_000,
            flows=FLOWS,
            n=n,
            salt=salt,
        )
    )


def _write_day(con: duckdb.DuckDBPyConnection, archive: Path, prefix: str, day: datetime) -> None:
    """Append one day's runs to the Delta table (one commit, like an export batch)."""
    # Only completed live runs have been exported.
    only_completed = "AND r.status <> 'Running'" if prefix == "live" else ""
    query = _NESTED.format(runs=f"{prefix}_runs", attempts=f"{prefix}_attempts", only_completed=only_completed)
    relation = con.sql(query, params={"lo": day, "hi": day + timedelta(days=1)})
    assert relation is not None
    rows = relation.to_arrow_table().cast(RUNS)
    write_deltalake(str(archive / "runs"), rows, mode="append", partition_by=["started_date"], writer_properties=WRITER)


def write_archive(con: duckdb.DuckDBPyConnection, archive: Path, runs: int, days: int) -> None:
    """Write the archived runs to the Delta table, a commit per day; keeps them for the baseline."""
    start = END - timedelta(days=days + 1)
    _generate(con, "arch", runs, start, days, salt=1)
    con.execute(_ATTEMPTS.format(table="arch_attempts", runs="arch_runs", steps=STEPS))
    for d in range(days):
        _write_day(con, archive, "arch", start + timedelta(days=d))


def write_search_indexes(archive: Path) -> tuple[int, int, float]:
    """Write the search index of every data file that has none, as the export and compaction do.

    Returns (files indexed, runs in them, seconds).
    """
    location = ArchiveLocation.resolve(archive)
    missing = [f for f in ArchiveTable.open(location).files() if not search_index.has_index(location, f)]
    began = time.perf_counter()
    search_index.write_missing(location, missing)
    return len(missing), sum(f.rows for f in missing), time.perf_counter() - began


def build_live(con: duckdb.DuckDBPyConnection, archive: Path, live: int) -> None:
    """Generate the live runs in DuckDB and archive their completed ones."""
    start = END - timedelta(days=1)
    _generate(con, "live", live, start, 1, salt=2)
    con.execute("UPDATE live_runs SET status = 'Running', completed_at = NULL, revision = 1 WHERE i % 10 = 0")
    con.execute(_ATTEMPTS.format(table="live_attempts", runs="live_runs", steps=STEPS))
    con.execute(
        "UPDATE live_attempts SET status = 'Running', completed_at = NULL, output_json = NULL"
        " WHERE run_id IN (SELECT id FROM live_runs WHERE status = 'Running')"
    )
    _write_day(con, archive, "live", start)


def _copy_csv(
    conn: psycopg.Connection[object], con: duckdb.DuckDBPyConnection, query: str, table: sql.Composable, columns: str
) -> None:
    """Move a DuckDB query's rows into a PostgreSQL table through a CSV file the server reads."""
    fd, name = tempfile.mkstemp(suffix=".csv", dir=os.environ.get("BENCH_TMP", "/tmp"))
    os.close(fd)
    path = Path(name)
    try:
        con.execute(f"COPY ({query}) TO '{path}' (FORMAT csv, HEADER false)")
        path.chmod(0o644)
        conn.execute(
            sql.SQL("COPY {} ({}) FROM {} (FORMAT csv)").format(table, sql.SQL(columns), sql.Literal(str(path)))
        )
    finally:
        path.unlink(missing_ok=True)


def load_live(dsn: str, con: duckdb.DuckDBPyConnection, archive: Path, *, through_store: int = 200) -> None:
    """Load live runs into the store's tables and record the archive's table version in ``archive_state``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO flowrun, public")
        _copy_csv(conn, con, f"SELECT {RUN_COLUMNS} FROM live_runs", sql.Identifier("flow_runs"), RUN_COLUMNS)
        step_columns = (
            "run_id, step_key, step_type, status, input_json, output_json, error_message, job_id,"
            " started_at, completed_at, attempt_count"
        )
        _copy_csv(
            conn,
            con,
            "SELECT run_id, step_key, step_type, status, input_json, output_json, error_message, job_id,"
            " started_at, completed_at, 1 FROM live_attempts",
            sql.Identifier("flow_steps"),
            step_columns,
        )
        _copy_csv(
            conn,
            con,
            f"SELECT {ATTEMPT_COLUMNS} FROM live_attempts",
            sql.Identifier("flow_step_attempts"),
            ATTEMPT_COLUMNS,
        )
        conn.execute(
            "INSERT INTO archived_runs (run_id, revision, started_date, batch)"
            " SELECT id, revision, (started_at AT TIME ZONE 'UTC')::date, 1 FROM flow_runs WHERE status <> 'Running'"
        )
        table = DeltaTable(str(archive / "runs"))
        conn.execute(
            "INSERT INTO archive_state (uri, table_id, store_id, batch, version, updated_at)"
            " VALUES (%s, %s, 'bench', 0, %s, %s)",
            (str(archive.resolve()), table.metadata().id, table.version(), END),
        )
        conn.execute("VACUUM ANALYZE")
    now = [END - timedelta(minutes=through_store)]
    store = RunStore(dsn, clock=lambda: now[0], migrate_schema=False)
    try:
        for k in range(through_store):
            now[0] += timedelta(seconds=30)
            rid = uuid.uuid4()
            store.start_run(uuid.UUID(int=1), "flow-store", rid, "manual", f'{{"k": {k}}}', f"store-job-{k}")
            for s in range(1, STEPS + 1):
                store.record_step_start(rid, f"step-{s}", "task")
                now[0] += timedelta(milliseconds=200)
                store.record_step_complete(rid, f"step-{s}", "Succeeded", '{"ok": true}')
            store.complete_run(rid, "Succeeded")
    finally:
        store.close()


def build_baseline(dsn: str, con: duckdb.DuckDBPyConnection, archive: Path) -> float:
    """The same runs once each in one PostgreSQL table pair with sensible indexes; returns seconds."""
    began = time.perf_counter()
    archived = {"runs": "arch_runs", "attempts": "arch_attempts"}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS baseline CASCADE")
        conn.execute("CREATE SCHEMA baseline")
        conn.execute(
            "CREATE TABLE baseline.flow_runs (id uuid NOT NULL, flow_id uuid NOT NULL, flow_name text NOT NULL,"
            " status text NOT NULL, trigger_key text NOT NULL, trigger_data_json text, background_job_id text,"
            " started_at timestamptz NOT NULL, completed_at timestamptz, source_run_id uuid,"
            " revision bigint NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE baseline.flow_step_attempts (run_id uuid NOT NULL, step_key text NOT NULL,"
            " attempt int NOT NULL, step_type text NOT NULL, status text NOT NULL, input_json text,"
            " output_json text, error_message text, job_id text, started_at timestamptz NOT NULL,"
            " completed_at timestamptz)"
        )
        target_runs = sql.SQL("baseline.flow_runs")
        target_attempts = sql.SQL("baseline.flow_step_attempts")
        _copy_csv(conn, con, f"SELECT {RUN_COLUMNS} FROM {archived['runs']}", target_runs, RUN_COLUMNS)
        _copy_csv(
            conn,
            con,
            f"SELECT {ATTEMPT_COLUMNS} FROM {archived['attempts']}",
            target_attempts,
            ATTEMPT_COLUMNS,
        )
        conn.execute(f"INSERT INTO baseline.flow_runs SELECT {RUN_COLUMNS} FROM flowrun.flow_runs")
        conn.execute(
            f"INSERT INTO baseline.flow_step_attempts SELECT {ATTEMPT_COLUMNS} FROM flowrun.flow_step_attempts"
        )
        for statement in (
            "ALTER TABLE baseline.flow_runs ADD PRIMARY KEY (id)",
            "ALTER TABLE baseline.flow_step_attempts ADD PRIMARY KEY (run_id, step_key, attempt)",
            "CREATE INDEX ON baseline.flow_runs (started_at DESC, id DESC)",
            "CREATE INDEX ON baseline.flow_runs (flow_id, started_at DESC, id DESC)",
            "CREATE INDEX ON baseline.flow_runs (status)",
            "CREATE INDEX ON baseline.flow_runs (completed_at)",
            "CREATE INDEX ON baseline.flow_runs (source_run_id) WHERE source_run_id IS NOT NULL",
            "VACUUM ANALYZE baseline.flow_runs",
            "VACUUM ANALYZE baseline.flow_step_attempts",
        ):
            conn.execute(statement)
    return time.perf_counter() - began
