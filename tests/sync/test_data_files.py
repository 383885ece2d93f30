"""The export's own data files: one per date, delta-rs's statistics, and Parquet page checksums that catch a flip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import SchemaMismatchError

from sync import ArchiveCorrupt
from sync.archive_location import ArchiveLocation
from sync.archive_table import ArchiveTable
from sync.arrow_schemas import PARTITION, RUNS
from sync.data_files import write
from sync.integrity import FileCheck

# Two runs late on one day, three early on the next, at times with microseconds.
STARTS = [
    datetime(2026, 1, 1, 23, 59, 58, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 23, 59, 59, 999_500, tzinfo=UTC),
    datetime(2026, 1, 2, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 1, 2, 0, 0, 0, 2_000, tzinfo=UTC),
    datetime(2026, 1, 2, 5, 0, 0, 7, tzinfo=UTC),
]


def _rows(starts: list[datetime], docs: int = 1) -> pa.Table:
    """Archive rows sorted by start time, as the row builder hands them to the writer."""
    runs: list[dict[str, object]] = [
        {
            "id": f"00000000-0000-4000-8000-{i:012d}",
            "flow_id": "11111111-0000-4000-8000-000000000000",
            "flow_name": "nightly",
            "status": "Failed" if i % 2 else "Succeeded",
            "trigger_key": "manual",
            "trigger_data_json": None if i % 2 else f'{{"n": {i}}}',
            "background_job_id": f"job-{i}",
            "started_at": start,
            "completed_at": start + timedelta(seconds=i),
            "source_run_id": None,
            "revision": i + 1,
            "exported_at": start,
            "search_doc": " ".join(f"run {i} document {k} of a search" for k in range(docs)),
            "steps": [],
            "attempts": [],
            PARTITION: start.date(),
        }
        for i, start in enumerate(starts)
    ]
    return pa.Table.from_pylist(runs, schema=RUNS)


def test_one_file_per_date_with_the_statistics_delta_rs_writes(tmp_path: Path) -> None:
    location = ArchiveLocation.resolve(tmp_path)
    rows = _rows(STARTS)
    written = write(location, rows)
    stats = [json.loads(f.stats) for f in written]
    assert [(f.partition_values, s["numRecords"]) for f, s in zip(written, stats, strict=True)] == [
        ({PARTITION: "2026-01-01"}, 2),
        ({PARTITION: "2026-01-02"}, 3),
    ]
    first, second = stats
    # Milliseconds: the minimum rounded down, the maximum up (a reader never skips a row it needs).
    assert first["minValues"]["started_at"] == "2026-01-01T23:59:58.000Z"
    assert first["maxValues"]["started_at"] == "2026-01-02T00:00:00.000Z"
    assert second["minValues"]["started_at"] == "2026-01-02T00:00:00.000Z"
    assert second["maxValues"]["started_at"] == "2026-01-02T05:00:00.001Z"
    assert second["maxValues"]["revision"] == 5 and second["minValues"]["status"] == "Failed"
    assert first["nullCount"]["trigger_data_json"] == 1 and first["nullCount"]["source_run_id"] == 2
    assert "source_run_id" not in first["minValues"]  # all null: no bounds
    assert "steps" not in first["nullCount"]  # lists have no statistics
    for file, expected in zip(written, (rows.slice(0, 2), rows.slice(2)), strict=True):
        path = Path(location.table_uri) / file.path
        assert file.size == path.stat().st_size
        started = pq.read_metadata(path).row_group(0).column(RUNS.names.index("started_at"))
        assert started.has_column_index and started.has_offset_index  # a page index, as delta-rs writes
        assert pq.read_table(path) == expected.drop_columns([PARTITION])  # the partition is in the log only

    # Committed by delta-rs, the files read back as the table's rows, by any Delta reader.
    table = ArchiveTable.open(location)
    assert table.write(rows, "store", 1) == 0
    read = DeltaTable(location.table_uri).to_pyarrow_table().sort_by("started_at")
    assert read.select(RUNS.names) == rows
    assert table.write(_rows([STARTS[-1]]), "store", 2) == 1 and table.committed_batch("store") == 2


@pytest.mark.parametrize("other", ["without a column", "with one more"])
def test_an_append_to_a_table_of_another_schema_is_refused_and_commits_nothing(tmp_path: Path, other: str) -> None:
    location = ArchiveLocation.resolve(tmp_path)
    rows = _rows(STARTS[:1])
    if other == "without a column":
        theirs = rows.drop_columns(["search_doc"])
    else:
        theirs = rows.append_column(pa.field("tenant", pa.string(), False), pa.array(["t"]))
    write_deltalake(location.table_uri, theirs, partition_by=[PARTITION])
    table = ArchiveTable.open(location)
    with pytest.raises(SchemaMismatchError):
        table.write(rows, "store", 1)
    assert table.version == 0 and table.committed_batch("store") is None
    assert table.untracked_files() == []  # refused before any file was written


def _damaged_but_decoding(path: Path) -> bytes:
    """The file with one byte of a data page flipped such that the page still decodes, to other values."""
    original = path.read_bytes()
    meta = pq.read_metadata(path)
    chunk = meta.row_group(0).column(meta.schema.names.index("search_doc"))
    expected = pq.read_table(path)
    start = chunk.data_page_offset
    for at in range(start + chunk.total_compressed_size - 1, start, -1):
        data = bytearray(original)
        data[at] ^= 0x20
        path.write_bytes(bytes(data))
        try:
            if pq.read_table(path, page_checksum_verification=False) != expected:
                return bytes(data)
        except (OSError, pa.ArrowException):
            continue
        finally:
            path.write_bytes(original)
    raise AssertionError("no flip that still decodes")


def test_page_checksums_catch_a_flip_that_still_decodes(tmp_path: Path) -> None:
    location = ArchiveLocation.resolve(tmp_path)
    table = ArchiveTable.open(location)
    # Uncompressible enough that zstd keeps literals a flipped byte does not break.
    table.write(_rows(STARTS[2:], docs=40), "store", 1)
    (file,) = table.files()
    path = Path(location.table_uri) / file.path
    damaged = _damaged_but_decoding(path)
    path.write_bytes(damaged)
    with pytest.raises(OSError, match="CRC"):
        pq.read_table(path, page_checksum_verification=True)
    with pytest.raises(ArchiveCorrupt) as info:
        FileCheck(location).decode(file)
    assert file.path in str(info.value)
