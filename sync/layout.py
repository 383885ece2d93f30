"""Names inside the archive: partition directories, file names, batch ids, temporary names.

``<kind>/started_date=YYYY-MM-DD/<batch_id>.parquet`` is the whole layout
(``docs/archive.md``). Paths are relative to the archive root and always
``/``-separated, the form stored in ``archive_files.path``. A file being written
carries a name that does not end in ``.parquet`` and starts with a dot, so no
reader's glob and no engine's directory listing ever picks it up.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime
from typing import NamedTuple

from sync.arrow_schemas import KINDS, Kind

SUFFIX = ".parquet"
TMP_SUFFIX = ".tmp"
COMPACTED_PREFIX = "compacted-"
MARKER = "_flowrun_archive.json"

_PATH = re.compile(r"^(runs|steps|attempts)/started_date=(\d{4}-\d{2}-\d{2})/([^/]+)\.parquet$")


class FilePath(NamedTuple):
    """The parts of an archive file's relative path."""

    kind: Kind
    started_date: date
    batch_id: str

    @property
    def path(self) -> str:
        """The relative, ``/``-separated path of the file."""
        return f"{partition_dir(self.kind, self.started_date)}/{self.batch_id}{SUFFIX}"

    @property
    def tmp_path(self) -> str:
        """Where the file is written before it is renamed into place."""
        return f"{partition_dir(self.kind, self.started_date)}/.{self.batch_id}{SUFFIX}{TMP_SUFFIX}"


def partition_dir(kind: Kind, started_date: date) -> str:
    """``<kind>/started_date=YYYY-MM-DD``."""
    return f"{kind}/started_date={started_date.isoformat()}"


def parse(path: str) -> FilePath | None:
    """The parts of a published file's relative path, or None for anything else."""
    match = _PATH.match(path)
    if match is None:
        return None
    kind, day, batch_id = match.groups()
    assert kind in KINDS
    return FilePath(kind, date.fromisoformat(day), batch_id)


def is_tmp(path: str) -> bool:
    """True for a file an interrupted writer left behind."""
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def new_batch_id(now: datetime, prefix: str = "") -> str:
    """Sortable and unique: UTC time of the batch to the microsecond, then a random suffix."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{prefix}{stamp}-{secrets.token_hex(4)}"
