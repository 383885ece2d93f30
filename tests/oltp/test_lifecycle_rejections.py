"""Conformance: bad arguments are refused before anything is read or written.

Each case calls one method with one bad argument, for a known run and for an
unknown one: the call must raise an ``InvalidArgument`` (a ``ValueError`` and a
``FlowRunStoreError``; statuses raise ``InvalidStatus``, malformed JSON text
``InvalidJson``), must not consult the clock, and must leave every observable
state - and for PostgreSQL every table row - as it was. For PostgreSQL the same
calls on a closed store still raise the argument error, which shows no
connection was even asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from oltp.errors import FlowRunStoreError, InvalidArgument, InvalidJson, InvalidStatus
from oltp.memory import InMemoryRunStore
from oltp.records import RunStatus, StepStatus
from oltp.store import RunStore
from tests.conftest import FakeClock
from tests.oltp.conftest import FLOW, start
from tests.oltp.observe import observe, table_rows

RUN = "00000000-0000-4000-8000-000000000001"  # placeholder: replaced by the known or unknown run id

BAD_UUIDS: list[Any] = [
    "not-a-uuid",
    "",
    "123e4567-e89b-12d3-a456-42661417400",  # one digit short
    "123e4567-e89b-12d3-a456-4266141740000",  # one digit long
    "123e4567-e89b-12d3-a456-426614174000\x00",
    123,
    1.5,
    True,
    b"\x12" * 16,
    ["123e4567-e89b-12d3-a456-426614174000"],
    object(),
]
BAD_REQUIRED_TEXT: list[Any] = ["", None, 42, 1.0, b"key", "a\x00b", "\ud800 lone surrogate", ["a"], StepStatus]
BAD_STEP_KEYS: list[Any] = [*BAD_REQUIRED_TEXT, "k" * 513, "🎉" * 513]
BAD_OPTIONAL_TEXT: list[Any] = [42, b"job", "a\x00b", "\udfff", ["x"], {"a": 1}]
BAD_JSON_TEXT: list[str] = [
    "{",
    "NaN",
    "Infinity",
    "-Infinity",
    '{"a": NaN}',
    "[1, Infinity]",
    "",
    "   ",
    "{'single': 'quotes'}",
    '{"a": 1} trailing',
    "undefined",
    "01",
    '"raw \x01 control"',
    "\ufeff{}",
    "[1,]",
    '{"a" 1}',
    "True",
]
BAD_JSON_TYPES: list[Any] = [b"{}", 5, {"a": 1}, ["x"], "{}\x00"]
# Letter case is not a mistake (statuses fold case); blanks, other words and run-only statuses are.
BAD_STEP_STATUSES: list[Any] = [
    " Succeeded", "Succeeded ", "Done", "", None, 1, "Cancelled", "TimedOut",
    RunStatus.CANCELLED, "Pending\x00",
]  # fmt: skip
BAD_RUN_STATUSES_FOR_COMPLETE: list[Any] = [
    "Running", RunStatus.RUNNING, "running", "RUNNING", "Done", "", None, 3, "Pending",
    StepStatus.PENDING, "Failed ",
]  # fmt: skip


BAD_OWNERS: list[Any] = ["", 42, b"w", "a\x00b", ["w"]]
BAD_LEASES: list[Any] = [
    0, -1, 0.01, "5", timedelta(0), timedelta(seconds=-1), timedelta(days=8), float("nan"), float("inf"), True, [1],
]  # fmt: skip
BAD_LIMITS: list[Any] = [0, -1, 1001, 1.5, "5", None, True]
NAIVE = datetime(2026, 3, 1, 12, 0)
BAD_INSTANTS: list[Any] = [NAIVE, "2026-03-01T12:00:00+00:00", 5, date(2026, 3, 1)]


def _bad_text(values: list[Any]) -> list[tuple[Any, type[InvalidArgument]]]:
    return [(v, InvalidArgument) for v in values]


CASES: dict[str, tuple[str, tuple[Any, ...], int | str, list[tuple[Any, type[InvalidArgument]]]]] = {
    # name: (method, good arguments, index (or keyword) of the argument replaced, bad values with their error)
    "start_run.flow_id": ("start_run", (FLOW, "f", "NEW", "manual", None, None, None), 0, _bad_text(BAD_UUIDS)),
    "start_run.flow_name": ("start_run", (FLOW, "f", "NEW", "manual"), 1, _bad_text(BAD_REQUIRED_TEXT)),
    "start_run.run_id": ("start_run", (FLOW, "f", "NEW", "manual"), 2, _bad_text([None, *BAD_UUIDS])),
    "start_run.trigger_key": ("start_run", (FLOW, "f", "NEW", "manual"), 3, _bad_text(BAD_REQUIRED_TEXT)),
    "start_run.trigger_data": (
        "start_run",
        (FLOW, "f", "NEW", "manual", None),
        4,
        [(v, InvalidJson) for v in BAD_JSON_TEXT] + _bad_text(BAD_JSON_TYPES),
    ),
    "start_run.job_id": ("start_run", (FLOW, "f", "NEW", "manual", None, None), 5, _bad_text(BAD_OPTIONAL_TEXT)),
    "start_run.source_run_id": (
        "start_run",
        (FLOW, "f", "NEW", "manual", None, None, None),
        6,
        _bad_text(BAD_UUIDS),
    ),
    "record_step_start.run_id": ("record_step_start", (RUN, "s", "task"), 0, _bad_text([None, *BAD_UUIDS])),
    "record_step_start.step_key": ("record_step_start", (RUN, "s", "task"), 1, _bad_text(BAD_STEP_KEYS)),
    "record_step_start.step_type": ("record_step_start", (RUN, "s", "task"), 2, _bad_text(BAD_REQUIRED_TEXT)),
    "record_step_start.input_json": (
        "record_step_start",
        (RUN, "s", "task", None),
        3,
        [(v, InvalidJson) for v in BAD_JSON_TEXT] + _bad_text(BAD_JSON_TYPES),
    ),
    "record_step_start.job_id": ("record_step_start", (RUN, "s", "task", None, None), 4, _bad_text(BAD_OPTIONAL_TEXT)),
    "record_step_complete.run_id": (
        "record_step_complete",
        (RUN, "s", "Succeeded"),
        0,
        _bad_text([None, *BAD_UUIDS]),
    ),
    "record_step_complete.step_key": (
        "record_step_complete",
        (RUN, "s", "Succeeded"),
        1,
        _bad_text(BAD_STEP_KEYS),
    ),
    "record_step_complete.status": (
        "record_step_complete",
        (RUN, "s", "Succeeded"),
        2,
        [(v, InvalidStatus) for v in BAD_STEP_STATUSES],
    ),
    "record_step_complete.output_json": (
        "record_step_complete",
        (RUN, "s", "Succeeded", None),
        3,
        [(v, InvalidJson) for v in BAD_JSON_TEXT] + _bad_text(BAD_JSON_TYPES),
    ),
    "record_step_complete.error_message": (
        "record_step_complete",
        (RUN, "s", "Failed", None, None),
        4,
        _bad_text(BAD_OPTIONAL_TEXT),
    ),
    "complete_run.run_id": ("complete_run", (RUN, "Succeeded"), 0, _bad_text([None, *BAD_UUIDS])),
    "complete_run.status": (
        "complete_run",
        (RUN, "Succeeded"),
        1,
        [(v, InvalidStatus) for v in BAD_RUN_STATUSES_FOR_COMPLETE],
    ),
    "retry_step.run_id": ("retry_step", (RUN, "s"), 0, _bad_text([None, *BAD_UUIDS])),
    "retry_step.step_key": ("retry_step", (RUN, "s"), 1, _bad_text(BAD_STEP_KEYS)),
    "try_record_dispatch.run_id": ("try_record_dispatch", (RUN, "d"), 0, _bad_text([None, *BAD_UUIDS])),
    "try_record_dispatch.step_key": ("try_record_dispatch", (RUN, "d"), 1, _bad_text(BAD_STEP_KEYS)),
    "release_dispatch.run_id": ("release_dispatch", (RUN, "d"), 0, _bad_text([None, *BAD_UUIDS])),
    "release_dispatch.step_key": ("release_dispatch", (RUN, "d"), 1, _bad_text(BAD_STEP_KEYS)),
    "annotate_dispatch.run_id": ("annotate_dispatch", (RUN, "d", "job"), 0, _bad_text([None, *BAD_UUIDS])),
    "annotate_dispatch.step_key": ("annotate_dispatch", (RUN, "d", "job"), 1, _bad_text(BAD_STEP_KEYS)),
    "annotate_dispatch.job_id": ("annotate_dispatch", (RUN, "d", "job"), 2, _bad_text(BAD_REQUIRED_TEXT)),
    "get_dispatched_step_keys.run_id": ("get_dispatched_step_keys", (RUN,), 0, _bad_text([None, *BAD_UUIDS])),
    "get_run_detail.run_id": ("get_run_detail", (RUN,), 0, _bad_text([None, *BAD_UUIDS])),
    "start_run.idempotency_key": ("start_run", (FLOW, "f", "NEW", "manual"), "idempotency_key", _bad_text(BAD_OWNERS)),
    "start_run.deadline": ("start_run", (FLOW, "f", "NEW", "manual"), "deadline", _bad_text(BAD_INSTANTS)),
    "record_step_complete.attempt": (
        "record_step_complete",
        (RUN, "s", "Succeeded"),
        "attempt",
        _bad_text([0, -1, 1.5, "1", True]),
    ),
    "try_record_dispatch.owner": ("try_record_dispatch", (RUN, "d", "w", 30), 2, _bad_text(BAD_OWNERS)),
    "try_record_dispatch.lease": ("try_record_dispatch", (RUN, "d", "w", 30), 3, _bad_text(BAD_LEASES)),
    "heartbeat.run_id": ("heartbeat", (RUN, "d", "w", 30), 0, _bad_text([None, *BAD_UUIDS])),
    "heartbeat.step_key": ("heartbeat", (RUN, "d", "w", 30), 1, _bad_text(BAD_STEP_KEYS)),
    "heartbeat.owner": ("heartbeat", (RUN, "d", "w", 30), 2, _bad_text([None, *BAD_OWNERS])),
    "heartbeat.lease": ("heartbeat", (RUN, "d", "w", 30), 3, _bad_text([None, *BAD_LEASES])),
    "claim_expired_dispatches.owner": ("claim_expired_dispatches", ("w", 30, 10), 0, _bad_text([None, *BAD_OWNERS])),
    "claim_expired_dispatches.lease": ("claim_expired_dispatches", ("w", 30, 10), 1, _bad_text([None, *BAD_LEASES])),
    "claim_expired_dispatches.limit": ("claim_expired_dispatches", ("w", 30, 10), 2, _bad_text(BAD_LIMITS)),
    "get_dispatches.run_id": ("get_dispatches", (RUN,), 0, _bad_text([None, *BAD_UUIDS])),
    "request_cancel.run_id": ("request_cancel", (RUN,), 0, _bad_text([None, *BAD_UUIDS])),
    "is_cancel_requested.run_id": ("is_cancel_requested", (RUN,), 0, _bad_text([None, *BAD_UUIDS])),
    "set_deadline.run_id": ("set_deadline", (RUN, None), 0, _bad_text([None, *BAD_UUIDS])),
    "set_deadline.deadline": ("set_deadline", (RUN, None), 1, _bad_text(BAD_INSTANTS)),
    "get_overdue_runs.limit": ("get_overdue_runs", (10,), 0, _bad_text(BAD_LIMITS)),
}


class CountingClock(FakeClock):
    """A FakeClock that counts how often the store asked it for the time."""

    calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return super().__call__()


def _call(store: Any, method: str, good: tuple[Any, ...], index: int | str, bad: Any, run_id: uuid.UUID) -> Any:
    """Call ``method`` with the good arguments and ``bad`` in position (or as keyword) ``index``."""
    args = [run_id if a == RUN else uuid.uuid4() if a == "NEW" else a for a in good]
    if isinstance(index, str):
        return getattr(store, method)(*args, **{index: bad})
    args[index] = bad
    return getattr(store, method)(*args)


def _assert_rejected(call: Callable[[], Any], expected: type[InvalidArgument], label: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        call()
    assert isinstance(info.value, expected), f"{label}: raised {type(info.value).__name__}"
    assert isinstance(info.value, ValueError) and isinstance(info.value, FlowRunStoreError), label


def _populated(store: Any) -> uuid.UUID:
    rid = start(store, trigger_data='{"k": 1}')
    store.record_step_start(rid, "s", "task", '{"i": 1}')
    store.record_step_complete(rid, "s", "Failed", '{"o": 1}', "boom")
    assert store.try_record_dispatch(rid, "d") is True
    return rid


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("which", ["postgres", "memory"])
def test_bad_argument_is_refused_before_any_read_or_write(
    request: pytest.FixtureRequest, case: str, which: str
) -> None:
    method, good, index, bad_values = CASES[case]
    clock = CountingClock()
    if which == "postgres":
        dsn = request.getfixturevalue("dsn")
        store: Any = RunStore(dsn, clock=clock, migrate_schema=False, max_connections=2)
    else:
        store = InMemoryRunStore(clock=clock)
    try:
        known = _populated(store)
        ghost = uuid.uuid4()
        before = observe(store, [known, ghost])
        rows = table_rows(store.dsn) if which == "postgres" else None
        clock_calls = clock.calls
        for run_id in (known, ghost):
            for bad, expected in bad_values:
                label = f"{method} with {index}={bad!r} on {'known' if run_id == known else 'unknown'} run"
                _assert_rejected(partial(_call, store, method, good, index, bad, run_id), expected, label)
        assert clock.calls == clock_calls, "a rejected call asked the clock for the time"
        assert observe(store, [known, ghost]) == before
        if which == "postgres":
            assert table_rows(store.dsn) == rows
    finally:
        store.close()

    if which == "postgres":
        # The store is closed: any call that reached for a connection would fail differently.
        for bad, expected in bad_values:
            _assert_rejected(partial(_call, store, method, good, index, bad, known), expected, f"closed {case}")


def test_every_lifecycle_method_has_bad_argument_cases() -> None:
    methods = {
        "start_run", "record_step_start", "record_step_complete", "complete_run", "retry_step",
        "try_record_dispatch", "release_dispatch", "annotate_dispatch", "get_dispatched_step_keys",
        "get_run_detail", "heartbeat", "claim_expired_dispatches", "get_dispatches", "request_cancel",
        "is_cancel_requested", "set_deadline", "get_overdue_runs",
    }  # fmt: skip
    assert {method for method, *_ in CASES.values()} == methods
    # get_active_runs takes no argument; every other parameter of every method has a case.
    for method in methods:
        code = getattr(InMemoryRunStore, method).__code__
        positional = set(range(code.co_argcount - 1))
        keywords = set(code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount])
        covered = {index for m, _, index, _ in CASES.values() if m == method}
        assert covered == positional | keywords, method


@pytest.mark.parametrize("spelling", ["succeeded", "SUCCEEDED", "sUcCeEdEd"])
def test_statuses_fold_case_and_are_stored_canonical(store: Any, spelling: str) -> None:
    rid = start(store)
    store.record_step_start(rid, "s", "task")
    store.record_step_complete(rid, "s", spelling)
    assert store.complete_run(rid, spelling) is True
    detail = store.get_run_detail(rid)
    assert detail.status is RunStatus.SUCCEEDED and detail.steps[0].status is StepStatus.SUCCEEDED
    assert detail.steps[0].attempts[0].status is StepStatus.SUCCEEDED


def test_a_lease_needs_an_owner(store: Any) -> None:
    rid = start(store)
    with pytest.raises(InvalidArgument, match="owner"):
        store.try_record_dispatch(rid, "d", None, 30)
    assert store.get_dispatched_step_keys(rid) == frozenset()
