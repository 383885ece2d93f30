"""The archive's file list as readers see it, and DuckDB scans over chosen files.

With a DSN the visible files are exactly those listed in ``archive_files`` (a file on
disk that is not listed is an orphan of a crashed export and is ignored); without
one they are found by globbing ``<kind>/started_date=*/*.parquet``, which never
matches a file still being written (``docs/archive.md``). Because the partition
date is known for every file, a query picks the files of its time window itself
and hands DuckDB only those, so partition pruning never depends on the optimiser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

KINDS = ("runs", "steps", "attempts")
_PATH = re.compile(r"^(runs|steps|attempts)/started_date=(\d{4}-\d{2}-\d{2})/[^/]+\.parquet$")


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One visible Parquet file: its kind, partition date and absolute location."""

    kind: str
    started_date: date
    location: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """Every visible file, by kind; ``fingerprint`` changes whenever the list does."""

    fingerprint: object
    files: dict[str, tuple[ArchiveFile, ...]] = field(default_factory=dict)

    def select(self, kind: str, since: datetime | None = None, until: datetime | None = None) -> list[ArchiveFile]:
        """Files of ``kind`` whose partition day overlaps ``[since, until)`` (bounds are UTC)."""
        return [
            f
            for f in self.files.get(kind, ())
            if (since is None or _day_start(f.started_date) + _DAY > since)
            and (until is None or _day_start(f.started_date) < until)
        ]


_DAY = timedelta(days=1)


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def from_rows(root: str, rows: Iterable[tuple[str, str, date]], fingerprint: object) -> Manifest:
    """A manifest from ``archive_files`` rows (path relative to ``root``, kind, date)."""
    base = Path(root)
    by_kind: dict[str, list[ArchiveFile]] = {k: [] for k in KINDS}
    for path, kind, started in sorted(rows):
        by_kind[kind].append(ArchiveFile(kind, started, str(base / path)))
    return Manifest(fingerprint, {k: tuple(v) for k, v in by_kind.items()})


def scan_directory(root: str) -> Manifest:
    """A manifest of every complete Parquet file under ``root`` (archive-only readers)."""
    base = Path(root)
    by_kind: dict[str, list[ArchiveFile]] = {k: [] for k in KINDS}
    found: list[tuple[str, float, int]] = []
    for kind in KINDS:
        top = base / kind
        if not top.is_dir():
            continue
        for part in sorted(top.iterdir()):
            if not part.is_dir() or not part.name.startswith("started_date="):
                continue
            for file in sorted(part.iterdir()):
                rel = f"{kind}/{part.name}/{file.name}"
                match = _PATH.match(rel)
                if match is None or file.name.startswith("."):
                    continue
                stat = file.stat()
                found.append((rel, stat.st_mtime, stat.st_size))
                by_kind[kind].append(ArchiveFile(kind, date.fromisoformat(match.group(2)), str(file)))
    return Manifest(tuple(found), {k: tuple(v) for k, v in by_kind.items()})


def sql_string(value: str) -> str:
    """A SQL string literal (DuckDB table functions take file lists as constants)."""
    return "'" + value.replace("'", "''") + "'"


def parquet_scan(files: Sequence[ArchiveFile]) -> str:
    """A ``read_parquet`` over exactly these files (at least one)."""
    listed = ", ".join(sql_string(f.location) for f in files)
    return f"read_parquet([{listed}], union_by_name = true)"
