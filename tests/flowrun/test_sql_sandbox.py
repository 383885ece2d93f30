"""``sql()`` runs analysts' SQL in a sandbox: the views only, no files, no settings, durations as durations.

Every escape attempt is refused with a typed error before or while DuckDB runs it,
and afterwards the archive's bytes, the reader's answers and the file system are
as they were. Intervals come back as polars ``Duration``; intervals with months
and every other DuckDB error are ``InvalidQuery`` (one line, exit 2 in the CLI).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowrun import FlowRunStore
from flowrun.jsonable import jsonable
from olap import sandbox
from oltp.errors import FlowRunStoreError, InvalidQuery, QueryRefused
from tests.flowrun.conftest import Cli, Seeded

AVG_DURATION = "select flow_name, avg(completed_at - started_at) as took from runs group by 1 order by 1"

# (statement, error): {file} is a listed archive file, {archive} the archive root, {tmp} a scratch directory.
ESCAPES = [
    ("COPY runs TO '{file}' (FORMAT parquet)", QueryRefused),
    # DuckDB alone would let this one overwrite a file it may read: the statement check refuses it.
    ("COPY runs TO '{file}' (FORMAT parquet, USE_TMP_FILE false)", QueryRefused),
    ("COPY (SELECT 1 AS x) TO '{tmp}/out.csv'", QueryRefused),
    ("EXPORT DATABASE '{tmp}/export'", QueryRefused),
    ("SELECT * FROM read_csv('/etc/passwd')", QueryRefused),
    ("SELECT * FROM read_text('/etc/hostname')", QueryRefused),
    ("SELECT * FROM '/etc/passwd'", InvalidQuery),  # no replacement scans: not even a lookup
    ("SELECT * FROM read_parquet('{archive}/*/*/*.parquet')", QueryRefused),
    ("SELECT * FROM read_parquet('{tmp}/../elsewhere.parquet')", QueryRefused),
    ("SELECT * FROM glob('{archive}/**')", QueryRefused),
    ("SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')", QueryRefused),
    ("SELECT * FROM duckdb_secrets()", QueryRefused),
    ("SELECT 1; COPY (SELECT 1 AS x) TO '{tmp}/out.csv'", QueryRefused),
    ("WITH x AS (SELECT 1) SELECT * FROM x; SELECT 2", QueryRefused),
    ("ATTACH '{tmp}/other.duckdb' AS other", QueryRefused),
    ("ATTACH ':memory:' AS other", QueryRefused),
    ("DETACH memory", QueryRefused),
    ("USE system", QueryRefused),
    ("INSTALL httpfs", QueryRefused),
    ("LOAD httpfs", QueryRefused),
    ("SET GLOBAL memory_limit = '1MB'", QueryRefused),
    ("SET memory_limit = '1MB'", QueryRefused),
    ("SET enable_external_access = true", QueryRefused),
    ("RESET memory_limit", QueryRefused),
    ("PRAGMA threads = 1", QueryRefused),
    ("CALL pragma_version()", QueryRefused),
    ("CHECKPOINT", QueryRefused),
    ("INSERT INTO search_index.docs VALUES ('x', 'phantom')", QueryRefused),
    ("INSERT INTO runs SELECT * FROM runs", QueryRefused),
    ("DELETE FROM runs", QueryRefused),
    ("UPDATE runs SET status = 'Succeeded'", QueryRefused),
    ("DROP VIEW runs", QueryRefused),
    ("CREATE TABLE scratch AS SELECT 1 AS x", QueryRefused),
    ("CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')", QueryRefused),
    ("BEGIN TRANSACTION", QueryRefused),
    ("VACUUM", QueryRefused),
    ("SELECT * FROM search_index.docs", InvalidQuery),
    ("SELECT getenv('HOME')", InvalidQuery),
    ("SELECT * FROM flow_runs", InvalidQuery),
]


def _archive_digest(archive: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(archive.rglob("*")) if p.is_file()}


def test_escape_attempts_are_refused_and_harmless(seeded: Seeded, store: FlowRunStore, tmp_path: Path) -> None:
    listed = sorted(seeded.archive.rglob("*.parquet"))
    assert listed, "the seeded store has archived runs"
    before = _archive_digest(seeded.archive)
    answers = (store.get_statistics(), store.get_runs_page(take=50), store.sql(AVG_DURATION))
    values = {"file": str(listed[0]), "archive": str(seeded.archive), "tmp": str(tmp_path)}
    refused = []
    for statement, error in ESCAPES:
        query = statement.format(**values)
        with pytest.raises(error) as info:
            store.sql(query)
        message = str(info.value)
        assert isinstance(info.value, ValueError) and "\n" not in message.strip(), query
        refused.append(query)
    assert len(refused) == len(ESCAPES)
    assert _archive_digest(seeded.archive) == before
    assert list(tmp_path.iterdir()) == []
    after = (store.get_statistics(), store.get_runs_page(take=50), store.sql(AVG_DURATION))
    assert after[:2] == answers[:2] and after[2].equals(answers[2])


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 1 AS x) TO '{tmp}/out.csv'",
        "SELECT * FROM read_parquet('{tmp}/other.parquet')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('{tmp}/*')",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET GLOBAL memory_limit = '1MB'",
        "SET allowed_paths = ['{tmp}/other.parquet']",
        "SET enable_external_access = true",
        "SET TimeZone = 'America/New_York'",
    ],
)
def test_the_database_itself_refuses_what_the_statement_check_would(tmp_path: Path, statement: str) -> None:
    # A second line of defence: the sandbox's database refuses these even if a statement got past the check.
    readable, other = tmp_path / "readable.parquet", tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), readable)
    pq.write_table(pa.table({"x": [3]}), other)
    con = sandbox.connect([str(readable)])
    try:
        with pytest.raises(duckdb.Error):
            con.execute(statement.format(tmp=tmp_path))
        assert con.execute(f"SELECT sum(x) FROM read_parquet('{readable}')").fetchall() == [(3,)]
        settings = dict(con.execute("SELECT name, value FROM duckdb_settings()").fetchall())
    finally:
        con.close()
    assert (settings["enable_external_access"], settings["lock_configuration"]) == ("false", "true")
    assert settings["TimeZone"] == "UTC"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.parquet", "readable.parquet"]


def test_read_only_queries_of_every_shape_run(store: FlowRunStore) -> None:
    runs = store.runs().height
    assert store.sql("FROM runs SELECT count(*) AS n")["n"].item() == runs
    assert store.sql("WITH r AS (SELECT * FROM runs) SELECT count(*) AS n FROM r;")["n"].item() == runs
    pivot = store.sql("PIVOT (SELECT flow_name, status FROM runs) ON status USING count(*) GROUP BY flow_name")
    assert pivot.height == store.runs()["flow_name"].n_unique()
    assert "column_name" in store.sql("DESCRIBE runs").columns
    assert store.sql("EXPLAIN SELECT * FROM steps").height >= 1


def test_durations_come_back_as_polars_durations(store: FlowRunStore) -> None:
    got = store.sql(AVG_DURATION)
    assert got.schema["took"] == pl.Duration("us")
    # Exactly the interval DuckDB computed, to the microsecond.
    exact = store.sql(f"SELECT flow_name, epoch_us(took) AS us FROM ({AVG_DURATION}) ORDER BY 1")
    assert [None if t is None else t // timedelta(microseconds=1) for t in got["took"]] == exact["us"].to_list()
    # And the mean polars takes of the same runs (DuckDB averages intervals in floating point).
    expected = (
        store.runs()
        .group_by("flow_name")
        .agg((pl.col("completed_at") - pl.col("started_at")).mean().alias("took"))
        .sort("flow_name")
    )
    assert got["flow_name"].to_list() == expected["flow_name"].to_list()
    for ours, theirs in zip(got["took"].to_list(), expected["took"].to_list(), strict=True):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            assert abs(ours - theirs) <= timedelta(milliseconds=1)
    assert any(took is not None and took > timedelta(0) for took in got["took"].to_list())


def test_interval_shapes(store: FlowRunStore) -> None:
    got = store.sql(
        "SELECT INTERVAL 36 HOUR AS h, INTERVAL 2 DAY + INTERVAL 1 MICROSECOND AS d, NULL::INTERVAL AS n,"
        " -INTERVAL 90 SECOND AS neg, [INTERVAL 1 SECOND, NULL] AS l, {'x': INTERVAL 3 MINUTE} AS s"
    )
    assert got.schema["l"] == pl.List(pl.Duration("us"))
    assert got.schema["s"] == pl.Struct({"x": pl.Duration("us")})
    assert got.row(0) == (
        timedelta(hours=36),
        timedelta(days=2, microseconds=1),
        None,
        timedelta(seconds=-90),
        [timedelta(seconds=1), None],
        {"x": timedelta(minutes=3)},
    )
    steps = store.sql("SELECT run_id, list(completed_at - started_at) AS took FROM steps GROUP BY 1")
    assert steps.schema["took"] == pl.List(pl.Duration("us")) and steps.height > 0


@pytest.mark.parametrize(
    "query",
    [
        "SELECT INTERVAL 1 MONTH AS m",
        "SELECT age(TIMESTAMP '2026-03-01', TIMESTAMP '2025-01-01') AS a",
        "SELECT [INTERVAL 1 YEAR] AS l",
        "SELECT map([1], [INTERVAL 1 DAY]) AS m",
        "SELECT CAST('x' AS INTEGER)",
        "SELECT error('boom')",
        "SELECT 2147483647::INTEGER + 1",
        "SELEC 1",
    ],
)
def test_other_errors_are_invalid_query(store: FlowRunStore, query: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        store.sql(query)
    assert not isinstance(info.value, QueryRefused)
    assert isinstance(info.value, FlowRunStoreError) and isinstance(info.value, ValueError)


def test_the_cli_prints_durations_and_refuses_in_one_line(seeded_cli: Cli, store: FlowRunStore) -> None:
    query = "select flow_name, avg(completed_at - started_at) from runs group by 1 order by 1"
    table, as_json = seeded_cli.run_many(["sql", query], ["sql", query, "--json"])
    refused, failed = seeded_cli.run_many(
        ["sql", "COPY runs TO '/tmp/flowrun-sandbox-escape.csv'"], ["sql", "SELECT INTERVAL 1 MONTH AS m"], code=2
    )
    assert "flow_name" in table.stdout
    assert json.loads(as_json.stdout) == jsonable(store.sql(query).to_dicts())
    for done in (refused, failed):
        assert done.stdout == ""
        assert done.stderr.startswith("error:") and len(done.stderr.strip().splitlines()) == 1
    assert not Path("/tmp/flowrun-sandbox-escape.csv").exists()
