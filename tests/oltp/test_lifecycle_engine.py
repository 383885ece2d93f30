"""Conformance: what an engine needs beyond the seed - fenced completion, leases, run control.

Every test runs against ``RunStore``, ``AsyncRunStore`` and ``InMemoryRunStore``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from oltp.errors import InvalidTransition, RunNotFound, StaleAttempt, StepNotFound
from oltp.records import RunStatus, StepStatus
from tests.conftest import FakeClock
from tests.oltp.conftest import FLOW, start

# -- fenced, idempotent completion ---------------------------------------------------------------


def test_record_step_start_returns_the_attempt_it_opened(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    first = store.record_step_start(rid, "s", "task", '{"i": 1}', "job-1")
    at = clock.advance(seconds=2)
    second = store.record_step_start(rid, "s", "task")
    assert (first.attempt, second.attempt, second.started_at, second.status) == (1, 2, at, StepStatus.RUNNING)
    # What it returns is the attempt as stored (the first one has been superseded, not closed).
    assert store.get_run_detail(rid).steps[0].attempts == (first, second)


@pytest.mark.parametrize("terminal", ["Succeeded", "Failed", "Skipped"])
def test_a_late_duplicate_completion_cannot_rewrite_a_closed_attempt(
    store: Any, clock: FakeClock, terminal: str
) -> None:
    rid = start(store)
    store.record_step_start(rid, "s", "task")
    clock.advance(seconds=1)
    store.record_step_complete(rid, "s", terminal, '{"rows": 3}', None)
    before = store.get_run_detail(rid)
    clock.advance(seconds=1)
    store.record_step_complete(rid, "s", terminal.lower(), '{"rows": 3}', None)  # a retried ack: no-op
    assert store.get_run_detail(rid) == before
    for other in [("Failed", None, "late duplicate"), (terminal, '{"rows": 4}', None), ("Pending", None, None)]:
        if other[0] == terminal and other[1] is None:
            continue
        with pytest.raises(InvalidTransition):
            store.record_step_complete(rid, "s", *other)
    assert store.get_run_detail(rid) == before


def test_pending_stays_recompletable_and_a_fenced_attempt_completes(store: Any) -> None:
    rid = start(store)
    opened = store.record_step_start(rid, "poll", "wait")
    store.record_step_complete(rid, "poll", "Pending", '{"p": 1}', attempt=opened.attempt)
    store.record_step_complete(rid, "poll", "Pending", '{"p": 2}', attempt=opened.attempt)
    store.record_step_complete(rid, "poll", "Succeeded", '{"p": 3}', attempt=opened.attempt)
    step = store.get_run_detail(rid).steps[0]
    assert (step.status, step.output_json, step.attempt_count) == (StepStatus.SUCCEEDED, '{"p": 3}', 1)


def test_a_zombie_cannot_complete_an_attempt_that_has_a_successor(store: Any) -> None:
    rid = start(store)
    zombie = store.record_step_start(rid, "s", "task", job_id="worker-1")
    successor = store.record_step_start(rid, "s", "task", job_id="worker-2")
    before = store.get_run_detail(rid)
    with pytest.raises(StaleAttempt) as info:
        store.record_step_complete(rid, "s", "Failed", error_message="zombie", attempt=zombie.attempt)
    assert (info.value.attempt, info.value.newest) == (1, 2)
    with pytest.raises(StaleAttempt):
        store.record_step_complete(rid, "s", "Failed", attempt=7)
    assert store.get_run_detail(rid) == before
    store.record_step_complete(rid, "s", "Succeeded", '{"ok": true}', attempt=successor.attempt)
    assert store.get_run_detail(rid).steps[0].attempts[1].status is StepStatus.SUCCEEDED


def test_complete_run_says_whether_this_call_completed_it(store: Any) -> None:
    rid = start(store)
    assert store.complete_run(rid, "Succeeded") is True
    assert store.complete_run(rid, "succeeded") is False
    with pytest.raises(InvalidTransition):
        store.complete_run(rid, "Failed")
    with pytest.raises(RunNotFound):
        store.complete_run(uuid.uuid4(), "Failed")


def test_times_never_run_backwards_within_a_run(store: Any, clock: FakeClock) -> None:
    # A store whose clock is behind the one that started the run (another host, 5 minutes slow).
    rid = start(store)
    started = store.get_run_detail(rid).started_at
    clock.advance(minutes=-5)
    opened = store.record_step_start(rid, "s", "task")
    assert opened.started_at == started
    clock.advance(minutes=-1)
    store.record_step_complete(rid, "s", "Succeeded")
    assert store.complete_run(rid, "Succeeded") is True
    assert store.request_cancel(rid) is False
    detail = store.get_run_detail(rid)
    attempt = detail.steps[0].attempts[0]
    assert detail.completed_at == started and attempt.completed_at == attempt.started_at == started


# -- dispatch leases -------------------------------------------------------------------------------


def test_without_a_lease_a_dispatch_is_the_seed_guard(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    assert store.try_record_dispatch(rid, "a") is True
    clock.advance(days=30)
    assert store.claim_expired_dispatches("engine-2", 30) == []
    assert store.try_record_dispatch(rid, "a") is False
    [held] = store.get_dispatches(rid)
    assert (held.step_key, held.owner, held.lease_expires_at, held.job_id) == ("a", None, None, None)


def test_a_lease_is_renewed_by_its_owner_and_claimed_once_it_expires(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    t0 = clock.now
    assert store.try_record_dispatch(rid, "a", "worker-1", timedelta(seconds=30)) is True
    assert store.try_record_dispatch(rid, "a", "worker-2", 30) is False
    store.annotate_dispatch(rid, "a", "job-17")
    [held] = store.get_dispatches(rid)
    assert (held.owner, held.job_id, held.dispatched_at, held.lease_expires_at) == (
        "worker-1", "job-17", t0, t0 + timedelta(seconds=30),
    )  # fmt: skip

    clock.advance(seconds=20)
    assert store.heartbeat(rid, "a", "worker-1", 30) is True  # now expires at t0 + 50 s
    assert store.heartbeat(rid, "a", "worker-2", 30) is False, "only the owner renews"
    clock.advance(seconds=25)
    assert store.claim_expired_dispatches("engine-2", 60) == [], "renewed: not expired at t0 + 45 s"
    clock.advance(seconds=6)
    [claimed] = store.claim_expired_dispatches("engine-2", 60)
    now = clock.now
    assert (claimed.run_id, claimed.step_key, claimed.owner, claimed.job_id) == (rid, "a", "engine-2", "job-17")
    assert (claimed.dispatched_at, claimed.lease_expires_at) == (now, now + timedelta(seconds=60))
    assert store.get_dispatches(rid) == [claimed]
    assert store.claim_expired_dispatches("engine-3", 60) == [], "each expired dispatch is claimed once"
    assert store.heartbeat(rid, "a", "worker-1", 30) is False, "the dead worker's lease is gone"
    assert store.get_dispatched_step_keys(rid) == frozenset({"a"})


def test_claims_take_the_oldest_expiries_first_and_skip_finished_runs(store: Any, clock: FakeClock) -> None:
    live, done = start(store), start(store)
    for n, key in enumerate(["c", "a", "b"]):
        store.try_record_dispatch(live, key, "w", 10 + n)
    store.try_record_dispatch(done, "x", "w", 1)
    store.complete_run(done, "Failed")
    clock.advance(minutes=1)
    first = store.claim_expired_dispatches("e", 30, limit=2)
    assert [d.step_key for d in sorted(first, key=lambda d: d.lease_expires_at or clock.now)] in (
        ["a", "c"],
        ["c", "a"],
    )
    assert {d.step_key for d in first} == {"c", "a"}
    assert [d.step_key for d in store.claim_expired_dispatches("e", 30, limit=2)] == ["b"]
    assert store.claim_expired_dispatches("e", 30) == []
    assert store.get_dispatches(done)[0].owner == "w"


def test_release_and_retry_end_a_leased_dispatch(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    store.record_step_start(rid, "a", "task")
    store.try_record_dispatch(rid, "a", "w", 5)
    store.try_record_dispatch(rid, "b", "w", 5)
    store.release_dispatch(rid, "b")
    store.retry_step(rid, "a")
    clock.advance(minutes=1)
    assert store.get_dispatches(rid) == [] and store.claim_expired_dispatches("e", 5) == []
    assert store.heartbeat(rid, "a", "w", 5) is False and store.heartbeat(uuid.uuid4(), "a", "w", 5) is False


# -- run control -----------------------------------------------------------------------------------


def test_a_duplicate_trigger_gets_the_first_run_back(store: Any) -> None:
    first_id, second_id = uuid.uuid4(), uuid.uuid4()
    first = store.start_run(FLOW, "nightly", first_id, "cron", idempotency_key="2026-03-01")
    again = store.start_run(FLOW, "nightly", second_id, "cron", idempotency_key="2026-03-01")
    same_call = store.start_run(FLOW, "nightly", first_id, "cron", idempotency_key="2026-03-01")
    assert again == first == same_call
    assert store.get_run_detail(second_id) is None
    # Keys are per flow, and a run without a key is never a duplicate.
    other_flow = store.start_run(uuid.uuid4(), "other", uuid.uuid4(), "cron", idempotency_key="2026-03-01")
    assert other_flow.id != first_id
    store.complete_run(first_id, "Succeeded")
    assert store.start_run(FLOW, "nightly", uuid.uuid4(), "cron", idempotency_key="2026-03-01").status is (
        RunStatus.SUCCEEDED
    )
    with pytest.raises(Exception, match="already exists"):
        store.start_run(FLOW, "nightly", first_id, "cron", idempotency_key="another")


def test_cancel_requests_are_recorded_once_and_read_cheaply(store: Any) -> None:
    rid, other = start(store), start(store)
    assert store.is_cancel_requested(rid) is False
    assert store.request_cancel(rid) is True
    assert store.request_cancel(rid) is False
    assert (store.is_cancel_requested(rid), store.is_cancel_requested(other)) == (True, False)
    assert store.is_cancel_requested(uuid.uuid4()) is False
    with pytest.raises(RunNotFound):
        store.request_cancel(uuid.uuid4())
    store.record_step_start(rid, "s", "task")
    store.complete_run(rid, "Cancelled")
    assert store.request_cancel(rid) is False
    store.retry_step(rid, "s")  # reopened: the old request does not stop the new work
    assert store.is_cancel_requested(rid) is False
    with pytest.raises(StepNotFound):
        store.retry_step(rid, "missing")


def test_runs_past_their_deadline_are_listed_most_overdue_first(store: Any, clock: FakeClock) -> None:
    t0 = clock.now
    late = store.start_run(FLOW, "f", uuid.uuid4(), "cron", deadline=t0 + timedelta(minutes=5)).id
    later = start(store)
    store.set_deadline(later, t0 + timedelta(minutes=1))
    finished = store.start_run(FLOW, "f", uuid.uuid4(), "cron", deadline=t0 + timedelta(minutes=1)).id
    store.complete_run(finished, "Succeeded")
    cleared = store.start_run(FLOW, "f", uuid.uuid4(), "cron", deadline=t0)
    store.set_deadline(cleared.id, None)
    assert store.get_overdue_runs() == []
    clock.advance(minutes=10)
    assert [r.id for r in store.get_overdue_runs()] == [later, late]
    assert [r.id for r in store.get_overdue_runs(limit=1)] == [later]
    with pytest.raises(RunNotFound):
        store.set_deadline(uuid.uuid4(), t0)
