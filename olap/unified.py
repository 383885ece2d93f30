"""One table from two places: DuckDB relations over live rows UNION visible archive rows.

Live rows arrive as Arrow tables registered in the call's DuckDB cursor. The
archive's Delta table holds one row per run (its newest exported revision), so an
archive row is visible unless its run is live (``live_keys``: live wins). Live
runs are recent and touch few partition days, so only the files of those days pay
for the anti-join; every other file is scanned as it is, which keeps a 90-day
aggregate at the speed of the bare Parquet scan.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from olap.archive import ArchiveReader, Registrar
from sync.archive_table import DataFile

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

# The live tables a query may name, empty: what a reader without (or not reading) a live side sees.
EMPTY_LIVE = {"live_keys": EMPTY_KEYS, **{f"live_{kind}": relation for kind, relation in EMPTY.items()}}

_VISIBLE = "NOT EXISTS (SELECT 1 FROM live_keys k WHERE k.id = a.{id})"


def shadowed_days(live_keys: pa.Table) -> frozenset[date]:
    """The partition days (UTC start dates) that may hold an archived copy of a live run."""
    started = live_keys["started_at"]
    if started.type.tz is not None:  # the UTC wall clock, whatever zone the column is labelled with
        started = pc.cast(started, pa.timestamp(started.type.unit))
    return frozenset(pc.unique(pc.cast(started, pa.date32())).to_pylist())


def archive_parts(
    reader: ArchiveReader,
    cur: Registrar,
    kind: str,
    files: Sequence[DataFile],
    shadowed: Collection[date],
    fields: str,
    where: str = "TRUE",
) -> list[str]:
    """SELECTs over the visible archive rows of ``kind`` in ``files`` that satisfy ``where`` (alias ``a``)."""
    clean = [f for f in files if f.started_date not in shadowed]
    dirty = [f for f in files if f.started_date in shadowed]
    parts = []
    if clean:
        parts.append(f"SELECT {fields} FROM {reader.relation(cur, kind, clean)} a WHERE {where}")
    if dirty:
        visible = _VISIBLE.format(id="id" if kind == "runs" else "run_id")
        parts.append(f"SELECT {fields} FROM {reader.relation(cur, kind, dirty)} a WHERE ({where}) AND {visible}")
    return parts


def union(parts: Sequence[str], empty: str) -> str:
    """``UNION ALL`` of ``parts``, or the typed empty relation when there are none."""
    return "\nUNION ALL\n".join(parts) if parts else empty


def project(empty_kind: str, fields: str) -> str:
    """The typed empty relation of a kind narrowed to ``fields``."""
    return f"SELECT {fields} FROM ({EMPTY[empty_kind]})"


def hits_part(name: str, fields: str, where: str = "TRUE") -> str:
    """A SELECT over search index hits registered as ``name`` (``Call.indexed_hits``), alias ``a``.

    The hits carry the run fields a scope may filter on, typed here like ``archive_parts``
    rows, and whether their day holds live runs (then live wins, as in ``archive_parts``).
    """
    typed = (
        "SELECT CAST(id AS UUID) AS id, CAST(flow_id AS UUID) AS flow_id, status, started_at,"
        f" CAST(source_run_id AS UUID) AS source_run_id, revision, shadowed FROM {name}"
    )
    return f"SELECT {fields} FROM ({typed}) a WHERE ({where}) AND (NOT a.shadowed OR {_VISIBLE.format(id='id')})"
