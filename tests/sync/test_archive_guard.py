"""An archive belongs to one database and schema; leftovers are removed, other files are not."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.fs as pafs
import pytest
from psycopg import sql

from oltp.store import RunStore
from sync import ArchiveConflict, compact, export_completed_runs
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


def test_an_archive_of_another_database_is_refused_untouched(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, other_dsn: str
) -> None:
    workload.play(store, clock, 3)
    export_completed_runs(dsn, archive, clock=clock)
    marker = json.loads((Path(archive) / "_flowrun_archive.json").read_text())
    assert marker["schema"] == "flowrun" and marker["database"] == dsn.split("dbname=")[1].split()[0]
    files = archive_checks.all_files(archive)

    for job in (lambda: export_completed_runs(other_dsn, archive), lambda: compact(other_dsn, archive)):
        with pytest.raises(ArchiveConflict, match="belongs to database"):
            job()
    assert archive_checks.all_files(archive) == files


def test_parquet_files_without_a_marker_are_refused(dsn: str, archive: str) -> None:
    stray = Path(archive) / "runs" / "started_date=2026-01-01" / "someone-elses.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1")
    with pytest.raises(ArchiveConflict, match=r"no _flowrun_archive\.json"):
        export_completed_runs(dsn, archive)
    assert stray.exists()


def test_leftovers_are_removed_and_foreign_files_kept(
    store: RunStore, clock: FakeClock, dsn: str, archive: str, db: Any
) -> None:
    workload.play(store, clock, 2)
    export_completed_runs(dsn, archive, clock=clock)
    part = Path(archive) / "steps" / "started_date=2026-03-01"
    part.mkdir(parents=True, exist_ok=True)
    (part / ".20260301T000000000000Z-dead.parquet.tmp").write_bytes(b"half")
    (part / "20260301T000000000000Z-dead.parquet").write_bytes(b"PAR1 unlisted")
    (part / "_SUCCESS").write_text("")
    (Path(archive) / "README.md").write_text("mine")

    export_completed_runs(dsn, archive, clock=clock)

    assert (part / "_SUCCESS").exists() and (Path(archive) / "README.md").exists()
    assert not (part / "20260301T000000000000Z-dead.parquet").exists()
    assert not (part / ".20260301T000000000000Z-dead.parquet.tmp").exists()
    archive_checks.assert_exactly_once(db, archive)


def test_the_archive_can_live_on_another_pyarrow_filesystem(
    store: RunStore, clock: FakeClock, dsn: str, tmp_path: Path, db: Any
) -> None:
    # Not the local filesystem class: no fsync, files are moved into place (as on an object store).
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    workload.play(store, clock, 4)
    report = export_completed_runs(dsn, "bucket/archive", filesystem=fs, batch_size=3, clock=clock)
    assert report.runs == 4
    workload.reopen_and_complete(store, clock, archive_checks.run_ids(db).pop())
    export_completed_runs(dsn, "bucket/archive", filesystem=fs, clock=clock)
    compact(dsn, "bucket/archive", filesystem=fs, clock=clock)
    archive_checks.assert_exactly_once(db, str(tmp_path / "bucket" / "archive"))
