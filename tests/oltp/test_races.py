"""Races with real concurrency on the real server: processes, threads, and lock convoys.

Two kinds of race. Free races start the contenders together at a barrier and let
the scheduler interleave them. Lock convoys make the interleaving certain: a
plain connection holds the run's row lock while both contenders queue behind it
(each has already taken its statement snapshot), then lets go, so the second one
to get the lock works on a run another transaction changed after its snapshot.
Either way the end state must be one that some serial order of the calls
produces.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any

import psycopg
import pytest

from oltp.errors import InvalidTransition, StaleAttempt
from oltp.records import RunStatus, StepStatus
from oltp.store import RunStore
from tests.conftest import FakeClock
from tests.oltp.conftest import start
from tests.oltp.dispatch_worker import claim_all, claim_expired
from tests.oltp.observe import run_version


def run_together(*calls: Callable[[], Any]) -> list[BaseException | None]:
    """Run each call on its own thread, released together; returns what each raised (None if nothing)."""
    barrier = threading.Barrier(len(calls))
    outcome: list[BaseException | None] = [None] * len(calls)

    def body(i: int) -> None:
        barrier.wait()
        try:
            calls[i]()
        except BaseException as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcome


@contextmanager
def run_row_locked(dsn: str, run_id: uuid.UUID, waiters: int) -> Iterator[None]:
    """Hold the run's row lock; on exit, wait until ``waiters`` statements queue on it, then let go."""
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as watcher:
        holder.execute("SELECT 1 FROM flowrun.flow_runs WHERE id = %s FOR UPDATE", (run_id,))
        yield
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            # Later waiters queue behind the first one's tuple lock, not the holder: count them all.
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0] >= waiters:
                break
            time.sleep(0.005)
        else:
            pytest.fail(f"{waiters} statements never queued behind the run lock")
        holder.rollback()


def convoy(dsn: str, run_id: uuid.UUID, *calls: Callable[[], Any]) -> list[BaseException | None]:
    """Queue every call behind a held run lock, release it, and collect what each raised."""
    outcome: list[BaseException | None] = [None] * len(calls)

    def body(i: int) -> None:
        try:
            calls[i]()
        except BaseException as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(calls))]
    with run_row_locked(dsn, run_id, len(calls)):
        for t in threads:
            t.start()
    for t in threads:
        t.join(timeout=60)
    return outcome


def shape(store: RunStore, run_id: uuid.UUID) -> tuple[Any, ...]:
    """The run's observable state without its ids, so runs built by different call orders compare."""
    detail = store.get_run_detail(run_id)
    assert detail is not None and detail.steps is not None
    steps = tuple(
        (
            s.step_key, s.status, s.output_json, s.error_message, s.completed_at, s.attempt_count,
            tuple((a.attempt, a.status, a.output_json, a.error_message, a.completed_at) for a in s.attempts),
        )
        for s in detail.steps
    )  # fmt: skip
    return (
        detail.status,
        detail.completed_at,
        steps,
        store.get_dispatched_step_keys(run_id),
        run_version(store.dsn, run_id),
    )


def serial_outcomes(
    store: RunStore, setup: Callable[[uuid.UUID], None], calls: list[Callable[[uuid.UUID], Any]]
) -> set[tuple[Any, ...]]:
    """The shapes each serial order of two calls leaves (errors of the second call tolerated)."""
    shapes = set()
    for order in (calls, calls[::-1]):
        rid = start(store)
        setup(rid)
        for call in order:
            with suppress(Exception):
                call(rid)
        shapes.add(shape(store, rid))
    return shapes


