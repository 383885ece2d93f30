"""Plain-JSON views of what the store returns, for ``--json`` output.

Records, NamedTuple reports, polars rows and the scalar types inside them
(UUIDs, aware datetimes, enums, decimals, durations) become dicts, lists,
strings and numbers that ``json.dumps`` writes without a custom encoder, so a
script reading the CLI's output never has to know our Python types.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any


def jsonable(value: Any) -> Any:
    """Convert ``value`` recursively into JSON-ready builtins."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, float):
        # Strict JSON has no NaN or Infinity; a missing percentile is null.
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {key: jsonable(item) for key, item in value._asdict().items()}
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [jsonable(item) for item in items]
    raise TypeError(f"cannot represent {type(value).__name__} as JSON")


def dumps(value: Any, indent: int | None = 2) -> str:
    """``value`` as strict JSON text (on one line with ``indent=None``)."""
    return json.dumps(jsonable(value), indent=indent, allow_nan=False, ensure_ascii=False)
