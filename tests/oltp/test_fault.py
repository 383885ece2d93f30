"""A PostgreSQL restart in the middle of a multi-threaded workload.

The test starts a server of its own (restarting the session's server would
disturb every other test), runs engine-like workers through one ``RunStore``,
and restarts the server under them. Calls in flight - one of them certainly,
since it is parked behind a row lock when the server goes down - must fail with
``StoreUnavailable`` and nothing else; later calls must succeed on the same
store without reopening it; and every call that returned successfully must be
in the database afterwards. A restart while the store is idle fails no call.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from flowrun import embedded
from oltp import migrate
from oltp.errors import StoreUnavailable
from oltp.records import RunStatus, StepStatus
from oltp.store import RunStore

FLOW = uuid.UUID(int=42)


@dataclass
class RunLedger:
    """One run's calls that returned (in order), and the call that failed, if one did."""

    run_id: uuid.UUID
    acknowledged: list[tuple[str, ...]] = field(default_factory=list)
    failed: tuple[str, ...] | None = None


@dataclass
class Worker:
    """One engine thread's record: its runs, the errors it saw, and when each call returned."""

    runs: list[RunLedger] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    returned_at: list[float] = field(default_factory=list)


def one_run(store: RunStore, worker: Worker) -> None:
    """Play one run's lifecycle - a retried step, reads, every write - stopping at the first failed call."""
    ledger = RunLedger(uuid.uuid4())
    worker.runs.append(ledger)
    rid = ledger.run_id
    plan: list[tuple[tuple[str, ...], Any]] = [
        (("start_run",), lambda: store.start_run(FLOW, "fault", rid, "schedule", '{"n": 1}')),
        (("dispatch", "extract"), lambda: store.try_record_dispatch(rid, "extract")),
        (("start", "extract"), lambda: store.record_step_start(rid, "extract", "task", '{"in": 1}')),
        (("complete", "extract", "Succeeded"), lambda: store.record_step_complete(rid, "extract", "Succeeded", "[1]")),
        (("read",), lambda: store.get_run_detail(rid)),
        (("start", "flaky"), lambda: store.record_step_start(rid, "flaky", "task")),
        (("complete", "flaky", "Failed"), lambda: store.record_step_complete(rid, "flaky", "Failed", None, "boom")),
        (("retry", "flaky"), lambda: store.retry_step(rid, "flaky")),
        (("start", "flaky"), lambda: store.record_step_start(rid, "flaky", "task")),
        (("complete", "flaky", "Succeeded"), lambda: store.record_step_complete(rid, "flaky", "Succeeded", "[2]")),
        (("complete_run",), lambda: store.complete_run(rid, "Succeeded")),
        (("read",), lambda: store.get_dispatched_step_keys(rid)),
    ]
    for op, call in plan:
        try:
            result = call()
        except Exception as exc:
            ledger.failed = op
            worker.errors.append(exc)
            return
        if op[0] == "dispatch":
            assert result is True
        ledger.acknowledged.append(op)
        worker.returned_at.append(time.monotonic())


def check_acknowledged(store: RunStore, ledger: RunLedger) -> None:
    """Everything the store acknowledged for this run is in the database (the failed call may or may not be)."""
    detail = store.get_run_detail(ledger.run_id)
    if not ledger.acknowledged:
        return
    assert detail is not None and detail.steps is not None, f"acknowledged run {ledger.run_id} is missing"
    assert (detail.flow_name, detail.trigger_data_json) == ("fault", '{"n": 1}')
    steps = {s.step_key: s for s in detail.steps}
    starts: dict[str, int] = {}
    for op in ledger.acknowledged:
        if op[0] == "dispatch":
            assert op[1] in store.get_dispatched_step_keys(ledger.run_id)
        elif op[0] == "start":
            starts[op[1]] = starts.get(op[1], 0) + 1
        elif op[0] == "complete":
            # The attempt this call closed is the one the acknowledged starts opened.
            assert steps[op[1]].attempts[starts[op[1]] - 1].status == op[2]
        elif op[0] == "retry":
            assert steps[op[1]].attempts[starts[op[1]] - 1].status is StepStatus.FAILED
    for key, count in starts.items():
        maybe_one_more = ledger.failed == ("start", key)
        assert steps[key].attempt_count in ((count, count + 1) if maybe_one_more else (count,))
        assert len(steps[key].attempts) == steps[key].attempt_count
    if ("complete_run",) in ledger.acknowledged:
        assert detail.status is RunStatus.SUCCEEDED and detail.completed_at is not None
        assert steps["flaky"].status is StepStatus.SUCCEEDED and steps["flaky"].attempt_count == 2


