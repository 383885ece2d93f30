"""Change notifications: committed run and step writes are announced on ``oltp.notify.CHANNEL``."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from oltp import migrate
from oltp.errors import InvalidTransition
from oltp.notify import CHANNEL
from oltp.store import RunStore
from tests.oltp.conftest import FLOW, start, upgrade_to


def _drain(listener: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    # A round trip makes the server hand over every notification committed before it.
    listener.execute("SELECT 1")
    return [json.loads(n.payload) for n in listener.notifies(timeout=0.5, stop_after=None)]


def _listener(dsn: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def test_run_and_step_writes_are_announced_once_committed(pg_store: RunStore, dsn: str) -> None:
    with _listener(dsn) as listener:
        rid = start(pg_store)
        pg_store.record_step_start(rid, "fetch", "http")
        pg_store.record_step_complete(rid, "fetch", "Succeeded")
        pg_store.complete_run(rid, "Succeeded")
        with pytest.raises(InvalidTransition):
            pg_store.complete_run(rid, "Failed")  # refused: changes nothing, announces nothing
        events = _drain(listener)
    run = {"schema": "flowrun", "kind": "run", "run_id": str(rid), "flow_id": str(FLOW)}
    step = {"schema": "flowrun", "kind": "step", "run_id": str(rid), "step_key": "fetch"}
    assert events == [
        {**run, "status": "Running"},
        {**step, "status": "Running"},
        {**step, "status": "Succeeded"},
        {**run, "status": "Succeeded"},
    ]


def test_an_upgrade_from_revision_0002_adds_the_triggers(empty_dsn: str) -> None:
    dsn = empty_dsn
    upgrade_to(dsn, "0002")
    assert migrate.current_revision(dsn, "flowrun") == "0002"
    assert migrate.upgrade(dsn) == migrate.head_revision()
    with _listener(dsn) as listener, RunStore(dsn, migrate_schema=False) as store:
        rid = start(store, uuid.uuid4())
        assert [e["run_id"] for e in _drain(listener)] == [str(rid)]
