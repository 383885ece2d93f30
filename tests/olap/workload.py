"""A seeded engine workload and the answers it implies, computed in plain Python.

``play`` drives the real ``RunStore`` with a fake clock and, call by call, keeps its
own model of what it did (runs, steps, attempts, statuses, times). The ``expected_*``
functions derive every reporting answer from that model alone — never from the
store — so a test compares the store's answers with an independent oracle.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from oltp.records import (
    DashboardStatistics,
    FlowRunRecord,
    FlowStepAttemptRecord,
    FlowStepRecord,
    RunStatus,
    RunTimeseriesBucket,
    StepStatus,
)
from oltp.rows import order_steps
from oltp.store import RunStore

FLOWS = [
    (uuid.UUID("00000000-0000-4000-8000-000000000001"), "Billing nightly"),
    (uuid.UUID("00000000-0000-4000-8000-000000000002"), "ETL Ärger Öl"),
    (uuid.UUID("00000000-0000-4000-8000-000000000003"), "report_100% done"),
    (uuid.UUID("00000000-0000-4000-8000-000000000004"), "path\\to\\it"),
    (uuid.UUID("00000000-0000-4000-8000-000000000005"), 'O\'Brien "quoted"'),
]
STEP_KEYS = ["fetch", "transform", "load_all"]
ERRORS = ["HTTP 503 from upstream", "timeout after 30s", "KeyError: 'user_id'", "disk 100% full"]
TERMINAL = [RunStatus.SUCCEEDED] * 5 + [
    RunStatus.FAILED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.TIMED_OUT,
    RunStatus.SKIPPED,
]


@dataclass
class Attempt:
    step_type: str
    status: StepStatus
    input_json: str | None
    output_json: str | None
    error_message: str | None
    job_id: str | None
    started_at: datetime
    completed_at: datetime | None


@dataclass
class Step:
    step_type: str
    status: StepStatus
    input_json: str | None
    output_json: str | None
    error_message: str | None
    job_id: str | None
    started_at: datetime | None
    completed_at: datetime | None
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class Run:
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
    steps: dict[str, Step] = field(default_factory=dict)

    def record(self, *, detail: bool = False) -> FlowRunRecord:
        steps = None
        if detail:
            steps = order_steps([self.step_record(k) for k in self.steps])
        return FlowRunRecord(
            self.id,
            self.flow_id,
            self.flow_name,
            self.status,
            self.trigger_key,
            self.trigger_data_json,
            self.background_job_id,
            self.started_at,
            self.completed_at,
            self.source_run_id,
            steps,
        )

    def step_record(self, key: str) -> FlowStepRecord:
        s = self.steps[key]
        attempts = tuple(
            FlowStepAttemptRecord(
                self.id,
                key,
                n,
                a.step_type,
                a.status,
                a.input_json,
                a.output_json,
                a.error_message,
                a.job_id,
                a.started_at,
                a.completed_at,
            )
            for n, a in enumerate(s.attempts, start=1)
        )
        return FlowStepRecord(
            self.id,
            key,
            s.step_type,
            s.status,
            s.input_json,
            s.output_json,
            s.error_message,
            s.job_id,
            s.started_at,
            s.completed_at,
            len(s.attempts),
            attempts,
        )


class Model:
    """The store as the workload believes it to be, updated by the same calls it makes."""

    def __init__(self, store: RunStore, clock: Any) -> None:
        self.store = store
        self.clock = clock
        self.runs: dict[uuid.UUID, Run] = {}

    def start_run(
        self,
        flow: tuple[uuid.UUID, str],
        trigger: str,
        data: str | None,
        job: str | None,
        source: uuid.UUID | None = None,
        run_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        rid = run_id or uuid.uuid4()
        self.store.start_run(flow[0], flow[1], rid, trigger, data, job, source)
        self.runs[rid] = Run(rid, flow[0], flow[1], RunStatus.RUNNING, trigger, data, job, self.clock.now, None, source)
        return rid

    def step_start(self, rid: uuid.UUID, key: str, kind: str, inputs: str | None, job: str | None) -> None:
        self.store.record_step_start(rid, key, kind, inputs, job)
        now = self.clock.now
        run = self.runs[rid]
        step = run.steps.get(key) or Step(kind, StepStatus.RUNNING, None, None, None, None, None, None)
        step.attempts.append(Attempt(kind, StepStatus.RUNNING, inputs, None, None, job, now, None))
        step.step_type, step.status, step.input_json, step.job_id = kind, StepStatus.RUNNING, inputs, job
        step.output_json = step.error_message = None
        step.started_at, step.completed_at = now, None
        run.steps[key] = step

    def step_complete(
        self, rid: uuid.UUID, key: str, status: StepStatus, output: str | None, error: str | None
    ) -> None:
        self.store.record_step_complete(rid, key, status, output, error)
        now = self.clock.now
        step = self.runs[rid].steps[key]
        a = step.attempts[-1]
        a.status, a.output_json, a.error_message, a.completed_at = status, output, error, now
        step.status, step.output_json, step.error_message, step.completed_at = status, output, error, now

    def complete(self, rid: uuid.UUID, status: RunStatus) -> None:
        self.store.complete_run(rid, status)
        run = self.runs[rid]
        run.status, run.completed_at = status, self.clock.now

    def retry(self, rid: uuid.UUID, key: str) -> None:
        self.store.retry_step(rid, key)
        run = self.runs[rid]
        step = run.steps[key]
        step.status, step.completed_at, step.output_json, step.error_message = StepStatus.PENDING, None, None, None
        run.status, run.completed_at = RunStatus.RUNNING, None


START = datetime(2026, 2, 20, 0, 0, tzinfo=UTC)


def play(store: RunStore, clock: Any, *, runs: int = 240, seed: int = 20260301) -> Model:
    """Play ``runs`` runs over about a week: every status, retries, re-runs and start-time ties."""
    rng = random.Random(seed)
    clock.now = START
    model = Model(store, clock)
    started: list[uuid.UUID] = []
    for i in range(runs):
        # Every tenth run starts at exactly the same instant as the previous one (paging ties).
        if i % 10 != 5:
            clock.advance(seconds=rng.randint(60, 4800), microseconds=rng.randint(0, 999_999))
        flow = rng.choice(FLOWS)
        source = rng.choice(started) if started and rng.random() < 0.15 else None
        job = None if rng.random() < 0.2 else f"job-{rng.randint(1000, 9999)}"
        data = None if rng.random() < 0.3 else f'{{"n": {i}}}'
        rid = model.start_run(flow, rng.choice(["manual", "schedule", "webhook"]), data, job, source)
        started.append(rid)
        final_step_failed = False
        for key in rng.sample(STEP_KEYS, rng.randint(0, 3)):
            tries = 2 if rng.random() < 0.2 else 1
            for t in range(tries):
                model.step_start(rid, key, "http" if key == "fetch" else "task", f'{{"try": {t}}}', None)
                clock.advance(milliseconds=rng.randint(1, 200_000), microseconds=rng.randint(0, 999))
                failed = t < tries - 1 or rng.random() < 0.1
                if failed:
                    model.step_complete(rid, key, StepStatus.FAILED, None, rng.choice(ERRORS))
                else:
                    model.step_complete(rid, key, StepStatus.SUCCEEDED, f'{{"rows": {rng.randint(0, 500)}}}', None)
                final_step_failed = failed
        if rng.random() < 0.1:
            continue  # stays Running
        clock.advance(milliseconds=rng.randint(0, 5_000))
        status = RunStatus.FAILED if final_step_failed and rng.random() < 0.5 else rng.choice(TERMINAL)
        model.complete(rid, status)
    return model


# -- expected answers --------------------------------------------------------------------------


def _order(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: (r.started_at, r.id), reverse=True)


def expected_runs(
    model_runs: list[Run], flow_id: uuid.UUID | None = None, skip: int = 0, take: int = 50
) -> list[FlowRunRecord]:
    chosen = [r for r in model_runs if flow_id is None or r.flow_id == flow_id]
    return [r.record() for r in _order(chosen)[skip : skip + take]]


def _matches(run: Run, term: str) -> bool:
    t = term.lower()
    fields = [str(run.id), run.flow_name, run.trigger_key, run.status.value, run.background_job_id or ""]
    for step_key, step in run.steps.items():
        for a in step.attempts:
            fields += [step_key, a.error_message or "", a.output_json or ""]
    return any(t in f.lower() for f in fields)


def expected_page(
    model_runs: list[Run],
    flow_id: uuid.UUID | None = None,
    status: str | None = None,
    skip: int = 0,
    take: int = 50,
    search: str | None = None,
) -> tuple[list[FlowRunRecord], int]:
    chosen = [
        r
        for r in model_runs
        if (flow_id is None or r.flow_id == flow_id)
        and (status is None or r.status.value.lower() == status.lower())
        and (search is None or not search.strip() or _matches(r, search))
    ]
    return [r.record() for r in _order(chosen)[skip : skip + take]], len(chosen)


def expected_statistics(model_runs: list[Run], now: datetime) -> DashboardStatistics:
    today = now.astimezone(UTC).date()

    def done_today(r: Run, status: RunStatus) -> bool:
        return r.status is status and r.completed_at is not None and r.completed_at.astimezone(UTC).date() == today

    return DashboardStatistics(
        total_flows=len({r.flow_id for r in model_runs}),
        active_runs=sum(r.status is RunStatus.RUNNING for r in model_runs),
        completed_today=sum(done_today(r, RunStatus.SUCCEEDED) for r in model_runs),
        failed_today=sum(done_today(r, RunStatus.FAILED) for r in model_runs),
    )


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL percentile_cont)."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (pos - lo) * (xs[hi] - xs[lo])


def expected_timeseries(
    model_runs: list[Run], granularity: str, since: datetime, until: datetime, flow_id: uuid.UUID | None = None
) -> list[RunTimeseriesBucket]:
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    width = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    start = since.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        start = start.replace(hour=0)
    if since == until:
        return []
    out = []
    stamp = start
    while stamp < until:
        end = min(stamp + width, until)
        inside = [r for r in model_runs if stamp <= r.started_at < end and (flow_id is None or r.flow_id == flow_id)]
        durations = [(r.completed_at - r.started_at) / timedelta(milliseconds=1) for r in inside if r.completed_at]

        def n(status: RunStatus, inside: list[Run] = inside) -> int:
            return sum(r.status is status for r in inside)

        out.append(
            RunTimeseriesBucket(
                stamp,
                len(inside),
                n(RunStatus.SUCCEEDED),
                n(RunStatus.FAILED),
                n(RunStatus.CANCELLED),
                n(RunStatus.TIMED_OUT),
                n(RunStatus.SKIPPED),
                n(RunStatus.RUNNING),
                quantile(durations, 0.5),
                quantile(durations, 0.95),
                quantile(durations, 0.99),
            )
        )
        stamp += width
    return out


def expected_derived(model_runs: list[Run], source: uuid.UUID) -> list[FlowRunRecord]:
    return [r.record() for r in _order([r for r in model_runs if r.source_run_id == source])]


def snapshot_runs(model: Model) -> list[Run]:
    """A deep copy of the model's runs as they are now (the archived version of each)."""
    out = []
    for r in model.runs.values():
        steps = {k: replace(s, attempts=[replace(a) for a in s.attempts]) for k, s in r.steps.items()}
        out.append(replace(r, steps=steps))
    return out
