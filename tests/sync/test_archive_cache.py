"""Readers of an S3 archive keep local copies of its data files and read them from there.

The proof that a call reads the copies and not the bucket: once every data file
is deleted from the (real, moto) S3 server, a brand-new reader sharing the cache
directory still gives the same answers, while a reader with the cache turned off
reports the missing file as ``ArchiveCorrupt``.
"""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from olap import RunAnalytics
from olap.file_cache import parse_size
from oltp.errors import InvalidArgument
from oltp.store import RunStore
from sync import export_completed_runs, prune
from sync.errors import ArchiveCorrupt
from tests.conftest import FakeClock
from tests.fixtures.s3_server import S3Server
from tests.sync import workload


def _answers(reader: RunAnalytics, clock: FakeClock) -> tuple[Any, ...]:
    return (
        reader.get_statistics(),
        reader.get_runs_page(take=100),
        reader.get_runs_page(search="BOOM", take=100),
        reader.get_run_timeseries("day", clock.now - timedelta(days=10), clock.now),
        reader.sql("SELECT count(*) AS n, count(DISTINCT step_key) AS k FROM attempts").rows(),
    )


def test_readers_of_an_s3_archive_read_local_copies_of_its_files(
    store: RunStore,
    clock: FakeClock,
    dsn: str,
    s3_server: S3Server,
    s3_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = s3_server.storage_options()
    workload.play(store, clock, 6, hours_apart=9)
    assert export_completed_runs(dsn, s3_prefix, batch_size=2, clock=clock, storage_options=options).runs == 6
    clock.advance(days=1)
    assert prune(dsn, timedelta(hours=1), now=clock.now) == 6
    cache = tmp_path / "cache"
    monkeypatch.setenv("FLOWRUN_ARCHIVE_CACHE", str(cache))
    with RunAnalytics(dsn, s3_prefix, clock=clock, storage_options=options) as reader:
        before = _answers(reader, clock)
    assert before[1].total_count == 6
    copies = sorted(p for p in cache.rglob("*.parquet"))
    fs = s3_server.filesystem()
    bucket_path = s3_prefix.removeprefix("s3://")
    listing = fs.get_file_info(pafs.FileSelector(bucket_path, recursive=True))
    remote = [i.path for i in listing if i.path.endswith(".parquet")]
    assert copies and len(copies) == len(remote)
    assert not any(p.name.endswith(".part") for p in cache.rglob("*"))
    for directory in [p for p in cache.rglob("*") if p.is_dir()]:
        assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0, directory

    for path in remote:
        fs.delete_file(path)
    with RunAnalytics(dsn, s3_prefix, clock=clock, storage_options=options) as fresh:
        assert _answers(fresh, clock) == before  # every byte from the local copies

    monkeypatch.setenv("FLOWRUN_ARCHIVE_CACHE", "off")
    with (
        RunAnalytics(dsn, s3_prefix, clock=clock, storage_options=options) as direct,
        pytest.raises(ArchiveCorrupt, match="missing"),
    ):
        direct.get_statistics()


def test_the_cache_size_setting_is_checked(
    s3_prefix: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_size("512M") == 512 << 20
    assert parse_size("8g") == 8 << 30
    assert parse_size("1024") == 1024
    monkeypatch.setenv("FLOWRUN_ARCHIVE_CACHE_SIZE", "lots")
    with pytest.raises(InvalidArgument, match="FLOWRUN_ARCHIVE_CACHE_SIZE"):
        RunAnalytics(None, s3_prefix, storage_options=s3_server.storage_options())
