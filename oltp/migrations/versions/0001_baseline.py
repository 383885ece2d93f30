"""Baseline: the schema as ``oltp/schema.py`` first shipped it.

Every database, new or old, reaches the newest schema by running the revisions
in order, so each revision holds its own SQL, frozen as it shipped: a later
edit of ``oltp/schema.py`` (or of anything else) never rewrites history, and
it reaches existing databases only through a new revision. A test compares the
schema the revisions build with ``oltp.schema.metadata``, so the two cannot
drift apart unnoticed.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op
from psycopg import sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    """
CREATE TABLE flow_runs (
    id UUID NOT NULL,
    flow_id UUID NOT NULL,
    flow_name TEXT NOT NULL,
    status TEXT NOT NULL,
    trigger_key TEXT NOT NULL,
    trigger_data_json TEXT,
    background_job_id TEXT,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    completed_at TIMESTAMP WITH TIME ZONE,
    source_run_id UUID,
    revision BIGINT DEFAULT '1' NOT NULL,
    CONSTRAINT pk_flow_runs PRIMARY KEY (id),
    CONSTRAINT ck_flow_runs_status
        CHECK (status IN ('Running', 'Succeeded', 'Failed', 'Cancelled', 'TimedOut', 'Skipped')),
    CONSTRAINT ck_flow_runs_completed_at_iff_terminal CHECK ((status = 'Running') = (completed_at IS NULL)),
    CONSTRAINT ck_flow_runs_revision_positive CHECK (revision >= 1)
)""",
    "CREATE INDEX ix_flow_runs_completed ON flow_runs (completed_at) WHERE completed_at IS NOT NULL",
    "CREATE INDEX ix_flow_runs_flow_started ON flow_runs (flow_id, started_at DESC, id DESC)",
    "CREATE INDEX ix_flow_runs_running ON flow_runs (started_at DESC) WHERE status = 'Running'",
    "CREATE INDEX ix_flow_runs_source ON flow_runs (source_run_id) WHERE source_run_id IS NOT NULL",
    "CREATE INDEX ix_flow_runs_started ON flow_runs (started_at DESC, id DESC)",
    """
CREATE TABLE flow_steps (
    run_id UUID NOT NULL,
    step_key TEXT NOT NULL,
    step_type TEXT NOT NULL,
    status TEXT NOT NULL,
    input_json TEXT,
    output_json TEXT,
    error_message TEXT,
    job_id TEXT,
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    attempt_count INTEGER DEFAULT '0' NOT NULL,
    CONSTRAINT pk_flow_steps PRIMARY KEY (run_id, step_key),
    CONSTRAINT ck_flow_steps_status CHECK (status IN ('Pending', 'Running', 'Succeeded', 'Failed', 'Skipped')),
    CONSTRAINT ck_flow_steps_attempt_count_nonnegative CHECK (attempt_count >= 0),
    CONSTRAINT fk_flow_steps_run_id FOREIGN KEY(run_id) REFERENCES flow_runs (id) ON DELETE CASCADE
)""",
    """
CREATE TABLE flow_step_attempts (
    run_id UUID NOT NULL,
    step_key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    step_type TEXT NOT NULL,
    status TEXT NOT NULL,
    input_json TEXT,
    output_json TEXT,
    error_message TEXT,
    job_id TEXT,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    completed_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_flow_step_attempts PRIMARY KEY (run_id, step_key, attempt),
    CONSTRAINT fk_flow_step_attempts_run_id_step_key FOREIGN KEY(run_id, step_key)
        REFERENCES flow_steps (run_id, step_key) ON DELETE CASCADE,
    CONSTRAINT ck_flow_step_attempts_status
        CHECK (status IN ('Pending', 'Running', 'Succeeded', 'Failed', 'Skipped')),
    CONSTRAINT ck_flow_step_attempts_attempt_positive CHECK (attempt >= 1)
)""",
    """
CREATE TABLE flow_dispatches (
    run_id UUID NOT NULL,
    step_key TEXT NOT NULL,
    dispatched_at TIMESTAMP WITH TIME ZONE NOT NULL,
    job_id TEXT,
    CONSTRAINT pk_flow_dispatches PRIMARY KEY (run_id, step_key),
    CONSTRAINT fk_flow_dispatches_run_id FOREIGN KEY(run_id) REFERENCES flow_runs (id) ON DELETE CASCADE
)""",
    """
CREATE TABLE export_outbox (
    run_id UUID NOT NULL,
    revision BIGINT NOT NULL,
    enqueued_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_export_outbox PRIMARY KEY (run_id),
    CONSTRAINT fk_export_outbox_run_id FOREIGN KEY(run_id) REFERENCES flow_runs (id) ON DELETE CASCADE
)""",
    "CREATE INDEX ix_export_outbox_enqueued ON export_outbox (enqueued_at)",
    """
CREATE TABLE archive_files (
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_date DATE NOT NULL,
    batch_id TEXT NOT NULL,
    row_count BIGINT NOT NULL,
    min_started_at TIMESTAMP WITH TIME ZONE,
    max_started_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_archive_files PRIMARY KEY (path),
    CONSTRAINT ck_archive_files_kind CHECK (kind IN ('runs', 'steps', 'attempts'))
)""",
    "CREATE INDEX ix_archive_files_kind_date ON archive_files (kind, started_date)",
    """
CREATE TABLE archived_runs (
    run_id UUID NOT NULL,
    revision BIGINT NOT NULL,
    started_date DATE NOT NULL,
    batch_id TEXT NOT NULL,
    CONSTRAINT pk_archived_runs PRIMARY KEY (run_id)
)""",
    """
CREATE TABLE archive_superseded (
    run_id UUID NOT NULL,
    revision BIGINT NOT NULL,
    started_date DATE NOT NULL,
    CONSTRAINT pk_archive_superseded PRIMARY KEY (run_id, revision)
)""",
)

# Substring search over live runs (ILIKE '%term%'): pg_trgm GIN indexes on the
# expressions olap's search repeats verbatim (see RUN_SEARCH_EXPRESSION in search_expressions.py).
SEARCH_INDEXES = (
    (
        "ix_flow_runs_search_trgm",
        "flow_runs",
        "(id::text || chr(31) || flow_name || chr(31) || trigger_key || chr(31) || status"
        " || chr(31) || coalesce(background_job_id, ''))",
    ),
    (
        "ix_flow_step_attempts_search_trgm",
        "flow_step_attempts",
        "(step_key || chr(31) || coalesce(error_message, '') || chr(31) || coalesce(output_json, ''))",
    ),
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for statement in TABLES:
        op.execute(statement)
    # pg_trgm lives in whichever schema first installed it (another store's schema, or the
    # application's); our search_path holds only our schema and public, so name its
    # operator class by the extension's schema rather than rely on the path.
    raw = op.get_bind().connection.driver_connection
    row = raw.execute(  # type: ignore[union-attr]
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
    ).fetchone()
    opclass = sql.SQL("{}.gin_trgm_ops").format(sql.Identifier(str(row[0])))
    for index, table, expression in SEARCH_INDEXES:
        raw.execute(  # type: ignore[union-attr]
            sql.SQL("CREATE INDEX {} ON {} USING gin ({} {})").format(
                sql.Identifier(index),
                sql.Identifier(table),
                sql.SQL(expression),
                opclass,
            )
        )


def downgrade() -> None:
    for table in ("archive_superseded", "archived_runs", "archive_files", "export_outbox", "flow_dispatches"):
        op.execute(f"DROP TABLE {table}")
    for table in ("flow_step_attempts", "flow_steps", "flow_runs"):
        op.execute(f"DROP TABLE {table}")
