"""The archive becomes a Delta Lake table: PostgreSQL records its location and committed version.

The v1 bookkeeping of hand-listed Parquet files (``archive_files``) and superseded
copies (``archive_superseded``) goes: the Delta log lists the files and holds one
row per run. ``archive_state`` names the archive and the table version readers
use; ``archive_pending`` holds the runs of a batch between its Delta commit and
its PostgreSQL commit. The runs still in PostgreSQL are queued again for
``flowrun export``; ``archived_runs`` keeps the rows of runs pruned into a v1
archive (``batch`` 0), which ``flowrun upgrade-archive`` converts into the table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Written to be re-runnable (IF EXISTS / IF NOT EXISTS): a database whose revision was set back by hand
# over the newer schema upgrades as well.
_UP = """
DROP TABLE IF EXISTS archive_files;
DROP TABLE IF EXISTS archive_superseded;
ALTER TABLE archived_runs DROP COLUMN IF EXISTS batch_id;
ALTER TABLE archived_runs ADD COLUMN IF NOT EXISTS batch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE archived_runs ALTER COLUMN batch DROP DEFAULT;
CREATE TABLE IF NOT EXISTS archive_state (
    singleton BOOLEAN DEFAULT true NOT NULL,
    uri TEXT NOT NULL,
    table_id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    batch BIGINT NOT NULL,
    version BIGINT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_archive_state PRIMARY KEY (singleton),
    CONSTRAINT ck_archive_state_singleton CHECK (singleton)
);
-- Runs still in PostgreSQL go to the new table with their next export.
DELETE FROM archived_runs a USING flow_runs r WHERE r.id = a.run_id;
INSERT INTO export_outbox (run_id, revision, enqueued_at)
SELECT id, revision, now() FROM flow_runs WHERE status <> 'Running'
ON CONFLICT (run_id) DO NOTHING;
CREATE TABLE IF NOT EXISTS archive_pending (
    run_id UUID NOT NULL,
    revision BIGINT NOT NULL,
    started_date DATE,
    batch BIGINT NOT NULL,
    CONSTRAINT pk_archive_pending PRIMARY KEY (run_id)
);
"""


def upgrade() -> None:
    op.execute(_UP)


def downgrade() -> None:
    raise NotImplementedError("the v1 Parquet manifest cannot be rebuilt from a Delta table")
