"""Every archive data file's SHA-256 is recorded when it is written; what differs is caught before it is used.

The trial of issue 8 as a test: 64 bytes flipped at 40 seeded places inside the
data pages of real archive files (one at a time, restored between). Size and row
count stay right and a page may still decode, so only the recorded hash catches
every one: ``verify_archive`` names the file 40 times out of 40, and compaction
leaves the damaged partition as it is while it compacts the others. A same-size
replacement by another valid file is caught the same way; files with no recorded
hash (written before revision 0007) are hashed by their first scrub.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import shutil
import signal
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowrun import cli
from oltp.store import RunStore
from sync import ArchiveCorrupt, ArchiveLocation, compact, export_completed_runs, verify_archive
from sync.archive_table import ArchiveTable
from sync.arrow_connection import ArrowConnection
from sync.integrity import FileCheck, verify_partitions
from tests.conftest import FakeClock
from tests.sync import archive_checks, workload

START = datetime(2026, 1, 1, 12, tzinfo=UTC)
TRIALS = 40
FLIPPED = 64


def _file(archive: str, relative: str) -> Path:
    return Path(archive) / "runs" / relative


def _hashes(db: psycopg.Connection[tuple[Any, ...]]) -> dict[str, tuple[int, bytes, str]]:
    rows = db.execute("SELECT path, size, sha256, recorded_by FROM archive_file_hashes").fetchall()
    return {path: (size, bytes(digest), by) for path, size, digest, by in rows}


def _sha256(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def _by_day(archive: str) -> dict[str, list[str]]:
    days: dict[str, list[str]] = {}
    for relative in archive_checks.data_files(archive):
        days.setdefault(relative.split("/")[0], []).append(relative)
    return days


def _flowrun(dsn: str, archive: str, *args: str) -> tuple[int, str, str]:
    """``flowrun --dsn --archive args`` in this process (the console script's ``main``): exit code, stdout, stderr."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    argv, out, err = sys.argv, io.StringIO(), io.StringIO()
    sys.argv = ["flowrun", "--dsn", dsn, "--archive", archive, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as done:
            cli.main()
    finally:
        sys.argv = argv
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    return int(done.value.code or 0), out.getvalue(), err.getvalue()


def _page_spans(path: Path) -> list[tuple[int, int]]:
    """Byte ranges of the file's column chunks from their first data page on (pages and their headers)."""
    meta = pq.read_metadata(path)
    spans = []
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            chunk = meta.row_group(g).column(c)
            start = chunk.data_page_offset
            end = (chunk.dictionary_page_offset or start) + chunk.total_compressed_size
            if end - start >= 2 * FLIPPED:
                spans.append((start, end))
    return spans


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    for i in range(at, at + FLIPPED):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def small(dsn: str, archive: str, clock: FakeClock) -> dict[str, list[str]]:
    """600 runs over two UTC days, exported 150 at a time: two files on the first day, three on the second."""
    workload.bulk_load(dsn, 600, start=START.replace(hour=20))
    export_completed_runs(dsn, archive, batch_size=150, clock=clock)
    days = _by_day(archive)
    assert [len(days[d]) for d in sorted(days)] == [2, 3]
    return days


@pytest.fixture
def two_days(dsn: str, archive: str, clock: FakeClock) -> dict[str, list[str]]:
    """1500 runs over two UTC days, exported 300 at a time: each day has three files."""
    workload.bulk_load(dsn, 1500, start=START)
    export_completed_runs(dsn, archive, batch_size=300, clock=clock)
    days = _by_day(archive)
    assert sorted(len(files) for files in days.values()) == [3, 3]
    return days


def _restore(archive: str, pristine: Path, db: psycopg.Connection[tuple[Any, ...]], version: int) -> None:
    """Put back the archive as it was before a trial (files and log), and PostgreSQL's record of it."""
    shutil.rmtree(archive)
    shutil.copytree(pristine, archive)
    db.execute("UPDATE archive_state SET version = %s", (version,))
    db.execute("DELETE FROM archive_file_hashes WHERE path <> ALL(%s)", (archive_checks.data_files(archive),))


def test_40_corruptions_inside_data_pages_are_all_detected_and_never_compacted(
    two_days: dict[str, list[str]], dsn: str, archive: str, clock: FakeClock, db: Any, tmp_path: Path
) -> None:
    # Every file the export wrote has its hash, recorded with the version that lists it.
    recorded = _hashes(db)
    assert {p: (s, h) for p, (s, h, _by) in recorded.items()} == {
        p: (_file(archive, p).stat().st_size, _sha256(_file(archive, p))) for p in archive_checks.data_files(archive)
    }
    assert {by for _s, _h, by in recorded.values()} == {"write"}
    clean = verify_archive(dsn, archive, clock=clock)
    assert clean.clean and clean.files == 6 and clean.trusted == ()

    pristine = tmp_path / "pristine"
    shutil.copytree(archive, pristine)
    version = archive_checks.state(db)[4]  # type: ignore[index]
    table = ArchiveTable.open(ArchiveLocation.resolve(archive))
    rng = random.Random(8)
    spans = [(f, span) for f in archive_checks.data_files(archive) for span in _page_spans(_file(archive, f))]
    with ArrowConnection(dsn, "flowrun") as conn:
        for trial in range(TRIALS):
            victim, (start, end) = rng.choice(spans)
            _flip(_file(archive, victim), rng.randrange(start, end - FLIPPED))
            day = victim.split("/")[0]

            report = verify_archive(dsn, archive, clock=clock)
            assert [Path(c.path).name for c in report.corrupt] == [Path(victim).name], trial
            if trial % 8:
                # What compaction checks before it rewrites a partition (a fresh check: nothing remembered).
                failed = verify_partitions(conn, FileCheck(table.location), table.files())
                assert [d.isoformat() for d in failed] == [day.split("=")[1]], trial
                assert Path(victim).name in str(failed[date.fromisoformat(day.split("=")[1])])
                shutil.copy(pristine / "runs" / victim, _file(archive, victim))
                continue
            # Every eighth trial, the whole compaction.
            with pytest.raises(ArchiveCorrupt) as info:
                compact(dsn, archive, clock=clock)
            assert Path(victim).name in str(info.value)
            after = _by_day(archive)
            assert after[day] == two_days[day], trial  # the damaged partition is left as it is
            assert [len(after[d]) for d in after if d != day] == [1], trial  # the other one is compacted
            _restore(archive, pristine, db, version)


def _same_size_twin(path: Path) -> bytes:
    """Another valid Parquet file with the same size and row count as ``path``: one value differs."""
    rows = pq.read_table(path)
    status = rows.column("status").to_pylist()
    status[0] = "Cancelled" if status[0] != "Cancelled" else "Succeeded"
    rows = rows.set_column(rows.schema.get_field_index("status"), "status", pa.array(status, pa.string()))
    target = path.stat().st_size
    pad = 0
    for _ in range(8):  # footer metadata pads it to the size (a varint length may take a byte more)
        sink = pa.BufferOutputStream()
        options: dict[str, Any] = {"compression": "zstd", "compression_level": 19, "store_schema": False}
        with pq.ParquetWriter(sink, rows.schema, write_statistics=False, **options) as writer:
            writer.write_table(rows)
            writer.add_key_value_metadata({"pad": "x" * pad})
        data = bytes(sink.getvalue().to_pybytes())
        if len(data) == target:
            return data
        pad += target - len(data)
        assert pad >= 0, "the twin compresses worse than the original"
    raise AssertionError("no same-size twin")


def test_a_same_size_replacement_by_another_valid_file_is_detected(
    small: dict[str, list[str]], dsn: str, archive: str, clock: FakeClock, db: Any
) -> None:
    first, second = sorted(small)
    code, out, err = _flowrun(dsn, archive, "verify")
    assert (code, out) == (0, "") and "verified 5 file(s)" in err and "0 corrupt" in err
    victim = _file(archive, small[first][0])
    victim.write_bytes(_same_size_twin(victim))
    # The readers' cheap check cannot tell: same size, same row count, a valid file.
    table = ArchiveTable.open(ArchiveLocation.resolve(archive))
    FileCheck(table.location).check(table.files())

    report = verify_archive(dsn, archive, clock=clock)
    assert [(Path(c.path).name, "SHA-256" in c.reason) for c in report.corrupt] == [(victim.name, True)]
    code, out, _err = _flowrun(dsn, archive, "verify", "--json")
    assert code == 1 and [Path(c["path"]).name for c in json.loads(out)["corrupt"]] == [victim.name]
    with pytest.raises(ArchiveCorrupt, match="SHA-256"):
        compact(dsn, archive, clock=clock)
    after = _by_day(archive)
    assert after[first] == small[first] and len(after[second]) == 1


def test_files_written_before_hashes_were_kept_are_trusted_on_first_scrub(
    small: dict[str, list[str]], dsn: str, archive: str, clock: FakeClock, db: Any
) -> None:
    db.execute("DELETE FROM archive_file_hashes")  # an archive written before revision 0007
    files = archive_checks.data_files(archive)
    broken = _file(archive, files[0])
    broken.write_bytes(broken.read_bytes()[:-10])

    first = verify_archive(dsn, archive, clock=clock)
    assert [Path(c.path).name for c in first.corrupt] == [broken.name]
    assert sorted(Path(uri).name for uri in first.trusted) == sorted(Path(f).name for f in files[1:])
    recorded = _hashes(db)
    assert recorded == {f: (_file(archive, f).stat().st_size, _sha256(_file(archive, f)), "scrub") for f in files[1:]}

    again = verify_archive(dsn, archive, clock=clock)
    assert again.trusted == () and [c.path for c in again.corrupt] == [c.path for c in first.corrupt]
    # From now on a flip inside a trusted file's pages is caught by its hash.
    trusted = _file(archive, files[1])
    start, end = _page_spans(trusted)[0]
    _flip(trusted, start + (end - start) // 2 - FLIPPED // 2)
    code, out, _err = _flowrun(dsn, archive, "verify")
    # One line per corrupt file on stdout, exit 1.
    assert code == 1 and sorted(Path(line.split(": ")[0]).name for line in out.splitlines()) == sorted(
        [broken.name, trusted.name]
    )


def test_a_merge_verifies_the_files_it_would_rewrite_and_leaves_a_damaged_partition_alone(
    small: dict[str, list[str]], store: RunStore, dsn: str, archive: str, clock: FakeClock, db: Any
) -> None:
    first, second = sorted(small)
    runs = dict(db.execute("SELECT id, started_at::date FROM flow_runs").fetchall())
    early = next(rid for rid, day in runs.items() if day.isoformat() == first.split("=")[1])
    late = next(rid for rid, day in runs.items() if day.isoformat() == second.split("=")[1])
    for rid in (early, late):  # re-exported: the merge would rewrite a file of each day
        store.record_step_start(rid, "cleanup", "task")
        store.record_step_complete(rid, "cleanup", "Succeeded", '{"freed": 1}')
    victim = _file(archive, small[first][1])
    healthy = victim.read_bytes()
    _flip(victim, _page_spans(victim)[0][0])
    damaged = {f: _file(archive, f).read_bytes() for f in small[first]}

    with pytest.raises(ArchiveCorrupt) as info:
        export_completed_runs(dsn, archive, clock=clock)
    assert victim.name in str(info.value)
    # The damaged day's files are as they were; its run waits in the outbox; the other day's run is archived.
    assert {f: _file(archive, f).read_bytes() for f in _by_day(archive)[first]} == damaged
    assert [r[0] for r in db.execute("SELECT run_id FROM export_outbox")] == [early]
    revisions = dict(db.execute("SELECT run_id, revision FROM archived_runs WHERE run_id IN (%s, %s)", (early, late)))
    live = dict(db.execute("SELECT id, revision FROM flow_runs WHERE id IN (%s, %s)", (early, late)))
    assert revisions[late] == live[late] and revisions[early] < live[early]

    victim.write_bytes(healthy)  # restored from a backup
    assert export_completed_runs(dsn, archive, clock=clock).runs == 1  # the run held back
    archive_checks.assert_exactly_once(db, archive)
    # Every file the merges and a compaction wrote has its hash; vacuumed files lost theirs.
    compact(dsn, archive, clock=clock, vacuum_after=timedelta(0))
    assert {p: (s, h) for p, (s, h, _by) in _hashes(db).items()} == {
        p: (_file(archive, p).stat().st_size, _sha256(_file(archive, p))) for p in archive_checks.data_files(archive)
    }
    assert verify_archive(dsn, archive, clock=clock).clean
