"""The archive's Parquet data files: their settings, and the export's own writes of them.

One set of Parquet settings (zstd level 3, 131,072-row groups, dictionaries only
for the columns of few distinct values) serves both writers: delta-rs, which
writes the files of a compaction and of a merge (``WRITER``), and pyarrow,
which writes the files of an export's append (``write``). The append's files
are written here and committed by delta-rs as add actions (``sync.archive_table``):
pyarrow's writer takes half the CPU of delta-rs's for the same rows (measured on
an export batch: 121-151 ms against 248-313 ms; delta-rs copies the whole batch to
split it by partition and costs more on the nested lists) and it writes Parquet
page checksums (CRC-32 of every page), which delta-rs 1.6 cannot.

A file holds the rows of one start date (the partition column is in the Delta
log, not in the file), named as delta-rs names its files; its add action carries
the statistics delta-rs would write (row count, min/max and null count of every
column that is not a list), so every engine prunes it as it prunes the others.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import ColumnProperties, WriterProperties
from deltalake.transaction import AddAction

from sync.archive_location import ArchiveLocation
from sync.arrow_schemas import PARTITION

# Small enough that min/max statistics prune well, large enough to compress well.
ROW_GROUP_SIZE = 131_072
_COMPRESSION = "zstd"  # "ZSTD" in WRITER
_LEVEL = 3
# Dictionaries only for the columns of few distinct values. On ids, times, JSON and documents
# the writer builds a dictionary, finds it too big and falls back to plain pages: measured on an
# export batch, that cost a third of the write and made the file half as large again as plain
# pages compressed with zstd.
FEW_VALUES = [
    "flow_id",
    "flow_name",
    "status",
    "trigger_key",
    *(f"{kind}.list.element.{name}" for kind in ("steps", "attempts") for name in ("step_key", "step_type", "status")),
    *(f"{kind}.list.element.error_message" for kind in ("steps", "attempts")),
]
WRITER = WriterProperties(
    compression="ZSTD",
    compression_level=_LEVEL,
    max_row_group_size=ROW_GROUP_SIZE,
    default_column_properties=ColumnProperties(dictionary_enabled=False),
    column_properties={name: ColumnProperties(dictionary_enabled=True) for name in FEW_VALUES},
)


def write(location: ArchiveLocation, rows: pa.Table) -> list[AddAction]:
    """Write ``rows`` (sorted by start time, so each date's rows are one slice) as one file per date: their adds."""
    fs, base = location.filesystem()
    dates = rows.column(PARTITION).combine_chunks()
    written = []
    start = 0
    # Run-length ends of the (sorted) partition column: one slice per date, no row copied.
    for end in _run_ends(dates):
        day = dates[start].as_py()
        part = rows.slice(start, end - start).drop_columns([PARTITION])
        directory = f"{PARTITION}={day.isoformat()}"
        relative = f"{directory}/part-00000-{uuid.uuid4()}-c000.{_COMPRESSION}.parquet"
        if location.is_local:
            fs.create_dir(f"{base}/{directory}", recursive=True)
        sink = pa.BufferOutputStream()
        pq.write_table(
            part,
            sink,
            row_group_size=ROW_GROUP_SIZE,
            compression=_COMPRESSION,
            compression_level=_LEVEL,
            use_dictionary=FEW_VALUES,
            write_page_checksum=True,
            write_page_index=True,  # page-level min/max, as delta-rs writes: no measurable cost
        )
        data = sink.getvalue()
        with fs.open_output_stream(f"{base}/{relative}") as out:
            out.write(data)
        added = AddAction(
            path=relative,
            size=data.size,
            partition_values={PARTITION: day.isoformat()},
            modification_time=int(time.time() * 1000),
            data_change=True,
            stats=_stats(part),
        )
        written.append(added)
        start = end
    return written


def _run_ends(values: pa.Array) -> list[int]:
    """Where each run of equal values in ``values`` ends (exclusive)."""
    if len(values) == 0:
        return []
    changes = pc.not_equal(values.slice(1), values.slice(0, len(values) - 1))
    ends = pc.indices_nonzero(changes).to_pylist()
    return [e + 1 for e in ends] + [len(values)]


def _stats(part: pa.Table) -> str:
    """The add action's statistics, as delta-rs writes them: lists have none."""
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for name, column in zip(part.column_names, part.columns, strict=True):
        if pa.types.is_nested(column.type):
            continue
        nulls[name] = column.null_count
        if column.null_count == len(column):
            continue
        low, high = (v.as_py() for v in pc.min_max(column).values())
        if isinstance(low, datetime):
            minimum[name], maximum[name] = _millis(low, up=False), _millis(high, up=True)
        else:
            minimum[name], maximum[name] = low, high
    stats = {"numRecords": part.num_rows, "minValues": minimum, "maxValues": maximum, "nullCount": nulls}
    return json.dumps(stats, separators=(",", ":"))


def _millis(value: datetime, *, up: bool) -> str:
    """A UTC time in milliseconds as Delta statistics hold it; a maximum rounds up, so no reader skips its row."""
    micros = value.microsecond % 1000
    value -= timedelta(microseconds=micros)
    if up and micros:
        value += timedelta(milliseconds=1)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
