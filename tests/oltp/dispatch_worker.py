"""Processes for the dispatch races: dispatchers claim every key they can, claimers take expired leases.

Kept apart from the test module so spawned processes import only what they need.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from typing import Any

from oltp.store import RunStore


def claim_all(dsn: str, run_id: uuid.UUID, keys: list[str], barrier: Any, results: Any) -> None:
    """Wait for every dispatcher, then try to dispatch each key once; put (pid-free) wins on ``results``."""
    won: list[str] = []
    errors: list[str] = []
    with RunStore(dsn, migrate_schema=False, min_connections=1, max_connections=1) as store:
        store.get_dispatched_step_keys(run_id)  # connect before the start line
        barrier.wait(timeout=60)
        for key in keys:
            try:
                if store.try_record_dispatch(run_id, key):
                    won.append(key)
            except Exception as exc:  # reported to the parent, which fails the test
                errors.append(f"{key}: {type(exc).__name__}: {exc}")
    results.put((won, errors))


def claim_expired(dsn: str, now: datetime, barrier: Any, results: Any) -> None:
    """Wait for every claimer, then claim expired dispatches a few at a time until none are left."""
    claimed: list[tuple[str, str]] = []
    errors: list[str] = []
    with RunStore(dsn, clock=lambda: now, migrate_schema=False, max_connections=1) as store:
        store.get_active_runs()  # connect before the start line
        barrier.wait(timeout=60)
        try:
            while batch := store.claim_expired_dispatches(f"claimer-{os.getpid()}", 60, limit=3):
                claimed.extend((str(d.run_id), d.step_key) for d in batch)
        except Exception as exc:  # reported to the parent, which fails the test
            errors.append(f"{type(exc).__name__}: {exc}")
    results.put((claimed, errors))
