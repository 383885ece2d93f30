"""The database remembers its archive: a second location is refused, a deliberate move is one call."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from olap import RunAnalytics
from oltp.store import RunStore
from sync import ArchiveConflict, compact, export_completed_runs, relocate, verify_archive
from tests.conftest import TEMPLATE, FakeClock, PgServer
from tests.sync import archive_checks, workload


@pytest.fixture
def other_dsn(pg_server: PgServer) -> Iterator[str]:
    """A second migrated database on the same server (same schema name, another store)."""
    name = f"flowrun_other_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE)))
    yield pg_server.dsn_for(name)
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _tree(root: str) -> dict[str, int]:
    base = Path(root)
    return {str(p.relative_to(base)): p.stat().st_size for p in base.rglob("*") if p.is_file()} if base.exists() else {}


def test_a_second_location_is_refused_for_jobs_and_readers_naming_both(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any, tmp_path: Path
) -> None:
    workload.play(store, clock, 3)
    export_completed_runs(dsn, archive, clock=clock)
    assert archive_checks.state(db)[0] == str(Path(archive).resolve())  # type: ignore[index]
    before = _tree(archive)
    workload.play(store, clock, 2)

    for elsewhere in (str(tmp_path / "b"), f"{archive}/runs", str(tmp_path / "home" / "archive")):
        for job in (
            lambda: export_completed_runs(dsn, elsewhere, clock=clock),  # noqa: B023 (called at once)
            lambda: compact(dsn, elsewhere, clock=clock),  # noqa: B023
        ):
            with pytest.raises(ArchiveConflict) as info:
                job()
            assert str(Path(archive).resolve()) in str(info.value) and elsewhere in str(info.value)
        reader = RunAnalytics(dsn, elsewhere)
        with pytest.raises(ArchiveConflict, match="move-archive"):
            reader.get_runs()
        reader.close()
        assert not Path(elsewhere, "runs", "_delta_log").exists()
    assert _tree(archive) == before  # nothing touched
    assert db.execute("SELECT count(*) FROM export_outbox").fetchone() == (2,)


def test_an_archive_of_another_database_or_inside_its_table_is_refused_untouched(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, other_dsn: str
) -> None:
    workload.play(store, clock, 3)
    export_completed_runs(dsn, archive, clock=clock)
    before = _tree(archive)
    with RunStore(other_dsn, clock=clock, migrate_schema=False) as other:
        workload.play(other, clock, 2)
    for job in (lambda: export_completed_runs(other_dsn, archive), lambda: compact(other_dsn, archive)):
        with pytest.raises(ArchiveConflict, match="did not write"):
            job()
    # Inside the other archive's table, a first export would be deleted by that table's full vacuum.
    for inside in (f"{archive}/runs", f"{archive}/runs/_search/x"):
        with pytest.raises(ArchiveConflict, match="of another archive, whose compaction"):
            export_completed_runs(other_dsn, inside, clock=clock)
    assert _tree(archive) == before


def test_a_moved_archive_is_recorded_by_one_call_and_the_old_place_refused(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any, tmp_path: Path
) -> None:
    ids = workload.play(store, clock, 4)
    export_completed_runs(dsn, archive, batch_size=2, clock=clock)
    moved = str(tmp_path / "moved")
    with pytest.raises(ArchiveConflict, match="missing"):
        relocate(dsn, moved)  # nothing there yet
    shutil.copytree(archive, moved)

    assert relocate(dsn, moved) == str(Path(archive).resolve())
    workload.reopen_and_complete(store, clock, ids[0])
    assert export_completed_runs(dsn, moved, clock=clock).runs == 1
    archive_checks.assert_exactly_once(db, moved)
    with pytest.raises(ArchiveConflict):
        export_completed_runs(dsn, archive, clock=clock)
    with RunAnalytics(dsn, moved) as reader:
        assert {r.id for r in reader.get_runs()} == set(ids)


def test_an_older_copy_put_back_is_refused_naming_both_versions(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any, tmp_path: Path
) -> None:
    workload.play(store, clock, 2)
    export_completed_runs(dsn, archive, clock=clock)
    backup = tmp_path / "backup"
    shutil.copytree(archive, backup)  # version 0
    workload.play(store, clock, 2)
    export_completed_runs(dsn, archive, clock=clock)  # version 1, recorded
    shutil.rmtree(archive)
    shutil.copytree(backup, archive)  # restored from the copy taken before it
    before = _tree(archive)

    expected = "is at version 0, older than the version 1 this database recorded"
    for job in (
        lambda: export_completed_runs(dsn, archive, clock=clock),
        lambda: compact(dsn, archive, clock=clock),
        lambda: verify_archive(dsn, archive),
    ):
        with pytest.raises(ArchiveConflict, match=expected):
            job()
    with RunAnalytics(dsn, archive) as reader:
        with pytest.raises(ArchiveConflict, match=expected):
            reader.get_runs()
        with pytest.raises(ArchiveConflict, match=expected):
            reader.sql("SELECT count(*) FROM runs")
    # "Moving" to where the archive already lives: no other place to copy it from is named.
    with pytest.raises(ArchiveConflict, match=f"{expected}: put back a copy of the archive made after") as info:
        relocate(dsn, archive)
    assert "copy the whole archive from" not in str(info.value)
    with pytest.raises(
        ArchiveConflict, match=re.escape(f"copy the whole archive from {Path(archive).resolve()} again")
    ):
        relocate(dsn, backup)  # an older copy elsewhere: the recorded location is where a current one is
    assert _tree(archive) == before


def test_data_files_outside_the_log_are_vacuumed_after_the_retention_and_foreign_files_kept(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    workload.play(store, clock, 2)
    export_completed_runs(dsn, archive, clock=clock)
    readme = Path(archive) / "README.md"
    readme.write_text("mine")
    partition = next(Path(archive, "runs").glob("started_date=*"))
    orphan = partition / "part-00000-crashed-write.zstd.parquet"  # a write killed before its commit
    shutil.copy(next(partition.glob("*.parquet")), orphan)

    compact(dsn, archive, clock=clock)  # within the retention window: kept
    assert orphan.exists()
    compact(dsn, archive, clock=clock, vacuum_after=timedelta(0))

    assert not orphan.exists()
    assert readme.read_text() == "mine"
    archive_checks.assert_exactly_once(db, archive)


def test_an_archive_only_reader_of_the_table_directory_is_refused(
    store: RunStore, clock: FakeClock, dsn: str, archive: str
) -> None:
    # ``<archive>/runs`` holds no ``runs`` table: without the check every answer was silently empty.
    workload.play(store, clock, 2)
    export_completed_runs(dsn, archive, clock=clock)
    for inside in (f"{archive}/runs", f"{archive}/runs/_search"):
        with RunAnalytics(None, inside) as reader, pytest.raises(ArchiveConflict, match="not an archive"):
            reader.get_statistics()
    with RunAnalytics(None, archive) as reader:
        assert len(reader.get_runs()) == 2
