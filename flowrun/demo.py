"""``flowrun demo``: play a month of engine traffic through the public API, then export and prune.

Several threads each play their own runs, the way an engine's workers do: every
call goes through ``FlowRunStore`` exactly as an engine would make it (start the
run, guard each dispatch, open and close step attempts, retry failed steps,
report polling steps as Pending and release them for re-dispatch, complete the
run), with the store's clock set per thread (``ThreadClock``) so each call is
stamped at its simulated instant over the last 30 days. Runs whose simulated
time reaches the present stay Running. Some failed runs are retried from the
failed step (a new revision of a completed run), others re-run whole with
``source_run_id``. Afterwards the demo exports the completed runs to the Delta Lake
archive and prunes the older half from PostgreSQL, so the dashboard that follows
reads live and archived runs together.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flowrun.demo_clock import ThreadClock
from flowrun.demo_flows import FLOWS, FlowSpec, StepSpec
from flowrun.store import FlowRunStore
from oltp.records import RunStatus, StepStatus
from sync.export import ExportReport

SPAN = timedelta(days=30)
PRUNE_OLDER_THAN = timedelta(days=14)
RECENT = timedelta(minutes=40)
MAX_ATTEMPTS = 3
# Hour-of-day weights (UTC): quiet nights, a busy working day.
_HOUR_WEIGHT = [0.35] * 6 + [0.7] * 3 + [1.0] * 9 + [0.6] * 6


@dataclass
class PlayReport:
    """What the workload did, counted by the players as they made the calls."""

    runs: int = 0
    reruns: int = 0
    reopened: int = 0
    step_retries: int = 0
    polls: int = 0
    refused_dispatches: int = 0
    calls: int = 0
    seconds: float = 0.0
    final_status: Counter[str] = field(default_factory=Counter)

    def add(self, other: PlayReport) -> None:
        """Fold another player's counts into this one."""
        self.runs += other.runs
        self.reruns += other.reruns
        self.reopened += other.reopened
        self.step_retries += other.step_retries
        self.polls += other.polls
        self.refused_dispatches += other.refused_dispatches
        self.calls += other.calls
        self.final_status.update(other.final_status)


class _Present(Exception):
    """The simulated time reached the present: the run stays as it is, Running."""


