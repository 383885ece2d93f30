"""One table from two places: DuckDB relations over live rows UNION visible archive rows.

Live rows arrive as Arrow tables registered in the call's DuckDB cursor. An archive
row is visible unless its run is live (``live_keys``: live wins) or its
``(run_id, revision)`` copy was superseded by a newer export (``hidden_pairs``).
Both sets touch few partition days (live runs are recent, superseded copies are
rare and compacted away), so only the files of those days pay for the anti-joins;
every other file is scanned as it is, which keeps a 90-day aggregate at the speed
of the bare Parquet scan. A step or attempt row belongs to the run version with
the same ``(run_id, revision)``, so the same rule picks a run's rows at its winning
revision in every table.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from olap.archive import ArchiveFile, parquet_scan

RUN_FIELDS = (
    "id, flow_id, flow_name, status, trigger_key, trigger_data_json, background_job_id,"
    " started_at, completed_at, source_run_id"
)
STEP_FIELDS = (
    "run_id, step_key, step_type, status, input_json, output_json, error_message, job_id,"
    " started_at, completed_at, attempt_count"
)
ATTEMPT_FIELDS = (
    "run_id, step_key, attempt, step_type, status, input_json, output_json, error_message, job_id,"
    " started_at, completed_at"
)

# Typed empty relations, for when neither side has rows of a kind.
EMPTY = {
    "runs": (
        "SELECT NULL::UUID AS id, NULL::UUID AS flow_id, NULL::VARCHAR AS flow_name, NULL::VARCHAR AS status,"
        " NULL::VARCHAR AS trigger_key, NULL::VARCHAR AS trigger_data_json, NULL::VARCHAR AS background_job_id,"
        " NULL::TIMESTAMPTZ AS started_at, NULL::TIMESTAMPTZ AS completed_at, NULL::UUID AS source_run_id,"
        " NULL::BIGINT AS revision WHERE FALSE"
    ),
    "steps": (
        "SELECT NULL::UUID AS run_id, NULL::VARCHAR AS step_key, NULL::VARCHAR AS step_type,"
        " NULL::VARCHAR AS status, NULL::VARCHAR AS input_json, NULL::VARCHAR AS output_json,"
        " NULL::VARCHAR AS error_message, NULL::VARCHAR AS job_id, NULL::TIMESTAMPTZ AS started_at,"
        " NULL::TIMESTAMPTZ AS completed_at, NULL::INTEGER AS attempt_count, NULL::BIGINT AS revision WHERE FALSE"
    ),
    "attempts": (
        "SELECT NULL::UUID AS run_id, NULL::VARCHAR AS step_key, NULL::INTEGER AS attempt,"
        " NULL::VARCHAR AS step_type, NULL::VARCHAR AS status, NULL::VARCHAR AS input_json,"
        " NULL::VARCHAR AS output_json, NULL::VARCHAR AS error_message, NULL::VARCHAR AS job_id,"
        " NULL::TIMESTAMPTZ AS started_at, NULL::TIMESTAMPTZ AS completed_at, NULL::BIGINT AS revision WHERE FALSE"
    ),
}

EMPTY_KEYS = "SELECT NULL::UUID AS id, NULL::TIMESTAMPTZ AS started_at WHERE FALSE"
EMPTY_HIDDEN = "SELECT NULL::UUID AS run_id, NULL::BIGINT AS revision, NULL::DATE AS started_date WHERE FALSE"

_VISIBLE = (
    "NOT EXISTS (SELECT 1 FROM live_keys k WHERE k.id = a.{id})"
    " AND NOT EXISTS (SELECT 1 FROM hidden_pairs h WHERE h.run_id = a.{id} AND h.revision = a.revision)"
)

# The same test for rows that carry their partition day, applied only on shadowed days.
VISIBLE_DAY = (
    "NOT list_contains($shadowed, {alias}.started_date)"
    " OR (NOT EXISTS (SELECT 1 FROM live_keys k WHERE k.id = {alias}.id)"
    " AND NOT EXISTS (SELECT 1 FROM hidden_pairs h WHERE h.run_id = {alias}.id AND h.revision = {alias}.revision))"
)

# Partition days that hold an archived copy of a live run or a superseded copy.
SHADOWED_DAYS = """
SELECT DISTINCT CAST(timezone('UTC', started_at) AS DATE) AS d FROM live_keys
UNION
SELECT DISTINCT started_date FROM hidden_pairs
"""


def archive_parts(
    files: Sequence[ArchiveFile],
    shadowed: Collection[date],
    fields: str,
    where: str = "TRUE",
    id_column: str = "id",
) -> list[str]:
    """SELECTs over the visible archive rows of ``files`` that satisfy ``where`` (alias ``a``)."""
    clean = [f for f in files if f.started_date not in shadowed]
    dirty = [f for f in files if f.started_date in shadowed]
    parts = []
    if clean:
        parts.append(f"SELECT {fields} FROM {parquet_scan(clean)} a WHERE {where}")
    if dirty:
        visible = _VISIBLE.format(id=id_column)
        parts.append(f"SELECT {fields} FROM {parquet_scan(dirty)} a WHERE ({where}) AND {visible}")
    return parts


def union(parts: Sequence[str], empty: str) -> str:
    """``UNION ALL`` of ``parts``, or the typed empty relation when there are none."""
    return "\nUNION ALL\n".join(parts) if parts else empty


def project(empty_kind: str, fields: str) -> str:
    """The typed empty relation of a kind narrowed to ``fields``."""
    return f"SELECT {fields} FROM ({EMPTY[empty_kind]})"
