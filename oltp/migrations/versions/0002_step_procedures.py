"""Step writes as PL/pgSQL procedures (lock the run, then read with a fresh snapshot).

Completing, starting and retrying a step must lock the run row first and only
*then* read the step and its attempts: under READ COMMITTED one statement reads
from the snapshot it took when it began, so a single statement that waited for
the run lock would miss the attempt a concurrent start inserted meanwhile and
close the wrong one. Inside a PL/pgSQL function every statement takes a fresh
snapshot, so lock-then-read is correct, and the whole write is still one
statement, one round trip and one commit for the client.

Each function returns how far it got: 0 = no such run, 1 = no such step, 2 = done.
The SQL is frozen here as this revision shipped it; later revisions replace it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STEP_START = """
CREATE OR REPLACE FUNCTION flowrun_step_start(
    p_run uuid, p_key text, p_type text, p_input text, p_job text, p_now timestamptz
) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_attempt int;
    v_revision bigint;
BEGIN
    SELECT status INTO v_status FROM flow_runs WHERE id = p_run FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    INSERT INTO flow_steps AS s (run_id, step_key, step_type, status, input_json, job_id, started_at, attempt_count)
    VALUES (p_run, p_key, p_type, 'Running', p_input, p_job, p_now, 1)
    ON CONFLICT (run_id, step_key) DO UPDATE
       SET step_type = EXCLUDED.step_type, status = 'Running', input_json = EXCLUDED.input_json,
           output_json = NULL, error_message = NULL, job_id = EXCLUDED.job_id,
           started_at = EXCLUDED.started_at, completed_at = NULL, attempt_count = s.attempt_count + 1
    RETURNING s.attempt_count INTO v_attempt;
    INSERT INTO flow_step_attempts (run_id, step_key, attempt, step_type, status, input_json, job_id, started_at)
    VALUES (p_run, p_key, v_attempt, p_type, 'Running', p_input, p_job, p_now);

    IF v_status <> 'Running' THEN
        UPDATE flow_runs SET revision = revision + 1 WHERE id = p_run RETURNING revision INTO v_revision;
        INSERT INTO export_outbox (run_id, revision, enqueued_at) VALUES (p_run, v_revision, p_now)
        ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision, enqueued_at = EXCLUDED.enqueued_at;
    END IF;
    RETURN 2;
END $$
"""

STEP_COMPLETE = """
CREATE OR REPLACE FUNCTION flowrun_step_complete(
    p_run uuid, p_key text, p_status text, p_output text, p_error text, p_now timestamptz
) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_attempt int;
    v_revision bigint;
BEGIN
    SELECT status INTO v_status FROM flow_runs WHERE id = p_run FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    UPDATE flow_steps
       SET status = p_status, output_json = p_output, error_message = p_error, completed_at = p_now
     WHERE run_id = p_run AND step_key = p_key
    RETURNING attempt_count INTO v_attempt;
    IF NOT FOUND THEN
        RETURN 1;
    END IF;
    UPDATE flow_step_attempts
       SET status = p_status, output_json = p_output, error_message = p_error, completed_at = p_now
     WHERE run_id = p_run AND step_key = p_key AND attempt = v_attempt;

    IF v_status <> 'Running' THEN
        UPDATE flow_runs SET revision = revision + 1 WHERE id = p_run RETURNING revision INTO v_revision;
        INSERT INTO export_outbox (run_id, revision, enqueued_at) VALUES (p_run, v_revision, p_now)
        ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision, enqueued_at = EXCLUDED.enqueued_at;
    END IF;
    RETURN 2;
END $$
"""

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
    UPDATE flow_runs SET status = 'Running', completed_at = NULL, revision = revision + 1 WHERE id = p_run;
    DELETE FROM flow_dispatches WHERE run_id = p_run AND step_key = p_key;
    DELETE FROM export_outbox WHERE run_id = p_run;
    RETURN 2;
END $$
"""


def upgrade() -> None:
    for definition in (STEP_START, STEP_COMPLETE, STEP_RETRY):
        op.execute(definition)


def downgrade() -> None:
    for name in ("flowrun_step_start", "flowrun_step_complete", "flowrun_step_retry"):
        op.execute(f"DROP FUNCTION IF EXISTS {name}")
