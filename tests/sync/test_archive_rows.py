"""The row builder gives exactly the rows of the SQL that states the archive's row semantics.

The reference below is DuckDB SQL: runs ordered by start time then id, ids cast to
text, the search document joined with ``concat_ws`` and lower-cased with DuckDB's
``lower`` (the function searches lower-case their terms with), steps and attempts
in step key (and attempt) order under their run. The builder does the same with
Arrow compute; over batches holding unicode that Arrow and DuckDB lower-case
differently, null fields, runs without steps, start-time ties and dates before
1970, its rows must equal the reference's, value for value and type for type.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from sync.archive_rows import RowBuilder
from sync.arrow_schemas import PARTITION, RUNS, TS

_REFERENCE = """
WITH ordered AS (
    SELECT r.*, row_number() OVER (ORDER BY r.started_at, r.id) AS ord FROM batch_runs r
), a AS (
    SELECT run_id,
           string_agg(concat_ws(chr(31), step_key, coalesce(error_message, ''), coalesce(output_json, '')),
                      chr(31) ORDER BY step_key, attempt) AS doc
      FROM batch_attempts GROUP BY run_id
), s AS (
    SELECT run_id, list({'step_key': step_key, 'step_type': step_type, 'status': status, 'input_json': input_json,
                         'output_json': output_json, 'error_message': error_message, 'job_id': job_id,
                         'started_at': started_at, 'completed_at': completed_at, 'attempt_count': attempt_count}
                        ORDER BY step_key) AS steps
      FROM batch_steps GROUP BY run_id
), t AS (
    SELECT run_id, list({'step_key': step_key, 'attempt': attempt, 'step_type': step_type, 'status': status,
                         'input_json': input_json, 'output_json': output_json, 'error_message': error_message,
                         'job_id': job_id, 'started_at': started_at, 'completed_at': completed_at}
                        ORDER BY step_key, attempt) AS attempts
      FROM batch_attempts GROUP BY run_id
)
SELECT CAST(r.id AS VARCHAR) AS id, CAST(r.flow_id AS VARCHAR) AS flow_id, r.flow_name, r.status, r.trigger_key,
       r.trigger_data_json, r.background_job_id, r.started_at, r.completed_at,
       CAST(r.source_run_id AS VARCHAR) AS source_run_id, r.revision, $exported_at AS exported_at,
       lower(concat_ws(chr(31), CAST(r.id AS VARCHAR), r.flow_name, r.trigger_key, r.status,
                       coalesce(r.background_job_id, ''), coalesce(a.doc, ''))) AS search_doc,
       coalesce(s.steps, []) AS steps, coalesce(t.attempts, []) AS attempts,
       CAST(timezone('UTC', r.started_at) AS DATE) AS started_date
  FROM ordered r LEFT JOIN a ON a.run_id = r.id LEFT JOIN s ON s.run_id = r.id LEFT JOIN t ON t.run_id = r.id
 ORDER BY r.ord
