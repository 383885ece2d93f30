"""The search index beside each data file: trigram signatures, the run keys and the documents.

A scan of every run's search document costs 0.1-0.2 s per million runs, too slow
for a first search over ten million. So each data file of the Delta table gets an
index file (``ArchiveLocation.search_index_path``: under ``<table>/_search``, which
Delta ignores) holding, per run, a 512-bit signature of the hashed byte trigrams
of its lower-cased search document, the run's key and filter fields, and the
document itself, uncompressed, in one Arrow IPC file. A search ANDs the term's
trigram bits over the signature words with numpy (no Parquet decode), then checks
only the candidates' documents byte for byte: the same ``contains`` over the same
lower-cased bytes as a scan, so answers never change.

The export writes the index of every file its commit added, after the commit;
compaction writes those of the files optimize wrote (and any that are missing) and
deletes those of the files vacuum removed. An index records the data file's path,
size and row count; one that is missing, unreadable or describes another file is
not used, and that file alone is scanned as before.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import uuid
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sync.archive_location import ArchiveLocation
from sync.archive_table import DataFile

FORMAT = "flowrun-search-index/1"
BITS = 512
WORDS = BITS // 64
_SHIFT = np.uint32(32 - 9)  # 2**9 == BITS
_MULTIPLIER = np.uint32(2654435761)  # Knuth's multiplicative hash
# Columns of the index besides the signatures: the run's key, the fields a search may
# also filter on, and its document.
KEY_COLUMNS = ("id", "revision", "started_at", "flow_id", "status", "source_run_id")
DOC = "search_doc"
# A file where more than this share of runs are candidates is cheaper to scan whole
# (checking a document costs a few times a scan's per-run cost); below the floor, never.
DENSE = 0.2
_DENSE_FLOOR = 4096

Words = npt.NDArray[np.uint64]


def signatures(docs: pa.Array | pa.ChunkedArray) -> Words:
    """``(WORDS, n)`` signature words of ``docs``: bit ``hash(trigram)`` set for each byte trigram.

    Trigrams spanning two neighbouring documents set bits in the first of them: a
    superset never loses a match, it only adds a candidate now and then.
    """
    if isinstance(docs, pa.ChunkedArray):
        docs = docs.combine_chunks() if docs.num_chunks else pa.array([], pa.large_string())
    docs = docs.cast(pa.large_string())
    n = len(docs)
    if n == 0:
        return np.zeros((WORDS, 0), dtype=np.uint64)
    offsets = np.frombuffer(docs.buffers()[1], dtype=np.int64, count=n + 1, offset=docs.offset * 8)
    data_buffer = docs.buffers()[2]
    if data_buffer is None or offsets[-1] - offsets[0] < 3:
        return np.zeros((WORDS, n), dtype=np.uint64)
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    bits = _trigram_bits(data)
    # 32-bit positions halve the memory traffic of the scatter below (files of up to 8M runs).
    position = np.dtype(np.uint32) if n * BITS < 2**32 else np.dtype(np.int64)
    starts = np.arange(0, n * BITS, BITS, dtype=position)
    rows: npt.NDArray[Any] = np.repeat(starts, np.diff(offsets))[: len(bits)]
    rows += bits.astype(position, copy=False)
    flags = np.zeros(n * BITS, dtype=bool)
    flags[rows] = True
    packed = np.packbits(flags.reshape(n, BITS), axis=1, bitorder="little")
    return np.ascontiguousarray(packed.view("<u8").T)


def _trigram_bits(data: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    """The signature bit of the trigram starting at each position (but the last two)."""
    wide = data.astype(np.uint32)
    grams = wide[:-2] << np.uint32(16)
    grams |= wide[1:-1] << np.uint32(8)
    grams |= wide[2:]
    grams *= _MULTIPLIER
    grams >>= _SHIFT
    return grams


def term_masks(term: bytes) -> list[tuple[int, int]] | None:
    """``(word, mask)`` pairs a document holding ``term`` has all bits of; None below three bytes."""
    if len(term) < 3:
        return None
    bits = _trigram_bits(np.frombuffer(term, dtype=np.uint8))
    masks: dict[int, int] = {}
    for bit in set(int(b) for b in bits.tolist()):
        masks[bit // 64] = masks.get(bit // 64, 0) | (1 << (bit % 64))
    # Most bits first: the first pass over a whole word should leave the fewest candidates.
    return sorted(masks.items(), key=lambda item: -bin(item[1]).count("1"))


def build(rows: pa.Table, file: DataFile) -> pa.Table:
    """The index table of a data file's ``rows`` (key columns and ``search_doc``), one chunk each."""
    # delta-rs may write strings as views; the index holds plain offsets-and-bytes strings.
    rows = pa.table({name: _plain_type(rows.column(name)) for name in (*KEY_COLUMNS, DOC)}).combine_chunks()
    words = signatures(rows.column(DOC))
    columns: dict[str, Any] = {f"s{w}": pa.array(words[w]) for w in range(WORDS)}
    for name in KEY_COLUMNS:
        column = rows.column(name)
        columns[name] = column.dictionary_encode() if name in ("flow_id", "status") else column
    columns["doc"] = rows.column(DOC).cast(pa.large_string())
    metadata = {"format": FORMAT, "path": file.path, "size": str(file.size), "rows": str(file.rows)}
    return pa.table(columns).combine_chunks().replace_schema_metadata(metadata)


