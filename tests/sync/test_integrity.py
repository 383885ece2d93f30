"""A listed data file that is missing, truncated, replaced or corrupt is named by ``ArchiveCorrupt``.

Readers with a DSN and archive-only readers raise it for a call that needs the
file, while calls over other partitions keep answering; compaction leaves the
partition holding it untouched (it never rewrites data it cannot read back),
compacts the others, then raises it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from olap import RunAnalytics
from oltp.store import RunStore
from sync import ArchiveCorrupt, compact, export_completed_runs
from tests.conftest import FakeClock
from tests.sync import archive_checks, workload


def _truncate(path: Path, other: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _delete(path: Path, other: Path) -> None:
    path.unlink()


def _replace(path: Path, other: Path) -> None:
    shutil.copy(other, path)  # a valid Parquet file of the table, with other rows


def _flip(path: Path, other: Path) -> None:
    # 64 flipped bytes in the footer (same size). Flips inside data pages are caught when a page
    # no longer decodes; delta-rs writes no page checksums, see docs/archive.md, "Integrity".
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - footer // 2
    for i in range(start, start + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _delete, _replace, _flip], ids=lambda f: f.__name__[1:])
def test_a_damaged_file_is_named_and_other_partitions_keep_answering(
    damage: Callable[[Path, Path], None], store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    # Two days, several files each (one export batch per run).
    workload.play(store, clock, 6, hours_apart=4)
    export_completed_runs(dsn, archive, batch_size=1, clock=clock)
    table = archive_checks.table(archive)
    assert table is not None
    files = sorted(archive_checks.data_files(archive))
    days = sorted({f.split("/")[0] for f in files})
    assert len(days) >= 2
    victim = Path(archive) / "runs" / next(f for f in files if f.startswith(days[0]))
    other = Path(archive) / "runs" / next(f for f in files if f.startswith(days[-1]))
    healthy = {f: (Path(archive) / "runs" / f).read_bytes() for f in files if f.startswith(days[0])}
    damage(victim, other)
    late_day = datetime.fromisoformat(days[-1].split("=")[1]).replace(tzinfo=UTC)

    for reader in (RunAnalytics(dsn, archive, clock=clock), RunAnalytics(None, archive, clock=clock)):
        with pytest.raises(ArchiveCorrupt) as info:
            reader.get_runs(take=1000)
        assert victim.name in str(info.value)
        # The other day's partition still answers.
        buckets = reader.get_run_timeseries("day", late_day, late_day.replace(hour=23))
        assert sum(b.total for b in buckets) > 0
        reader.close()

    with pytest.raises(ArchiveCorrupt) as info:
        compact(dsn, archive, clock=clock)
    assert victim.name in str(info.value)
    # The damaged partition was not rewritten; the healthy ones were.
    after = archive_checks.data_files(archive)
    assert sorted(f for f in after if f.startswith(days[0])) == sorted(healthy)
    assert len([f for f in after if f.startswith(days[-1])]) == 1


def _garble(path: Path, column: str, *, header: bool) -> None:
    """Flip bytes of ``column``'s first chunk: 16 of its first page header, or its last 64 (compressed values)."""
    chunk = pq.ParquetFile(path).metadata.row_group(0)
    meta = next(chunk.column(i) for i in range(chunk.num_columns) if chunk.column(i).path_in_schema == column)
    end = meta.data_page_offset + meta.total_compressed_size
    first = meta.dictionary_page_offset or meta.data_page_offset
    data = bytearray(path.read_bytes())
    for i in range(first, first + 16) if header else range(end - 64, end):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("column", "header", "call"),
    [
        # A file of the archive, not the analyst's query: ``ArchiveCorrupt``, never ``InvalidQuery``.
        ("trigger_data_json", False, lambda r: r.sql("SELECT max(trigger_data_json) FROM runs")),
        # DuckDB fails on a damaged page header with "TProtocolException", naming no file: the reader finds it.
        ("flow_name", True, lambda r: r.get_runs_page(status="Failed")),
    ],
    ids=["sql-over-undecodable-values", "page-header-duckdb-names-no-file"],
)
def test_a_file_that_does_not_decode_is_named(
    store: RunStore,
    clock: FakeClock,
    dsn: str,
    archive: str,
    column: str,
    header: bool,
    call: Callable[[RunAnalytics], object],
) -> None:
    workload.play(store, clock, 6, hours_apart=4)
    export_completed_runs(dsn, archive, clock=clock)
    victim = Path(archive) / "runs" / sorted(archive_checks.data_files(archive))[0]
    _garble(victim, column, header=header)

    for reader in (RunAnalytics(dsn, archive, clock=clock), RunAnalytics(None, archive, clock=clock)):
        with pytest.raises(ArchiveCorrupt) as info:
            call(reader)
        assert victim.name in str(info.value)
        reader.close()
