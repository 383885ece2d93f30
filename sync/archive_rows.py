"""An export batch as archive rows: one row per run, steps and attempts nested, search document built.

The batch arrives as three flat Arrow tables read from PostgreSQL (``sync.snapshot``).
DuckDB sorts the runs by start time (so each file's min/max statistics let readers
skip row groups), writes ids as canonical lower-case text, builds the lower-cased
search document (the fields of the search semantics, joined by the unit separator
so no match spans two fields), and orders steps and attempts by their run's row and
their own order (``step_key``/``attempt``); Arrow then makes each run's slice of
them its nested lists. The result is cast to the one schema of
``sync.arrow_schemas``.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from sync.arrow_schemas import PARTITION, RUNS

# The search document: the run's own searchable fields, then step key, error and
# output of every attempt (a step's current fields always mirror one of its attempts).
# Runs come out in file order (start time, then id); ``ord`` is each run's place in it.
_ORDER = """
CREATE OR REPLACE TEMP TABLE ordered AS
SELECT r.*, CAST(row_number() OVER (ORDER BY r.started_at, r.id) - 1 AS INTEGER) AS ord FROM batch_runs r
"""
_RUNS = """
WITH a AS (
    SELECT run_id,
           string_agg(concat_ws(chr(31), step_key, coalesce(error_message, ''), coalesce(output_json, '')),
                      chr(31) ORDER BY step_key, attempt) AS doc
      FROM batch_attempts GROUP BY run_id
)
SELECT CAST(r.id AS VARCHAR) AS id, CAST(r.flow_id AS VARCHAR) AS flow_id, r.flow_name, r.status, r.trigger_key,
       r.trigger_data_json, r.background_job_id, r.started_at, r.completed_at,
       CAST(r.source_run_id AS VARCHAR) AS source_run_id, r.revision, $exported_at AS exported_at,
       lower(concat_ws(chr(31), CAST(r.id AS VARCHAR), r.flow_name, r.trigger_key, r.status,
                       coalesce(r.background_job_id, ''), coalesce(a.doc, ''))) AS search_doc,
       CAST(timezone('UTC', r.started_at) AS DATE) AS started_date
  FROM ordered r LEFT JOIN a ON a.run_id = r.id
 ORDER BY r.ord
"""

# A run's steps and attempts, flat, in the order of their run's row and then their own order:
# each run's elements are one contiguous slice, so the nested lists are offsets over them.
_STEPS = """
SELECT o.ord, s.step_key, s.step_type, s.status, s.input_json, s.output_json, s.error_message, s.job_id,
       s.started_at, s.completed_at, s.attempt_count
  FROM batch_steps s JOIN ordered o ON o.id = s.run_id
 ORDER BY o.ord, s.step_key
"""
_ATTEMPTS = """
SELECT o.ord, a.step_key, a.attempt, a.step_type, a.status, a.input_json, a.output_json, a.error_message,
       a.job_id, a.started_at, a.completed_at
  FROM batch_attempts a JOIN ordered o ON o.id = a.run_id
 ORDER BY o.ord, a.step_key, a.attempt
"""

_EMPTY_STEPS = (
    "SELECT NULL::UUID AS run_id, NULL::VARCHAR AS step_key, NULL::VARCHAR AS step_type, NULL::VARCHAR AS status,"
    " NULL::VARCHAR AS input_json, NULL::VARCHAR AS output_json, NULL::VARCHAR AS error_message,"
    " NULL::VARCHAR AS job_id, NULL::TIMESTAMPTZ AS started_at, NULL::TIMESTAMPTZ AS completed_at,"
    " NULL::INTEGER AS attempt_count WHERE FALSE"
)
_EMPTY_ATTEMPTS = (
    "SELECT NULL::UUID AS run_id, NULL::VARCHAR AS step_key, NULL::INTEGER AS attempt, NULL::VARCHAR AS step_type,"
    " NULL::VARCHAR AS status, NULL::VARCHAR AS input_json, NULL::VARCHAR AS output_json,"
    " NULL::VARCHAR AS error_message, NULL::VARCHAR AS job_id, NULL::TIMESTAMPTZ AS started_at,"
    " NULL::TIMESTAMPTZ AS completed_at WHERE FALSE"
)


class RowBuilder:
    """One DuckDB connection that turns batches into archive rows."""

    def __init__(self) -> None:
        # A batch is small; the cap keeps DuckDB's buffer pool from growing with the export.
        self._con = duckdb.connect(config={"threads": 2, "memory_limit": "512MB"})
        self._con.execute("SET TimeZone = 'UTC'")

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    def nest(self, runs: pa.Table, steps: pa.Table, attempts: pa.Table, exported_at: datetime) -> pa.Table:
        """One archive row per run of ``runs`` with its steps and attempts, sorted by start time."""
        cur = self._con.cursor()
        try:
            cur.register("batch_runs", runs)
            for name, table, empty in (
                ("batch_steps", steps, _EMPTY_STEPS),
                ("batch_attempts", attempts, _EMPTY_ATTEMPTS),
            ):
                if table.num_columns:
                    cur.register(name, table)
                else:
                    cur.execute(f"CREATE TEMP VIEW {name} AS {empty}")
            cur.execute(_ORDER)
            result = cur.sql(_RUNS, params={"exported_at": exported_at}).to_arrow_table()
            steps_list = _nested(cur.sql(_STEPS).to_arrow_table(), result.num_rows, "steps")
            attempts_list = _nested(cur.sql(_ATTEMPTS).to_arrow_table(), result.num_rows, "attempts")
        finally:
            cur.close()
        at = result.schema.get_field_index(PARTITION)
        result = result.add_column(at, "steps", steps_list).add_column(at + 1, "attempts", attempts_list)
        return result.cast(RUNS)


def _nested(flat: pa.Table, runs: int, column: str) -> pa.Array:
    """``flat`` rows (sorted by ``ord``) as one list per run: offsets from the count of each run's rows.

    DuckDB's list aggregates cost ~1 s per 100,000 struct rows; a sort plus these offsets cost a
    tenth of that, and the values are not copied.
    """
    list_type = RUNS.field(column).type
    element = list_type.value_type
    counts = np.bincount(flat.column("ord").to_numpy(), minlength=runs)
    offsets = np.zeros(runs + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    children = [flat.column(f.name).combine_chunks().cast(f.type) for f in element]
    values = pa.StructArray.from_arrays(children, fields=list(element))
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=list_type)
