"""The shapes of the API's answers, for the OpenAPI schema (``/api/openapi.json``).

The routes write their JSON with ``flowrun.jsonable`` from the store's records;
these models describe that JSON for clients and code generators, and the tests
validate real answers against them so the description cannot drift.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from oltp.records import DashboardStatistics, Granularity, RunStatus, RunTimeseriesBucket, StepStatus


class Model(BaseModel):
    """Answers hold exactly these fields (the tests hold the routes to it)."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Model):
    type: str
    message: str


class ErrorBody(Model):
    """Every 4xx/5xx answer: ``type`` is the error's class (``InvalidPaging``, ``RunNotFound``...)."""

    error: ErrorDetail


class Run(Model):
    id: uuid.UUID
    flow_id: uuid.UUID
    flow_name: str
    status: RunStatus
    trigger_key: str
    trigger_data_json: str | None
    background_job_id: str | None
    started_at: datetime
    completed_at: datetime | None
    source_run_id: uuid.UUID | None
    archived: bool


class RunsPage(Model):
    total_count: int
    skip: int
    take: int
    runs: list[Run]


class Timeseries(Model):
    granularity: Granularity
    since: datetime
    until: datetime
    flow_id: uuid.UUID | None
    buckets: list[RunTimeseriesBucket]


class Attempt(Model):
    run_id: uuid.UUID
    step_key: str
    attempt: int
    step_type: str
    status: StepStatus
    input_json: str | None
    output_json: str | None
    error_message: str | None
    job_id: str | None
    started_at: datetime
    completed_at: datetime | None
    truncated: list[str]


class Step(Model):
    run_id: uuid.UUID
    step_key: str
    step_type: str
    status: StepStatus
    input_json: str | None
    output_json: str | None
    error_message: str | None
    job_id: str | None
    started_at: datetime
    completed_at: datetime | None
    attempt_count: int
    attempts: list[Attempt]
    truncated: list[str]


class RunDetail(Run):
    """A run with its steps; fields named in ``truncated`` were cut (see ``/api/runs/{id}/value``)."""

    steps: list[Step]
    truncated: list[str]
    dispatched_step_keys: list[str]
    cancel_requested: bool
    actions: bool


class Derived(Model):
    source_run_id: uuid.UUID
    runs: list[Run]


class Flow(Model):
    flow_id: uuid.UUID
    flow: str
    runs: int
    completed: int
    running: int
    failed_pct: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    last_started_at: datetime


class Flows(Model):
    computed_at: datetime
    flows: list[Flow]
    slowest: list[Flow]


class TopError(Model):
    flow: str
    step: str
    error: str
    failures: int
    runs: int


class TopErrors(Model):
    computed_at: datetime
    errors: list[TopError]


class FieldValue(Model):
    field: str
    value: str | None


class Health(Model):
    feed_live: bool
    streams: int
    actions: bool


class Retried(Model):
    run_id: uuid.UUID
    step_key: str
    retried: bool


class CancelRequested(Model):
    run_id: uuid.UUID
    requested: bool


Statistics = DashboardStatistics


def documented(model: Any, *errors: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: ``model`` for 200, ``ErrorBody`` for each of ``errors``."""
    out: dict[int | str, dict[str, Any]] = {200: {"model": model}}
    for code in errors:
        out[code] = {"model": ErrorBody}
    return out
