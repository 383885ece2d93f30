"""Fenced step writes; attempts report their number; step times never run backwards.

``flowrun_step_start`` now returns the attempt it opened (number and start), and
``flowrun_step_complete`` takes the attempt a completion is aimed at:

- an attempt already closed with a terminal status (Succeeded, Failed, Skipped)
  takes the same outcome again as a no-op (a retried acknowledgement) and
  refuses any other (outcome 4): a late duplicate cannot rewrite history;
  ``retry_step`` (step back to Pending) reopens it for the next completion;
- a completion naming an attempt that is no longer the newest is refused
  (outcome 5): a zombie worker cannot overwrite its successor's attempt;
- Pending and Running are not terminal, so a polling step stays re-completable.

Times are clamped so each one follows the one it comes after, whatever the
writer's clock says: an attempt starts no earlier than its run, and completes
no earlier than it started.

Outcomes: 0 = no such run, 1 = no such step, 2 = written, 3 = same outcome
again (nothing written), 4 = another outcome on a closed attempt, 5 = stale
attempt. The SQL is frozen here as this revision shipped it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STEP_START = """
CREATE FUNCTION flowrun_step_start(
    p_run uuid, p_key text, p_type text, p_input text, p_job text, p_now timestamptz,
    OUT o_outcome int, OUT o_attempt int, OUT o_started_at timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_revision bigint;
BEGIN
    SELECT r.status, GREATEST(p_now, r.started_at) INTO v_status, o_started_at
      FROM flow_runs r WHERE r.id = p_run FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 0;
        RETURN;
    END IF;
    INSERT INTO flow_steps AS s (run_id, step_key, step_type, status, input_json, job_id, started_at, attempt_count)
    VALUES (p_run, p_key, p_type, 'Running', p_input, p_job, o_started_at, 1)
    ON CONFLICT (run_id, step_key) DO UPDATE
       SET step_type = EXCLUDED.step_type, status = 'Running', input_json = EXCLUDED.input_json,
           output_json = NULL, error_message = NULL, job_id = EXCLUDED.job_id,
           started_at = EXCLUDED.started_at, completed_at = NULL, attempt_count = s.attempt_count + 1
    RETURNING s.attempt_count INTO o_attempt;
    INSERT INTO flow_step_attempts (run_id, step_key, attempt, step_type, status, input_json, job_id, started_at)
    VALUES (p_run, p_key, o_attempt, p_type, 'Running', p_input, p_job, o_started_at);
    IF v_status <> 'Running' THEN
        UPDATE flow_runs SET revision = revision + 1 WHERE id = p_run RETURNING revision INTO v_revision;
        INSERT INTO export_outbox (run_id, revision, enqueued_at) VALUES (p_run, v_revision, p_now)
        ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision, enqueued_at = EXCLUDED.enqueued_at;
    END IF;
    o_outcome := 2;
END $$
"""

STEP_COMPLETE = """
CREATE FUNCTION flowrun_step_complete(
    p_run uuid, p_key text, p_status text, p_output text, p_error text, p_now timestamptz, p_attempt int,
    OUT o_outcome int, OUT o_newest int
) LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_revision bigint;
    v_old_status text;
    v_old_output text;
    v_old_error text;
    v_started timestamptz;
BEGIN
    SELECT status INTO v_status FROM flow_runs WHERE id = p_run FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 0;
        RETURN;
    END IF;
    -- A fresh snapshot (this is a new statement): the newest attempt as of now. The fence
    -- reads the step row, which mirrors that attempt except after retry_step, whose
    -- Pending reopens the attempt for one completion (an operator's Skipped).
    SELECT s.attempt_count, s.status, s.output_json, s.error_message, a.started_at
      INTO o_newest, v_old_status, v_old_output, v_old_error, v_started
      FROM flow_steps s
      JOIN flow_step_attempts a ON a.run_id = s.run_id AND a.step_key = s.step_key AND a.attempt = s.attempt_count
     WHERE s.run_id = p_run AND s.step_key = p_key;
    IF NOT FOUND THEN
        o_outcome := 1;
        RETURN;
    END IF;
    IF p_attempt IS NOT NULL AND p_attempt <> o_newest THEN
        o_outcome := 5;
        RETURN;
    END IF;
    IF v_old_status IN ('Succeeded', 'Failed', 'Skipped') THEN
        IF v_old_status = p_status AND v_old_output IS NOT DISTINCT FROM p_output
           AND v_old_error IS NOT DISTINCT FROM p_error THEN
            o_outcome := 3;
        ELSE
            o_outcome := 4;
        END IF;
        RETURN;
    END IF;
    v_started := GREATEST(p_now, v_started);
    UPDATE flow_steps
       SET status = p_status, output_json = p_output, error_message = p_error, completed_at = v_started
     WHERE run_id = p_run AND step_key = p_key;
    UPDATE flow_step_attempts
       SET status = p_status, output_json = p_output, error_message = p_error, completed_at = v_started
     WHERE run_id = p_run AND step_key = p_key AND attempt = o_newest;
    IF v_status <> 'Running' THEN
        UPDATE flow_runs SET revision = revision + 1 WHERE id = p_run RETURNING revision INTO v_revision;
        INSERT INTO export_outbox (run_id, revision, enqueued_at) VALUES (p_run, v_revision, p_now)
        ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision, enqueued_at = EXCLUDED.enqueued_at;
    END IF;
    o_outcome := 2;
END $$
"""

_OLD_SIGNATURES = (
    "flowrun_step_start(uuid, text, text, text, text, timestamptz)",
    "flowrun_step_complete(uuid, text, text, text, text, timestamptz)",
)


def upgrade() -> None:
    # The return types change, which CREATE OR REPLACE cannot do: drop, then create.
    for signature in _OLD_SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
    op.execute(STEP_START)
    op.execute(STEP_COMPLETE)


def downgrade() -> None:
    op.execute("DROP FUNCTION flowrun_step_start(uuid, text, text, text, text, timestamptz)")
    op.execute("DROP FUNCTION flowrun_step_complete(uuid, text, text, text, text, timestamptz, int)")
    previous = context.script.get_revision("0002").module  # its frozen definitions
    op.execute(previous.STEP_START)
    op.execute(previous.STEP_COMPLETE)
