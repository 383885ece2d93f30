"""``FlowRunStore.export``, ``prune`` and ``compact``: the store's clock and archive setting are used."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flowrun import FlowRunStore
from tests.conftest import FakeClock
from tests.sync import archive_checks, workload


def test_store_exports_prunes_and_compacts_with_its_clock(dsn: str, archive: str, clock: FakeClock, db: Any) -> None:
    with FlowRunStore.open(dsn=dsn, archive=archive, clock=clock) as store:
        ids = workload.play(store, clock, 4, hours_apart=1)
        assert store.export(batch_size=1).runs == 4
        first = clock.now
        workload.reopen_and_complete(store, clock, ids[0])
        assert store.export().runs == 1
        stamps = {r[0] for r in archive_checks.query(archive, "runs", "SELECT DISTINCT exported_at FROM t")}
        assert stamps == {first, clock.now}

        assert store.prune(timedelta(days=1)) == 0  # the store's clock says they are all recent
        clock.advance(days=2)
        assert store.prune("1d") == 4

        report = store.compact()
        assert report.partitions == 1 and report.files_removed > report.files_written == 1
        assert store.get_run_detail(ids[0]) is not None  # read back from the archive
    archive_checks.assert_exactly_once(db, archive)
