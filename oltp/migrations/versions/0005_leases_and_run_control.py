"""Dispatch leases and run control (idempotency keys, cancel requests, deadlines).

- ``flow_dispatches`` gains ``owner`` and ``lease_expires_at``, with a partial
  index on the expiry so claiming expired dispatches reads only leased rows;
- ``flow_runs`` gains ``idempotency_key`` (unique per flow where set: a
  duplicate trigger finds the first run), ``cancel_requested_at`` and
  ``deadline`` (a partial index lists the Running runs that have one);
- ``flowrun_step_retry`` also withdraws a cancel request: reopening a run
  starts a new period of work that an old request must not stop.

Existing rows keep NULL in every new column, which is what a dispatch without
a lease and a run without control settings mean. The SQL is frozen here as
this revision shipped it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATEMENTS = (
    "ALTER TABLE flow_dispatches ADD COLUMN owner TEXT, ADD COLUMN lease_expires_at TIMESTAMP WITH TIME ZONE",
    "CREATE INDEX ix_flow_dispatches_lease ON flow_dispatches (lease_expires_at) WHERE lease_expires_at IS NOT NULL",
    "ALTER TABLE flow_runs ADD COLUMN idempotency_key TEXT, ADD COLUMN cancel_requested_at TIMESTAMP WITH TIME ZONE,"
    " ADD COLUMN deadline TIMESTAMP WITH TIME ZONE",
    "CREATE UNIQUE INDEX uq_flow_runs_flow_id_idempotency_key ON flow_runs (flow_id, idempotency_key)"
    " WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX ix_flow_runs_deadline ON flow_runs (deadline) WHERE status = 'Running' AND deadline IS NOT NULL",
)

STEP_RETRY = """
CREATE OR REPLACE FUNCTION flowrun_step_retry(p_run uuid, p_key text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM flow_runs WHERE id = p_run FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    UPDATE flow_steps SET status = 'Pending', completed_at = NULL, output_json = NULL, error_message = NULL
     WHERE run_id = p_run AND step_key = p_key;
    IF NOT FOUND THEN
        RETURN 1;
    END IF;
    UPDATE flow_runs SET status = 'Running', completed_at = NULL, revision = revision + 1, cancel_requested_at = NULL
     WHERE id = p_run;
    DELETE FROM flow_dispatches WHERE run_id = p_run AND step_key = p_key;
    DELETE FROM export_outbox WHERE run_id = p_run;
    RETURN 2;
END $$
"""


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    op.execute(STEP_RETRY)


def downgrade() -> None:
    # The retry function names a dropped column: restore the one 0002 shipped first.
    from alembic import context

    op.execute(context.script.get_revision("0002").module.STEP_RETRY)
    op.execute("DROP INDEX ix_flow_runs_deadline")
    op.execute("DROP INDEX uq_flow_runs_flow_id_idempotency_key")
    op.execute(
        "ALTER TABLE flow_runs DROP COLUMN idempotency_key, DROP COLUMN cancel_requested_at, DROP COLUMN deadline"
    )
    op.execute("DROP INDEX ix_flow_dispatches_lease")
    op.execute("ALTER TABLE flow_dispatches DROP COLUMN owner, DROP COLUMN lease_expires_at")
