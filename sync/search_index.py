"""The search index beside each data file: gram signatures, then each run's keys and document.

A scan of every run's search document costs 0.1-0.2 s per million runs, too slow
for a first search over ten million. So each data file of the Delta table gets an
index file (``ArchiveLocation.search_index_path``: under ``<table>/_search``, which
Delta ignores), one Arrow IPC file with two columns:

* ``planes``: a ``BITS``-bit signature per run (the hashed byte trigrams and 4-grams
  of its lower-cased search document), stored bit-sliced: plane ``b`` is bits
  ``b * rows`` to ``(b + 1) * rows`` of the column's buffer, one bit per run;
* ``record``: per run, its key and filter fields packed in ``KEY_BYTES`` fixed bytes,
  then its document, uncompressed.

A search ANDs the planes of the term's trigram and 4-gram bits, then checks only the
candidates' documents byte for byte: the same ``contains`` over the same lower-cased
bytes as a scan, so answers never change. The layout is for a cold page cache (a
new process after other work, a reboot): a term of ``k`` distinct bits reads
``k * rows / 8`` bytes of signatures (30 MB for a 15-byte term at ten million runs)
instead of all of them (1.3 GB), and a hit costs one read, its record, holding both
what is checked and what is returned. The file is memory-mapped for random access
(the disk's read-ahead would otherwise read megabytes around every record), and the
pages a search is about to read are asked of the kernel at once, so the disk reads
them in parallel instead of one fault at a time.

The export writes the index of every file its commit added, after the commit;
compaction writes those of the files optimize wrote (and any that are missing or
of an older format) and deletes those whose data file vacuum removed (``sweep``). An index records
its format and the data file's path, size and row count; one that is missing,
unreadable, of another format or describes another file is not used, and that file
alone is scanned as before.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sync import uuid_text
from sync.archive_location import SEARCH_DIR, ArchiveLocation
from sync.archive_table import DataFile
from sync.arrow_schemas import PARTITION, TS

FORMAT = "flowrun-search-index/3"
# Bits per signature. Each byte trigram and each byte 4-gram of a document sets one: 4-grams
# tell "from service-17" from a run holding "from service-12" and "job-17..." (measured at 10M
# runs: 1.1 candidates per hit instead of 3.2 with 512 bits of trigrams). A term reads only its
# own planes, so the width costs storage (BITS / 8 bytes a run), not search time.
BITS = 1024
_SHIFT = np.uint32(32 - 10)  # 2**10 == BITS
_MULTIPLIERS = (np.uint32(2654435761), np.uint32(0x85EBCA6B))  # multiplicative hashes (Knuth; murmur3's)
# What a hit returns: the run's key and the fields a search may also filter on.
KEY_COLUMNS = ("id", "revision", "started_at", "flow_id", "status", "source_run_id")
DOC = "search_doc"
PLANES = "planes"
RECORD = "record"
# A record's fixed part: the ids' 16 bytes (returned as the archive's canonical lower-case
# text), revision and start (microseconds, UTC) little-endian, the status as an index into
# the file's status names (schema metadata), whether source_run_id is set. The document follows.
_UUID = uuid_text.OCTETS
_ID, _FLOW, _SOURCE, _REVISION, _STARTED, _STATUS, _HAS_SOURCE = 0, 16, 32, 48, 56, 64, 65
KEY_BYTES = 66
_TEXT = uuid_text.TEXT
# A file where more than this share of runs are candidates is cheaper to scan whole
# (checking a document costs a few times a scan's per-run cost); below the floor, never.
DENSE = 0.2
_DENSE_FLOOR = 4096
_PAGE = mmap.PAGESIZE
# Pages closer than this are asked for in one request (fewer system calls, a little more read).
_GAP = 1
# Grams are taken over the concatenated documents of each ``_CHUNK`` runs: a gram spanning two
# documents of a chunk sets a bit of the first, none spans two chunks. Part of the format (the
# bits a file holds depend on it), so it stays 8192 for format 3.
_CHUNK = 8192
# Runs whose flags are set at once: ``(BITS, _BLOCK)`` booleans (256 KiB) and the block's grams
# stay in the L2 cache, where a scattered write costs half of what it does in a larger matrix.
# A power of two dividing ``_CHUNK``: a block is within one chunk, and its flag index is a shift.
_BLOCK_SHIFT = 8
_BLOCK = 1 << _BLOCK_SHIFT
_BLOCK_RUNS = np.arange(_BLOCK, dtype=np.uint32)

# A local index is written under this suffix and renamed into place; ``sweep`` deletes
# the ones a killed job left.
_PARTIAL = ".tmp"


def planes(docs: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.uint8]:
    """The signatures of ``docs``, bit-sliced: ``BITS * n / 8`` bytes, bit ``b * n + i`` set when run ``i`` has ``b``.

    A signature has bit ``hash(gram)`` set for each byte trigram and 4-gram of the document.
    Grams spanning two neighbouring documents set bits in the first of them: a superset
    never loses a match, it only adds a candidate now and then.
    """
    if isinstance(docs, pa.ChunkedArray):
        docs = docs.combine_chunks() if docs.num_chunks else pa.array([], pa.large_string())
    docs = docs.cast(pa.large_string())
    n = len(docs)
    offsets = np.frombuffer(docs.buffers()[1], dtype=np.int64, count=n + 1, offset=docs.offset * 8)
    data_buffer = docs.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    # Row b holds plane b, padded to whole bytes: each block's packed flags are one 2-D copy.
    padded = np.zeros((BITS, (n + 7) // 8), dtype=np.uint8)
    flags = np.empty((BITS, _BLOCK), dtype=bool)
    for first in range(0, n, _BLOCK):
        last = min(first + _BLOCK, n)
        flags.fill(False)
        chunk_end = int(offsets[min(first - first % _CHUNK + _CHUNK, n)])
        _set_flags(flags, data, offsets[first : last + 1], chunk_end)
        used = (last - first + 7) // 8
        packed = np.packbits(flags, bitorder="little").reshape(BITS, _BLOCK // 8)
        padded[:, first // 8 : first // 8 + used] = packed[:, :used]
    if n % 8 == 0:
        return padded.reshape(-1)
    # Planes of n bits each, back to back. Each 8 planes are n bytes, starting on a byte, and the
    # j-th plane of every such group starts at the same byte and bit of its group: 8 shifted copies.
    out = np.zeros((BITS // 8, n), dtype=np.uint8)
    width = padded.shape[1]
    for j in range(8):
        at, shift = divmod(j * n, 8)
        rows = padded[j::8]
        if shift == 0:
            out[:, at : at + width] |= rows
            continue
        wide = rows.astype(np.uint16) << np.uint16(shift)
        out[:, at : at + width] |= wide.astype(np.uint8)
        # The carry past the group's end (plane 7's last byte) is the padding's zeros.
        carry = min(width, n - at - 1)
        out[:, at + 1 : at + 1 + carry] |= (wide[:, :carry] >> np.uint16(8)).astype(np.uint8)
    return out.reshape(-1)


def _set_flags(
    flags: npt.NDArray[np.bool_], data: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64], end: int
) -> None:
    """Set ``flags[b, i]`` for each gram's bit ``b`` starting in document ``i`` of the block ``offsets`` delimit.

    Grams run on past the block's last document up to ``end``, the end of its chunk.
    """
    start, stop = int(offsets[0]), int(offsets[-1])
    grams = _gram_bits(data[start : min(stop + 3, end)], stop - start)
    if not grams:
        return
    runs = np.repeat(_BLOCK_RUNS[: len(offsets) - 1], np.diff(offsets))
    flat = flags.reshape(-1)
    for bits in grams:
        bits <<= np.uint32(_BLOCK_SHIFT)  # BITS * _BLOCK fits 32 bits
        bits |= runs[: len(bits)]
        flat[bits.astype(np.intp)] = True  # an index of another type is converted more slowly by numpy


def _gram_bits(data: npt.NDArray[np.uint8], count: int | None = None) -> tuple[npt.NDArray[np.uint32], ...]:
    """The signature bit of the trigram, then of the 4-gram, starting at each of the first ``count`` positions.

    ``count`` defaults to all of ``data``; grams that would run past its end are left out.
    """
    count = len(data) if count is None else count
    trigrams_count = min(count, len(data) - 2)
    if trigrams_count <= 0:
        return ()
    fourgrams_count = max(0, min(count, len(data) - 3))
    # Bytes p to p + 3 read as one big-endian integer are the 4-gram at p, and its top three the trigram.
    fourgrams = np.ndarray((fourgrams_count,), ">u4", buffer=data, strides=(1,)).astype(np.uint32)
    trigrams = np.empty(trigrams_count, dtype=np.uint32)
    np.right_shift(fourgrams, np.uint32(8), out=trigrams[:fourgrams_count])
    if trigrams_count > fourgrams_count:  # the last trigram, too near the end for a 4-gram
        a, b, c = (int(x) for x in data[fourgrams_count : fourgrams_count + 3])
        trigrams[fourgrams_count] = a << 16 | b << 8 | c
    for grams, multiplier in zip((trigrams, fourgrams), _MULTIPLIERS, strict=True):
        grams *= multiplier
        grams >>= _SHIFT
    return (trigrams, fourgrams) if fourgrams_count else (trigrams,)


def term_bits(term: bytes) -> list[int] | None:
    """The signature bits a document holding ``term`` has (each once); None below three bytes."""
    if len(term) < 3:
        return None
    grams = _gram_bits(np.frombuffer(term, dtype=np.uint8))
    return sorted(set(np.concatenate(grams).tolist()))


def build(rows: pa.Table, file: DataFile) -> pa.Table:
    """The index table of a data file's ``rows`` (key columns and ``search_doc``), one chunk each."""
    # delta-rs may write strings as views; the index holds plain offsets-and-bytes strings.
    rows = pa.table({name: _plain_type(rows.column(name)) for name in (*KEY_COLUMNS, DOC)}).combine_chunks()
    n = rows.num_rows
    keys = np.zeros((n, KEY_BYTES), dtype=np.uint8)
    for name, at in (("id", _ID), ("flow_id", _FLOW), ("source_run_id", _SOURCE)):
        keys[:, at : at + _UUID] = _uuid_bytes(rows.column(name).combine_chunks(), name)
    keys[:, _HAS_SOURCE] = rows.column("source_run_id").is_valid().to_numpy(zero_copy_only=False)
    keys[:, _REVISION : _REVISION + 8] = _int64_bytes(rows.column("revision"))
    keys[:, _STARTED : _STARTED + 8] = _int64_bytes(rows.column("started_at").cast(pa.int64()))
    statuses = rows.column("status").combine_chunks().dictionary_encode()
    if len(statuses.dictionary) > 255:
        raise ValueError(f"{file.path}: more than 255 run statuses")
    keys[:, _STATUS] = statuses.indices.to_numpy(zero_copy_only=False)
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(KEY_BYTES), n, [None, pa.py_buffer(keys)])
    docs = rows.column(DOC).combine_chunks().cast(pa.large_string()).cast(pa.large_binary())
    record = pc.binary_join_element_wise(fixed.cast(pa.large_binary()), docs, pa.scalar(b"", pa.large_binary()))
    if n and pc.sum(pc.binary_length(record)).as_py() < 2**31:
        record = record.cast(pa.binary())  # 32-bit offsets: half the pages a search's offset lookups touch
    # One fixed-size value per run keeps the file one Arrow record batch; the bytes are the planes.
    sliced = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(BITS // 8), n, [None, pa.py_buffer(planes(rows.column(DOC)))]
    )
    metadata = {
        "format": FORMAT,
        "path": file.path,
        "size": str(file.size),
        "rows": str(file.rows),
        "statuses": json.dumps(statuses.dictionary.to_pylist()),
    }
    return pa.table({PLANES: sliced, RECORD: record}).replace_schema_metadata(metadata)


