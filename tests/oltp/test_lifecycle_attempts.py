"""Conformance: attempts, step outcomes, retries, and run completion.

Every test runs against ``RunStore`` (PostgreSQL) and ``InMemoryRunStore``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from oltp.errors import InvalidTransition
from oltp.records import RunStatus, StepStatus
from tests.conftest import FakeClock
from tests.oltp.conftest import start
from tests.oltp.observe import observe


def test_each_start_opens_the_next_attempt_and_the_step_mirrors_it(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    t1 = clock.advance(seconds=1)
    store.record_step_start(rid, "s", "http", '{"try": 1}', "job-1")
    t2 = clock.advance(seconds=1)
    store.record_step_complete(rid, "s", "Failed", '{"e": 1}', "boom")
    t3 = clock.advance(seconds=1)
    store.record_step_start(rid, "s", "http-v2", '{"try": 2}', "job-2")

    step = store.get_run_detail(rid).steps[0]
    assert [a.attempt for a in step.attempts] == [1, 2]
    assert step.attempt_count == 2
    first, second = step.attempts
    assert (first.status, first.output_json, first.error_message, first.started_at, first.completed_at) == (
        StepStatus.FAILED, '{"e": 1}', "boom", t1, t2,
    )  # fmt: skip
    assert (first.input_json, first.job_id, first.step_type) == ('{"try": 1}', "job-1", "http")
    assert (second.status, second.output_json, second.error_message, second.completed_at) == (
        StepStatus.RUNNING, None, None, None,
    )  # fmt: skip
    # The step row mirrors its newest attempt, outcome of the previous one cleared.
    assert (step.status, step.step_type, step.input_json, step.job_id, step.started_at) == (
        StepStatus.RUNNING, "http-v2", '{"try": 2}', "job-2", t3,
    )  # fmt: skip
    assert (step.output_json, step.error_message, step.completed_at) == (None, None, None)


@pytest.mark.parametrize("status", list(StepStatus), ids=[s.value for s in StepStatus])
@pytest.mark.parametrize("as_text", [False, True], ids=["enum", "text"])
def test_complete_closes_the_newest_attempt_with_any_step_status(
    store: Any, clock: FakeClock, status: StepStatus, as_text: bool
) -> None:
    rid = start(store)
    store.record_step_start(rid, "s", "task")
    store.record_step_complete(rid, "s", "Succeeded")
    store.record_step_start(rid, "s", "task")
    done = clock.advance(minutes=1)
    store.record_step_complete(rid, "s", status.value if as_text else status, '{"n": 2}', "msg")
    step = store.get_run_detail(rid).steps[0]
    newest = step.attempts[-1]
    assert (newest.attempt, newest.status, newest.output_json, newest.error_message, newest.completed_at) == (
        2, status, '{"n": 2}', "msg", done,
    )  # fmt: skip
    assert step.attempts[0].status is StepStatus.SUCCEEDED
    assert (step.status, step.output_json, step.error_message, step.completed_at) == (status, '{"n": 2}', "msg", done)
    assert step.attempt_count == 2


def test_polling_step_reports_pending_then_finishes_on_the_same_attempt(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    store.record_step_start(rid, "poll", "wait")
    store.record_step_complete(rid, "poll", "Pending", '{"progress": 10}')
    assert store.get_run_detail(rid).steps[0].status is StepStatus.PENDING
    done = clock.advance(seconds=30)
    store.record_step_complete(rid, "poll", "Succeeded", '{"progress": 100}')
    step = store.get_run_detail(rid).steps[0]
    assert step.attempt_count == 1 and len(step.attempts) == 1
    assert (step.attempts[0].status, step.attempts[0].output_json, step.attempts[0].completed_at) == (
        StepStatus.SUCCEEDED, '{"progress": 100}', done,
    )  # fmt: skip


def test_retry_resets_the_step_reopens_the_run_and_keeps_history(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    t1 = clock.advance(seconds=1)
    store.record_step_start(rid, "s", "task", '{"in": 1}', "job-1")
    t2 = clock.advance(seconds=1)
    store.record_step_complete(rid, "s", "Failed", '{"out": 1}', "boom")
    assert store.try_record_dispatch(rid, "s") is True
    assert store.try_record_dispatch(rid, "other") is True
    clock.advance(seconds=1)
    store.complete_run(rid, "Failed")
    history = store.get_run_detail(rid).steps[0].attempts

    clock.advance(seconds=1)
    store.retry_step(rid, "s")

    detail = store.get_run_detail(rid)
    assert (detail.status, detail.completed_at) == (RunStatus.RUNNING, None)
    assert [r.id for r in store.get_active_runs()] == [rid]
    step = detail.steps[0]
    # Pending, outcome cleared; what the step was started with stays; no attempt opened.
    assert (step.status, step.completed_at, step.output_json, step.error_message) == (
        StepStatus.PENDING, None, None, None,
    )  # fmt: skip
    assert (step.step_type, step.input_json, step.job_id, step.started_at) == ("task", '{"in": 1}', "job-1", t1)
    assert step.attempt_count == 1 and step.attempts == history
    assert history[0].completed_at == t2 and history[0].status is StepStatus.FAILED
    # Only the retried step's dispatch is cleared.
    assert store.get_dispatched_step_keys(rid) == frozenset({"other"})
    assert store.try_record_dispatch(rid, "s") is True

    t5 = clock.advance(seconds=1)
    store.record_step_start(rid, "s", "task", '{"in": 2}')
    step = store.get_run_detail(rid).steps[0]
    assert [a.attempt for a in step.attempts] == [1, 2]
    assert step.attempts[0] == history[0]
    assert (step.attempt_count, step.status, step.started_at, step.input_json) == (
        2, StepStatus.RUNNING, t5, '{"in": 2}',
    )  # fmt: skip
    assert step.job_id is None


def test_retry_on_a_running_run_keeps_it_running(store: Any) -> None:
    rid = start(store)
    store.record_step_start(rid, "s", "task")
    store.record_step_complete(rid, "s", "Failed", error_message="x")
    store.retry_step(rid, "s")
    store.retry_step(rid, "s")
    detail = store.get_run_detail(rid)
    assert detail.status is RunStatus.RUNNING and detail.steps[0].status is StepStatus.PENDING
    assert detail.steps[0].attempt_count == 1


def test_complete_after_retry_without_a_new_start_closes_the_newest_attempt(store: Any) -> None:
    rid = start(store)
    store.record_step_start(rid, "s", "task")
    store.record_step_complete(rid, "s", "Failed")
    store.retry_step(rid, "s")
    store.record_step_complete(rid, "s", "Skipped", error_message="skipped by operator")
    step = store.get_run_detail(rid).steps[0]
    assert step.attempt_count == 1
    assert step.status is StepStatus.SKIPPED and step.attempts[0].status is StepStatus.SKIPPED


@pytest.mark.parametrize("status", [s for s in RunStatus if s.is_terminal], ids=lambda s: s.value)
def test_complete_run_sets_the_terminal_status_once(store: Any, clock: FakeClock, status: RunStatus) -> None:
    rid = start(store)
    other = start(store)
    done = clock.advance(seconds=5)
    store.complete_run(rid, status.value)
    detail = store.get_run_detail(rid)
    assert (detail.status, detail.completed_at) == (status, done)
    assert [r.id for r in store.get_active_runs()] == [other]

    # The same status again changes nothing, not even completed_at.
    clock.advance(seconds=5)
    store.complete_run(rid, status)
    assert store.get_run_detail(rid) == detail

    # Any other terminal status is refused and changes nothing.
    before = observe(store, [rid, other])
    for different in RunStatus:
        if different.is_terminal and different is not status:
            with pytest.raises(InvalidTransition):
                store.complete_run(rid, different)
    assert observe(store, [rid, other]) == before


def test_cancelled_run_never_silently_becomes_succeeded(store: Any) -> None:
    rid = start(store)
    store.complete_run(rid, "Cancelled")
    before = observe(store, [rid])
    with pytest.raises(InvalidTransition):
        store.complete_run(rid, "Succeeded")
    assert observe(store, [rid]) == before
    assert store.get_run_detail(rid).status is RunStatus.CANCELLED


def test_step_writes_to_a_terminal_run_are_allowed_and_keep_it_terminal(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    store.record_step_start(rid, "s", "task")
    completed = clock.advance(seconds=1)
    store.complete_run(rid, "Failed")
    clock.advance(seconds=1)
    store.record_step_complete(rid, "s", "Failed", error_message="late report")
    store.record_step_start(rid, "late", "task")
    detail = store.get_run_detail(rid)
    assert (detail.status, detail.completed_at) == (RunStatus.FAILED, completed)
    assert [s.step_key for s in detail.steps] == ["s", "late"]
    assert detail.steps[0].error_message == "late report"
    assert store.get_active_runs() == []


def test_steps_of_different_runs_are_independent(store: Any) -> None:
    a, b = start(store), start(store)
    store.record_step_start(a, "s", "task")
    store.record_step_start(a, "s", "task")
    store.record_step_start(b, "s", "task")
    store.retry_step(a, "s")
    assert store.get_run_detail(a).steps[0].attempt_count == 2
    step_b = store.get_run_detail(b).steps[0]
    assert (step_b.attempt_count, step_b.status, step_b.run_id) == (1, StepStatus.RUNNING, b)


def test_start_run_with_an_existing_id_is_refused_and_changes_nothing(store: Any, clock: FakeClock) -> None:
    from oltp.errors import RunAlreadyExists

    rid = start(store, flow_name="first")
    store.record_step_start(rid, "s", "task")
    store.complete_run(rid, "Succeeded")
    before = observe(store, [rid])
    clock.advance(seconds=1)
    with pytest.raises(RunAlreadyExists):
        store.start_run(uuid.uuid4(), "second", rid, "manual")
    assert observe(store, [rid]) == before
    assert store.get_run_detail(rid).flow_name == "first"
