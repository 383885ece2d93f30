"""An export batch is filed in ``archive_pending`` as ONE row of arrays, not one row per run.

The export files the outbox rows of every batch before its Delta commit and deletes
them again when it records the batch: as 20,000 rows (the default batch size) that
was 20,000 heap tuples and primary-key entries written, then deleted, then vacuumed,
per batch. One row holding the batch's run ids, revisions and start dates as three
aligned arrays carries the same facts (a crashed job finishes or discards the batch
from it alike) for a few pages of TOAST. The arrays are stored uncompressed
(``STORAGE EXTERNAL``): random UUIDs do not compress, and trying costs CPU.

A batch a crashed job left filed under revision 0007 is carried over as one row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_UP = """
ALTER TABLE archive_pending RENAME TO archive_pending_0007;
ALTER TABLE archive_pending_0007 RENAME CONSTRAINT pk_archive_pending TO pk_archive_pending_0007;
CREATE TABLE archive_pending (
    batch BIGINT NOT NULL,
    run_ids UUID[] NOT NULL,
    revisions BIGINT[] NOT NULL,
    started_dates DATE[] NOT NULL,
    CONSTRAINT pk_archive_pending PRIMARY KEY (batch),
    CONSTRAINT ck_archive_pending_aligned CHECK (
        cardinality(revisions) = cardinality(run_ids) AND cardinality(started_dates) = cardinality(run_ids)
    )
);
ALTER TABLE archive_pending ALTER COLUMN run_ids SET STORAGE EXTERNAL;
ALTER TABLE archive_pending ALTER COLUMN revisions SET STORAGE EXTERNAL;
ALTER TABLE archive_pending ALTER COLUMN started_dates SET STORAGE EXTERNAL;
INSERT INTO archive_pending (batch, run_ids, revisions, started_dates)
SELECT batch, array_agg(run_id ORDER BY run_id), array_agg(revision ORDER BY run_id),
       array_agg(started_date ORDER BY run_id)
  FROM archive_pending_0007 GROUP BY batch;
DROP TABLE archive_pending_0007;
"""

_DOWN = """
ALTER TABLE archive_pending RENAME TO archive_pending_0008;
ALTER TABLE archive_pending_0008 RENAME CONSTRAINT pk_archive_pending TO pk_archive_pending_0008;
CREATE TABLE archive_pending (
    run_id UUID NOT NULL,
    revision BIGINT NOT NULL,
    started_date DATE,
    batch BIGINT NOT NULL,
    CONSTRAINT pk_archive_pending PRIMARY KEY (run_id)
);
INSERT INTO archive_pending (run_id, revision, started_date, batch)
SELECT u.run_id, u.revision, u.started_date, p.batch
  FROM archive_pending_0008 p, unnest(p.run_ids, p.revisions, p.started_dates) AS u(run_id, revision, started_date);
DROP TABLE archive_pending_0008;
"""


def upgrade() -> None:
    op.execute(_UP)


def downgrade() -> None:
    op.execute(_DOWN)