class _Player:
    """Plays runs one after another on one thread, with this thread's simulated time."""

    def __init__(
        self, store: FlowRunStore, clock: ThreadClock, rng: random.Random, horizon: datetime, stop: threading.Event
    ) -> None:
        self.store = store
        self.clock = clock
        self.rng = rng
        self.horizon = horizon
        self.stop = stop
        self.report = PlayReport()

    # -- time ---------------------------------------------------------------------------
    def _advance(self, seconds: float) -> None:
        later = self.clock() + timedelta(seconds=max(seconds, 0.001))
        if later >= self.horizon:
            raise _Present
        self.clock.set(later)

    def _lognormal(self, median_s: float, sigma: float) -> float:
        return median_s * math.exp(self.rng.gauss(0.0, sigma))

    def _start_time(self) -> datetime:
        while True:
            instant = self.horizon - timedelta(seconds=self.rng.uniform(0, SPAN.total_seconds()))
            if self.rng.random() < _HOUR_WEIGHT[instant.hour]:
                return instant

    def _incident(self, step: StepSpec) -> tuple[float, float]:
        """Failure and slowness multipliers: a billing outage and a slow warehouse week."""
        age = self.horizon - self.clock()
        if step.key == "fetch-invoices" and timedelta(hours=200) <= age < timedelta(hours=212):
            return 12.0, 4.0
        if step.key == "load-warehouse" and timedelta(days=17) <= age < timedelta(days=20):
            return 2.0, 3.0
        return 1.0, 1.0

    # -- the workload -------------------------------------------------------------------
    def play(self, quota: int, on_run: Callable[[], None]) -> PlayReport:
        """Play ``quota`` runs (re-runs included) and return the counts."""
        # Each worker's last few runs start in the last 40 minutes, so some are still running now.
        # What is running at any moment is mostly long runs, so those are drawn by weight x length.
        recent_from = quota - max(1, quota // 1000)
        while self.report.runs < quota and not self.stop.is_set():
            if self.report.runs >= recent_from:
                flow = self.rng.choices(FLOWS, weights=[f.weight * f.typical_s for f in FLOWS])[0]
                started = self.horizon - timedelta(seconds=self.rng.uniform(60, RECENT.total_seconds()))
            else:
                flow = self.rng.choices(FLOWS, weights=[f.weight for f in FLOWS])[0]
                started = self._start_time()
            run_id, status, failed_step = self._run(flow, started, self.rng.choice(flow.triggers), None)
            on_run()
            if status is RunStatus.FAILED and failed_step is not None:
                self._after_failure(flow, run_id, failed_step, quota, on_run)
        return self.report

    def _after_failure(
        self, flow: FlowSpec, run_id: uuid.UUID, failed: StepSpec, quota: int, on_run: Callable[[], None]
    ) -> None:
        roll = self.rng.random()
        try:
            self._advance(self.rng.uniform(600, 4 * 3600))
        except _Present:
            return
        if roll < 0.25:
            self._reopen(run_id, failed)
        elif roll < 0.6 and self.report.runs < quota:
            self.report.reruns += 1
            self._run(flow, self.clock(), "manual", run_id)
            on_run()

    def _reopen(self, run_id: uuid.UUID, failed: StepSpec) -> None:
        """An operator retries the failed step of a finished run; the run completes again."""
        self.report.reopened += 1
        self._call(self.store.retry_step, run_id, failed.key)
        self.report.final_status[RunStatus.FAILED.value] -= 1
        try:
            ok = self._step(run_id, failed, attempts=2)
            status = RunStatus.SUCCEEDED if ok else RunStatus.FAILED
            self._call(self.store.complete_run, run_id, status)
        except _Present:
            status = RunStatus.RUNNING
        self.report.final_status[status.value] += 1

    def _run(
        self, flow: FlowSpec, started: datetime, trigger: str, source: uuid.UUID | None
    ) -> tuple[uuid.UUID, RunStatus, StepSpec | None]:
        self.clock.set(started)
        run_id = uuid.uuid4()
        job = f"job-{self.rng.randrange(10**9):09d}"
        trigger_data = json.dumps({"trigger": trigger, "at": started.isoformat(), "batch": self.rng.randrange(1000)})
        self._call(self.store.start_run, flow.id, flow.name, run_id, trigger, trigger_data, job, source)
        self.report.runs += 1
        try:
            status, failed = self._steps(flow, run_id)
            self._call(self.store.complete_run, run_id, status)
        except _Present:
            status, failed = RunStatus.RUNNING, None
        self.report.final_status[status.value] += 1
        return run_id, status, failed

    def _steps(self, flow: FlowSpec, run_id: uuid.UUID) -> tuple[RunStatus, StepSpec | None]:
        roll = self.rng.random()
        # Where this run is cut short, if it is: the engine's timeout or a user's cancel.
        hang_at = self.rng.randrange(len(flow.steps)) if roll < 0.015 else None
        cancel_at = self.rng.randrange(len(flow.steps)) if 0.015 <= roll < 0.03 else None
        for index, step in enumerate(flow.steps):
            if index == 1 and self.rng.random() < flow.noop_p:
                return RunStatus.SKIPPED, None
            if index == hang_at:
                self._dispatch_and_start(run_id, step, 1)
                self._advance(flow.timeout_s)
                return RunStatus.TIMED_OUT, None
            if step.skip_p and self.rng.random() < step.skip_p:
                self._dispatch_and_start(run_id, step, 1)
                self._call(self.store.record_step_complete, run_id, step.key, StepStatus.SKIPPED, None, None)
                continue
            if index == cancel_at:
                self._dispatch_and_start(run_id, step, 1)
                self._advance(self._lognormal(step.median_s, step.sigma) * self.rng.random())
                return RunStatus.CANCELLED, None
            if not self._step(run_id, step, MAX_ATTEMPTS):
                return RunStatus.FAILED, step
        return RunStatus.SUCCEEDED, None

    def _step(self, run_id: uuid.UUID, step: StepSpec, attempts: int) -> bool:
        """Run one step to success or to its last failed attempt."""
        for attempt in range(1, attempts + 1):
            self._dispatch_and_start(run_id, step, attempt)
            polls = int(self.rng.expovariate(1 / step.polls)) if step.polls else 0
            for poll in range(1, polls + 1):
                self._advance(self.rng.uniform(0.05, 0.5))
                waiting = json.dumps({"state": "waiting", "poll": poll})
                self._call(self.store.record_step_complete, run_id, step.key, StepStatus.PENDING, waiting, None)
                self._call(self.store.release_dispatch, run_id, step.key)
                self.report.polls += 1
                self._advance(step.poll_s * self.rng.uniform(0.5, 1.5))
                self._dispatch_and_start(run_id, step, attempt)
            fail_factor, slow_factor = self._incident(step)
            self._advance(self._lognormal(step.median_s * slow_factor, step.sigma))
            if self.rng.random() < step.fail_p * fail_factor:
                error = self.rng.choice(step.errors)
                self._call(self.store.record_step_complete, run_id, step.key, StepStatus.FAILED, None, error)
                # About half the failures are transient and worth the engine's automatic retry.
                if attempt == attempts or self.rng.random() < 0.5:
                    return False
                self._advance(10 * 2**attempt * self.rng.uniform(0.8, 1.2))
                self._call(self.store.retry_step, run_id, step.key)
                self.report.step_retries += 1
                continue
            output = json.dumps({"ok": True, "rows": self.rng.randrange(10_000)})
            self._call(self.store.record_step_complete, run_id, step.key, StepStatus.SUCCEEDED, output, None)
            return True
        return False

    def _dispatch_and_start(self, run_id: uuid.UUID, step: StepSpec, attempt: int) -> None:
        job = f"{step.type}-{self.rng.randrange(10**9):09d}"
        if self._call(self.store.try_record_dispatch, run_id, step.key):
            self._call(self.store.annotate_dispatch, run_id, step.key, job)
        # Now and then the recovery service re-delivers a step already in flight; the guard refuses it.
        if self.rng.random() < 0.02 and not self._call(self.store.try_record_dispatch, run_id, step.key):
            self.report.refused_dispatches += 1
        self._advance(self.rng.uniform(0.01, 0.3))
        inputs = json.dumps({"step": step.key, "attempt": attempt})
        self._call(self.store.record_step_start, run_id, step.key, step.type, inputs, job)

    def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        self.report.calls += 1
        return method(*args)


def play(
    store: FlowRunStore,
    clock: ThreadClock,
    runs: int,
    *,
    threads: int = 8,
    seed: int = 7,
    on_run: Callable[[], None] = lambda: None,
    horizon: datetime | None = None,
) -> PlayReport:
    """Play ``runs`` runs over the 30 days before ``horizon`` (default now) on ``threads`` threads."""
    if runs < 0 or threads < 1:
        raise ValueError("runs must be >= 0 and threads >= 1")
    end = horizon or datetime.now(UTC)
    stop = threading.Event()
    threads = max(1, min(threads, runs or 1))
    quotas = [runs // threads + (1 if k < runs % threads else 0) for k in range(threads)]
    players = [_Player(store, clock, random.Random(seed * 1000 + k), end, stop) for k in range(threads)]
    began = time.perf_counter()

    def work(player: _Player, quota: int) -> PlayReport:
        try:
            return player.play(quota, on_run)
        except BaseException:
            stop.set()  # one failing worker stops the others at their next run
            raise
        finally:
            clock.clear()

    report = PlayReport()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flowrun-demo") as pool:
        futures = [pool.submit(work, player, quota) for player, quota in zip(players, quotas, strict=True)]
        for future in futures:
            report.add(future.result())
    report.seconds = time.perf_counter() - began
    return report


@dataclass(frozen=True)
class DemoSummary:
    """What ``run_demo`` did: the workload, the export, the prune, and the wall time of all three."""

    played: PlayReport
    exported: ExportReport
    pruned: int
    prune_older_than: timedelta
    seconds: float


def run_demo(
    store: FlowRunStore,
    clock: ThreadClock,
    runs: int,
    *,
    threads: int = 8,
    on_run: Callable[[], None] = lambda: None,
) -> DemoSummary:
    """Play ``runs`` runs, export every completed run, then prune those older than 14 days."""
    began = time.perf_counter()
    played = play(store, clock, runs, threads=threads, on_run=on_run)
    exported = store.export()
    pruned = store.prune(PRUNE_OLDER_THAN)
    return DemoSummary(played, exported, pruned, PRUNE_OLDER_THAN, time.perf_counter() - began)
