"""Server-side procedures for the step writes (PL/pgSQL), created with the schema.

Completing, starting and retrying a step must lock the run row first and only
*then* read the step and its attempts: under READ COMMITTED one statement reads
from the snapshot it took when it began, so a single statement that waited for
the run lock would miss the attempt a concurrent start inserted meanwhile and
close the wrong one. Inside a PL/pgSQL function every statement takes a fresh
snapshot, so lock-then-read is correct, and the whole write is still one
statement, one round trip and one commit for the client, with plans cached by
the server session (about half the cost of a pipelined two-statement
transaction, see ``bench/oltp_lifecycle.py``).

Each function returns how far it got, so the caller can raise the precise error:
0 = no such run, 1 = no such step, 2 = done.
"""

from __future__ import annotations

# When a step is written on a run that is already terminal, the run gets a new
# revision and is (re)queued for export in the same transaction.
_BUMP_IF_TERMINAL = """
    IF v_status <> 'Running' THEN
        UPDATE flow_runs SET revision = revision + 1 WHERE id = p_run RETURNING revision INTO v_revision;
        INSERT INTO export_outbox (run_id, revision, enqueued_at) VALUES (p_run, v_revision, p_now)
        ON CONFLICT (run_id) DO UPDATE SET revision = EXCLUDED.revision, enqueued_at = EXCLUDED.enqueued_at;
    END IF;"""

# Shared start of the step writes: lock the run (returning 0 when there is none) and keep
# its status, which decides whether the write makes a new version of a terminal run.
_LOCK_RUN = """DECLARE
    v_status text;
    v_attempt int;
    v_revision bigint;
BEGIN
    SELECT status INTO v_status FROM flow_runs WHERE id = p_run FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;"""

STEP_START = f"""
CREATE OR REPLACE FUNCTION flowrun_step_start(
    p_run uuid, p_key text, p_type text, p_input text, p_job text, p_now timestamptz
) RETURNS int LANGUAGE plpgsql AS $$
{_LOCK_RUN}
    INSERT INTO flow_steps AS s (run_id, step_key, step_type, status, input_json, job_id, started_at, attempt_count)
    VALUES (p_run, p_key, p_type, 'Running', p_input, p_job, p_now, 1)
    ON CONFLICT (run_id, step_key) DO UPDATE
       SET step_type = EXCLUDED.step_type, status = 'Running', input_json = EXCLUDED.input_json,
           output_json = NULL, error_message = NULL, job_id = EXCLUDED.job_id,
           started_at = EXCLUDED.started_at, completed_at = NULL, attempt_count = s.attempt_count + 1
    RETURNING s.attempt_count INTO v_attempt;
    INSERT INTO flow_step_attempts (run_id, step_key, attempt, step_type, status, input_json, job_id, started_at)
    VALUES (p_run, p_key, v_attempt, p_type, 'Running', p_input, p_job, p_now);
    {_BUMP_IF_TERMINAL}
    RETURN 2;
END $$
"""

STEP_COMPLETE = f"""
CREATE OR REPLACE FUNCTION flowrun_step_complete(
    p_run uuid, p_key text, p_status text, p_output text, p_error text, p_now timestamptz
) RETURNS int LANGUAGE plpgsql AS $$
{_LOCK_RUN}
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
    {_BUMP_IF_TERMINAL}
    RETURN 2;
END $$
"""

# Reopening: the step back to Pending (its attempts keep their history), the run to
# Running at a new revision, the step's dispatch record dropped so it can be dispatched
# again, and a pending export withdrawn (a reopened run is not a completed run).
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

ALL = (STEP_START, STEP_COMPLETE, STEP_RETRY)
