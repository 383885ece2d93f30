"""An export batch as archive rows: one row per run, steps and attempts nested, search document built.

The batch arrives as three flat Arrow tables read from PostgreSQL (``sync.snapshot``).
DuckDB groups the steps and attempts under their run (in ``step_key``/``attempt``
order), writes ids as canonical lower-case text, builds the lower-cased search
document (the fields of the search semantics, joined by the unit separator so no
match spans two fields), and sorts the runs by start time so each file's min/max
statistics let readers skip row groups. The result is cast to the one schema of
``sync.arrow_schemas``.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

from sync.arrow_schemas import RUNS

# The search document: the run's own searchable fields, then step key, error and
# output of every attempt (a step's current fields always mirror one of its attempts).
_NEST = """
WITH s AS (
    SELECT run_id,
           list(struct_pack(step_key := step_key, step_type := step_type, status := status,
                            input_json := input_json, output_json := output_json, error_message := error_message,
                            job_id := job_id, started_at := started_at, completed_at := completed_at,
                            attempt_count := attempt_count) ORDER BY step_key) AS steps
      FROM batch_steps GROUP BY run_id
), a AS (
    SELECT run_id,
           list(struct_pack(step_key := step_key, attempt := attempt, step_type := step_type, status := status,
                            input_json := input_json, output_json := output_json, error_message := error_message,
                            job_id := job_id, started_at := started_at, completed_at := completed_at)
                ORDER BY step_key, attempt) AS attempts,
           string_agg(concat_ws(chr(31), step_key, coalesce(error_message, ''), coalesce(output_json, '')),
                      chr(31) ORDER BY step_key, attempt) AS doc
      FROM batch_attempts GROUP BY run_id
)
SELECT CAST(r.id AS VARCHAR) AS id, CAST(r.flow_id AS VARCHAR) AS flow_id, r.flow_name, r.status, r.trigger_key,
       r.trigger_data_json, r.background_job_id, r.started_at, r.completed_at,
       CAST(r.source_run_id AS VARCHAR) AS source_run_id, r.revision, $exported_at AS exported_at,
       lower(concat_ws(chr(31), CAST(r.id AS VARCHAR), r.flow_name, r.trigger_key, r.status,
                       coalesce(r.background_job_id, ''), coalesce(a.doc, ''))) AS search_doc,
       coalesce(s.steps, []) AS steps, coalesce(a.attempts, []) AS attempts,
       CAST(timezone('UTC', r.started_at) AS DATE) AS started_date
  FROM batch_runs r LEFT JOIN s ON s.run_id = r.id LEFT JOIN a ON a.run_id = r.id
 ORDER BY r.started_at, r.id
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
            result = cur.sql(_NEST, params={"exported_at": exported_at}).to_arrow_table()
        finally:
            cur.close()
        return result.cast(RUNS)
