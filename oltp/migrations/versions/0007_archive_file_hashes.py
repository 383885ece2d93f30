"""A content hash of every archive data file, recorded when it is written.

Delta's log gives each file's size and row count, and delta-rs writes no Parquet
page checksums: a flipped byte inside a page that still decodes gives wrong values
that no reader notices. ``archive_file_hashes`` keeps each file's SHA-256, recorded
by the export or compaction that wrote it, in the PostgreSQL transaction that
records the table version holding it; ``flowrun verify`` and compaction compare
the bytes on storage with it. Files written before this revision get their hash
recorded by their first ``flowrun verify`` (``recorded_by = 'scrub'``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_UP = """
CREATE TABLE IF NOT EXISTS archive_file_hashes (
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 BYTEA NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_archive_file_hashes PRIMARY KEY (path),
    CONSTRAINT ck_archive_file_hashes_recorded_by CHECK (recorded_by IN ('write', 'scrub')),
    CONSTRAINT ck_archive_file_hashes_sha256_length CHECK (octet_length(sha256) = 32)
);
"""


def upgrade() -> None:
    op.execute(_UP)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS archive_file_hashes")
