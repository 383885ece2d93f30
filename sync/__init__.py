"""Export of completed runs to the Parquet archive (exactly once), its compaction and retention.

``export_completed_runs`` drains the outbox into hive-partitioned Parquet files,
``compact`` merges a partition's small files, ``prune`` deletes archived runs
from PostgreSQL. The archive's layout and schemas are the contract in
``docs/archive.md``; ``sync.arrow_schemas`` holds them in code.
"""

from sync.compact import DEFAULT_MAX_FILE_ROWS, CompactReport, compact
from sync.durations import parse_duration
from sync.errors import ArchiveBusy, ArchiveConflict
from sync.export import DEFAULT_BATCH_SIZE, ExportReport, export_completed_runs
from sync.progress import Progress, ProgressUpdate, console_progress, log_progress
from sync.prune import DEFAULT_PRUNE_BATCH, prune

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_FILE_ROWS",
    "DEFAULT_PRUNE_BATCH",
    "ArchiveBusy",
    "ArchiveConflict",
    "CompactReport",
    "ExportReport",
    "Progress",
    "ProgressUpdate",
    "compact",
    "console_progress",
    "export_completed_runs",
    "log_progress",
    "parse_duration",
    "prune",
]
