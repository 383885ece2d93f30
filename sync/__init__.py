"""Export of completed runs to the Delta Lake archive (exactly once), its compaction and retention.

``export_completed_runs`` drains the outbox into the archive's Delta table,
``compact`` optimizes, checkpoints and vacuums it, ``prune`` deletes archived runs
from PostgreSQL, ``relocate`` records a deliberate move of the archive,
``upgrade_archive`` converts a v1 Parquet archive into the Delta table,
``verify_archive`` reads every file back against the hash recorded when it was
written. The layout and schema are the contract in ``docs/archive.md``; ``sync.arrow_schemas`` holds
them in code, ``sync.archive_location`` and ``sync.archive_table`` own the storage.
"""

from sync.archive_identity import relocate
from sync.archive_location import ArchiveLocation
from sync.compact import DEFAULT_MAX_FILE_ROWS, DEFAULT_VACUUM_AFTER, CompactReport, compact
from sync.durations import parse_duration
from sync.errors import ArchiveBusy, ArchiveConflict, ArchiveCorrupt, ArchiveUnavailable, ArchiveUpgradeRequired
from sync.export import DEFAULT_BATCH_SIZE, ExportReport, export_completed_runs
from sync.progress import Progress, ProgressUpdate, console_progress, log_progress
from sync.prune import DEFAULT_PRUNE_BATCH, prune
from sync.upgrade import UpgradeReport, upgrade_archive
from sync.verify import CorruptFile, VerifyReport, verify_archive

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_FILE_ROWS",
    "DEFAULT_PRUNE_BATCH",
    "DEFAULT_VACUUM_AFTER",
    "ArchiveBusy",
    "ArchiveConflict",
    "ArchiveCorrupt",
    "ArchiveLocation",
    "ArchiveUnavailable",
    "ArchiveUpgradeRequired",
    "CompactReport",
    "CorruptFile",
    "ExportReport",
    "Progress",
    "ProgressUpdate",
    "UpgradeReport",
    "VerifyReport",
    "compact",
    "console_progress",
    "export_completed_runs",
    "log_progress",
    "parse_duration",
    "prune",
    "relocate",
    "upgrade_archive",
    "verify_archive",
]
