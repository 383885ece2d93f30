"""Errors of the export side, under the store's one taxonomy (``oltp.errors``)."""

from __future__ import annotations

from oltp.errors import ArchiveBusy, FlowRunStoreError

__all__ = ["ArchiveBusy", "ArchiveConflict"]


class ArchiveConflict(FlowRunStoreError):
    """The archive directory belongs to another database or schema; nothing was changed."""
