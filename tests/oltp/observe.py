"""What a test can observe of a store: through its API, and (PostgreSQL) in its tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

TABLES = ("flow_runs", "flow_steps", "flow_step_attempts", "flow_dispatches", "export_outbox")


def observe(store: Any, run_ids: Iterable[uuid.UUID]) -> tuple[Any, ...]:
    """Everything the public API says about these runs: detail, dispatched keys, and the active list."""
    ids = list(run_ids)
    return (
        tuple(store.get_run_detail(r) for r in ids),
        tuple(store.get_dispatched_step_keys(r) for r in ids),
        tuple(store.get_active_runs()),
    )


def table_rows(dsn: str, schema: str = "flowrun") -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every lifecycle table, in a stable order (to prove a call wrote nothing)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {
            table: sorted(
                conn.execute(sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))),
                key=repr,
            )
            for table in TABLES
        }


def run_version(dsn: str, run_id: uuid.UUID, schema: str = "flowrun") -> tuple[int, int | None]:
    """The run's revision and the revision queued in the export outbox (None when not queued)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT r.revision, o.revision FROM {s}.flow_runs r"
                " LEFT JOIN {s}.export_outbox o ON o.run_id = r.id WHERE r.id = %s"
            ).format(s=sql.Identifier(schema)),
            (run_id,),
        ).fetchone()
    assert row is not None, f"run {run_id} is not in flow_runs"
    return row[0], row[1]
