"""Removing what a crashed export or compaction left behind.

Two kinds of leftovers exist: temporary files (written, never renamed) and
orphans, Parquet files renamed into place whose manifest transaction never
committed (or, after a compaction, files the committed manifest no longer
lists). Neither is listed in ``archive_files``, and readers with a DSN never
read them. They are removed under the archive lock, before a job writes
anything, so a file a running job is about to list is never mistaken for one.
"""

from __future__ import annotations

from sync import crash_points, manifest
from sync.archive_storage import ArchiveStorage
from sync.arrow_connection import ArrowConnection
from sync.layout import is_tmp, parse


def remove_leftovers(storage: ArchiveStorage, conn: ArrowConnection) -> int:
    """Delete temporary files and unlisted Parquet files; returns how many were removed."""
    listed = manifest.listed_paths(conn)
    removed = 0
    for path in storage.files():
        # Files that are neither ours nor temporary (a README, an engine's _SUCCESS) stay.
        leftover = is_tmp(path) or (parse(path) is not None and path not in listed)
        if leftover:
            storage.delete(path)
            removed += 1
            crash_points.reached("orphan_removed")
    return removed
