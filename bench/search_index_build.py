"""CPU of building search indexes: one export batch's file, and a large file as compaction writes.

    python -P bench/search_index_build.py BATCH_DIR [--large RUNS] [--repeat N]

BATCH_DIR holds one export batch as read from PostgreSQL, as Arrow IPC files
``batch-runs.arrow``, ``batch-steps.arrow`` and ``batch-attempts.arrow``; its archive
rows are made as the export makes them (``RowBuilder.nest``), then ``search_index.build``
(and ``planes`` alone) is timed on each of the batch's data files (one per start date),
and on one file of RUNS rows (the batch's rows repeated). The least CPU of N repeats is
printed: on a busy machine the others are mostly other processes' interference.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from sync import search_index
from sync.archive_rows import RowBuilder
from sync.archive_table import DataFile
from sync.arrow_schemas import PARTITION

_BATCH = ("runs", "steps", "attempts")


def least_cpu(work: Callable[[], object], repeat: int) -> float:
    """The least process CPU seconds of ``repeat`` calls of ``work``."""
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        work()
        best = min(best, time.process_time() - began)
    return best


def files_of(rows: pa.Table) -> list[tuple[pa.Table, DataFile]]:
    """The batch's rows as the export's data files: one per start date."""
    files = []
    for day in sorted(set(rows.column(PARTITION).to_pylist())):
        part = rows.filter(pc.equal(rows.column(PARTITION), pa.scalar(day, pa.date32())))
        files.append((part, DataFile(f"{PARTITION}={day}/part-0.parquet", 1, part.num_rows, day)))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("batch", type=Path)
    parser.add_argument("--large", type=int, default=200_000, help="rows of the large file (default 200,000)")
    parser.add_argument("--repeat", type=int, default=9, help="timings of each, the least kept (default 9)")
    args = parser.parse_args()
    runs, steps, attempts = (ipc.open_file(args.batch / f"batch-{name}.arrow").read_all() for name in _BATCH)
    rows = RowBuilder().nest(runs, steps, attempts, datetime.now(UTC))
    rows = rows.select([*search_index.KEY_COLUMNS, search_index.DOC, PARTITION])
    files = files_of(rows)
    print(f"batch: {rows.num_rows:,} runs in {len(files)} data files")
    build = least_cpu(lambda: [search_index.build(part, file) for part, file in files], args.repeat)
    planes = least_cpu(lambda: [search_index.planes(part.column(search_index.DOC)) for part, _ in files], args.repeat)
    print(f"batch: build {build * 1000:.1f} ms CPU, planes {planes * 1000:.1f} ms")
    copies = -(-args.large // rows.num_rows)
    large = pa.concat_tables([rows] * copies).slice(0, args.large).combine_chunks()
    file = DataFile(f"{PARTITION}=large/part-0.parquet", 1, large.num_rows, files[0][1].started_date)
    build = least_cpu(lambda: search_index.build(large, file), max(1, args.repeat // 3))
    planes = least_cpu(lambda: search_index.planes(large.column(search_index.DOC)), max(1, args.repeat // 3))
    print(f"{large.num_rows:,} runs in one file: build {build * 1000:.0f} ms CPU, planes {planes * 1000:.0f} ms")


if __name__ == "__main__":
    main()
