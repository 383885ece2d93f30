"""Upgrading a v1 Parquet archive: refused until upgraded, then every answer as before, pruned runs included.

The v1 archive is built the way v1 built it (``tests.sync.v1_writer``): two export
batches (the second re-exports two reopened runs, leaving superseded copies in the
first), duplicates of the second batch as a killed compaction left them, a runs
file of a killed export, a prune, a third batch of runs that stay in PostgreSQL,
then what migration 0006 does. The truth is what the store answered before the
prune, from PostgreSQL alone (the invariance rule: v1's readers gave the same),
and DuckDB over the v1 files with v1's dedup rule agrees with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import duckdb
import psycopg
import psycopg.conninfo
import pyarrow.fs as pafs
import pytest

from flowrun import ArchiveConflict, ArchiveCorrupt, ArchiveUpgradeRequired, FlowRunStore
from olap.analytics import RunAnalytics
from oltp.records import FlowRunRecord, Granularity, RunsPage, RunTimeseriesBucket
from oltp.store import RunStore
from sync import ArchiveLocation, compact, export_completed_runs, prune, upgrade_archive
from tests.conftest import FakeClock, PgServer, new_database
from tests.fixtures.s3_server import S3Server
from tests.flowrun.conftest import FLOWRUN, clean_env
from tests.sync import archive_checks, v1_writer
from tests.sync.killable import Spares
from tests.sync.workload import FLOWS, play, reopen_and_complete

STATUSES = ["Running", "Succeeded", "Failed", "Cancelled", "TimedOut", "Skipped"]
SEARCHES = ["boom", "ROWS", "flow «1»", "job-1", "second", "🚀"]
START = datetime(2026, 3, 1, tzinfo=UTC)


class Reader(Protocol):
    def get_statistics(self) -> Any: ...
    def get_runs_page(
        self,
        flow_id: uuid.UUID | None = None,
        status: str | None = None,
        skip: int = 0,
        take: int = 50,
        search: str | None = None,
    ) -> RunsPage: ...
    def get_runs(self, flow_id: uuid.UUID | None = None, skip: int = 0, take: int = 50) -> list[FlowRunRecord]: ...
    def get_derived_runs(self, source_run_id: uuid.UUID) -> list[FlowRunRecord]: ...
    def get_run_timeseries(
        self, granularity: Granularity | str, since: datetime, until: datetime, flow_id: uuid.UUID | None = None
    ) -> list[RunTimeseriesBucket]: ...


@dataclass
class V1World:
    """A database and its v1 archive as an upgraded store finds them, and the answers they must keep."""

    dsn: str
    archive: Path
    clock: FakeClock
    ids: list[uuid.UUID]  # every run; the first 18 were pruned into the v1 archive
    shown: list[uuid.UUID]  # runs whose details are compared: reopened, plain, derived, live
    truth: dict[str, Any]
    v1_files: int


def answers(reader: Reader, details: dict[uuid.UUID, FlowRunRecord | None], until: datetime) -> dict[str, Any]:
    """Every reporting question, with the runs' details (from ``get_run_detail``)."""
    return {
        "statistics": reader.get_statistics(),
        "page": reader.get_runs_page(take=1000),
        "pages": [reader.get_runs_page(skip=skip, take=7) for skip in (0, 7, 21)],
        "by_status": {s: reader.get_runs_page(status=s, take=1000).total_count for s in STATUSES},
        "search": {t: [r.id for r in reader.get_runs_page(search=t, take=1000).runs] for t in SEARCHES},
        "flow": reader.get_runs(flow_id=FLOWS[1], take=1000),
        "derived": {rid: reader.get_derived_runs(rid) for rid in list(details)[:4]},
        "hours": reader.get_run_timeseries(Granularity.HOUR, START, until),
        "days": reader.get_run_timeseries("day", START, until, flow_id=FLOWS[0]),
        "details": details,
    }


def assert_same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal answers; percentiles equal up to floating-point rounding (1e-9 relative)."""
    for key in ("hours", "days"):
        got, want = actual.pop(key), expected[key]
        assert len(got) == len(want)
        for a, e in zip(got, want, strict=True):
            assert _counts(a) == _counts(e)
            for x, y in zip(_percentiles(a), _percentiles(e), strict=True):
                assert (x is None) == (y is None) and (x is None or y is None or math.isclose(x, y, rel_tol=1e-9))
    assert actual == {k: v for k, v in expected.items() if k not in ("hours", "days")}


def _counts(bucket: RunTimeseriesBucket) -> RunTimeseriesBucket:
    return dataclasses.replace(bucket, p50_duration_ms=None, p95_duration_ms=None, p99_duration_ms=None)


def _percentiles(bucket: RunTimeseriesBucket) -> tuple[float | None, ...]:
    return bucket.p50_duration_ms, bucket.p95_duration_ms, bucket.p99_duration_ms


def store_answers(world: V1World) -> dict[str, Any]:
    """The answers of a store opened on the world's database and archive."""
    with FlowRunStore.open(dsn=world.dsn, archive=world.archive, clock=world.clock, migrate=False) as store:
        details = {rid: store.get_run_detail(rid) for rid in world.shown}
        return answers(store, details, world.clock() + timedelta(days=1))


