"""One front for the arguments of every lifecycle call, whatever store serves it.

Each function here takes a public method's raw arguments, checks them in the
documented order (``oltp.arguments``) and returns them as one typed value.
The PostgreSQL stores (sync and async) and the in-memory store all start a
call here and never check an argument themselves, so a bad argument raises
the same ``InvalidArgument`` subclass from every store, before anything is
read or written, even for an unknown run.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from oltp import arguments as arg
from oltp.errors import InvalidArgument
from oltp.records import RunStatus, StepStatus

# A lease shorter than this cannot be renewed reliably across a network round trip; one
# longer than a week is a dispatch without a lease in disguise.
MIN_LEASE = timedelta(milliseconds=100)
MAX_LEASE = timedelta(days=7)
MAX_CLAIM = 1000


class StartRun(NamedTuple):
    run_id: uuid.UUID
    flow_id: uuid.UUID
    flow_name: str
    trigger_key: str
    trigger_data_json: str | None
    job_id: str | None
    source_run_id: uuid.UUID | None
    idempotency_key: str | None
    deadline: datetime | None


class StepStart(NamedTuple):
    run_id: uuid.UUID
    step_key: str
    step_type: str
    input_json: str | None
    job_id: str | None


class StepComplete(NamedTuple):
    run_id: uuid.UUID
    step_key: str
    status: StepStatus
    output_json: str | None
    error_message: str | None
    attempt: int | None


class CompleteRun(NamedTuple):
    run_id: uuid.UUID
    status: RunStatus


class StepRef(NamedTuple):
    run_id: uuid.UUID
    step_key: str


class Dispatch(NamedTuple):
    run_id: uuid.UUID
    step_key: str
    owner: str | None
    lease: timedelta | None


class Annotate(NamedTuple):
    run_id: uuid.UUID
    step_key: str
    job_id: str


class Deadline(NamedTuple):
    run_id: uuid.UUID
    deadline: datetime | None


class Claim(NamedTuple):
    owner: str
    lease: timedelta
    limit: int


def start_run(
    flow_id: object,
    flow_name: object,
    run_id: object,
    trigger_key: object,
    trigger_data: object,
    job_id: object,
    source_run_id: object,
    idempotency_key: object = None,
    deadline: object = None,
) -> StartRun:
    """``start_run``'s arguments, in signature order."""
    fid = arg.run_id(flow_id, "flow_id")
    name = arg.text(flow_name, "flow_name")
    rid = arg.run_id(run_id)
    trigger = arg.text(trigger_key, "trigger_key")
    data = arg.json_text(trigger_data, "trigger_data")
    job = arg.optional_text(job_id, "job_id")
    source = arg.optional_uuid(source_run_id, "source_run_id")
    key = None if idempotency_key is None else arg.text(idempotency_key, "idempotency_key")
    due = None if deadline is None else arg.aware_utc(deadline, "deadline")
    return StartRun(rid, fid, name, trigger, data, job, source, key, due)


def step_start(run_id: object, step_key: object, step_type: object, input_json: object, job_id: object) -> StepStart:
    """``record_step_start``'s arguments."""
    return StepStart(
        arg.run_id(run_id),
        arg.step_key(step_key),
        arg.text(step_type, "step_type"),
        arg.json_text(input_json, "input_json"),
        arg.optional_text(job_id, "job_id"),
    )


def step_complete(
    run_id: object, step_key: object, status: object, output_json: object, error_message: object, attempt: object
) -> StepComplete:
    """``record_step_complete``'s arguments; ``attempt`` (optional) is a 1-based attempt number."""
    rid = arg.run_id(run_id)
    key = arg.step_key(step_key)
    st = arg.step_status(status)
    output = arg.json_text(output_json, "output_json")
    error = arg.optional_text(error_message, "error_message")
    if attempt is not None and (not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1):
        raise InvalidArgument(f"attempt must be an integer >= 1 or None, got {attempt!r}")
    return StepComplete(rid, key, st, output, error, attempt)


def complete_run(run_id: object, status: object) -> CompleteRun:
    """``complete_run``'s arguments: a terminal run status."""
    return CompleteRun(arg.run_id(run_id), arg.run_status(status, terminal=True))


def run(run_id: object) -> uuid.UUID:
    """A run id (reads, ``request_cancel``)."""
    return arg.run_id(run_id)


def deadline(run_id: object, due: object) -> Deadline:
    """``set_deadline``'s arguments: an aware datetime, or None to clear it."""
    return Deadline(arg.run_id(run_id), None if due is None else arg.aware_utc(due, "deadline"))


def step_ref(run_id: object, step_key: object) -> StepRef:
    """A (run, step) pair: ``retry_step``, ``release_dispatch``."""
    return StepRef(arg.run_id(run_id), arg.step_key(step_key))


def dispatch(run_id: object, step_key: object, owner: object, lease: object) -> Dispatch:
    """``try_record_dispatch``'s arguments; a lease needs an owner to renew it."""
    rid = arg.run_id(run_id)
    key = arg.step_key(step_key)
    who = None if owner is None else arg.text(owner, "owner")
    span = None if lease is None else lease_span(lease)
    if span is not None and who is None:
        raise InvalidArgument("a dispatch with a lease needs an owner (who renews it)")
    return Dispatch(rid, key, who, span)


def heartbeat(run_id: object, step_key: object, owner: object, lease: object) -> Dispatch:
    """``heartbeat``'s arguments: owner and lease are required."""
    return Dispatch(arg.run_id(run_id), arg.step_key(step_key), arg.text(owner, "owner"), lease_span(lease))


def annotate(run_id: object, step_key: object, job_id: object) -> Annotate:
    """``annotate_dispatch``'s arguments."""
    return Annotate(arg.run_id(run_id), arg.step_key(step_key), arg.text(job_id, "job_id"))


def claim(owner: object, lease: object, limit: object) -> Claim:
    """``claim_expired_dispatches``'s arguments: ``1 <= limit <= 1000``."""
    return Claim(arg.text(owner, "owner"), lease_span(lease), row_limit(limit))


def lease_span(value: object) -> timedelta:
    """A lease as a ``timedelta`` or seconds, between 100 ms and 7 days."""
    if isinstance(value, timedelta):
        span = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            span = timedelta(seconds=value)
        except (ValueError, OverflowError) as exc:  # NaN, infinities
            raise InvalidArgument(f"lease must be a finite number of seconds, got {value!r}") from exc
    else:
        raise InvalidArgument(f"lease must be a timedelta or a number of seconds, got {type(value).__name__}")
    if not MIN_LEASE <= span <= MAX_LEASE:
        raise InvalidArgument(f"lease must be between {MIN_LEASE} and {MAX_LEASE}, got {span}")
    return span


def row_limit(value: object, name: str = "limit") -> int:
    """A row limit ``1 <= limit <= 1000``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CLAIM:
        raise InvalidArgument(f"{name} must be an integer between 1 and {MAX_CLAIM}, got {value!r}")
    return value
