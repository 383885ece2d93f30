"""Durations written the way operators type them: ``7d``, ``12h``, ``30m``, ``1h30m``.

Used by ``flowrun prune --older-than`` and anything else that takes a retention
period or an interval from a command line or a settings file. A bare number is
a count of seconds. Units: ``w`` weeks, ``d`` days, ``h`` hours, ``m`` minutes,
``s`` seconds; parts may be combined from the largest unit down.
"""

from __future__ import annotations

import re
from datetime import timedelta

from oltp.errors import InvalidArgument

_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[wdhms])+")


def parse_duration(text: str) -> timedelta:
    """Parse ``7d``, ``12h``, ``30m``, ``45s``, ``2w``, ``1d12h`` or a bare number of seconds."""
    if not isinstance(text, str):
        raise InvalidArgument(f"a duration must be a string like '7d', got {type(text).__name__}")
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        value += "s"
    if not _WHOLE.fullmatch(value):
        raise InvalidArgument(
            f"invalid duration {text!r}: use a number and a unit (w, d, h, m, s), e.g. '7d', '12h', '1h30m'"
        )
    units = [unit for _, unit in _PART.findall(value)]
    order = list(_UNITS)
    if [order.index(u) for u in units] != sorted({order.index(u) for u in units}):
        raise InvalidArgument(f"invalid duration {text!r}: give each unit once, largest first (e.g. '1d12h')")
    try:
        return sum(
            (timedelta(**{_UNITS[unit]: float(amount)}) for amount, unit in _PART.findall(value)),
            timedelta(),
        )
    except OverflowError:
        raise InvalidArgument(f"invalid duration {text!r}: longer than {timedelta.max.days} days") from None


def retention(value: object, name: str = "older_than") -> timedelta:
    """A non-negative retention period: a ``timedelta`` or a duration string."""
    if isinstance(value, str):
        value = parse_duration(value)
    if not isinstance(value, timedelta):
        raise InvalidArgument(f"{name} must be a timedelta or a duration like '7d', got {type(value).__name__}")
    if value < timedelta(0):
        raise InvalidArgument(f"{name} must not be negative, got {value}")
    return value
