"""Tables, keys, constraints and named indexes of the store, defined once.

Tables are declared without a schema: every connection sets ``search_path`` to
the configured PostgreSQL schema (default ``flowrun``), so one definition
serves any schema name and the store can share a database with its host
application. Databases are built by the migrations in ``oltp/migrations``, each
with its own frozen SQL; a test checks that what they build equals this
metadata (alembic's comparison), so a change here without a revision fails.
The trigram search indexes (on the expressions in ``oltp.search_expressions``)
and the step-write functions are not expressible here; they are created by
revisions 0001 (search indexes), 0003 (change
notification triggers) and 0004/0005 (step-write functions).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from oltp.records import RunStatus, StepStatus

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = sa.TIMESTAMP(timezone=True)


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


RUN_STATUSES = [s.value for s in RunStatus]
STEP_STATUSES = [s.value for s in StepStatus]

flow_runs = sa.Table(
    "flow_runs",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("flow_id", UUID(as_uuid=True), nullable=False),
    sa.Column("flow_name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("trigger_key", sa.Text, nullable=False),
    sa.Column("trigger_data_json", sa.Text),
    sa.Column("background_job_id", sa.Text),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("completed_at", TS),
    sa.Column("source_run_id", UUID(as_uuid=True)),
    # Bumped by complete_run, retry_step and any step write to a terminal run, so the
    # archive can tell which exported copy of a run is the newest.
    sa.Column("revision", sa.BigInteger, nullable=False, server_default="1"),
    # Run control (not archived): a trigger's idempotency key, a cancel request, a deadline.
    sa.Column("idempotency_key", sa.Text),
    sa.Column("cancel_requested_at", TS),
    sa.Column("deadline", TS),
    sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),
    sa.CheckConstraint("(status = 'Running') = (completed_at IS NULL)", name="completed_at_iff_terminal"),
    sa.CheckConstraint("revision >= 1", name="revision_positive"),
)
sa.Index("ix_flow_runs_running", flow_runs.c.started_at.desc(), postgresql_where=sa.text("status = 'Running'"))
sa.Index("ix_flow_runs_started", flow_runs.c.started_at.desc(), flow_runs.c.id.desc())
sa.Index("ix_flow_runs_flow_started", flow_runs.c.flow_id, flow_runs.c.started_at.desc(), flow_runs.c.id.desc())
sa.Index("ix_flow_runs_source", flow_runs.c.source_run_id, postgresql_where=sa.text("source_run_id IS NOT NULL"))
sa.Index("ix_flow_runs_completed", flow_runs.c.completed_at, postgresql_where=sa.text("completed_at IS NOT NULL"))
sa.Index(
    "uq_flow_runs_flow_id_idempotency_key",
    flow_runs.c.flow_id,
    flow_runs.c.idempotency_key,
    unique=True,
    postgresql_where=sa.text("idempotency_key IS NOT NULL"),
)
sa.Index(
    "ix_flow_runs_deadline",
    flow_runs.c.deadline,
    postgresql_where=sa.text("status = 'Running' AND deadline IS NOT NULL"),
)

flow_steps = sa.Table(
    "flow_steps",
    metadata,
    sa.Column("run_id", UUID(as_uuid=True), sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("step_key", sa.Text, nullable=False),
    sa.Column("step_type", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("input_json", sa.Text),
    sa.Column("output_json", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("job_id", sa.Text),
    sa.Column("started_at", TS),
    sa.Column("completed_at", TS),
    sa.Column("attempt_count", sa.Integer, nullable=False, server_default="0"),
    sa.PrimaryKeyConstraint("run_id", "step_key"),
    sa.CheckConstraint(_in("status", STEP_STATUSES), name="status"),
    sa.CheckConstraint("attempt_count >= 0", name="attempt_count_nonnegative"),
)

flow_step_attempts = sa.Table(
    "flow_step_attempts",
    metadata,
    sa.Column("run_id", UUID(as_uuid=True), nullable=False),
    sa.Column("step_key", sa.Text, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("step_type", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("input_json", sa.Text),
    sa.Column("output_json", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("job_id", sa.Text),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("completed_at", TS),
    sa.PrimaryKeyConstraint("run_id", "step_key", "attempt"),
    sa.ForeignKeyConstraint(["run_id", "step_key"], ["flow_steps.run_id", "flow_steps.step_key"], ondelete="CASCADE"),
    sa.CheckConstraint(_in("status", STEP_STATUSES), name="status"),
    sa.CheckConstraint("attempt >= 1", name="attempt_positive"),
)

flow_dispatches = sa.Table(
    "flow_dispatches",
    metadata,
    sa.Column("run_id", UUID(as_uuid=True), sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("step_key", sa.Text, nullable=False),
    sa.Column("dispatched_at", TS, nullable=False),
    sa.Column("job_id", sa.Text),
    # A leased dispatch: who renews it, and until when (both NULL without a lease).
    sa.Column("owner", sa.Text),
    sa.Column("lease_expires_at", TS),
    sa.PrimaryKeyConstraint("run_id", "step_key"),
)
sa.Index(
    "ix_flow_dispatches_lease",
    flow_dispatches.c.lease_expires_at,
    postgresql_where=sa.text("lease_expires_at IS NOT NULL"),
)

# The export outbox: written in the same transaction as the change that makes a run
# (a new version of it) exportable, so commit order never loses a run.
export_outbox = sa.Table(
    "export_outbox",
    metadata,
    sa.Column("run_id", UUID(as_uuid=True), sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("enqueued_at", TS, nullable=False),
)
sa.Index("ix_export_outbox_enqueued", export_outbox.c.enqueued_at)

# The newest revision of each run present in the archive: prune deletes a run from
# PostgreSQL only when this equals the live revision.
archived_runs = sa.Table(
    "archived_runs",
    metadata,
    sa.Column("run_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("started_date", sa.Date, nullable=False),
    sa.Column("batch", sa.BigInteger, nullable=False),  # the export batch that wrote this revision
)

# Where this schema's archive lives and which Delta table it is (one row, written by the
# first export): a job or reader pointed anywhere else is refused, so one database never
# splits its history over two archives. ``store_id`` is the app id of the Delta
# transactions the exports commit; ``version`` the table version readers with a DSN read.
archive_state = sa.Table(
    "archive_state",
    metadata,
    sa.Column("singleton", sa.Boolean, primary_key=True, server_default=sa.true()),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("table_id", sa.Text, nullable=False),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("batch", sa.BigInteger, nullable=False),  # the last export batch recorded here
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.CheckConstraint("singleton", name="singleton"),
)

# The outbox rows of the export batch being committed to Delta, as ONE row of aligned
# arrays (migration 0008): written before the Delta commit, so a job that finds that
# commit after a crash knows which (run, revision) pairs it covered; deleted by the
# transaction that records the batch.
archive_pending = sa.Table(
    "archive_pending",
    metadata,
    sa.Column("batch", sa.BigInteger, primary_key=True),
    sa.Column("run_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    sa.Column("revisions", ARRAY(sa.BigInteger), nullable=False),
    # An element is null for a run the batch drops from the queue (Running again).
    sa.Column("started_dates", ARRAY(sa.Date), nullable=False),
    sa.CheckConstraint(
        "cardinality(revisions) = cardinality(run_ids) AND cardinality(started_dates) = cardinality(run_ids)",
        name="aligned",
    ),
)

# The SHA-256 of every archive data file (``path`` relative to the Delta table), recorded by
# the job that wrote it in the transaction that records the version holding it ('write'),
# or by the first ``flowrun verify`` for a file written before hashes were kept ('scrub').
archive_file_hashes = sa.Table(
    "archive_file_hashes",
    metadata,
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.LargeBinary, nullable=False),
    sa.Column("recorded_by", sa.Text, nullable=False),
    sa.Column("recorded_at", TS, nullable=False),
    sa.CheckConstraint(_in("recorded_by", ["write", "scrub"]), name="recorded_by"),
    sa.CheckConstraint("octet_length(sha256) = 32", name="sha256_length"),
)