def _dup_batch(archive: Path, stem: str, clock: FakeClock) -> None:
    """Copies of a batch's files under a compacted name: a v1 compaction killed before its manifest swap."""
    copy = v1_writer.batch_id(clock(), prefix="compacted-")
    for path in archive.glob(f"*/started_date=*/{stem}.parquet"):
        shutil.copy(path, path.with_name(f"{copy}.parquet"))


@pytest.fixture(scope="module")
def spares() -> Iterator[Spares]:
    """Job processes for the kill test, started while the v1 world is built."""
    ready = Spares(ahead=1)
    yield ready
    ready.close()


@pytest.fixture(scope="module")
def v1_template(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory, spares: Spares) -> Iterator[V1World]:
    """The v1 world built once, in a database each test clones (with a copy of the archive)."""
    with new_database(pg_server, "flowrun_v1") as (_, dsn):
        yield _build(dsn, tmp_path_factory.mktemp("v1") / "archive")


@pytest.fixture
def world(v1_template: V1World, pg_server: PgServer, tmp_path: Path) -> Iterator[V1World]:
    template = str(psycopg.conninfo.conninfo_to_dict(v1_template.dsn)["dbname"])
    with new_database(pg_server, "flowrun_v1", template) as (_, dsn):
        archive = tmp_path / "archive"
        shutil.copytree(v1_template.archive, archive)
        v1_writer.write_marker(dsn, archive)  # the marker v1 wrote names its database by oid: this clone's
        yield dataclasses.replace(v1_template, dsn=dsn, archive=archive, clock=FakeClock(v1_template.clock()))


def _build(dsn: str, archive: Path) -> V1World:
    clock = FakeClock(START)
    with RunStore(dsn, clock=clock, migrate_schema=False, max_connections=2) as store:
        ids = play(store, clock, 24, hours_apart=7)
        ids += play(store, clock, 2, complete=False)
        v1_writer.write_marker(dsn, archive)
        v1_writer.export(dsn, archive, ids[:18], clock.advance(minutes=5))
        for rid in (ids[0], ids[7]):
            reopen_and_complete(store, clock, rid, "Failed")
        second = v1_writer.export(dsn, archive, [ids[0], ids[7]], clock.advance(minutes=5))
        _dup_batch(archive, second, clock)
        shown = [ids[n] for n in (3, 8, 0, 7, 9, 17, 18, 21, 24)]  # sources of derived runs first
        details: dict[uuid.UUID, FlowRunRecord | None] = {rid: store.get_run_detail(rid) for rid in shown}
    with RunAnalytics(dsn, None, clock=clock) as live:
        truth = answers(live, details, clock() + timedelta(days=1))
    assert prune(dsn, timedelta(0), now=clock()) == 18
    v1_writer.export(dsn, archive, ids[18:21], clock())
    v1_writer.write_files(dsn, archive, [ids[21]], clock(), kinds=("runs",))  # an export killed after one file
    v1_writer.after_migration(dsn)
    files = sum(1 for p in archive.rglob("*") if p.is_file())
    found = V1World(dsn, archive, clock, ids, shown, truth, files)
    _v1_agrees_with_truth(found)
    return found


def _v1_agrees_with_truth(world: V1World) -> None:
    """v1's reading rule over its files (newest revision per run) plus the live runs gives the truth's counts."""
    with psycopg.connect(world.dsn) as conn:
        live = conn.execute("SELECT id::text, status FROM flowrun.flow_runs").fetchall()
    con = duckdb.connect()
    con.execute("CREATE TABLE live (id UUID, status VARCHAR)")
    con.executemany("INSERT INTO live VALUES (?, ?)", live)
    counted = con.sql(
        f"""SELECT status, count(*) FROM (
              SELECT id, status FROM read_parquet('{world.archive}/runs/*/*.parquet')
              WHERE id NOT IN (SELECT id FROM live)
              QUALIFY row_number() OVER (PARTITION BY id ORDER BY revision DESC) = 1
              UNION ALL SELECT id, status FROM live) GROUP BY status"""
    ).fetchall()
    expected = {s: n for s, n in world.truth["by_status"].items() if n}
    assert dict(counted) == expected and sum(expected.values()) == len(world.ids)