def _uuid_bytes(column: pa.Array, name: str) -> npt.NDArray[np.uint8]:
    """``(n, 16)`` bytes of a column of UUID text in canonical form (zeros where null)."""
    if column.null_count == len(column):  # source_run_id of a batch without retries: nothing to convert
        return np.zeros((len(column), _UUID), dtype=np.uint8)
    filled = column.fill_null("00000000-0000-0000-0000-000000000000").cast(pa.large_binary())
    n = len(filled)
    lengths = pc.binary_length(filled)
    if n and (pc.min(lengths).as_py() != _TEXT or pc.max(lengths).as_py() != _TEXT):
        raise ValueError(f"{name} holds a value that is not a UUID in canonical text")
    if n == 0:
        return np.zeros((0, _UUID), dtype=np.uint8)
    start = int(np.frombuffer(filled.buffers()[1], dtype=np.int64)[filled.offset])
    text = np.frombuffer(filled.buffers()[2], dtype=np.uint8)[start : start + _TEXT * n].reshape(n, _TEXT)
    octets = uuid_text.to_octets(text)
    if octets is None:
        raise ValueError(f"{name} holds a value that is not a UUID in canonical text")
    return octets


def _int64_bytes(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.uint8]:
    values = np.asarray(column.to_numpy(), dtype="<i8")
    return values.view(np.uint8).reshape(len(values), 8)


