"""What a text column's values really are: dates, timestamps, booleans or numbers.

The values come from ``pg_stats`` (most common values and histogram bounds: the most
frequent ones and the spread of the rest, minimum and maximum included) or from a bounded
sample. A type is suggested only when *every* value read is in its form, so one free-text
value keeps the column text. The forms are the unambiguous ones PostgreSQL casts the same
way whatever the session's settings: ISO dates and timestamps (not ``03/04/2024``, which
``DateStyle`` reads two ways), the boolean words, and numbers without leading zeros (a
``02139`` is a code that must keep its zero, not a number).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

TypeKind = Literal["date", "timestamp", "timestamptz", "boolean", "integer", "bigint", "numeric"]

#: Which lint rule each suggested type belongs to.
FAMILY: dict[TypeKind, Literal["dates", "booleans", "numbers"]] = {
    "date": "dates",
    "timestamp": "dates",
    "timestamptz": "dates",
    "boolean": "booleans",
    "integer": "numbers",
    "bigint": "numbers",
    "numeric": "numbers",
}

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(?P<zone>Z|[+-]\d{2}(:?\d{2})?)?$"
)
_INTEGER = re.compile(r"^[+-]?(0|[1-9]\d*)$")
_DECIMAL = re.compile(r"^[+-]?(0|[1-9]\d*)\.\d+$")
#: What PostgreSQL's boolean input accepts (case-insensitive), without 1 and 0: a column
#: of only 1 and 0 is called integer; mixed with the words they are booleans.
_BOOLEAN_WORDS = frozenset({"true", "false", "t", "f", "yes", "no", "y", "n", "on", "off"})
_BOOLEAN_DIGITS = frozenset({"1", "0"})
_INT4_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class TypedValues:
    """The type a column's values all have, and how many values said so."""

    type: TypeKind
    values: int
    #: A few of the values, for the message.
    examples: tuple[str, ...]


def _is_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _timestamp_zone(value: str) -> bool | None:
    """True: a timestamp with a zone; False: without; None: not an ISO timestamp."""
    match = _TIMESTAMP.match(value)
    if match is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return None
    return match.group("zone") is not None


def classify(values: Iterable[str]) -> TypedValues | None:
    """The one type every value is written in, or None (free text, mixed, or no values)."""
    seen = [v.strip() for v in values if v is not None]
    seen = [v for v in seen if v]
    if not seen:
        return None
    distinct = list(dict.fromkeys(seen))
    examples = tuple(distinct[:3])
    kind = _kind(distinct)
    return None if kind is None else TypedValues(kind, len(seen), examples)


def _kind(values: list[str]) -> TypeKind | None:
    if all(_is_date(v) for v in values):
        return "date"
    zones = [_timestamp_zone(v) if not _is_date(v) else False for v in values]
    if all(z is not None for z in zones) and any(not _is_date(v) for v in values):
        return "timestamptz" if any(zones) else "timestamp"
    lowered = {v.lower() for v in values}
    if lowered <= _BOOLEAN_WORDS | _BOOLEAN_DIGITS and lowered & _BOOLEAN_WORDS:
        return "boolean"
    if all(_INTEGER.match(v) for v in values):
        return "bigint" if any(abs(int(v)) > _INT4_MAX for v in values) else "integer"
    if all(_INTEGER.match(v) or _DECIMAL.match(v) for v in values):
        return "numeric"
    return None
