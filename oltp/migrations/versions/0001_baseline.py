"""Baseline: the schema as ``oltp/schema.py`` first shipped it.

A fresh database is created from ``oltp.schema.metadata`` and stamped at head
(see ``oltp.migrate``), so this revision has nothing to do. Every later change
to ``schema.py`` comes with a revision after this one that makes the same
change with explicit operations, so existing databases upgrade in place.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