def until(condition: Callable[[], bool], failure: str, seconds: float = 60.0) -> None:
    """Poll ``condition`` until it holds, or fail with ``failure`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(failure)
        time.sleep(0.01)


def wait_for_lock_waiter(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as watcher:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()
            if row and row[0] >= 1:
                return
            time.sleep(0.01)
    pytest.fail("the parked call never queued behind the row lock")


@pytest.fixture
def private_server() -> Any:
    """A PostgreSQL server for this test alone (default settings, fsync on), removed afterwards."""
    # Not under pytest's tmp_path: the server runs as another user, and pytest keeps its
    # temporary root private to the user running the tests.
    server = embedded.start(Path(tempfile.mkdtemp(prefix="flowrun-fault-")) / "pgdata", delete_on_exit=True)
    yield server
    embedded.leave(server)  # stops whichever postmaster runs in the data dir now, then deletes it


def test_restart_mid_workload_fails_calls_in_flight_cleanly_and_loses_nothing(private_server: Any) -> None:
    dsn = embedded.dsn(private_server)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("ALTER SYSTEM SET max_prepared_transactions = 2")
    embedded.restart(private_server)
    migrate.upgrade(dsn)
    store = RunStore(dsn, migrate_schema=False, max_connections=6, timeout=20)
    workers = [Worker() for _ in range(4)]
    stop = threading.Event()

    def work(worker: Worker) -> None:
        while not stop.is_set():
            one_run(store, worker)

    # A call parked behind a row lock is certainly in flight when the server goes down. The
    # lock is held by a prepared transaction: an ordinary holder dies in the restart too, and
    # its lock could pass to the parked call in the moment before that call is terminated.
    parked_run = uuid.uuid4()
    store.start_run(FLOW, "parked", parked_run, "manual")
    with psycopg.connect(dsn) as holder:
        holder.execute("SELECT 1 FROM flowrun.flow_runs WHERE id = %s FOR UPDATE", (parked_run,))
        holder.execute("PREPARE TRANSACTION 'flowrun-fault-test'")
    parked: list[BaseException | None] = []

    def park() -> None:
        try:
            store.complete_run(parked_run, "Succeeded")
            parked.append(None)
        except BaseException as exc:
            parked.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers] + [threading.Thread(target=park)]
    try:
        for t in threads:
            t.start()
        wait_for_lock_waiter(dsn)
        until(lambda: all(w.returned_at for w in workers), "the workers got no call through before the restart")
        before_restart = sum(len(w.returned_at) for w in workers)
        embedded.restart(private_server)
        restarted_at = time.monotonic()
        until(
            lambda: all(any(t > restarted_at for t in w.returned_at) for w in workers),
            "a worker never got a call through after the restart",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("ROLLBACK PREPARED 'flowrun-fault-test'")

    errors = [e for w in workers for e in w.errors] + [e for e in parked if e is not None]
    assert before_restart > 0
    assert len(parked) == 1 and isinstance(parked[0], StoreUnavailable), parked
    assert all(type(e) is StoreUnavailable for e in errors), [f"{type(e).__name__}: {e}" for e in errors]
    for w in workers:
        assert any(t > restarted_at for t in w.returned_at), "a worker never got a call through after the restart"

    # Same store object, no reopening: a whole lifecycle goes through without an error.
    after = Worker()
    one_run(store, after)
    assert after.errors == [] and after.runs[0].acknowledged[-2] == ("complete_run",)

    for ledger in [r for w in [*workers, after] for r in w.runs]:
        check_acknowledged(store, ledger)
    detail = store.get_run_detail(parked_run)
    assert detail is not None and detail.status is RunStatus.RUNNING  # the parked call was rolled back

    # A restart while the store sits idle fails nothing at all: the pool's connections the
    # server closed are replaced before a call uses them.
    embedded.restart(private_server)
    quiet = Worker()
    for _ in range(3):
        one_run(store, quiet)
    assert quiet.errors == [] and all(len(r.acknowledged) == 12 for r in quiet.runs)
    store.close()
