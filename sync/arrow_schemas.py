"""The Arrow schemas of the archive's three file kinds, written down once.

Every file the exporter or the compactor writes is cast to one of these
schemas, so all files of a kind are identical in type whatever produced them:
ids are ``arrow.uuid`` (Parquet ``UUID``), times ``timestamp[us, tz=UTC]``,
statuses dictionary-encoded strings, JSON fields plain strings holding the
stored bytes. ``docs/archive.md`` describes the same columns for readers.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

Kind = Literal["runs", "steps", "attempts"]
KINDS: tuple[Kind, ...] = ("runs", "steps", "attempts")

# Bumped when a reader would have to change to read new files.
FORMAT_VERSION = "1"

UUID = pa.uuid()
TS = pa.timestamp("us", tz="UTC")
STATUS = pa.dictionary(pa.int32(), pa.string())


def _field(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


_METADATA = {b"flowrun.archive.format": FORMAT_VERSION.encode()}

RUNS = pa.schema(
    [
        _field("id", UUID, False),
        _field("flow_id", UUID, False),
        _field("flow_name", pa.string(), False),
        _field("status", STATUS, False),
        _field("trigger_key", pa.string(), False),
        _field("trigger_data_json", pa.string()),
        _field("background_job_id", pa.string()),
        _field("started_at", TS, False),
        _field("completed_at", TS),
        _field("source_run_id", UUID),
        _field("revision", pa.int64(), False),
        _field("exported_at", TS, False),
    ],
    metadata=_METADATA,
)

STEPS = pa.schema(
    [
        _field("run_id", UUID, False),
        _field("step_key", pa.string(), False),
        _field("step_type", pa.string(), False),
        _field("status", STATUS, False),
        _field("input_json", pa.string()),
        _field("output_json", pa.string()),
        _field("error_message", pa.string()),
        _field("job_id", pa.string()),
        _field("started_at", TS),
        _field("completed_at", TS),
        _field("attempt_count", pa.int32(), False),
        _field("run_started_at", TS, False),
        _field("revision", pa.int64(), False),
        _field("exported_at", TS, False),
    ],
    metadata=_METADATA,
)

ATTEMPTS = pa.schema(
    [
        _field("run_id", UUID, False),
        _field("step_key", pa.string(), False),
        _field("attempt", pa.int32(), False),
        _field("step_type", pa.string(), False),
        _field("status", STATUS, False),
        _field("input_json", pa.string()),
        _field("output_json", pa.string()),
        _field("error_message", pa.string()),
        _field("job_id", pa.string()),
        _field("started_at", TS, False),
        _field("completed_at", TS),
        _field("run_started_at", TS, False),
        _field("revision", pa.int64(), False),
        _field("exported_at", TS, False),
    ],
    metadata=_METADATA,
)

SCHEMAS: dict[Kind, pa.Schema] = {"runs": RUNS, "steps": STEPS, "attempts": ATTEMPTS}

# The run start time of every row: the partition key and the first sort key.
RUN_START: dict[Kind, str] = {"runs": "started_at", "steps": "run_started_at", "attempts": "run_started_at"}
# Sort order inside a file, so min/max statistics let readers skip row groups.
SORT_KEYS: dict[Kind, tuple[str, ...]] = {
    "runs": ("started_at", "id"),
    "steps": ("run_started_at", "run_id", "step_key"),
    "attempts": ("run_started_at", "run_id", "step_key", "attempt"),
}
# The columns that identify one row of a run's version.
ROW_KEYS: dict[Kind, tuple[str, ...]] = {
    "runs": ("id", "revision"),
    "steps": ("run_id", "revision", "step_key"),
    "attempts": ("run_id", "revision", "step_key", "attempt"),
}
RUN_ID: dict[Kind, str] = {"runs": "id", "steps": "run_id", "attempts": "run_id"}
