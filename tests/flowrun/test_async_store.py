"""``AsyncFlowRunStore``: every lifecycle and reporting call awaitable, same answers as ``FlowRunStore``."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import polars as pl

from flowrun import AsyncFlowRunStore, FlowRunStore, RunStatus
from tests.conftest import FakeClock
from tests.fixtures.s3_server import S3Server


def test_the_async_front_door_writes_reports_exports_and_prunes(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    root, home = tmp_path / "archive", tmp_path / "home"
    flow, old, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    async def scenario() -> None:
        store = await AsyncFlowRunStore.connect(dsn=dsn, archive=root, clock=clock, home=home)
        async with store:
            await store.start_run(flow, "nightly", old, "schedule", None, "job-old")
            attempt = await store.record_step_start(old, "fetch", "http", '{"u": 1}')
            clock.advance(seconds=3)
            await store.record_step_complete(old, "fetch", "Succeeded", '{"rows": 7}', attempt=attempt.attempt)
            assert await store.complete_run(old, "Succeeded") is True
            clock.advance(days=1)
            # Sixty-four lifecycle calls in flight at once on one loop.
            runs = [uuid.uuid4() for _ in range(64)]
            await asyncio.gather(*(store.start_run(flow, "burst", rid, "manual") for rid in runs))
            assert await asyncio.gather(*(store.complete_run(rid, "Failed") for rid in runs)) == [True] * 64
            await store.start_run(flow, "nightly", new, "manual", None, None, old)
            before = await store.get_run_detail(old)
            report = await store.export()
            assert report.runs == 65
            assert await store.prune(timedelta(hours=1)) == 1  # the burst completed just now
            assert await store.get_run_detail(old) == before  # read back from the archive
            assert [r.id for r in await store.get_derived_runs(old)] == [new]
            page = await store.get_runs_page(status="succeeded", search='ROWS": 7')
            assert ([r.id for r in page.runs], page.total_count) == ([old], 1)
            stats = await store.get_statistics()
            assert (stats.total_flows, stats.active_runs) == (1, 1)
            assert (await store.runs()).height == 66
            assert (await store.sql("SELECT count(*) AS n FROM runs WHERE status = 'Failed'"))["n"].to_list() == [64]
            assert (await store.flows())["flow_id"].to_list() == [str(flow)]
            assert await store.resolve_flow(str(flow)[:8]) == flow
            assert (await store.resolve_run(str(old)), await store.resolve_run("f" * 12)) == (old, None)
            await store.warm_search()

    asyncio.run(scenario())

    # The sync front door sees exactly what the async one wrote and reports the same.
    with FlowRunStore.open(dsn=dsn, archive=root, clock=clock, home=home) as sync_store:
        assert [r.id for r in sync_store.get_active_runs()] == [new]
        assert sync_store.get_run_detail(old).status is RunStatus.SUCCEEDED  # type: ignore[union-attr]
        since, until = clock.now - timedelta(days=2), clock.now + timedelta(seconds=1)
        buckets = sync_store.get_run_timeseries("day", since, until)

        async def async_buckets() -> tuple[list[object], pl.DataFrame]:
            async with await AsyncFlowRunStore.connect(dsn=dsn, archive=root, clock=clock, home=home) as store:
                return list(await store.get_run_timeseries("day", since, until)), await store.timeseries_frame(
                    "day", since, until
                )

        listed, frame = asyncio.run(async_buckets())
        assert listed == buckets
        assert frame.equals(sync_store.timeseries_frame("day", since, until)) and frame.height == len(buckets)


def test_the_async_jobs_reach_an_s3_archive_with_the_stores_options(
    dsn: str, clock: FakeClock, tmp_path: Path, s3_server: S3Server, s3_prefix: str
) -> None:
    # The options reach the jobs only through the store (no AWS_* in this process's environment).
    options = s3_server.storage_options()
    flow = uuid.uuid4()

    async def scenario() -> None:
        store = await AsyncFlowRunStore.connect(
            dsn=dsn, archive=s3_prefix, clock=clock, home=tmp_path / "home", storage_options=options
        )
        async with store:
            for _ in range(3):
                run = await store.start_run(flow, "nightly", uuid.uuid4(), "schedule")
                assert await store.complete_run(run.id, "Succeeded") is True
                assert (await store.export()).runs == 1  # one file each, for compaction to merge
            report = await store.compact(vacuum_after=timedelta(0))
            assert report.files_written == 1 and report.files_vacuumed >= 3  # the three exported files
            clock.advance(seconds=1)
            assert await store.prune(timedelta(0)) == 3
            assert (await store.get_runs_page(take=10)).total_count == 3  # read back from S3

    asyncio.run(scenario())
