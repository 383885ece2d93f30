"""The archive on a real S3 server (moto on 127.0.0.1): answers identical before and after every job.

Writer and readers reach the bucket through the same storage options; the data
files are read through pyarrow's S3 filesystem. A lean version of the oracle
suite (which runs on a local archive): the same questions asked before export,
after export, after an archived run is reopened and re-exported, after prune,
after compaction with an immediate vacuum, and of a reader of the archive alone,
must give the same answers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from olap import RunAnalytics
from olap.archive import ArchiveReader
from oltp.store import RunStore
from sync import compact, export_completed_runs, prune, verify_archive
from sync.archive_location import ArchiveLocation
from sync.archive_table import ArchiveTable
from tests.conftest import FakeClock
from tests.fixtures.s3_server import S3Server
from tests.sync import workload


def _answers(reader: RunAnalytics, clock: FakeClock) -> tuple[Any, ...]:
    since = clock.now - timedelta(days=10)
    return (
        reader.get_statistics(),
        reader.get_runs_page(take=100),
        reader.get_runs_page(search="BOOM", take=100),
        reader.get_run_timeseries("day", since, clock.now),
        reader.sql("SELECT count(*) AS n, count(DISTINCT step_key) AS k FROM attempts").rows(),
    )


def test_answers_are_identical_before_and_after_every_job_on_s3(
    store: RunStore, clock: FakeClock, dsn: str, db: Any, s3_server: S3Server, s3_prefix: str
) -> None:
    options = s3_server.storage_options()
    ids = workload.play(store, clock, 8, hours_apart=7)
    workload.reopen_and_complete(store, clock, ids[0])
    union = RunAnalytics(dsn, s3_prefix, clock=clock, storage_options=options)
    before = _answers(union, clock)

    assert export_completed_runs(dsn, s3_prefix, batch_size=3, clock=clock, storage_options=options).runs == 8
    assert _answers(union, clock) == before

    # An archived run reopened and completed again: its new revision replaces the archived row on S3
    # (a Delta merge there), so the archive alone never shows two versions of it.
    workload.reopen_and_complete(store, clock, ids[1], status="Failed")
    before = _answers(union, clock)
    assert export_completed_runs(dsn, s3_prefix, clock=clock, storage_options=options).runs == 1
    assert _answers(union, clock) == before
    with RunAnalytics(None, s3_prefix, clock=clock, storage_options=options) as files_only:
        assert files_only.get_run_detail(ids[1]) == store.get_run_detail(ids[1])
        assert files_only.sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM runs").rows() == [(8, 8)]
    clock.advance(days=1)
    before = _answers(union, clock)  # the same runs, a day later ("today" moved)
    detail = store.get_run_detail(ids[0])
    assert prune(dsn, timedelta(hours=1), now=clock.now) == 8
    assert db.execute("SELECT count(*) FROM flow_runs").fetchone() == (0,)
    assert _answers(union, clock) == before  # everything now read from S3
    assert union.get_run_detail(ids[0]) == detail

    report = compact(dsn, s3_prefix, clock=clock, vacuum_after=timedelta(0), storage_options=options)
    assert report.partitions > 0 and report.files_vacuumed > 0
    # Every file on S3 is the one written: its SHA-256 was recorded by the job that wrote it.
    scrub = verify_archive(dsn, s3_prefix, clock=clock, storage_options=options)
    assert scrub.clean and scrub.files > 0 and scrub.trusted == ()
    assert _answers(union, clock) == before
    with RunAnalytics(None, s3_prefix, clock=clock, storage_options=options) as files_only:
        assert _answers(files_only, clock) == before
        assert files_only.get_run_detail(ids[0]) == detail
    # The searches above were answered by the files' search indexes, on S3 beside the data files.
    location = ArchiveLocation.resolve(s3_prefix, options)
    files = ArchiveTable.open(location).files()
    answered, scanned = ArchiveReader(location).search(files, b"boom")
    assert scanned == [] and len(answered) == len(files)
    union.close()
