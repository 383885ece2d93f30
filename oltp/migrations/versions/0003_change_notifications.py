"""Change notifications: row triggers on flow_runs and flow_steps call pg_notify (see ``oltp.notify``).

The SQL is written out here, frozen as this revision shipped it; ``oltp.notify``
holds the current definition that a fresh schema is created with.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION flowrun_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'flow_runs' THEN
        PERFORM pg_notify('flowrun_changes', json_build_object(
            'schema', TG_TABLE_SCHEMA, 'kind', 'run', 'run_id', NEW.id, 'flow_id', NEW.flow_id,
            'status', NEW.status)::text);
    ELSE
        PERFORM pg_notify('flowrun_changes', json_build_object(
            'schema', TG_TABLE_SCHEMA, 'kind', 'step', 'run_id', NEW.run_id, 'step_key', NEW.step_key,
            'status', NEW.status)::text);
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    for table, trigger in (("flow_runs", "flowrun_notify_runs"), ("flow_steps", "flowrun_notify_steps")):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION flowrun_notify_change()"
        )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS flowrun_notify_runs ON flow_runs")
    op.execute("DROP TRIGGER IF EXISTS flowrun_notify_steps ON flow_steps")
    op.execute("DROP FUNCTION IF EXISTS flowrun_notify_change()")
