"""Edge cases of the reporting contract: arguments, windows, empty stores, ties, orphans, threads."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sync
from olap import RunAnalytics
from oltp.errors import (
    InvalidArgument,
    InvalidPaging,
    InvalidStatus,
    InvalidTimeRange,
    NaiveDatetime,
    StoreUnavailable,
)
from oltp.records import DashboardStatistics, Granularity, RunsPage
from oltp.store import RunStore
from tests.conftest import FakeClock
from tests.olap import archive_writer
from tests.olap.oracle import SEARCHES
from tests.olap.workload import START, expected_page, play

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UNREACHABLE = "postgresql://nobody@/nodb?host=/nonexistent-socket-dir"


@pytest.fixture
def offline() -> RunAnalytics:
    """A reader whose database cannot be reached: only validation can answer."""
    return RunAnalytics(UNREACHABLE, None)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda a: a.get_run_timeseries("hour", T0.replace(tzinfo=None), T0), NaiveDatetime),
        (lambda a: a.get_run_timeseries("hour", T0, T0.replace(tzinfo=None)), NaiveDatetime),
        (lambda a: a.get_run_timeseries("hour", T0, T0 - timedelta(microseconds=1)), InvalidTimeRange),
        (lambda a: a.get_run_timeseries("hour", T0, T0 + timedelta(hours=10_001)), InvalidTimeRange),
        (lambda a: a.get_run_timeseries("day", T0, T0 + timedelta(days=10_000, hours=1)), InvalidTimeRange),
        (lambda a: a.get_run_timeseries("week", T0, T0 + timedelta(days=1)), InvalidArgument),
        (lambda a: a.get_run_timeseries("Hour", T0, T0 + timedelta(days=1)), InvalidArgument),
        (lambda a: a.get_run_timeseries("hour", "2026-03-01", T0), InvalidArgument),
        (lambda a: a.get_run_timeseries("hour", T0, T0 + timedelta(days=1), flow_id="nope"), InvalidArgument),
        (lambda a: a.get_runs_page(status="Succeded"), InvalidStatus),
        (lambda a: a.get_runs_page(status=""), InvalidStatus),
        (lambda a: a.get_runs_page(status=3), InvalidStatus),
        (lambda a: a.get_runs_page(take=0), InvalidPaging),
        (lambda a: a.get_runs_page(take=1001), InvalidPaging),
        (lambda a: a.get_runs_page(skip=-1), InvalidPaging),
        (lambda a: a.get_runs(take=True), InvalidPaging),
        (lambda a: a.get_runs(skip=1.5), InvalidPaging),
        (lambda a: a.get_runs(flow_id=42), InvalidArgument),
        (lambda a: a.get_runs_page(search=7), InvalidArgument),
        (lambda a: a.get_runs_page(search="a\x00b"), InvalidArgument),
        (lambda a: a.get_derived_runs(None), InvalidArgument),
        (lambda a: a.get_run_detail("not-a-uuid"), InvalidArgument),
        (lambda a: a.sql("   "), InvalidArgument),
    ],
)
def test_bad_arguments_raise_before_any_read(
    offline: RunAnalytics, call: Callable[[RunAnalytics], object], error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        call(offline)
    assert isinstance(info.value, ValueError)


def test_an_empty_window_needs_no_database(offline: RunAnalytics) -> None:
    assert offline.get_run_timeseries("hour", T0, T0) == []
    shifted = T0.astimezone(timezone(timedelta(hours=-7)))
    assert offline.get_run_timeseries(Granularity.DAY, shifted, T0) == []


def test_an_unreachable_database_is_store_unavailable(offline: RunAnalytics) -> None:
    with pytest.raises(StoreUnavailable):
        offline.get_runs()


def test_a_reader_needs_somewhere_to_read() -> None:
    with pytest.raises(InvalidArgument):
        RunAnalytics(None, None)


def test_an_empty_store_answers_with_zeros(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    for reader in (
        RunAnalytics(dsn, str(tmp_path / "nothing-yet"), clock=clock),
        RunAnalytics(dsn, None, clock=clock),
        RunAnalytics(None, str(tmp_path / "nothing-yet"), clock=clock),
    ):
        assert reader.get_runs() == []
        assert reader.get_runs_page(status="running", search="x") == RunsPage([], 0)
        assert reader.get_statistics() == DashboardStatistics(0, 0, 0, 0)
        buckets = reader.get_run_timeseries("hour", T0 + timedelta(minutes=59), T0 + timedelta(hours=3))
        assert [b.timestamp for b in buckets] == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
        assert all(b.total == b.running == 0 and b.p50_duration_ms is None for b in buckets)
        assert len(reader.get_run_timeseries("hour", T0, T0 + timedelta(hours=10_000))) == 10_000
        assert reader.get_derived_runs(uuid.uuid4()) == []
        assert reader.get_run_detail(uuid.uuid4()) is None
        assert reader.runs().height == 0 and "started_at" in reader.runs().columns
        assert reader.steps().height == reader.attempts().height == 0
        assert reader.sql("SELECT count(*) AS n FROM runs")["n"].to_list() == [0]
        reader.close()


def test_an_archive_where_a_file_stands_is_refused_by_name(dsn: str, tmp_path: Path) -> None:
    # A missing directory is an empty store (above); a file where it should be is a slip, not zeros.
    a_file = tmp_path / "a-file"
    a_file.write_text("not an archive\n")
    for archive, said in ((a_file, "is not a directory"), (a_file / "archive", f"cannot be created: {a_file}")):
        for reader_dsn in (None, dsn):
            with pytest.raises(InvalidArgument, match=re.escape(f"archive {archive} {said}")):
                RunAnalytics(reader_dsn, str(archive))
    assert a_file.read_text() == "not an archive\n"


@pytest.mark.parametrize("with_dsn", [True, False])
def test_a_closed_reader_raises_store_unavailable(dsn: str, clock: FakeClock, tmp_path: Path, with_dsn: bool) -> None:
    reader = RunAnalytics(dsn if with_dsn else None, str(tmp_path), clock=clock)
    reader.get_statistics()
    reader.close()
    calls: tuple[Callable[[RunAnalytics], object], ...] = (
        lambda a: a.get_statistics(),
        lambda a: a.get_runs(),
        lambda a: a.get_runs_page(search="x"),
        lambda a: a.get_run_timeseries("hour", T0, T0 + timedelta(hours=1)),
        lambda a: a.get_derived_runs(uuid.uuid4()),
        lambda a: a.get_run_detail(uuid.uuid4()),
        lambda a: a.runs(),
        lambda a: a.sql("SELECT 1"),
    )
    for call in calls:
        with pytest.raises(StoreUnavailable):
            call(reader)
    reader.close()  # closing twice is harmless


def test_pages_of_runs_with_one_start_time_neither_overlap_nor_skip(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    store = RunStore(dsn, clock=clock)
    flow = uuid.uuid4()
    # Ids spread over every leading byte, so byte order and text order are both exercised.
    ids = [uuid.UUID(bytes=bytes([b]) + uuid.uuid4().bytes[1:]) for b in range(0, 256, 9)]
    for rid in ids:
        store.start_run(flow, "tied", rid, "manual")
        store.complete_run(rid, "Succeeded")
    root = tmp_path / "archive"
    reader = RunAnalytics(dsn, str(root), clock=clock)
    expected = sorted(ids, reverse=True)

    def all_pages() -> list[uuid.UUID]:
        seen: list[uuid.UUID] = []
        for skip in range(0, len(ids), 4):
            page = reader.get_runs_page(flow_id=flow, skip=skip, take=4)
            assert page.total_count == len(ids)
            seen += [r.id for r in page.runs]
        return seen

    assert all_pages() == expected
    archive_writer.export(dsn, root, clock.now)
    # Half of them leave PostgreSQL: live and archived runs interleave on one instant.
    with store.db.connection() as conn:
        conn.execute("DELETE FROM flow_runs WHERE id = ANY(%s)", (ids[::2],))
    assert all_pages() == expected
    assert [r.id for r in reader.get_runs(skip=3, take=5)] == expected[3:8]
    store.close()
    reader.close()


def test_files_not_in_the_delta_log_are_ignored_by_every_reader(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    store = RunStore(dsn, clock=clock)
    rid = uuid.uuid4()
    store.start_run(uuid.uuid4(), "real", rid, "manual")
    store.complete_run(rid, "Succeeded")
    root = tmp_path / "archive"
    archive_writer.export(dsn, root, clock.now)
    # A data file of a crashed write (complete, never committed) and one still being written.
    ghost = archive_writer._row(
        {
            "id": uuid.uuid4(),
            "flow_id": uuid.uuid4(),
            "flow_name": "ghost",
            "status": "Succeeded",
            "trigger_key": "manual",
            "trigger_data_json": None,
            "background_job_id": None,
            "started_at": clock.now,
            "completed_at": clock.now,
            "source_run_id": None,
            "revision": 2,
        },
        [],
        [],
        clock.now,
    )
    partition = root / "runs" / f"started_date={clock.now.date()}"
    pq.write_table(pa.Table.from_pylist([ghost], schema=archive_writer.RUNS), partition / "part-orphan.parquet")
    (partition / "part-partial.parquet").write_bytes(b"PAR1 not yet")
    reader = RunAnalytics(dsn, str(root), clock=clock)
    files_only = RunAnalytics(None, str(root))
    assert [r.flow_name for r in reader.get_runs()] == ["real"]
    assert reader.get_statistics().total_flows == 1
    assert [r.flow_name for r in files_only.get_runs()] == ["real"]
    store.close()
    reader.close()
    files_only.close()


def test_sql_reports_bad_queries_as_bad_arguments(dsn: str, clock: FakeClock) -> None:
    reader = RunAnalytics(dsn, None, clock=clock)
    with pytest.raises(InvalidArgument):
        reader.sql("SELECT nope FROM runs")
    with pytest.raises(InvalidArgument):
        reader.sql("SELEC 1")
    assert reader.sql("SELECT 41 + 1 AS answer")["answer"].to_list() == [42]
    reader.close()


def test_one_reader_serves_many_threads(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    store = RunStore(dsn, clock=clock)
    flow = uuid.uuid4()
    for i in range(40):
        clock.advance(minutes=7)
        rid = uuid.uuid4()
        store.start_run(flow, "threads", rid, "manual", None, f"job-{i}")
        if i % 3:
            clock.advance(seconds=i)
            store.complete_run(rid, "Succeeded")
    root = tmp_path / "archive"
    archive_writer.export(dsn, root, clock.now)
    reader = RunAnalytics(dsn, str(root), clock=clock)
    since, until = T0 - timedelta(hours=1), clock.now + timedelta(hours=1)
    expected = (
        reader.get_runs_page(search="job-1"),
        reader.get_statistics(),
        reader.get_run_timeseries("hour", since, until),
    )
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                got = (
                    reader.get_runs_page(search="job-1"),
                    reader.get_statistics(),
                    reader.get_run_timeseries("hour", since, until),
                )
                assert got == expected
        except BaseException as exc:  # collected and re-raised in the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert expected[0].total_count == 11  # job-1, job-10 .. job-19
    store.close()
    reader.close()


def test_a_term_holding_the_field_separator_never_spans_two_fields(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    store = RunStore(dsn, clock=clock)
    inside, plain = uuid.uuid4(), uuid.uuid4()
    store.start_run(uuid.uuid4(), "left\x1fright", inside, "manual")
    store.start_run(uuid.uuid4(), "plain", plain, "manual")
    for rid in (inside, plain):
        store.complete_run(rid, "Succeeded")
    root = tmp_path / "archive"
    reader = RunAnalytics(dsn, str(root), clock=clock)

    def found(term: str) -> list[uuid.UUID]:
        return [r.id for r in reader.get_runs_page(search=term).runs]

    for _ in ("live", "archived"):
        assert found("T\x1fR") == [inside]
        assert found("plain\x1fmanual") == []
        archive_writer.export(dsn, root, clock.now)
        archive_writer.prune(dsn, clock.now + timedelta(seconds=1))
    store.close()
    reader.close()


def test_a_dropped_connection_is_unavailable_once_then_reopened(dsn: str, clock: FakeClock) -> None:
    store = RunStore(dsn, clock=clock)
    store.start_run(uuid.uuid4(), "f", uuid.uuid4(), "manual")
    store.close()
    reader = RunAnalytics(dsn, None, clock=clock)
    assert len(reader.get_runs()) == 1
    with psycopg.connect(dsn, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    with pytest.raises(StoreUnavailable):
        reader.get_runs()
    assert len(reader.get_runs()) == 1
    reader.close()


def test_search_answers_alike_from_the_files_and_from_the_documents(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    store = RunStore(dsn, clock=clock)
    model = play(store, clock)
    root = tmp_path / "archive"
    sync.export_completed_runs(dsn, root, batch_size=70, clock=clock)
    sync.prune(dsn, clock.now - (START + timedelta(days=3)), now=clock.now)
    runs = list(model.runs.values())
    for term in [s for s in SEARCHES if s and s.strip()]:
        expected = expected_page(runs, search=term, take=30)
        with RunAnalytics(dsn, str(root), clock=clock) as reader:
            # A new reader's documents are still being built: the first search reads the files.
            from_files = reader.get_runs_page(search=term, take=30)
            reader.warm_search()
            from_documents = reader.get_runs_page(search=term, take=30)
        assert (from_files.runs, from_files.total_count) == expected, term
        assert (from_documents.runs, from_documents.total_count) == expected, term
    store.close()