def write(location: ArchiveLocation, file: DataFile, rows: pa.Table | None = None) -> None:
    """Write ``file``'s index (atomically where the storage allows) from ``rows``, or from the file itself.

    ``rows`` are the file's rows as they were written (at least the key columns and ``search_doc``);
    without them the file is read back.
    """
    fs, base = location.filesystem()
    if rows is None:
        with fs.open_input_file(f"{base}/{file.path}") as source:
            rows = pq.read_table(source, columns=[*KEY_COLUMNS, DOC])
    table = build(rows, file)
    target = f"{base}/{location.search_index_path(file.path)}"
    fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
    # An object store publishes a PUT whole; a local file is written aside and renamed.
    temporary = target if not location.is_local else f"{target}.{uuid.uuid4().hex}{_PARTIAL}"
    with fs.open_output_stream(temporary) as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, table.num_rows))
    if temporary != target:
        fs.move(temporary, target)


def write_added(
    location: ArchiveLocation, files: Iterable[DataFile], added: Collection[str], appended: pa.Table | None = None
) -> None:
    """Write the index of each of ``files`` whose path is in ``added`` (the files a commit added).

    ``appended`` are the rows an append commit wrote (with the partition column). A file that is the
    only one added for its date and holds as many rows as ``appended`` has of that date holds exactly
    those rows (the writer keeps a partition's rows together and in order), so its index is built
    from them instead of reading the file back; any other file is read back.
    """
    new = [f for f in files if f.path in added]
    per_date = Counter(f.started_date for f in new)
    for file in new:
        rows = None
        if appended is not None and per_date[file.started_date] == 1:
            day = pa.scalar(file.started_date, appended.schema.field(PARTITION).type)
            rows = appended.filter(pc.equal(appended.column(PARTITION), day))
            rows = rows if rows.num_rows == file.rows else None
        write(location, file, rows)


