"""Conformance: the dispatch guard, active runs, detail ordering, and unknown ids.

Every test runs against ``RunStore`` (PostgreSQL) and ``InMemoryRunStore``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from oltp.errors import RunNotFound, StepNotFound
from oltp.records import RunStatus
from tests.conftest import FakeClock
from tests.oltp.conftest import dispatch_job_id, start
from tests.oltp.observe import observe


def test_dispatch_guard_admits_one_caller_until_released(store: Any) -> None:
    rid = start(store)
    assert store.get_dispatched_step_keys(rid) == frozenset()
    assert store.try_record_dispatch(rid, "a") is True
    assert store.try_record_dispatch(rid, "a") is False
    assert store.try_record_dispatch(rid, "b") is True
    keys = store.get_dispatched_step_keys(rid)
    assert isinstance(keys, frozenset) and keys == {"a", "b"}
    store.release_dispatch(rid, "a")
    assert store.get_dispatched_step_keys(rid) == {"b"}
    assert store.try_record_dispatch(rid, "a") is True
    assert store.try_record_dispatch(rid, "a") is False
    # Releasing twice, or a key never dispatched, is fine.
    store.release_dispatch(rid, "b")
    store.release_dispatch(rid, "b")
    store.release_dispatch(rid, "never")
    assert store.get_dispatched_step_keys(rid) == {"a"}


def test_dispatch_is_per_run_and_independent_of_steps_and_status(store: Any) -> None:
    a, b = start(store), start(store)
    assert store.try_record_dispatch(a, "s") is True
    assert store.try_record_dispatch(b, "s") is True
    store.complete_run(b, "Succeeded")
    assert store.try_record_dispatch(b, "late") is True
    store.record_step_start(a, "s", "task")
    store.record_step_complete(a, "s", "Succeeded")
    store.complete_run(a, "Succeeded")
    # Completing a step or a run does not release anything; only release and retry do.
    assert store.get_dispatched_step_keys(a) == {"s"}
    assert store.get_dispatched_step_keys(b) == {"s", "late"}


def test_annotate_attaches_the_job_id_to_an_existing_record(store: Any) -> None:
    rid = start(store)
    assert store.try_record_dispatch(rid, "a") is True
    assert dispatch_job_id(store, rid, "a") is None
    store.annotate_dispatch(rid, "a", "hangfire-42")
    assert dispatch_job_id(store, rid, "a") == "hangfire-42"
    store.annotate_dispatch(rid, "a", "hangfire-43")
    assert dispatch_job_id(store, rid, "a") == "hangfire-43"
    # Annotating does not dispatch, and the guard still holds.
    assert store.try_record_dispatch(rid, "a") is False
    assert store.get_dispatched_step_keys(rid) == {"a"}


def test_annotate_without_a_record_is_a_silent_no_op(store: Any) -> None:
    rid = start(store)
    store.annotate_dispatch(rid, "never-dispatched", "job-1")
    store.annotate_dispatch(uuid.uuid4(), "a", "job-1")
    assert store.try_record_dispatch(rid, "a") is True
    store.release_dispatch(rid, "a")
    store.annotate_dispatch(rid, "a", "job-2")
    assert store.get_dispatched_step_keys(rid) == frozenset()
    assert dispatch_job_id(store, rid, "never-dispatched") is None
    # A dispatch recorded after a stray annotation starts without a job id.
    assert store.try_record_dispatch(rid, "a") is True
    assert dispatch_job_id(store, rid, "a") is None


def test_active_runs_are_running_runs_newest_first_ties_by_id_descending(store: Any, clock: FakeClock) -> None:
    early = start(store)
    clock.advance(seconds=1)
    tied = [start(store) for _ in range(5)]  # same started_at: ordered by id, descending
    clock.advance(microseconds=1)
    newest = start(store)
    done = start(store)
    store.complete_run(done, "Succeeded")

    active = store.get_active_runs()
    assert [r.id for r in active] == [newest, *sorted(tied, reverse=True), early]
    assert all(r.status is RunStatus.RUNNING and r.steps is None for r in active)
    assert active[0].started_at - active[1].started_at == timedelta(microseconds=1)

    # A retried run is active again, in its started_at place.
    store.record_step_start(done, "s", "task")
    store.retry_step(done, "s")
    assert [r.id for r in store.get_active_runs()][:2] == sorted([newest, done], reverse=True)


def test_active_runs_are_empty_without_running_runs(store: Any) -> None:
    assert store.get_active_runs() == []
    rid = start(store)
    store.complete_run(rid, "TimedOut")
    assert store.get_active_runs() == []


def test_detail_orders_steps_by_newest_attempt_then_key(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    clock.advance(seconds=1)
    store.record_step_start(rid, "zeta", "task")
    store.record_step_start(rid, "alpha", "task")  # same instant as zeta: key decides
    clock.advance(seconds=1)
    store.record_step_start(rid, "mid", "task")
    clock.advance(seconds=1)
    store.record_step_start(rid, "Beta", "task")
    assert [s.step_key for s in store.get_run_detail(rid).steps] == ["alpha", "zeta", "mid", "Beta"]

    # A new attempt of zeta moves it to the end; a retry (no attempt) moves nothing.
    clock.advance(seconds=1)
    store.record_step_start(rid, "zeta", "task")
    store.retry_step(rid, "alpha")
    clock.advance(seconds=1)
    store.record_step_complete(rid, "mid", "Succeeded")
    steps = store.get_run_detail(rid).steps
    assert [s.step_key for s in steps] == ["alpha", "mid", "Beta", "zeta"]
    assert [a.attempt for a in steps[-1].attempts] == [1, 2]


def test_detail_lists_attempts_ascending_for_many_attempts(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    for n in range(12):
        clock.advance(seconds=1)
        store.record_step_start(rid, "s", "task", f'{{"n": {n}}}')
        store.record_step_complete(rid, "s", "Failed", error_message=f"e{n}")
    attempts = store.get_run_detail(rid).steps[0].attempts
    assert [a.attempt for a in attempts] == list(range(1, 13))
    assert [a.error_message for a in attempts] == [f"e{n}" for n in range(12)]
    assert [a.started_at for a in attempts] == sorted(a.started_at for a in attempts)


def test_unknown_ids_raise_or_answer_empty_as_specified(store: Any) -> None:
    known = start(store)
    store.record_step_start(known, "s", "task")
    assert store.try_record_dispatch(known, "s") is True
    before = observe(store, [known])
    ghost = uuid.uuid4()

    calls: tuple[Callable[[], object], ...] = (
        lambda: store.record_step_start(ghost, "s", "task"),
        lambda: store.record_step_complete(ghost, "s", "Succeeded"),
        lambda: store.complete_run(ghost, "Succeeded"),
        lambda: store.retry_step(ghost, "s"),
        lambda: store.try_record_dispatch(ghost, "s"),
    )
    for call in calls:
        with pytest.raises(RunNotFound) as info:
            call()
        assert info.value.run_id == ghost
    for call in (
        lambda: store.record_step_complete(known, "missing", "Succeeded"),
        lambda: store.retry_step(known, "missing"),
    ):
        with pytest.raises(StepNotFound) as found:
            call()
        assert (found.value.run_id, found.value.step_key) == (known, "missing")

    store.release_dispatch(ghost, "s")
    store.release_dispatch(known, "missing")
    store.annotate_dispatch(ghost, "s", "job")
    assert store.get_dispatched_step_keys(ghost) == frozenset()
    assert store.get_run_detail(ghost) is None
    details, dispatched, active = observe(store, [known, ghost])
    assert details == (*before[0], None)
    assert dispatched == (*before[1], frozenset())
    assert active == before[2]


def test_a_step_key_is_case_and_space_sensitive(store: Any) -> None:
    rid = start(store)
    store.record_step_start(rid, "Step", "task")
    with pytest.raises(StepNotFound):
        store.record_step_complete(rid, "step", "Succeeded")
    with pytest.raises(StepNotFound):
        store.retry_step(rid, "Step ")
    store.record_step_start(rid, "step", "task")
    assert sorted(s.step_key for s in store.get_run_detail(rid).steps) == ["Step", "step"]
