"""Argument checks shared by every store implementation.

Every public method validates its arguments here *before* touching storage, so
a bad argument raises its ``InvalidArgument`` subclass even for an unknown run
and a rejected call never writes anything. Both the PostgreSQL store and the
in-memory reference store call the same functions, which keeps their error
behaviour identical by construction.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from oltp.errors import InvalidArgument, InvalidJson, InvalidPaging, InvalidStatus, NaiveDatetime
from oltp.records import RunStatus, StepStatus

MAX_TAKE = 1000
# Step keys are part of primary keys, and a PostgreSQL btree entry holds at most ~2,700
# bytes: 512 characters are at most 2,048 bytes of UTF-8, with room for the run id.
MAX_STEP_KEY = 512

E = TypeVar("E", RunStatus, StepStatus)


def run_id(value: object, name: str = "run_id") -> uuid.UUID:
    """Return ``value`` as a UUID; strings in any form ``uuid.UUID`` accepts are allowed."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidArgument(f"{name} must be a UUID, got {value!r}")


def optional_uuid(value: object, name: str) -> uuid.UUID | None:
    """Like ``run_id`` but None passes through."""
    return None if value is None else run_id(value, name)


def text(value: object, name: str) -> str:
    """A required, non-empty string PostgreSQL can store (no NUL characters)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string, got {type(value).__name__}")
    if value == "":
        raise InvalidArgument(f"{name} must not be empty")
    return _storable(value, name)


def path_text(value: object, name: str) -> str:
    """A path or URI given as ``str`` or ``os.PathLike[str]``, as non-blank text."""
    # os.fspath raises TypeError for anything else (an int, bytes, None): callers promise InvalidArgument.
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(f"{name} must be a path or URI, got {value!r}")
    return text


def string_mapping(value: object, name: str) -> dict[str, str]:
    """A mapping of text to text (storage options), copied."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidArgument(f"{name} must map strings to strings, got {value!r}")
    return dict(value)


def step_key(value: object) -> str:
    """A step key: non-empty text of at most ``MAX_STEP_KEY`` characters."""
    key = text(value, "step_key")
    if len(key) > MAX_STEP_KEY:
        raise InvalidArgument(f"step_key must be at most {MAX_STEP_KEY} characters, got {len(key)}")
    return key


def optional_text(value: object, name: str) -> str | None:
    """An optional string; the empty string is kept as given."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string or None, got {type(value).__name__}")
    return _storable(value, name)


def _storable(value: str, name: str) -> str:
    # PostgreSQL text cannot hold U+0000; refusing it here keeps both stores equal.
    if "\x00" in value:
        raise InvalidArgument(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(f"{name} is not valid Unicode text (lone surrogate)") from exc
    return value


def _reject_constant(token: str) -> NoReturn:
    raise ValueError(f"{token} is not valid JSON")


def json_text(value: object, name: str) -> str | None:
    """Strict JSON text or None; returned unchanged so it is stored byte for byte."""
    checked = optional_text(value, name)
    if checked is None:
        return None
    try:
        json.loads(checked, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidJson(f"{name} is not valid JSON: {exc}") from exc
    except RecursionError:
        # Deeper than Python's parser goes (say 100,000 nested arrays): not a document anyone reads back.
        raise InvalidJson(f"{name} is nested too deeply to be read back") from None
    return checked


def run_status(value: object, *, terminal: bool = False, case_insensitive: bool = True) -> RunStatus:
    """Parse a run status, in any letter case; ``terminal`` rejects Running.

    ``case_insensitive`` is kept for callers written when only filters folded case; it changes nothing.
    """
    status = _parse_enum(RunStatus, value)
    if terminal and not status.is_terminal:
        allowed = ", ".join(s.value for s in RunStatus if s.is_terminal)
        raise InvalidStatus(f"a run can only be completed with a terminal status ({allowed}), got {value!r}")
    return status


def step_status(value: object) -> StepStatus:
    """Parse a step status, in any letter case."""
    return _parse_enum(StepStatus, value)


def _parse_enum(kind: type[E], value: object) -> E:
    # Statuses are accepted in any letter case and always stored in their canonical
    # spelling, so filters, writes and reads agree ("failed" is Failed everywhere).
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        folded = value.lower()
        for member in kind:
            if folded == member.value.lower():
                return member
    allowed = ", ".join(m.value for m in kind)
    raise InvalidStatus(f"invalid {kind.__name__} {value!r}; expected one of {allowed}")


def aware_utc(value: object, name: str) -> datetime:
    """An aware datetime converted to UTC; naive datetimes are refused."""
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetime(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


# skip + take must stay a 64-bit integer in PostgreSQL and DuckDB (OFFSET/LIMIT are bigint).
MAX_SKIP = 2**62


def paging(skip: object, take: object) -> tuple[int, int]:
    """Check ``0 <= skip <= 2**62`` and ``1 <= take <= 1000``."""
    if not _is_int(skip) or not 0 <= skip <= MAX_SKIP:  # type: ignore[operator]
        raise InvalidPaging(f"skip must be an integer from 0 to {MAX_SKIP}, got {skip!r}")
    if not _is_int(take) or not 1 <= take <= MAX_TAKE:  # type: ignore[operator]
        raise InvalidPaging(f"take must be an integer between 1 and {MAX_TAKE}, got {take!r}")
    return int(skip), int(take)  # type: ignore[call-overload]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