"""

# Letters DuckDB's and Arrow's lower-casing disagree on, others that change byte length, plain ASCII.
_WORDS = ["\ua7cb\u1c89", "\U00010d50x", "İstanbul", "STRAßE", "ΣΊΣΥΦΟΣ", "Ǆemal", "ÄRGER", "Timeout", "%_\\", "ok"]
_KEYS = ["a", "B", "Z", "ä", "extract", "Load", "load", "ñ"]
_T0 = datetime(1969, 12, 31, 23, 0, tzinfo=UTC)


def _batch(seed: int, runs: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    rng = random.Random(seed)
    run_rows, step_rows, attempt_rows = [], [], []
    for i in range(runs):
        rid = uuid.UUID(int=rng.getrandbits(128))
        start = _T0 + timedelta(minutes=rng.choice([0, 0, 30, 61, 60 * 24 * 400]) + i // 7)
        run_rows.append(
            {
                "id": rid.bytes,
                "flow_id": uuid.UUID(int=rng.getrandbits(128)).bytes,
                "flow_name": f"Flow {rng.choice(_WORDS)}",
                "status": rng.choice(["Succeeded", "Failed", "Cancelled"]),
                "trigger_key": rng.choice(["Manual", "schedule"]),
                "trigger_data_json": rng.choice([None, '{"K": "Ä"}']),
                "background_job_id": rng.choice([None, f"JOB-{i}"]),
                "started_at": start,
                "completed_at": rng.choice([None, start + timedelta(seconds=5)]),
                "source_run_id": rng.choice([None, uuid.UUID(int=rng.getrandbits(128)).bytes]),
                "revision": rng.randint(1, 9),
            }
        )
        for key in rng.sample(_KEYS, rng.choice([0, 1, 3, 5])):
            fields = {
                "run_id": rid.bytes,
                "step_key": key,
                "step_type": "http",
                "status": rng.choice(["Succeeded", "Failed"]),
                "input_json": rng.choice([None, "{}"]),
                "output_json": rng.choice([None, f'{{"Out": "{rng.choice(_WORDS)}"}}']),
                "error_message": rng.choice([None, f"Error {rng.choice(_WORDS)}"]),
                "job_id": rng.choice([None, "hf-1"]),
                "started_at": start,
                "completed_at": rng.choice([None, start + timedelta(seconds=1)]),
            }
            count = rng.randint(1, 3)
            step_rows.append({**fields, "attempt_count": count})
            attempt_rows += [{**fields, "attempt": n} for n in rng.sample(range(1, 12), count)]
    return _table(run_rows, _RUN_TYPES), _table(step_rows, _STEP_TYPES), _table(attempt_rows, _ATTEMPT_TYPES)


_RUN_TYPES = {
    "id": pa.uuid(),
    "flow_id": pa.uuid(),
    "flow_name": pa.string(),
    "status": pa.string(),
    "trigger_key": pa.string(),
    "trigger_data_json": pa.string(),
    "background_job_id": pa.string(),
    "started_at": TS,
    "completed_at": TS,
    "source_run_id": pa.uuid(),
    "revision": pa.int64(),
}
_CHILD_TYPES = {
    "run_id": pa.uuid(),
    "step_key": pa.string(),
    "step_type": pa.string(),
    "status": pa.string(),
    "input_json": pa.string(),
    "output_json": pa.string(),
    "error_message": pa.string(),
    "job_id": pa.string(),
    "started_at": TS,
    "completed_at": TS,
}
_STEP_TYPES = {**_CHILD_TYPES, "attempt_count": pa.int32()}
_ATTEMPT_TYPES = {**_CHILD_TYPES, "attempt": pa.int32()}


def _table(rows: Sequence[Mapping[str, object]], types: dict[str, pa.DataType]) -> pa.Table:
    if not rows:
        return pa.table({})
    return pa.table({name: pa.array([r[name] for r in rows], type_) for name, type_ in types.items()})


def _reference(runs: pa.Table, steps: pa.Table, attempts: pa.Table, now: datetime) -> pa.Table:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("batch_runs", runs)
    for name, table, types in (("batch_steps", steps, _STEP_TYPES), ("batch_attempts", attempts, _ATTEMPT_TYPES)):
        con.register(name, table if table.num_columns else pa.table({n: pa.array([], t) for n, t in types.items()}))
    rows = con.sql(_REFERENCE, params={"exported_at": now}).to_arrow_table()
    return rows.cast(RUNS)


@pytest.mark.parametrize(("seed", "runs"), [(1, 300), (2, 40), (3, 1)])
def test_rows_equal_the_reference_sql(seed: int, runs: int) -> None:
    batch = _batch(seed, runs)
    now = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    builder = RowBuilder()
    try:
        built = builder.nest(*batch, now)
    finally:
        builder.close()
    expected = _reference(*batch, now)
    assert built.schema == RUNS
    for name in RUNS.names:
        assert built.column(name).to_pylist() == expected.column(name).to_pylist(), name
    assert built.equals(expected)
    # The batch had what the test is about: unicode documents, runs without steps, dates before 1970.
    docs = built.column("search_doc").to_pylist()
    if runs > 1:
        assert any(not d.isascii() for d in docs) and any(d.isascii() for d in docs)
        assert any(len(s) == 0 for s in built.column("steps").to_pylist())
        assert min(built.column(PARTITION).to_pylist()).year == 1969


def test_a_batch_without_steps_or_attempts() -> None:
    runs = _batch(4, 5)[0]
    now = datetime(2026, 3, 1, tzinfo=UTC)
    builder = RowBuilder()
    try:
        built = builder.nest(runs, pa.table({}), pa.table({}), now)
    finally:
        builder.close()
    assert built.equals(_reference(runs, pa.table({}), pa.table({}), now))
    assert built.column("steps").to_pylist() == [[]] * 5
