"""Arrow tables of archive rows: shaping them to the schema, sorting, splitting by partition.

The exporter and the compactor both hand their rows through here before a file
is written, which is what makes every file of a kind look the same: the exact
schema of ``sync.arrow_schemas``, rows in the documented sort order, and one
table per UTC start date of the run (the hive partition).
"""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from sync.arrow_schemas import RUN_START, SCHEMAS, SORT_KEYS, TS, Kind


def conform(table: pa.Table, kind: Kind, exported_at: datetime | None = None) -> pa.Table:
    """Cast ``table`` to the kind's schema; ``exported_at`` fills that column when given."""
    schema = SCHEMAS[kind]
    if exported_at is not None:
        table = table.append_column("exported_at", pa.repeat(pa.scalar(exported_at, TS), table.num_rows))
    table = table.select(schema.names)
    # One chunk per column: dictionary columns then share one dictionary per file.
    return table.cast(schema).combine_chunks()


def sort_rows(table: pa.Table, kind: Kind) -> pa.Table:
    """Rows in the archive order of their kind (run start time first)."""
    keys = SORT_KEYS[kind]
    # Sorting does not accept extension types; their storage orders the same way.
    plain = pa.table({name: _storage(table.column(name)) for name in keys})
    return table.take(pc.sort_indices(plain, [(name, "ascending") for name in keys]))


def _storage(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if isinstance(column.type, pa.BaseExtensionType):
        return pa.chunked_array([chunk.storage for chunk in column.chunks], column.type.storage_type)
    return column


def split_by_date(table: pa.Table, kind: Kind) -> list[tuple[date, pa.Table]]:
    """Cut a sorted table into one slice per UTC start date of the run (zero-copy)."""
    if table.num_rows == 0:
        return []
    dates = pc.cast(table.column(RUN_START[kind]), pa.date32()).combine_chunks()
    runs = pc.run_end_encode(dates)
    out: list[tuple[date, pa.Table]] = []
    start = 0
    for end, day in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
        out.append((day, table.slice(start, end - start)))
        start = end
    return out


def start_range(table: pa.Table, kind: Kind) -> tuple[datetime | None, datetime | None]:
    """Min and max run start time of the rows (None for an empty table)."""
    bounds = pc.min_max(table.column(RUN_START[kind]))
    return bounds["min"].as_py(), bounds["max"].as_py()
