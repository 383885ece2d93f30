"""An export batch as archive rows: one row per run, steps and attempts nested, search document built.

The batch arrives as three flat Arrow tables read from PostgreSQL (``sync.snapshot``).
Arrow sorts the runs by start time, then id (so each file's min/max statistics let
readers skip row groups), writes ids as canonical lower-case text, builds the
lower-cased search document (the fields of the search semantics, joined by the
unit separator so no match spans two fields), and orders steps and attempts by
their run's row and their own order (``step_key``/``attempt``), so that each run's
slice of them is its nested list: offsets over one sorted table, no value copied
twice. The result has the one schema of ``sync.arrow_schemas``.

Everything is Arrow compute over whole columns. DuckDB did this work before, with
joins, a sort per kind and a string aggregate: it cost about three times as much
and held some 200 MB for its working set. Only lower-casing keeps DuckDB, for the
documents that are not pure ASCII: searches lower-case their term with DuckDB's
``lower``, and Arrow's ``utf8_lower`` maps some recent Unicode letters differently
(75 code points with Arrow 26 against DuckDB 2.0), so a document must be
lower-cased by the same function as the terms matched against it. ASCII is the
same in both (A-Z only), and is done by Arrow.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sync import uuid_text
from sync.arrow_schemas import ATTEMPT, PARTITION, RUNS, STEP, TS, storage

_SEPARATOR = "\x1f"  # the unit separator: no search term matches across two fields
_LOWER = "SELECT lower(doc) AS doc FROM docs"


class RowBuilder:
    """Turns batches into archive rows (a DuckDB connection, opened when first needed, lower-cases unicode)."""

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None

    def close(self) -> None:
        """Close the DuckDB connection, if one was opened."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def nest(self, runs: pa.Table, steps: pa.Table, attempts: pa.Table, exported_at: datetime) -> pa.Table:
        """One archive row per run of ``runs`` with its steps and attempts, sorted by start time, then id."""
        runs = runs.combine_chunks()
        ids = _uuid_text(runs.column("id"))
        order = pc.sort_indices(
            pa.table({"started_at": runs.column("started_at"), "id": ids}),
            sort_keys=[("started_at", "ascending"), ("id", "ascending")],
        )
        runs = runs.take(order)
        ids = ids.take(order)
        # Each run's place in the file, looked up by the binary id (a hash join done by Arrow).
        keys = storage(runs.column("id").combine_chunks())
        steps = _by_run(steps, keys, ("step_key",), STEP)
        attempts = _by_run(attempts, keys, ("step_key", "attempt"), ATTEMPT)
        n = runs.num_rows
        columns: dict[str, pa.Array] = {
            "id": ids,
            "flow_id": _uuid_text(runs.column("flow_id")),
            "source_run_id": _uuid_text(runs.column("source_run_id")),
            "exported_at": pa.repeat(pa.scalar(exported_at, TS), n),
            "search_doc": self._lowered(_documents(runs, ids, attempts)),
            "steps": _lists(steps, n, "steps"),
            "attempts": _lists(attempts, n, "attempts"),
            PARTITION: pc.cast(runs.column("started_at").combine_chunks(), pa.date32()),
        }
        arrays = [
            columns[f.name] if f.name in columns else runs.column(f.name).combine_chunks().cast(f.type) for f in RUNS
        ]
        return pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, RUNS, strict=True)], schema=RUNS)

    def _lowered(self, docs: pa.Array) -> pa.Array:
        """``docs`` lower-cased exactly as DuckDB's ``lower`` (which lower-cases search terms) does."""
        ascii_only = pc.string_is_ascii(docs)
        if pc.all(ascii_only).as_py() is not False:
            return pc.ascii_lower(docs)
        if self._con is None:
            self._con = duckdb.connect(config={"threads": 1})
        wide = pc.invert(ascii_only)
        cur = self._con.cursor()
        try:
            cur.register("docs", pa.table({"doc": docs.filter(wide)}))
            lowered = cur.sql(_LOWER).to_arrow_table().column("doc").combine_chunks().cast(pa.string())
        finally:
            cur.close()
        # Put each unicode document back in its place among the ASCII ones.
        position = pc.cumulative_sum(pc.cast(wide, pa.int32()))
        picked = pc.take(lowered, pc.if_else(wide, pc.subtract(position, 1), None))
        return pc.if_else(wide, picked, pc.ascii_lower(docs))


