"""DuckDB ``INTERVAL`` results as Arrow durations, which polars reads as ``Duration``.

DuckDB hands intervals to Arrow as ``month_day_nano_interval``, a type polars
cannot import. An interval without months has a fixed length (days are 24 hours
in DuckDB's arithmetic), so it becomes ``duration[us]`` exactly: DuckDB keeps
microseconds. An interval with months has no fixed length (a month is 28 to 31
days), so instead of guessing we raise ``InvalidQuery`` naming the column and
the two spellings that do have an answer.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from oltp.errors import InvalidQuery

_US_PER_DAY = 86_400_000_000
# The layout of one month_day_nano value in Arrow's fixed-width buffer.
_MDN = np.dtype([("months", "<i4"), ("days", "<i4"), ("nanos", "<i8")])


def as_durations(table: pa.Table) -> pa.Table:
    """``table`` with every interval (top level, in lists and in structs) as ``duration[us]``."""
    if not any(_has_interval(field.type) for field in table.schema):
        return table
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        chunks = [_convert(name, chunk) for chunk in column.chunks]
        columns.append(pa.chunked_array(chunks, type=_converted_type(column.type)))
    return pa.table(columns, names=table.column_names)


def _has_interval(dtype: pa.DataType) -> bool:
    if pa.types.is_interval(dtype):
        return True
    return any(_has_interval(dtype.field(i).type) for i in range(dtype.num_fields))


def _converted_type(dtype: pa.DataType) -> pa.DataType:
    if pa.types.is_interval(dtype):
        return pa.duration("us")
    if pa.types.is_struct(dtype):
        return pa.struct([field.with_type(_converted_type(field.type)) for field in dtype])
    if pa.types.is_list(dtype):
        return pa.list_(dtype.value_field.with_type(_converted_type(dtype.value_type)))
    if pa.types.is_large_list(dtype):
        return pa.large_list(dtype.value_field.with_type(_converted_type(dtype.value_type)))
    if _has_interval(dtype):
        raise InvalidQuery(f"an interval inside a {dtype} result has no polars type; return it on its own column")
    return dtype


def _convert(name: str, array: pa.Array) -> pa.Array:
    dtype = array.type
    if not _has_interval(dtype):
        return array
    if pa.types.is_interval(dtype):
        return _durations(name, array)
    mask = array.is_null() if array.null_count else None
    if pa.types.is_struct(dtype):
        children = [_convert(name, array.field(i)) for i in range(dtype.num_fields)]
        return pa.StructArray.from_arrays(children, fields=list(_converted_type(dtype)), mask=mask)
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        kind = pa.ListArray if pa.types.is_list(dtype) else pa.LargeListArray
        return kind.from_arrays(array.offsets, _convert(name, array.values), _converted_type(dtype), mask=mask)
    _converted_type(dtype)  # raises for the other nested types
    return array


def _durations(name: str, array: pa.Array) -> pa.Array:
    # Read the fixed-width values buffer directly: pyarrow has no kernel that splits the triple.
    values = np.frombuffer(array.buffers()[1], dtype=_MDN, count=array.offset + len(array))[array.offset :]
    valid = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False))
    if np.any(values["months"][valid] != 0):
        raise InvalidQuery(
            f"column {name!r} holds intervals with months or years, which have no fixed length; "
            "return a duration such as completed_at - started_at, or wrap it in epoch(...) for seconds"
            " (a month counted as 30 days) or CAST(... AS VARCHAR)"
        )
    micros = values["days"].astype(np.int64) * _US_PER_DAY + values["nanos"] // 1000
    return pa.array(micros, type=pa.duration("us"), mask=~valid)