def test_eight_processes_claim_each_of_300_keys_exactly_once(dsn: str) -> None:
    with RunStore(dsn, migrate_schema=False) as store:
        rid = start(store)
    keys = [f"step-{i:03d}" for i in range(300)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(8)
    results = ctx.Queue()
    # Half the dispatchers walk the keys in one order (each key contested in lockstep), half
    # in orders of their own (so winners spread over processes).
    orders = [keys if i % 2 == 0 else random.Random(i).sample(keys, len(keys)) for i in range(8)]
    procs = [ctx.Process(target=claim_all, args=(dsn, rid, order, barrier, results)) for order in orders]
    for p in procs:
        p.start()
    reports = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert [errors for _, errors in reports] == [[]] * 8
    wins = [key for won, _ in reports for key in won]
    assert sorted(wins) == keys, "every key won exactly once across processes"
    assert sum(1 for won, _ in reports if won) > 1, "the race had more than one winner overall"
    with RunStore(dsn, migrate_schema=False) as store:
        assert store.get_dispatched_step_keys(rid) == frozenset(keys)
        assert not any(store.try_record_dispatch(rid, key) for key in keys[:20])


def test_six_threads_starting_one_step_get_sixty_distinct_attempts(store: Any) -> None:
    # Both stores: PostgreSQL through its pool, the in-memory one through its lock.
    rid = start(store)

    def ten_starts(thread: int) -> Callable[[], None]:
        def go() -> None:
            for n in range(10):
                store.record_step_start(rid, "hot", "task", f'{{"thread": {thread}, "n": {n}}}', f"t{thread}")

        return go

    assert run_together(*(ten_starts(t) for t in range(6))) == [None] * 6
    detail = store.get_run_detail(rid)
    assert detail is not None and detail.steps
    step = detail.steps[0]
    assert [a.attempt for a in step.attempts] == list(range(1, 61))
    assert step.attempt_count == 60
    assert sorted(a.input_json or "" for a in step.attempts) == sorted(
        f'{{"thread": {t}, "n": {n}}}' for t in range(6) for n in range(10)
    )
    assert (step.input_json, step.job_id) == (step.attempts[-1].input_json, step.attempts[-1].job_id)
    # Each thread's own attempts are numbered in the order it made them.
    for t in range(6):
        mine = [a for a in step.attempts if a.job_id == f"t{t}"]
        assert [a.input_json for a in mine] == [f'{{"thread": {t}, "n": {n}}}' for n in range(10)]


def _failed_step(store: RunStore) -> Callable[[uuid.UUID], None]:
    def setup(rid: uuid.UUID) -> None:
        store.record_step_start(rid, "s", "task")
        store.record_step_complete(rid, "s", "Failed", error_message="boom")
        store.try_record_dispatch(rid, "s")

    return setup


def test_complete_run_racing_retry_step_ends_in_a_serial_outcome(dsn: str, clock: FakeClock) -> None:
    with RunStore(dsn, clock=clock, migrate_schema=False, max_connections=4) as store:
        setup = _failed_step(store)
        expected = serial_outcomes(
            store, setup, [lambda r: store.complete_run(r, "Failed"), lambda r: store.retry_step(r, "s")]
        )
        assert len(expected) == 2
        for _ in range(25):
            rid = start(store)
            setup(rid)
            raised = run_together(partial(store.complete_run, rid, "Failed"), partial(store.retry_step, rid, "s"))
            assert raised == [None, None]
            assert shape(store, rid) in expected
        for _ in range(6):
            rid = start(store)
            setup(rid)
            raised = convoy(dsn, rid, partial(store.complete_run, rid, "Failed"), partial(store.retry_step, rid, "s"))
            assert raised == [None, None]
            assert shape(store, rid) in expected


def test_step_start_racing_step_complete_ends_in_a_serial_outcome(dsn: str, clock: FakeClock) -> None:
    with RunStore(dsn, clock=clock, migrate_schema=False, max_connections=4) as store:

        def setup(rid: uuid.UUID) -> None:
            store.record_step_start(rid, "s", "task")

        def begin(rid: uuid.UUID) -> None:
            store.record_step_start(rid, "s", "task")

        def finish(rid: uuid.UUID) -> None:
            store.record_step_complete(rid, "s", "Succeeded", '{"ok": true}')

        expected = serial_outcomes(store, setup, [begin, finish])
        assert len(expected) == 2
        for _ in range(6):
            rid = start(store)
            setup(rid)
            assert convoy(dsn, rid, partial(begin, rid), partial(finish, rid)) == [None, None]
            assert shape(store, rid) in expected


def test_retry_racing_step_complete_on_a_terminal_run_ends_in_a_serial_outcome(dsn: str, clock: FakeClock) -> None:
    with RunStore(dsn, clock=clock, migrate_schema=False, max_connections=4) as store:

        def setup(rid: uuid.UUID) -> None:
            _failed_step(store)(rid)
            store.complete_run(rid, "Failed")

        def retry(rid: uuid.UUID) -> None:
            store.retry_step(rid, "s")

        def late_report(rid: uuid.UUID) -> None:
            # Before the retry this is refused (another outcome on a closed attempt); after it,
            # the reopened step takes it. Either is a serial outcome.
            with suppress(InvalidTransition):
                store.record_step_complete(rid, "s", "Failed", error_message="late")

        expected = serial_outcomes(store, setup, [retry, late_report])
        assert len(expected) == 2, "the two orders end differently"
        for _ in range(6):
            rid = start(store)
            setup(rid)
            assert convoy(dsn, rid, partial(retry, rid), partial(late_report, rid)) == [None, None]
            assert shape(store, rid) in expected


@pytest.mark.parametrize("writers", [3])
def test_step_writes_racing_complete_run_keep_the_outbox_at_the_run_revision(
    dsn: str, clock: FakeClock, writers: int
) -> None:
    with RunStore(dsn, clock=clock, migrate_schema=False, max_connections=writers + 1) as store:
        for _ in range(12):
            rid = start(store)

            def steps(w: int, rid: uuid.UUID = rid) -> Callable[[], None]:
                def go() -> None:
                    for n in range(4):
                        store.record_step_start(rid, f"w{w}-{n}", "task")
                        store.record_step_complete(rid, f"w{w}-{n}", "Succeeded")

                return go

            raised = run_together(*(steps(w) for w in range(writers)), partial(store.complete_run, rid, "Succeeded"))
            assert raised == [None] * (writers + 1)
            detail = store.get_run_detail(rid)
            assert detail is not None and detail.status is RunStatus.SUCCEEDED
            revision, queued = run_version(dsn, rid)
            assert queued == revision
            assert 2 <= revision <= 2 + writers * 4 * 2
            assert all(s.status is StepStatus.SUCCEEDED and s.attempt_count == 1 for s in detail.steps or ())


def test_eight_processes_claim_each_expired_dispatch_exactly_once(dsn: str, clock: FakeClock) -> None:
    with RunStore(dsn, clock=clock, migrate_schema=False) as store:
        runs = [start(store) for _ in range(10)]
        expected = sorted((str(rid), f"step-{i:02d}") for rid in runs for i in range(20))
        for rid, key in expected:
            assert store.try_record_dispatch(uuid.UUID(rid), key, "dead-worker", 5)
    later = clock.advance(minutes=1)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(8)
    results = ctx.Queue()
    procs = [ctx.Process(target=claim_expired, args=(dsn, later, barrier, results)) for _ in range(8)]
    for p in procs:
        p.start()
    reports = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert [errors for _, errors in reports] == [[]] * 8
    claims = [claim for claimed, _ in reports for claim in claimed]
    assert sorted(claims) == expected, "every expired dispatch claimed exactly once across processes"
    assert sum(1 for claimed, _ in reports if claimed) > 1, "more than one claimer took a share"
    with RunStore(dsn, clock=clock, migrate_schema=False) as store:
        owners = {d.owner for rid in runs for d in store.get_dispatches(rid)}
        assert len(owners) > 1 and "dead-worker" not in owners


def test_sixteen_duplicate_triggers_with_one_key_start_one_run(dsn: str, clock: FakeClock) -> None:
    flow = uuid.uuid4()
    with RunStore(dsn, clock=clock, migrate_schema=False, max_connections=16) as store:
        for round_ in range(3):
            key = f"webhook-delivery-{round_}"
            ids = [uuid.uuid4() for _ in range(16)]
            got: list[Any] = [None] * 16

            def trigger(i: int, key: str = key, ids: list[uuid.UUID] = ids, got: list[Any] = got) -> None:
                got[i] = store.start_run(flow, "hooks", ids[i], "webhook", idempotency_key=key)

            assert run_together(*(partial(trigger, i) for i in range(16))) == [None] * 16
            assert len({record.id for record in got}) == 1, "every duplicate got the first run back"
            assert got[0].id in ids
            stored = [r for r in store.get_active_runs() if r.flow_id == flow]
            assert len(stored) == round_ + 1


def test_a_zombie_completion_racing_its_successor_start_never_overwrites_it(dsn: str, clock: FakeClock) -> None:
    with RunStore(dsn, clock=clock, migrate_schema=False, max_connections=4) as store:
        for _ in range(6):
            rid = start(store)
            zombie = store.record_step_start(rid, "s", "task", job_id="worker-1")

            def successor(rid: uuid.UUID = rid) -> None:
                store.record_step_start(rid, "s", "task", job_id="worker-2")

            def late(rid: uuid.UUID = rid, attempt: int = zombie.attempt) -> None:
                store.record_step_complete(rid, "s", "Failed", error_message="zombie", attempt=attempt)

            outcome = convoy(dsn, rid, successor, late)
            detail = store.get_run_detail(rid)
            assert detail is not None and detail.steps is not None
            second = detail.steps[0].attempts[1]
            assert (second.job_id, second.status) == ("worker-2", StepStatus.RUNNING), "the successor is untouched"
            if outcome[1] is None:  # the zombie went first: it closed its own attempt only
                assert detail.steps[0].attempts[0].status is StepStatus.FAILED
            else:
                assert isinstance(outcome[1], StaleAttempt)
                assert detail.steps[0].attempts[0].status is StepStatus.RUNNING
