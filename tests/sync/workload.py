"""Runs for the export tests, written through the real lifecycle store or bulk-loaded.

``play`` drives ``RunStore`` the way an engine does and varies every field an
archive must carry (None and empty strings, unicode, JSON with newlines,
several attempts, a retried step, a Pending polling step, microseconds), over
several UTC days. ``bulk_load`` writes thousands of completed runs with COPY,
mirroring what the store writes (revision 2, an outbox row per run).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from oltp.contract import LifecycleStore
from tests.conftest import FakeClock

FLOWS = [uuid.UUID(int=0xF10), uuid.UUID(int=0xF11)]
TERMINAL = ["Succeeded", "Failed", "Cancelled", "TimedOut", "Skipped"]


def play(
    store: LifecycleStore, clock: FakeClock, count: int, *, hours_apart: float = 9.0, complete: bool = True
) -> list[uuid.UUID]:
    """Start, step and (by default) complete ``count`` runs, ``hours_apart`` hours apart; returns their ids."""
    ids: list[uuid.UUID] = []
    for n in range(count):
        clock.advance(hours=hours_apart, microseconds=n + 1)
        rid = uuid.uuid4()
        trigger = None if n % 3 == 0 else json.dumps({"n": n, "text": "naïve ☃\nline", "nested": {"a": [1, 2.5, None]}})
        store.start_run(
            FLOWS[n % 2],
            f"flow «{n % 2}»",
            rid,
            "schedule" if n % 2 else "manual",
            trigger,
            None if n % 4 == 0 else f"job-{n}",
            source_run_id=ids[-1] if n % 5 == 4 and ids else None,
        )
        for key, kind in (("fetch", "http"), ("load", "sql")):
            clock.advance(milliseconds=137, microseconds=3)
            store.record_step_start(
                rid, key, kind, None if key == "load" else '{"url": "https://x/\\u00e9"}', "" if n % 2 else None
            )
            clock.advance(seconds=2, microseconds=7)
            failed = n % 3 == 1 and key == "fetch"
            store.record_step_complete(
                rid,
                key,
                "Failed" if failed else "Succeeded",
                None if failed else '{"rows": 3, "msg": "ok \\"quoted\\""}',
                "boom: 'quote' \"double\"\nsecond line 🚀" if failed else None,
            )
            if failed:  # a second attempt that succeeds
                clock.advance(seconds=1)
                store.record_step_start(rid, key, kind, '{"retry": true}', "job-retry")
                clock.advance(seconds=1)
                store.record_step_complete(rid, key, "Succeeded", "[]")
        if n % 4 == 2:  # a polling step that stays Pending
            store.record_step_start(rid, "poll", "wait")
            store.record_step_complete(rid, "poll", "Pending", '{"again": 1}')
        if complete:
            clock.advance(seconds=1)
            store.complete_run(rid, TERMINAL[n % len(TERMINAL)])
        ids.append(rid)
    return ids


def reopen_and_complete(store: LifecycleStore, clock: FakeClock, run_id: uuid.UUID, status: str = "Succeeded") -> None:
    """Retry the run's first step, run it again, and complete the run: a new revision."""
    store.retry_step(run_id, "fetch")
    clock.advance(seconds=5)
    store.record_step_start(run_id, "fetch", "http", '{"again": true}')
    store.record_step_complete(run_id, "fetch", "Succeeded", '{"second": "time"}')
    store.complete_run(run_id, status)


def bulk_load(dsn: str, count: int, *, steps_per_run: int = 2, start: datetime | None = None) -> list[uuid.UUID]:
    """COPY ``count`` completed runs with their steps, attempts and outbox rows; returns the run ids."""
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO flowrun")
        with conn.transaction():
            with conn.cursor().copy(
                "COPY flow_runs (id, flow_id, flow_name, status, trigger_key, trigger_data_json, started_at,"
                " completed_at, revision) FROM STDIN"
            ) as copy:
                for n, rid in enumerate(ids):
                    began = start + timedelta(minutes=n)
                    copy.write_row(
                        (
                            rid,
                            FLOWS[n % 2],
                            "bulk",
                            "Succeeded",
                            "schedule",
                            f'{{"n": {n}}}',
                            began,
                            began + timedelta(seconds=30),
                            2,
                        )
                    )
            with conn.cursor().copy(
                "COPY flow_steps (run_id, step_key, step_type, status, started_at, completed_at, attempt_count)"
                " FROM STDIN"
            ) as copy:
                for n, rid in enumerate(ids):
                    began = start + timedelta(minutes=n)
                    for k in range(steps_per_run):
                        copy.write_row((rid, f"s{k}", "task", "Succeeded", began, began + timedelta(seconds=k + 1), 1))
            with conn.cursor().copy(
                "COPY flow_step_attempts (run_id, step_key, attempt, step_type, status, started_at, completed_at)"
                " FROM STDIN"
            ) as copy:
                for n, rid in enumerate(ids):
                    began = start + timedelta(minutes=n)
                    for k in range(steps_per_run):
                        copy.write_row((rid, f"s{k}", 1, "task", "Succeeded", began, began + timedelta(seconds=k + 1)))
            with conn.cursor().copy("COPY export_outbox (run_id, revision, enqueued_at) FROM STDIN") as copy:
                for n, rid in enumerate(ids):
                    copy.write_row((rid, 2, start + timedelta(minutes=n, seconds=30)))
    return ids
