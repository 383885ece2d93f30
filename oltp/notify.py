"""Change notifications: every write to a run or a step is announced on one ``NOTIFY`` channel.

Row triggers on ``flow_runs`` and ``flow_steps`` call ``pg_notify`` with a small
JSON payload (schema, kind, run id, status; the step key for steps), so a
listener such as the web dashboard learns of new runs and status changes the
moment their transaction commits, with one ``LISTEN`` connection and no polling
of the tables. PostgreSQL delivers notifications only on commit and folds
identical ones of one transaction into one, so a rolled-back write announces
nothing. The payload stays far below ``NOTIFY``'s 8,000-byte limit: step keys
are at most 512 characters.
"""

from __future__ import annotations

CHANNEL = "flowrun_changes"

FUNCTION = f"""
CREATE OR REPLACE FUNCTION flowrun_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'flow_runs' THEN
        PERFORM pg_notify('{CHANNEL}', json_build_object(
            'schema', TG_TABLE_SCHEMA, 'kind', 'run', 'run_id', NEW.id, 'flow_id', NEW.flow_id,
            'status', NEW.status)::text);
    ELSE
        PERFORM pg_notify('{CHANNEL}', json_build_object(
            'schema', TG_TABLE_SCHEMA, 'kind', 'step', 'run_id', NEW.run_id, 'step_key', NEW.step_key,
            'status', NEW.status)::text);
    END IF;
    RETURN NULL;
END $$
"""

TRIGGERS = (
    "CREATE TRIGGER flowrun_notify_runs AFTER INSERT OR UPDATE ON flow_runs"
    " FOR EACH ROW EXECUTE FUNCTION flowrun_notify_change()",
    "CREATE TRIGGER flowrun_notify_steps AFTER INSERT OR UPDATE ON flow_steps"
    " FOR EACH ROW EXECUTE FUNCTION flowrun_notify_change()",
)

ALL = (FUNCTION, *TRIGGERS)