def _by_run(rows: pa.Table, keys: pa.Array, order: tuple[str, ...], element: pa.StructType) -> pa.Table:
    """``rows`` with ``ord`` (their run's row), sorted by it and then by ``order``; only the element's columns."""
    if rows.num_columns == 0:
        return pa.table({"ord": pa.array([], pa.int32()), **{f.name: pa.array([], f.type) for f in element}})
    rows = rows.combine_chunks()
    place = pc.index_in(storage(rows.column("run_id").combine_chunks()), value_set=keys)
    table = pa.table({"ord": place, **{f.name: rows.column(f.name) for f in element}})
    if place.null_count:  # rows of a run not in the batch (never, by construction)
        table = table.filter(pc.is_valid(place))
    sort_keys = [("ord", "ascending"), *((name, "ascending") for name in order)]
    return table.take(pc.sort_indices(table, sort_keys=sort_keys))


def _documents(runs: pa.Table, ids: pa.Array, attempts: pa.Table) -> pa.Array:
    """Each run's search document before lower-casing.

    The run's id, flow name, trigger key, status and background job id, then per attempt (in
    step key, attempt order) its step key, error message and output, all joined by the unit
    separator; a missing value is an empty field.
    """
    blank = pa.scalar("", pa.string())
    per_attempt = pc.binary_join_element_wise(
        attempts.column("step_key"),
        pc.fill_null(attempts.column("error_message"), blank),
        pc.fill_null(attempts.column("output_json"), blank),
        _SEPARATOR,
    )
    offsets = _offsets(attempts.column("ord"), runs.num_rows)
    per_run = pc.binary_join(pa.ListArray.from_arrays(offsets, per_attempt.combine_chunks()), _SEPARATOR)
    return pc.binary_join_element_wise(
        ids,
        runs.column("flow_name"),
        runs.column("trigger_key"),
        runs.column("status"),
        pc.fill_null(runs.column("background_job_id"), blank),
        per_run,
        _SEPARATOR,
        null_handling="skip",  # as SQL's concat_ws; the document is never null
    ).combine_chunks()


def _lists(rows: pa.Table, runs: int, column: str) -> pa.Array:
    """``rows`` (sorted by ``ord``) as one list per run: offsets from the count of each run's rows."""
    list_type = RUNS.field(column).type
    element = list_type.value_type
    children = [rows.column(f.name).combine_chunks().cast(f.type) for f in element]
    values = pa.StructArray.from_arrays(children, fields=list(element))
    return pa.ListArray.from_arrays(_offsets(rows.column("ord"), runs), values, type=list_type)


def _offsets(place: pa.ChunkedArray | pa.Array, runs: int) -> pa.Array:
    """List offsets over rows sorted by their run's row ``place``: where each run's slice starts."""
    counts = np.bincount(place.to_numpy(), minlength=runs)
    offsets = np.zeros(runs + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.array(offsets)


def _uuid_text(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """UUIDs (``arrow.uuid`` or 16-byte binary) as canonical lower-case hyphenated text; text stays as it is."""
    values = pa.chunked_array([values]).combine_chunks() if isinstance(values, pa.Array) else values.combine_chunks()
    raw = storage(values)
    if not pa.types.is_fixed_size_binary(raw.type):
        return raw.cast(pa.string())
    n = len(raw)
    width = uuid_text.OCTETS
    octets = np.zeros((0, width), np.uint8)
    if n:
        octets = np.frombuffer(raw.buffers()[1], dtype=np.uint8, count=width * n, offset=raw.offset * width)
    text = uuid_text.to_text(octets.reshape(n, width))
    offsets = pa.py_buffer(np.arange(0, uuid_text.TEXT * (n + 1), uuid_text.TEXT, dtype=np.int32).tobytes())
    # Null UUIDs get a valid-looking text behind a cleared validity bit, as any Arrow null does.
    validity = pc.is_valid(raw).buffers()[1] if raw.null_count else None
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(text.tobytes()), validity, raw.null_count)