def write(location: ArchiveLocation, file: DataFile) -> None:
    """Read ``file``'s keys and documents and write its index (atomically where the storage allows)."""
    fs, base = location.filesystem()
    with fs.open_input_file(f"{base}/{file.path}") as source:
        rows = pq.read_table(source, columns=[*KEY_COLUMNS, DOC])
    table = build(rows, file)
    target = f"{base}/{location.search_index_path(file.path)}"
    fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
    # An object store publishes a PUT whole; a local file is written aside and renamed.
    temporary = target if not location.is_local else f"{target}.{uuid.uuid4().hex}.tmp"
    with fs.open_output_stream(temporary) as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, table.num_rows))
    if temporary != target:
        fs.move(temporary, target)


def write_added(location: ArchiveLocation, files: Iterable[DataFile], added: Collection[str]) -> None:
    """Write the index of each of ``files`` whose path is in ``added`` (the files a commit added)."""
    for file in files:
        if file.path in added:
            write(location, file)


def has_index(location: ArchiveLocation, file: DataFile) -> bool:
    """True when an index file for ``file`` exists (valid or not)."""
    fs, base = location.filesystem()
    return bool(fs.get_file_info(f"{base}/{location.search_index_path(file.path)}").type == pafs.FileType.File)


def write_missing(location: ArchiveLocation, files: Sequence[DataFile]) -> int:
    """Write the index of each of ``files`` that has none; how many were written."""
    if not files:
        return 0
    fs, base = location.filesystem()
    infos = fs.get_file_info([f"{base}/{location.search_index_path(f.path)}" for f in files])
    written = 0
    for file, info in zip(files, infos, strict=True):
        if info.type != pafs.FileType.File:
            write(location, file)
            written += 1
    return written


def remove(location: ArchiveLocation, paths: Iterable[str]) -> None:
    """Delete the indexes of data files (relative paths) that left storage."""
    fs, base = location.filesystem()
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            fs.delete_file(f"{base}/{location.search_index_path(path)}")


class Index:
    """One opened index file: its record batch and its raw bytes (for document checks)."""

    def __init__(self, raw: mmap.mmap | bytes, batch: pa.RecordBatch) -> None:
        self._raw = raw
        self._batch = batch
        base = pa.py_buffer(raw).address
        docs = batch.column("doc")
        self._offsets = np.frombuffer(docs.buffers()[1], dtype=np.int64, count=len(docs) + 1, offset=docs.offset * 8)
        data = docs.buffers()[2]
        self._doc_start = 0 if data is None else data.address - base
        self._words = [np.frombuffer(batch.column(f"s{w}").buffers()[1], np.uint64, len(docs)) for w in range(WORDS)]

    @property
    def rows(self) -> int:
        """Runs indexed."""
        return int(self._batch.num_rows)

    def search(self, term: bytes, masks: Sequence[tuple[int, int]]) -> pa.Table | None:
        # ``masks`` are ``term_masks(term)``: computed once per search, not once per file.
        """Key columns of the runs whose document holds ``term``; None when a scan is cheaper."""
        candidates: npt.NDArray[np.intp] | None = None
        for word, mask in masks:
            value = np.uint64(mask)
            column = self._words[word]
            if candidates is None:
                candidates = np.flatnonzero((column & value) == value)
            else:
                candidates = candidates[(column[candidates] & value) == value]
            if len(candidates) > max(DENSE * self.rows, _DENSE_FLOOR):
                return None
        assert candidates is not None
        starts = (self._offsets[candidates] + self._doc_start).tolist()
        ends = (self._offsets[candidates + 1] + self._doc_start).tolist()
        find = self._raw.find
        found = [i for i, a, z in zip(candidates.tolist(), starts, ends, strict=True) if find(term, a, z) >= 0]
        hits = self._batch.select(list(KEY_COLUMNS)).take(pa.array(found, pa.int64()))
        # Plain strings: hits of many files become one table without unifying dictionaries.
        return pa.table({name: _plain(hits.column(name)) for name in KEY_COLUMNS})


def _plain_type(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(pa.string()) if pa.types.is_string_view(column.type) else column


def _plain(column: pa.Array) -> pa.Array:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def open_index(location: ArchiveLocation, file: DataFile) -> Index | None:
    """The index of ``file`` if it is there, readable and made for exactly this file; else None."""
    fs, base = location.filesystem()
    path = f"{base}/{location.search_index_path(file.path)}"
    raw: mmap.mmap | bytes
    try:
        if location.is_local:
            with open(path, "rb") as handle:
                raw = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        else:
            with fs.open_input_file(path) as source:
                raw = source.read()
        reader = pa.ipc.open_file(pa.py_buffer(raw))
        metadata = reader.schema.metadata or {}
        expected = {b"format": FORMAT, b"path": file.path, b"size": str(file.size), b"rows": str(file.rows)}
        if any(metadata.get(k) != v.encode() for k, v in expected.items()) or reader.num_record_batches != 1:
            return None
        batch = reader.get_batch(0)
        if batch.num_rows != file.rows:
            return None
        return Index(raw, batch)
    except (OSError, ValueError, pa.ArrowException):
        return None


def local_path(location: ArchiveLocation, file: DataFile) -> str:
    """Where ``file``'s index is on this machine (local archives only)."""
    return os.path.join(location.table_uri, location.search_index_path(file.path))
