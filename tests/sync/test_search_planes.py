"""The search index's signature planes are exactly the bytes format 3 defines.

``search_index.planes`` is built for speed (blocks of runs, big-endian reads of four
bytes at once, one shifted copy per plane of a group of eight); this compares it byte
for byte with a plain reading of the format, written here from its definition: for
each chunk of 8192 runs, the documents' UTF-8 bytes back to back; each trigram and
4-gram starting in run ``i``'s bytes (even one running on into the next document of
the chunk) sets bit ``b * n + i``, ``b`` its multiplicative hash's top 10 bits.
Documents are random unicode (several bytes a character), empty or shorter than a
trigram; runs are as few as none and as many as a chunk and a bit, given as sliced
and as chunked Arrow arrays.
"""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import search_index

BITS = 1024
CHUNK = 8192  # runs whose documents' bytes form one sequence of grams
MULTIPLIERS = {3: 2654435761, 4: 0x85EBCA6B}  # trigrams, 4-grams


def gram_bit(gram: bytes) -> int:
    return (int.from_bytes(gram, "big") * MULTIPLIERS[len(gram)] % 2**32) >> 22


def reference_planes(docs: list[str]) -> bytes:
    n = len(docs)
    out = bytearray(BITS * n // 8)
    for first in range(0, n, CHUNK):
        encoded = [doc.encode() for doc in docs[first : first + CHUNK]]
        data = b"".join(encoded)
        owner = [first + i for i, doc in enumerate(encoded) for _ in doc]
        for at in range(len(data)):
            for size in (3, 4):
                if at + size <= len(data):
                    bit = gram_bit(data[at : at + size]) * n + owner[at]
                    out[bit // 8] |= 1 << (bit % 8)
    return bytes(out)


# Short documents: most grams span two documents, and many are too short for one alone.
_DOCS = st.lists(st.text(max_size=12) | st.sampled_from(["", "a", "ab", "é", "\x1f", "ümlaut\x1fstep"]), max_size=40)
# Filler documents before the drawn ones, to put them across the first chunk's end.
_FILLER = [random.Random(3).choice(["", "x", "yz", "ä", "job-17", "\x1f"]) for _ in range(CHUNK + 16)]


# No per-example deadline: an example with a full chunk of filler takes tens of milliseconds,
# more on a busy machine, and the answer does not depend on time.
@settings(deadline=None)
@given(docs=_DOCS, filler=st.sampled_from([0, 0, 0, CHUNK - 20, CHUNK - 3, CHUNK]), skip=st.integers(0, 3))
def test_planes_are_the_format_bytes(docs: list[str], filler: int, skip: int) -> None:
    runs = _FILLER[:filler] + docs
    expected = reference_planes(runs)
    # A slice (its offsets start past zero) and chunked arrays are read the same way.
    sliced = pa.array(["ignored"] * skip + runs, pa.string()).slice(skip)
    cut = len(runs) // 3
    chunked = pa.chunked_array([pa.array(runs[:cut], pa.large_string()), pa.array(runs[cut:], pa.large_string())])
    for given_docs in (sliced, chunked):
        got = search_index.planes(given_docs)
        assert got.dtype == np.uint8
        assert got.tobytes() == expected


@given(term=st.binary(max_size=20) | st.text(max_size=8).map(str.encode))
def test_term_bits_are_the_grams_of_the_term(term: bytes) -> None:
    expected = sorted({gram_bit(term[at : at + size]) for size in (3, 4) for at in range(len(term) - size + 1)})
    assert search_index.term_bits(term) == (expected if len(term) >= 3 else None)


def test_no_documents() -> None:
    assert search_index.planes(pa.chunked_array([], pa.string())).tobytes() == b""
    assert search_index.planes(pa.array([], pa.string())).tobytes() == b""