class IndexWriter:
    """Writes indexes on a thread of its own, one commit's files at a time.

    The export hands it each commit's new files and goes on with the next batch: building
    the signatures and writing the index overlap the next batch's PostgreSQL and Delta
    work. At most one commit's indexes are in progress; a failure is raised by the next
    ``write_added`` or by ``close``.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowrun-search-index")
        self._running: Future[None] | None = None

    def write_added(
        self, location: ArchiveLocation, files: Sequence[DataFile], added: Collection[str], appended: pa.Table | None
    ) -> None:
        """Start ``write_added(location, files, added, appended)`` once the previous one has finished."""
        self.close()
        self._running = self._pool.submit(write_added, location, files, added, appended)

    def close(self) -> None:
        """Wait for the indexes in progress; raise their error, if any."""
        running, self._running = self._running, None
        if running is not None:
            running.result()

    def shutdown(self) -> None:
        """Wait for the indexes in progress (an error is not raised: the caller is already failing) and stop."""
        with contextlib.suppress(Exception):
            self.close()
        self._pool.shutdown(wait=True)


def has_index(location: ArchiveLocation, file: DataFile) -> bool:
    """True when ``file`` has an index of this format (made for it or not)."""
    fs, base = location.filesystem()
    path = f"{base}/{location.search_index_path(file.path)}"
    return fs.get_file_info(path).type == pafs.FileType.File and _format_of(fs, path) == FORMAT


def write_missing(location: ArchiveLocation, files: Sequence[DataFile]) -> int:
    """Write the index of each of ``files`` that has none, or one of an older format; how many were written."""
    if not files:
        return 0
    fs, base = location.filesystem()
    paths = [f"{base}/{location.search_index_path(f.path)}" for f in files]
    written = 0
    for file, path, info in zip(files, paths, fs.get_file_info(paths), strict=True):
        if info.type != pafs.FileType.File or _format_of(fs, path) != FORMAT:
            write(location, file)
            written += 1
    return written


def _format_of(fs: pafs.FileSystem, path: str) -> str | None:
    """The format an index file says it has (its schema's metadata: a read of its footer), or None."""
    try:
        with fs.open_input_file(path) as source:
            metadata = pa.ipc.open_file(source).schema.metadata or {}
    except (OSError, ValueError, pa.ArrowException):
        return None
    value = metadata.get(b"format")
    return None if value is None else value.decode(errors="replace")


def sweep(location: ArchiveLocation) -> int:
    """Delete the indexes whose data file left storage, and partial writes; returns how many files went.

    Vacuum deletes data files; a job killed between that and this, or while writing an index
    (a local ``*.tmp``), leaves files nothing would ever read. Called under the archive lock,
    so no job is writing an index meanwhile; an index whose data file is gone serves no reader
    of any table version.
    """
    fs, base = location.filesystem()
    index_root = f"{base}/{SEARCH_DIR}"
    listed = fs.get_file_info(pafs.FileSelector(index_root, recursive=True, allow_not_found=True))
    indexes = [entry.path for entry in listed if entry.type == pafs.FileType.File]
    if not indexes:
        return 0
    data = {
        entry.path
        for entry in fs.get_file_info(pafs.FileSelector(base, recursive=True))
        if entry.type == pafs.FileType.File and not entry.path.startswith(f"{index_root}/")
    }
    removed = 0
    for path in indexes:
        relative = path[len(base) + 1 :]
        indexed = ArchiveLocation.indexed_file(relative)
        partial = relative.endswith(_PARTIAL)
        if partial or (indexed is not None and f"{base}/{indexed}" not in data):
            with contextlib.suppress(FileNotFoundError):
                fs.delete_file(path)
                removed += 1
    return removed


class Index:
    """One opened index file: its record batch and its raw bytes (for document checks)."""

    def __init__(self, raw: mmap.mmap | bytes, batch: pa.RecordBatch) -> None:
        self._raw = raw
        self._bytes = np.frombuffer(raw, dtype=np.uint8)
        self._base = pa.py_buffer(raw).address
        self._rows = batch.num_rows
        records = batch.column(RECORD)
        if records.type not in (pa.binary(), pa.large_binary()) or batch.column(PLANES).type != pa.binary(BITS // 8):
            raise ValueError("not an index of this format")
        large = records.type == pa.large_binary()
        width = 8 if large else 4
        offsets = records.buffers()[1]
        self._offsets = np.frombuffer(
            offsets, dtype=np.int64 if large else np.int32, count=self._rows + 1, offset=records.offset * width
        )
        # Where the offsets of this batch's first run are in the file (for asking for their pages).
        self._offsets_at = (self._within(offsets) or 0) + records.offset * width
        self._width = width
        data = records.buffers()[2]
        self._records = 0 if data is None else data.address - self._base
        self._planes = batch.column(PLANES).buffers()[1].address - self._base
        self._statuses = pa.array(json.loads(batch.schema.metadata[b"statuses"]), pa.string())

    @property
    def rows(self) -> int:
        """Runs indexed."""
        return int(self._rows)

    def search(self, term: bytes, bits: Sequence[int]) -> pa.Table | None:
        # ``bits`` are ``term_bits(term)``: computed once per search, not once per file.
        """Key columns of the runs whose document holds ``term``; None when a scan is cheaper."""
        return search(term, bits, [self])[0]

    def _plane_spans(self, bits: Sequence[int]) -> list[tuple[int, int, int]]:
        """(first byte, end byte, shift) of the planes of ``bits``: plane ``b`` is bits ``b * n`` to ``(b + 1) * n``."""
        n = self.rows
        return [(self._planes + (b * n) // 8, self._planes + ((b + 1) * n + 7) // 8, (b * n) % 8) for b in bits]

    def _candidates(self, spans: Sequence[tuple[int, int, int]]) -> npt.NDArray[np.int64] | None:
        """Runs whose signature has all the planes' bits, or None when they are too many to check one by one."""
        n = self.rows
        found = (1 << n) - 1
        for a, z, shift in spans:
            found &= int.from_bytes(self._raw[a:z], "little") >> shift
            if not found:
                break
        if found.bit_count() > max(DENSE * n, _DENSE_FLOOR):
            return None
        packed = np.frombuffer(found.to_bytes((n + 7) // 8, "little"), dtype=np.uint8)
        return np.flatnonzero(np.unpackbits(packed, bitorder="little")[:n])

    def _offset_ranges(self, candidates: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        at = self._offsets_at + candidates * self._width
        return at, at + 2 * self._width

    def _record_ranges(self, candidates: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        starts = self._offsets[candidates].astype(np.int64) + self._records
        return starts, self._offsets[candidates + 1].astype(np.int64) + self._records

    def _hits(self, term: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> pa.Table:
        find = self._raw.find
        checked = zip(starts.tolist(), ends.tolist(), strict=True)
        return self._keys(np.array([a for a, z in checked if find(term, a + KEY_BYTES, z) >= 0], dtype=np.int64))

    def _keys(self, starts: npt.NDArray[np.int64]) -> pa.Table:
        """The key columns of the records starting at ``starts`` (plain strings, as a scan's rows)."""
        n = len(starts)
        keys = self._bytes[starts[:, None] + np.arange(KEY_BYTES)] if n else np.zeros((0, KEY_BYTES), np.uint8)
        text_offsets = pa.py_buffer(np.arange(0, (n + 1) * _TEXT, _TEXT, dtype=np.int32))

        def text(at: int, valid: npt.NDArray[np.bool_] | None = None) -> pa.Array:
            mask = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
            values = pa.py_buffer(uuid_text.to_text(keys[:, at : at + _UUID]))
            return pa.Array.from_buffers(pa.string(), n, [mask, text_offsets, values])

        def int64(at: int) -> npt.NDArray[np.int64]:
            return np.ascontiguousarray(keys[:, at : at + 8]).view("<i8").reshape(n)

        return pa.table(
            {
                "id": text(_ID),
                "revision": pa.array(int64(_REVISION), pa.int64()),
                "started_at": pa.array(int64(_STARTED), pa.int64()).cast(TS),
                "flow_id": text(_FLOW),
                "status": self._statuses.take(pa.array(keys[:, _STATUS])),
                "source_run_id": text(_SOURCE, keys[:, _HAS_SOURCE].astype(bool)),
            }
        )

    def _within(self, buffer: pa.Buffer | None) -> int | None:
        """Where ``buffer`` starts in the mapped file; None when it is not there (empty, or not mapped)."""
        if buffer is None or buffer.size == 0:
            return None
        start = int(buffer.address - self._base)
        return start if start >= 0 and start + buffer.size <= len(self._raw) else None

    def _will_need(self, starts: npt.NDArray[Any], ends: npt.NDArray[Any]) -> None:
        """Ask the kernel for the pages of byte ranges ``[starts, ends)`` of the file, all at once.

        On a cold page cache the disk then reads them in parallel; touched one by one, each
        would be a fault waiting for its own read. On a warm cache this costs microseconds.
        """
        if len(starts) == 0 or not isinstance(self._raw, mmap.mmap):
            return
        first = np.asarray(starts, dtype=np.int64) // _PAGE
        last = (np.maximum(np.asarray(ends, dtype=np.int64), np.asarray(starts, dtype=np.int64) + 1) - 1) // _PAGE
        order = np.argsort(first, kind="stable")
        first, last = first[order], np.maximum.accumulate(last[order])
        # Runs of pages: a new run starts where the next range begins beyond the last page so far plus the gap.
        breaks = np.flatnonzero(first[1:] > last[:-1] + _GAP) + 1
        run_first = first[np.concatenate(([0], breaks))]
        run_last = last[np.concatenate((breaks - 1, [len(last) - 1]))]
        size = len(self._raw)
        for a, z in zip((run_first * _PAGE).tolist(), ((run_last + 1) * _PAGE).tolist(), strict=True):
            if 0 <= a < size:
                with contextlib.suppress(OSError, ValueError):  # advice only: a refusal changes no answer
                    self._raw.madvise(mmap.MADV_WILLNEED, a, min(z, size) - a)


def search(term: bytes, bits: Sequence[int], indexes: Sequence[Index]) -> list[pa.Table | None]:
    """Each index's hits for ``term`` (as ``Index.search``), the files' reads done in rounds.

    Each round asks for the pages of every file at once, then reads them: the planes,
    then the candidates' record offsets, then the records. Done file after file, each
    file's three rounds would wait for the disk in turn.
    """
    spans = [index._plane_spans(bits) for index in indexes]
    for index, spanned in zip(indexes, spans, strict=True):
        index._will_need(np.array([a for a, _, _ in spanned]), np.array([z for _, z, _ in spanned]))
    candidates = [index._candidates(spanned) for index, spanned in zip(indexes, spans, strict=True)]
    for index, found in zip(indexes, candidates, strict=True):
        if found is not None:
            index._will_need(*index._offset_ranges(found))
    ranges = [
        None if found is None else index._record_ranges(found) for index, found in zip(indexes, candidates, strict=True)
    ]
    for index, span in zip(indexes, ranges, strict=True):
        if span is not None:
            index._will_need(*span)
    return [None if span is None else index._hits(term, *span) for index, span in zip(indexes, ranges, strict=True)]


def _plain_type(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(pa.string()) if pa.types.is_string_view(column.type) else column


def open_index(location: ArchiveLocation, file: DataFile) -> Index | None:
    """The index of ``file`` if it is there, readable and made for exactly this file; else None."""
    fs, base = location.filesystem()
    path = f"{base}/{location.search_index_path(file.path)}"
    raw: mmap.mmap | bytes
    try:
        if location.is_local:
            with open(path, "rb") as handle:
                raw = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            # Random access: no read-ahead around each page touched (``Index._will_need`` asks for what is read).
            raw.madvise(mmap.MADV_RANDOM)
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
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None


def local_path(location: ArchiveLocation, file: DataFile) -> str:
    """Where ``file``'s index is on this machine (local archives only)."""
    return os.path.join(location.table_uri, location.search_index_path(file.path))