def _tree(archive: Path) -> dict[str, str]:
    files = (p for p in archive.rglob("*") if p.is_file())
    return {str(p.relative_to(archive)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _bookkeeping(dsn: str) -> tuple[int, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM flowrun.export_outbox), (SELECT count(*) FROM flowrun.archived_runs),"
            " (SELECT count(*) FROM flowrun.archive_state), (SELECT count(*) FROM flowrun.archive_pending)"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_upgrade_keeps_every_answer_and_the_runs_v1_had_pruned(world: V1World) -> None:
    with FlowRunStore.open(dsn=world.dsn, archive=world.archive, clock=world.clock, migrate=False) as store:
        report = store.upgrade_archive(batch_size=5)
        # 18 pruned runs converted; ids[18:22] are in PostgreSQL and left to the export.
        assert (report.runs, report.skipped, report.lost) == (18, 4, 0) and report.commits >= 4
        assert report.files == world.v1_files and report.retired_to == f"{world.archive}/_v1"
        again = store.upgrade_archive()
        assert (again.runs, again.files, again.retired_to) == (0, 0, "")
    assert_same(store_answers(world), world.truth)
    assert sorted(p.name for p in world.archive.iterdir()) == ["_v1", "runs"]
    location = ArchiveLocation.resolve(world.archive)
    files = archive_checks.data_files(str(world.archive))
    indexes = [world.archive / "runs" / location.search_index_path(path) for path in files]
    assert indexes and all(path.is_file() for path in indexes)  # searches need not scan the converted runs
    assert sum(1 for p in (world.archive / "_v1").rglob("*") if p.is_file()) == world.v1_files

    assert export_completed_runs(world.dsn, world.archive, clock=world.clock).runs == 6
    assert prune(world.dsn, timedelta(0), now=world.clock()) == 6
    compact(world.dsn, world.archive, clock=world.clock, vacuum_after=timedelta(0))
    assert_same(store_answers(world), world.truth)
    completed = len(world.ids) - 2
    assert archive_checks.query(str(world.archive), "runs", "SELECT count(*), count(DISTINCT id) FROM t") == [
        (completed, completed)
    ]
    assert sum(1 for p in (world.archive / "_v1").rglob("*") if p.is_file()) == world.v1_files


def test_jobs_and_readers_refuse_a_v1_archive_and_change_nothing(world: V1World) -> None:
    files, books = _tree(world.archive), _bookkeeping(world.dsn)
    with pytest.raises(ArchiveUpgradeRequired, match="upgrade-archive"):
        export_completed_runs(world.dsn, world.archive, clock=world.clock)
    with pytest.raises(ArchiveUpgradeRequired, match="upgrade-archive"):
        compact(world.dsn, world.archive, clock=world.clock, vacuum_after=timedelta(0))
    with FlowRunStore.open(dsn=world.dsn, archive=world.archive, clock=world.clock, migrate=False) as store:
        for call in (store.get_statistics, lambda: store.get_run_detail(world.ids[3]), store.runs):
            with pytest.raises(ArchiveUpgradeRequired):
                call()
    with RunAnalytics(None, world.archive) as archive_only, pytest.raises(ArchiveUpgradeRequired):
        archive_only.get_runs_page()
    done = subprocess.run(
        [str(FLOWRUN), "--dsn", world.dsn, "--archive", str(world.archive), "compact", "--vacuum-after", "0h"],
        env=clean_env(FLOWRUN_HOME=str(world.archive.parent / "home")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "flowrun upgrade-archive" in done.stderr
    assert (_tree(world.archive), _bookkeeping(world.dsn)) == (files, books)

    # With the marker and the v1-only directories moved away by hand, an export creates the table next to the
    # v1 runs files; compaction still refuses to vacuum them, then the upgrade brings them in.
    aside = world.archive.parent / "aside"
    aside.mkdir()
    for name in ("_flowrun_archive.json", "steps", "attempts"):
        (world.archive / name).rename(aside / name)
    assert export_completed_runs(world.dsn, world.archive, clock=world.clock).runs == 6
    v1_runs = {p for p in _tree(world.archive) if v1_writer.is_v1_file(p)}
    with pytest.raises(ArchiveUpgradeRequired, match="upgrade-archive"):
        compact(world.dsn, world.archive, clock=world.clock, vacuum_after=timedelta(0))
    assert v1_runs <= set(_tree(world.archive))
    for name in ("_flowrun_archive.json", "steps", "attempts"):
        (aside / name).rename(world.archive / name)
    report = upgrade_archive(world.dsn, world.archive, clock=world.clock)
    assert (report.runs, report.skipped, report.lost) == (18, 4, 0)
    assert_same(store_answers(world), world.truth)


def test_upgrade_killed_anywhere_finishes_exactly_once_when_run_again(
    spares: Spares, world: V1World, tmp_path: Path
) -> None:
    # An unreadable v1 file stops the upgrade with ArchiveCorrupt naming its partition, before anything moves.
    damaged = min(world.archive.glob("attempts/started_date=*/*.parquet"))
    good = damaged.read_bytes()
    damaged.write_bytes(good[: len(good) // 2])
    with pytest.raises(ArchiveCorrupt, match=f"attempts/{damaged.parent.name}/"):
        upgrade_archive(world.dsn, world.archive, clock=world.clock)
    damaged.write_bytes(good)
    assert not (world.archive / "_v1").exists()

    now = world.clock().isoformat()
    stages = ["delta_committed:2", "pending_written:2", "upgrade_file_moved:3"]
    for stage in stages:
        child = spares.take(stage, tmp_path)  # a process that imported the library ahead
        child.run("upgrade", world.dsn, str(world.archive), now, 5)
        child.kill_when_paused()
        with RunAnalytics(world.dsn, world.archive) as reader, pytest.raises(ArchiveUpgradeRequired):
            reader.get_statistics()  # the marker goes last: readers refuse until the upgrade is done
        runs = archive_checks.query(str(world.archive), "runs", "SELECT count(*), count(DISTINCT id) FROM t")
        assert not runs or runs[0][0] == runs[0][1], stage
    report = upgrade_archive(world.dsn, world.archive, clock=world.clock)
    assert report.runs == 0 and report.retired_to  # every run was in the table already; the files are moved
    assert_same(store_answers(world), world.truth)
    assert archive_checks.query(str(world.archive), "runs", "SELECT count(*), count(DISTINCT id) FROM t") == [(18, 18)]
    with psycopg.connect(world.dsn) as conn:
        batches = conn.execute("SELECT count(*) FROM flowrun.archived_runs WHERE batch > 0").fetchone()
    assert batches == (18,)
    assert sum(1 for p in (world.archive / "_v1").rglob("*") if p.is_file()) == world.v1_files


def test_runs_whose_v1_run_files_a_vacuum_took_are_reported_lost(world: V1World) -> None:
    # A marker naming another database (an archive of another store) is refused first, changing nothing.
    marker = world.archive / "_flowrun_archive.json"
    ours = marker.read_text()
    marker.write_text(json.dumps({**json.loads(ours), "database_oid": 1}))
    files = _tree(world.archive)
    with pytest.raises(ArchiveConflict, match="belongs to database"):
        upgrade_archive(world.dsn, world.archive, clock=world.clock)
    assert _tree(world.archive) == files and _bookkeeping(world.dsn)[2] == 0  # no archive_state either
    marker.write_text(ours)

    # What a compaction by a version without the refusal did: the v1 run files of a date are gone.
    first = min(p.parent.name for p in world.archive.glob("runs/started_date=*/*.parquet"))
    gone = list(world.archive.glob(f"runs/{first}/*.parquet"))
    con = duckdb.connect()
    taken = con.sql(f"SELECT count(DISTINCT id) FROM read_parquet({[str(p) for p in gone]})").fetchall()[0][0]
    for path in gone:
        path.unlink()
    report = upgrade_archive(world.dsn, world.archive, clock=world.clock)
    assert taken > 0 and (report.runs, report.lost) == (18 - taken, taken)
    assert list((world.archive / "_v1" / "steps").glob(f"{first}/*.parquet"))  # their steps are kept


def test_upgrade_on_object_storage(world: V1World, s3_server: S3Server, s3_prefix: str) -> None:
    options = s3_server.storage_options()
    fs = s3_server.filesystem()
    pafs.copy_files(str(world.archive), s3_prefix.removeprefix("s3://"), destination_filesystem=fs)
    with RunAnalytics(world.dsn, s3_prefix, storage_options=options) as reader, pytest.raises(ArchiveUpgradeRequired):
        reader.get_statistics()
    with pytest.raises(ArchiveUpgradeRequired):
        export_completed_runs(world.dsn, s3_prefix, clock=world.clock, storage_options=options)
    report = upgrade_archive(world.dsn, s3_prefix, clock=world.clock, storage_options=options)
    assert (report.runs, report.skipped, report.lost, report.files) == (18, 4, 0, world.v1_files)
    listed = fs.get_file_info(pafs.FileSelector(s3_prefix.removeprefix("s3://"), recursive=True))
    left = [i.path for i in listed if i.type == pafs.FileType.File and "/_v1/" not in i.path]
    assert left and all("/runs/" in path and not v1_writer.is_v1_file(path.split("/", 2)[2]) for path in left)
    with FlowRunStore.open(
        dsn=world.dsn, archive=s3_prefix, clock=world.clock, migrate=False, storage_options=options
    ) as store:
        # The full battery runs on the local archive; here the answers that read every archived run.
        assert store.get_runs_page(take=1000) == world.truth["page"]
        assert store.get_statistics() == world.truth["statistics"]
        assert store.get_run_detail(world.ids[0]) == world.truth["details"][world.ids[0]]
