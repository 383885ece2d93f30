"""An archive whose object store cannot be reached: ``ArchiveUnavailable`` naming the URI, nothing written.

The store is an S3 endpoint on a closed port of 127.0.0.1 (bound to find a free port, then closed), so
every request is refused at once; delta-rs is told not to retry, so each test takes about a second.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowrun.store import FlowRunStore
from olap import RunAnalytics
from oltp.store import RunStore
from sync import export_completed_runs
from sync.archive_location import ArchiveLocation
from sync.archive_table import ArchiveTable
from sync.errors import ArchiveUnavailable
from tests.conftest import FakeClock
from tests.fixtures.s3_server import closed_endpoint
from tests.sync import workload

ARCHIVE = "s3://nobucket/archive"
SECRET = "not-a-real-secret-0123456789"


def unreachable_options() -> dict[str, str]:
    """Storage options for the closed endpoint; delta-rs (object_store) gives up at the first refusal."""
    return {
        "AWS_ENDPOINT_URL": closed_endpoint(),
        "AWS_ACCESS_KEY_ID": "flowrun-test",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "max_retries": "0",
    }


def _assert_names_the_archive(error: ArchiveUnavailable) -> None:
    message = str(error)
    assert message.startswith(f"the archive {ARCHIVE} is unavailable: "), message
    assert "\n" not in message and "\x1b" not in message
    assert SECRET not in message
    assert isinstance(error.__cause__, OSError)


def _counts(db: Any) -> tuple[int, ...]:
    row = db.execute(
        "SELECT (SELECT count(*) FROM flowrun.flow_runs), (SELECT count(*) FROM flowrun.export_outbox),"
        " (SELECT count(*) FROM flowrun.archive_state)"
    ).fetchone()
    return tuple(row)


def test_an_archive_only_reader_raises_archive_unavailable() -> None:
    with (
        RunAnalytics(None, ARCHIVE, storage_options=unreachable_options()) as reader,
        pytest.raises(ArchiveUnavailable) as raised,
    ):
        reader.get_statistics()
    _assert_names_the_archive(raised.value)


def test_opening_the_table_raises_archive_unavailable() -> None:
    # delta-rs's own client, past the v1 check (pyarrow's): the other place a job or reader first reaches.
    location = ArchiveLocation.resolve(ARCHIVE, unreachable_options())
    with pytest.raises(ArchiveUnavailable) as raised:
        ArchiveTable.open(location)
    _assert_names_the_archive(raised.value)
    assert "Connection refused" in str(raised.value)


def test_a_reader_and_an_export_with_a_database_write_nothing(
    store: RunStore, clock: FakeClock, dsn: str, db: Any
) -> None:
    workload.play(store, clock, 3)
    before = _counts(db)
    options = unreachable_options()
    with (
        FlowRunStore.open(dsn, ARCHIVE, clock=clock, migrate=False, storage_options=options) as front,
        pytest.raises(ArchiveUnavailable) as raised,
    ):
        front.get_statistics()
    _assert_names_the_archive(raised.value)
    with pytest.raises(ArchiveUnavailable) as raised:
        export_completed_runs(dsn, ARCHIVE, clock=clock, storage_options=options)
    _assert_names_the_archive(raised.value)
    assert _counts(db) == before
