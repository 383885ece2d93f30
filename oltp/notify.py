"""Change notifications: every write to a run or a step is announced on one ``NOTIFY`` channel.

Row triggers on ``flow_runs`` and ``flow_steps`` call ``pg_notify`` with a small
JSON payload (schema, kind, run id, status; the step key for steps), so a
listener such as the web dashboard learns of new runs and status changes the
moment their transaction commits, with one ``LISTEN`` connection and no polling
of the tables. PostgreSQL delivers notifications only on commit and folds
identical ones of one transaction into one, so a rolled-back write announces
nothing. The payload stays far below ``NOTIFY``'s 8,000-byte limit: step keys
are at most 512 characters. The trigger function and the triggers are created by
migration 0003 (``oltp/migrations/versions/0003_change_notifications.py``), which
holds their SQL.
"""

from __future__ import annotations

CHANNEL = "flowrun_changes"
