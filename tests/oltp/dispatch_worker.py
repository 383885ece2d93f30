"""A dispatcher process for the dispatch-guard race: claims every key it can, reports what it won.

Kept apart from the test module so spawned processes import only what they need.
"""

from __future__ import annotations

import uuid
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
