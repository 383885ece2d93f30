"""CPU of one export batch's Delta write, against a bare Parquet write of the same rows, in one process.

The batch is one the export read from PostgreSQL, saved as three Arrow IPC files
(``batch-runs.arrow``, ``batch-steps.arrow``, ``batch-attempts.arrow``: the tables
``sync.snapshot.read_batch`` returns) in ``--batch-dir``; it is nested into archive rows
with ``sync.archive_rows.RowBuilder`` as the export does. Each variant runs once per
round, rounds interleaved, so the machine's other work spreads over all of them; it
prints the process CPU of each (all threads: delta-rs encodes on its own), minimum and
median. ``--table`` measures the per-commit work instead (``ArchiveTable.write`` of one
row and the two ``files()`` a batch asks for) on a copy of an existing table.

    python -P bench/delta_write.py --batch-dir DIR [--rounds 9] [--table TABLE_DIR]
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

# This script's directory comes first on sys.path, where "olap" names bench/olap.py: drop it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from sync.archive_location import ArchiveLocation  # noqa: E402
from sync.archive_rows import RowBuilder  # noqa: E402
from sync.archive_table import ArchiveTable  # noqa: E402
from sync.arrow_schemas import PARTITION  # noqa: E402
from sync.data_files import FEW_VALUES, ROW_GROUP_SIZE, WRITER  # noqa: E402


def _rows(batch_dir: Path) -> pa.Table:
    runs, steps, attempts = (
        ipc.open_file(batch_dir / f"batch-{name}.arrow").read_all() for name in ("runs", "steps", "attempts")
    )
    builder = RowBuilder()
    try:
        return builder.nest(runs, steps, attempts, datetime.now(UTC))
    finally:
        builder.close()


def _view(t: pa.DataType) -> pa.DataType:
    """``t`` with every string as ``string_view`` (nested ones too)."""
    if pa.types.is_string(t):
        return pa.string_view()
    if pa.types.is_list(t):
        return pa.list_(pa.field(t.value_field.name, _view(t.value_type), t.value_field.nullable))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _view(f.type), f.nullable) for f in t])
    return t


def _write_variants(rows: pa.Table, work: Path) -> dict[str, Callable[[], object]]:
    table_dir = str(work / "table")
    write_deltalake(table_dir, rows, mode="append", partition_by=[PARTITION], writer_properties=WRITER)
    table = DeltaTable(table_dir)
    flat = str(work / "unpartitioned")
    write_deltalake(flat, rows, mode="append", writer_properties=WRITER)
    unpartitioned = DeltaTable(flat)
    views = pa.schema([pa.field(f.name, _view(f.type), f.nullable) for f in rows.schema])
    data = rows.drop([PARTITION])

    def delta(source: Callable[[], pa.Table | pa.RecordBatchReader]) -> Callable[[], object]:
        return lambda: write_deltalake(
            table, source(), mode="append", partition_by=[PARTITION], writer_properties=WRITER
        )

    variants: dict[str, Callable[[], object]] = {
        "write_deltalake (as the export: pa.Table, table handle)": delta(lambda: rows),
        "write_deltalake, RecordBatchReader": delta(
            lambda: pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches())
        ),
        "write_deltalake, string_view columns (cast included)": delta(lambda: rows.cast(views)),
        "write_deltalake, unpartitioned table (not an option)": lambda: write_deltalake(
            unpartitioned, rows, mode="append", writer_properties=WRITER
        ),
        "pyarrow.parquet.write_table, same settings": lambda: pq.write_table(
            data,
            str(work / "pyarrow.parquet"),
            compression="zstd",
            compression_level=3,
            row_group_size=ROW_GROUP_SIZE,
            use_dictionary=FEW_VALUES,
        ),
    }
    try:  # arrow-rs's Parquet writer (the one delta-rs uses) without delta-rs, when installed
        arro3_io = importlib.import_module("arro3.io")
        variants["arro3.io.write_parquet (arrow-rs), same settings"] = lambda: arro3_io.write_parquet(
            data,
            str(work / "arrow-rs.parquet"),
            compression="zstd(3)",
            max_row_group_size=ROW_GROUP_SIZE,
            dictionary_enabled=False,
            column_dictionary_enabled=dict.fromkeys(FEW_VALUES, True),
        )
    except ImportError:
        pass
    return variants


def _commit_variants(rows: pa.Table, source: Path, work: Path) -> dict[str, Callable[[], object]]:
    shutil.copytree(source, work / "archive" / "runs")
    table = ArchiveTable.open(ArchiveLocation.resolve(work / "archive"))
    one = rows.slice(0, 1)
    batch = [1_000_000]

    def commit() -> object:
        batch[0] += 1
        table.write(one, "bench", batch[0])
        return table.files(), table.files()

    print(f"table: {len(table.files())} files, version {table.version}")
    return {"ArchiveTable.write of one row + files() twice": commit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--table", type=Path, help="an existing Delta table (copied): measure the per-commit work")
    args = parser.parse_args()
    rows = _rows(args.batch_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        variants = _commit_variants(rows, args.table, work) if args.table else _write_variants(rows, work)
        spent: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                started = time.process_time()
                run()
                spent[name].append(time.process_time() - started)
        for name, seconds in spent.items():
            print(f"{name:62s} min {min(seconds) * 1000:6.1f} ms  median {statistics.median(seconds) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
