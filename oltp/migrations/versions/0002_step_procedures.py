"""Step writes as PL/pgSQL procedures (lock the run, then read with a fresh snapshot).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from oltp import procedures

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for definition in procedures.ALL:
        op.execute(definition)


def downgrade() -> None:
    for name in ("flowrun_step_start", "flowrun_step_complete", "flowrun_step_retry"):
        op.execute(f"DROP FUNCTION IF EXISTS {name}")
