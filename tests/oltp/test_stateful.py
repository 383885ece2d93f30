"""Random call sequences give PostgreSQL and the in-memory store the same observable state.

A hypothesis state machine applies random lifecycle calls - valid ones, calls
on unknown runs and steps, invalid transitions, bad arguments - to ``RunStore``
and ``InMemoryRunStore`` driven by one clock. Every call must return the same
value or raise the same exception type in both; after every step the detail of
every run, the active runs, the dispatched keys and their job ids, and the
revision of every run are the same, and PostgreSQL's export outbox holds
exactly the terminal runs at their current revision. One database serves the
whole test; its tables are emptied before each example.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from oltp.errors import FlowRunStoreError
from oltp.memory import InMemoryRunStore
from oltp.records import RunStatus, StepStatus
from oltp.store import RunStore
from tests.conftest import FakeClock
from tests.oltp.observe import TABLES

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
FLOWS = [uuid.UUID(int=1), uuid.UUID(int=2)]

keys = st.sampled_from(["a", "b", "a%", "ä 🎉"])
names = st.sampled_from(["flow", "it's", "%_\\", "'; DROP TABLE flow_runs; --"]) | st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), min_size=1, max_size=6
)
optional_text = st.none() | names | st.just("")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
json_texts = (
    st.none()
    | st.builds(json.dumps, json_values)
    | st.builds(lambda v: json.dumps(v, ensure_ascii=False, separators=(" ,", ":  ")), json_values)
)
step_statuses = st.sampled_from([*StepStatus, *(s.value for s in StepStatus)])
run_statuses = st.sampled_from([*RunStatus, *(s.value for s in RunStatus if s.is_terminal)])
# One bad argument at a time, in every position the lifecycle methods take one.
bad_calls: st.SearchStrategy[Callable[[Any, uuid.UUID], Any]] = st.sampled_from(
    [
        lambda s, r: s.start_run(FLOWS[0], "", uuid.uuid4(), "manual"),
        lambda s, r: s.start_run(FLOWS[0], "f", r, "manual", "NaN"),
        lambda s, r: s.start_run("flow?", "f", uuid.uuid4(), "manual"),
        lambda s, r: s.start_run(FLOWS[0], "f", uuid.uuid4(), "manual", None, None, "nope"),
        lambda s, r: s.record_step_start(r, "", "task"),
        lambda s, r: s.record_step_start(r, "a\x00", "task"),
        lambda s, r: s.record_step_start(r, "a", "task", "{"),
        lambda s, r: s.record_step_start(r, "a", "task", None, 5),
        lambda s, r: s.record_step_complete(r, "a", "succeeded "),
        lambda s, r: s.record_step_complete(r, "a", "Cancelled"),
        lambda s, r: s.record_step_complete(r, "a", "Failed", '{"a": Infinity}'),
        lambda s, r: s.record_step_complete(r, "a", "Failed", None, b"bytes"),
        lambda s, r: s.complete_run(r, "Running"),
        lambda s, r: s.complete_run(r, "Pending"),
        lambda s, r: s.complete_run(str(r)[:-1], "Failed"),
        lambda s, r: s.retry_step(r, ""),
        lambda s, r: s.try_record_dispatch(r, None),
        lambda s, r: s.release_dispatch(7, "a"),
        lambda s, r: s.annotate_dispatch(r, "a", ""),
        lambda s, r: s.get_dispatched_step_keys("x"),
        lambda s, r: s.get_run_detail(None),
    ]
)
ticks = st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(seconds=1), timedelta(hours=3)])


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("returned", call())
    except FlowRunStoreError as exc:  # anything else is a bug and fails the test as it is
        return ("raised", type(exc))


def test_postgres_store_matches_the_in_memory_store(dsn: str) -> None:
    clock = FakeClock(START)
    pg = RunStore(dsn, clock=clock, migrate_schema=False, max_connections=2)
    admin = psycopg.connect(dsn, autocommit=True)
    admin.execute("SET search_path TO flowrun")

    class Lifecycle(RuleBasedStateMachine):
        runs = Bundle("runs")
        run_ids = st.one_of(runs, runs, runs, st.uuids())  # mostly runs that exist

        def __init__(self) -> None:
            super().__init__()
            admin.execute(f"TRUNCATE {', '.join(TABLES)}")
            clock.now = START
            self.memory = InMemoryRunStore(clock=clock)
            self.ids: list[uuid.UUID] = [uuid.uuid4()]  # one id that never exists

        def both(self, call: Callable[[Any], Any]) -> tuple[str, Any]:
            on_pg = _outcome(lambda: call(pg))
            in_memory = _outcome(lambda: call(self.memory))
            assert on_pg == in_memory
            return on_pg

        @initialize(target=runs)
        def first_run(self) -> uuid.UUID:
            rid = uuid.uuid4()
            self.both(lambda s: s.start_run(FLOWS[0], "flow", rid, "manual"))
            self.ids.append(rid)
            return rid

        @rule(
            target=runs,
            flow=st.sampled_from(FLOWS),
            name=names,
            trigger=names,
            data=json_texts,
            job=optional_text,
            source=st.none() | runs,
        )
        def start_run(self, flow: uuid.UUID, name: str, trigger: str, data: Any, job: Any, source: Any) -> uuid.UUID:
            rid = uuid.uuid4()
            self.both(lambda s: s.start_run(flow, name, rid, trigger, data, job, source))
            self.ids.append(rid)
            return rid

        @rule(rid=runs)
        def start_run_again(self, rid: uuid.UUID) -> None:
            # Raises RunAlreadyExists, unless the first start of this id was refused.
            self.both(lambda s: s.start_run(FLOWS[1], "again", rid, "manual"))

        @rule(
            rid=run_ids,
            key=keys,
            kind=st.sampled_from(["task", "http", ""]),
            data=json_texts,
            job=optional_text,
        )
        def record_step_start(self, rid: uuid.UUID, key: str, kind: str, data: Any, job: Any) -> None:
            self.both(lambda s: s.record_step_start(rid, key, kind, data, job))

        @rule(rid=run_ids, key=keys, status=step_statuses, output=json_texts, error=optional_text)
        def record_step_complete(self, rid: uuid.UUID, key: str, status: Any, output: Any, error: Any) -> None:
            self.both(lambda s: s.record_step_complete(rid, key, status, output, error))

        @rule(rid=run_ids, status=run_statuses)
        def complete_run(self, rid: uuid.UUID, status: Any) -> None:
            self.both(lambda s: s.complete_run(rid, status))

        @rule(rid=run_ids, key=keys)
        def retry_step(self, rid: uuid.UUID, key: str) -> None:
            self.both(lambda s: s.retry_step(rid, key))

        @rule(rid=run_ids, key=keys)
        def try_record_dispatch(self, rid: uuid.UUID, key: str) -> None:
            self.both(lambda s: s.try_record_dispatch(rid, key))

        @rule(rid=run_ids, key=keys)
        def release_dispatch(self, rid: uuid.UUID, key: str) -> None:
            self.both(lambda s: s.release_dispatch(rid, key))

        @rule(rid=run_ids, key=keys, job=names)
        def annotate_dispatch(self, rid: uuid.UUID, key: str, job: str) -> None:
            self.both(lambda s: s.annotate_dispatch(rid, key, job))

        @rule(rid=run_ids, call=bad_calls)
        def bad_argument(self, rid: uuid.UUID, call: Callable[[Any, uuid.UUID], Any]) -> None:
            outcome = self.both(lambda s: call(s, rid))
            assert outcome[0] == "raised" and issubclass(outcome[1], ValueError)

        @rule(tick=ticks)
        def advance_clock(self, tick: timedelta) -> None:
            clock.now += tick

        @invariant()
        def same_observable_state(self) -> None:
            assert pg.get_active_runs() == self.memory.get_active_runs()
            for rid in self.ids:
                assert pg.get_run_detail(rid) == self.memory.get_run_detail(rid)
                assert pg.get_dispatched_step_keys(rid) == self.memory.get_dispatched_step_keys(rid)
                assert pg.get_dispatches(rid) == self.memory.get_dispatches(rid)
            rows = admin.execute("SELECT run_id, step_key, job_id FROM flow_dispatches").fetchall()
            assert {(r, k): j for r, k, j in rows} == {
                (rid, key): held.job_id
                for rid, run in self.memory._runs.items()
                for key, held in run.dispatched.items()
            }

        @invariant()
        def same_revisions_and_terminal_runs_queued(self) -> None:
            rows = admin.execute(
                "SELECT r.id, r.revision, r.status, o.revision FROM flow_runs r"
                " LEFT JOIN export_outbox o ON o.run_id = r.id"
            ).fetchall()
            assert {rid: revision for rid, revision, _, _ in rows} == {
                rid: run.revision for rid, run in self.memory._runs.items()
            }
            for _, revision, status, queued in rows:
                assert queued == (None if status == RunStatus.RUNNING else revision)

    try:
        run_state_machine_as_test(
            Lifecycle,
            # Examples and seeding come from the loaded profile (tests/conftest.py): the suite replays the
            # same 30 sequences every run; ``--hypothesis-profile=explore`` draws 300 new ones.
            settings=settings(
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        pg.close()
        admin.close()
