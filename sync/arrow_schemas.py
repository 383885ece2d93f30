"""The Arrow schema of the archive's Delta table, written down once.

One row per run at its newest exported revision, with the run's steps and
attempts nested as lists of structs (``docs/archive.md`` says why one table).
Ids are canonical lower-case UUID text (Spark, Hive and Athena have no Parquet
UUID type), times ``timestamp[us, tz=UTC]`` (Delta ``timestamp``), JSON fields
plain strings holding the stored bytes. ``search_doc`` is the run's lower-cased
search document. ``started_date`` (the run's UTC start date) is the partition
column: Delta keeps it in the log, not in the data files.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
UUID = pa.uuid()  # how PostgreSQL's uuid arrives over ADBC; the archive stores text


def storage(values: pa.Array) -> pa.Array:
    """The plain array under an extension type (``UUID``'s 16-byte binary), for compute kernels without one."""
    return values.storage if isinstance(values, pa.ExtensionArray) else values


PARTITION = "started_date"

STEP = pa.struct(
    [
        pa.field("step_key", pa.string(), False),
        pa.field("step_type", pa.string(), False),
        pa.field("status", pa.string(), False),
        pa.field("input_json", pa.string()),
        pa.field("output_json", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("job_id", pa.string()),
        pa.field("started_at", TS),
        pa.field("completed_at", TS),
        pa.field("attempt_count", pa.int32(), False),
    ]
)

ATTEMPT = pa.struct(
    [
        pa.field("step_key", pa.string(), False),
        pa.field("attempt", pa.int32(), False),
        pa.field("step_type", pa.string(), False),
        pa.field("status", pa.string(), False),
        pa.field("input_json", pa.string()),
        pa.field("output_json", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("job_id", pa.string()),
        pa.field("started_at", TS, False),
        pa.field("completed_at", TS),
    ]
)

RUNS = pa.schema(
    [
        pa.field("id", pa.string(), False),
        pa.field("flow_id", pa.string(), False),
        pa.field("flow_name", pa.string(), False),
        pa.field("status", pa.string(), False),
        pa.field("trigger_key", pa.string(), False),
        pa.field("trigger_data_json", pa.string()),
        pa.field("background_job_id", pa.string()),
        pa.field("started_at", TS, False),
        pa.field("completed_at", TS),
        pa.field("source_run_id", pa.string()),
        pa.field("revision", pa.int64(), False),
        pa.field("exported_at", TS, False),
        pa.field("search_doc", pa.string(), False),
        pa.field("steps", pa.list_(pa.field("element", STEP, False)), False),
        pa.field("attempts", pa.list_(pa.field("element", ATTEMPT, False)), False),
        pa.field(PARTITION, pa.date32(), False),
    ]
)

# Columns of a run's own fields, in the order of the store's records.
RUN_COLUMNS = tuple(RUNS.names[:11])
