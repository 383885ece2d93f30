"""UUIDs between their 16 bytes and their canonical text (8-4-4-4-12 lower-case hex digits), a column at a time.

The archive holds ids as this text (``sync.archive_rows`` writes it from the bytes PostgreSQL
returns); a search index stores their 16 bytes and gives them back as the same text
(``sync.search_index``). Both directions work on NumPy arrays of whole columns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

OCTETS = 16
TEXT = 36
_HYPHENS = (8, 13, 18, 23)
# Where the 32 hex digits go among the 36 characters (the rest are hyphens).
_DIGITS = np.array([i for i in range(TEXT) if i not in _HYPHENS])
_PAIRS = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2").view(np.uint16)  # byte -> its 2 digits
_VALUE = np.full(256, -1, dtype=np.int16)  # hex digit -> its value; -1 for any other byte
_VALUE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16)
_VALUE[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16)


def to_text(octets: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """``(n, 36)`` canonical text of ``(n, 16)`` UUID bytes."""
    text = np.full((len(octets), TEXT), ord("-"), dtype=np.uint8)
    text[:, _DIGITS] = _PAIRS[octets].view(np.uint8).reshape(len(octets), 2 * OCTETS)
    return text


def to_octets(text: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8] | None:
    """``(n, 16)`` bytes of ``(n, 36)`` UUID text; None when a row is not hyphenated hex digits."""
    digits = _VALUE[text[:, _DIGITS]]
    if (digits < 0).any() or (text[:, list(_HYPHENS)] != ord("-")).any():
        return None
    return ((digits[:, 0::2] << 4) | digits[:, 1::2]).astype(np.uint8)
