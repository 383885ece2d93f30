"""Errors of the archive side, under the store's one taxonomy (``oltp.errors``)."""

from __future__ import annotations

from oltp.errors import ArchiveBusy, FlowRunStoreError

__all__ = ["ArchiveBusy", "ArchiveConflict", "ArchiveCorrupt", "ArchiveUnavailable", "ArchiveUpgradeRequired"]


class ArchiveConflict(FlowRunStoreError):
    """The archive location is not the one this database's history lives in; nothing was changed."""


class ArchiveCorrupt(FlowRunStoreError):
    """A data file the Delta log lists is missing, truncated, replaced or unreadable; ``path`` names it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"archive file {path} is {reason}")
        self.path = path
        self.reason = reason


class ArchiveUnavailable(FlowRunStoreError):
    """The archive's object store cannot be reached (refused, unknown host, timed out) or refuses our requests.

    Raised where jobs and readers reach the archive (``ArchiveLocation.reached``): the v1 check that
    starts every job and reader, before anything is written, and loading the table's log. The
    message names the archive's URI and the client's reason on one line, never credentials.
    """


class ArchiveUpgradeRequired(FlowRunStoreError):
    """The archive location still holds v1 Parquet files: ``flowrun upgrade-archive`` converts them first.

    Export, compaction and readers refuse such a location and change nothing: a Delta
    vacuum would delete the v1 files in ``<archive>/runs`` (the table does not list
    them), and a reader would silently leave their runs out of every answer.
    """
