"""Values as the in-app capture (:mod:`explainer.capture.hook`) writes them.

A record must be replayable by explainer, so each bound value is written as the text
PostgreSQL reads for it (the form the echo-log reader gives the same values, through
:func:`~explainer.capture.sqlalchemy_params.pg_text`), and never makes the capture fail:
a type nothing knows gets its natural text. These functions run on the capture's writer
thread, off the application's statement path, once per record; the JSON is written by
hand and the timestamps formatted once per second because that is where the capture
spends its time.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from explainer.capture.sqlalchemy_params import pg_text

__all__ = ["encode", "error_text", "parameters_json", "quote", "timestamp", "value_text"]

encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, built once
"""A dict as compact JSON text (headers and pool records)."""

# The C function json.dumps itself uses for str.
quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""A JSON string literal, quotes included."""


def value_text(value: object) -> str | None:
    """A bound value as the text PostgreSQL reads for it (None is NULL).

    The common types are converted here or by :func:`pg_text` (the form the echo-log
    reader gives the same values); anything else (JSON wrappers, ranges, enums, a driver's
    own types) gets its natural text, so a record is always written.
    """
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is int:
        return str(value)
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return _array_text(value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    try:
        return pg_text(value)
    except Exception:  # pg_text's "no form fits", whatever it raises
        return _other_text(value)


def _array_text(items: Sequence[object]) -> str:
    parts: list[str] = []
    for item in items:
        if isinstance(item, list | tuple):
            parts.append(_array_text(item))
            continue
        text = value_text(item)
        if text is None:
            parts.append("NULL")
        else:
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def _other_text(value: object) -> str | None:
    if isinstance(value, enum.Enum):
        return value_text(value.value)
    if isinstance(value, memoryview):
        return "\\x" + value.tobytes().hex()
    wrapped = getattr(value, "obj", _NOTHING)  # psycopg's Json / Jsonb
    if wrapped is not _NOTHING:
        return json.dumps(wrapped, default=str)
    if hasattr(value, "lower") and hasattr(value, "upper") and hasattr(value, "bounds"):
        return _range_text(value)
    return str(value)


_NOTHING = object()


def _range_text(value: Any) -> str:
    """SQLAlchemy's and psycopg's ``Range``: ``[lower,upper)`` or ``empty``."""
    if getattr(value, "empty", False) or getattr(value, "isempty", False):
        return "empty"
    bounds = str(value.bounds or "[)")

    def bound(item: object) -> str:
        text = value_text(item)
        return "" if text is None else '"' + text.replace('"', '\\"') + '"'

    return f"{bounds[0]}{bound(value.lower)},{bound(value.upper)}{bounds[-1]}"


def parameters_json(parameters: object, many: bool, redact: bool) -> str:
    """The parameters as JSON text: an object, an array, a list of those, or null.

    With ``redact`` the names (or positions) are kept and every value is null."""
    if not parameters:
        return "null"
    if many and isinstance(parameters, list | tuple):
        return "[" + ",".join([_parameter_set(one, redact) for one in parameters]) + "]"
    return _parameter_set(parameters, redact)


def _parameter_set(parameters: object, redact: bool) -> str:
    if isinstance(parameters, dict | Mapping):  # dict first: the usual case, and fast
        items = []
        for name, value in parameters.items():
            text = None if redact else value_text(value)
            items.append(f"{quote(str(name))}:{'null' if text is None else quote(text)}")
        return "{" + ",".join(items) + "}"
    if isinstance(parameters, list | tuple):
        texts = [None if redact else value_text(value) for value in parameters]
        return "[" + ",".join(["null" if t is None else quote(t) for t in texts]) + "]"
    return "null"


def error_text(error: BaseException | None) -> str:
    """An exception as one line: its type and the first line of its message."""
    if error is None:
        return "unknown error"
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0]}" if first else type(error).__name__


# The last second formatted and its text, swapped as one tuple (threads share it).
_second: list[tuple[int, str]] = [(-1, "")]


def timestamp(wall: float) -> str:
    """ISO-8601 UTC with microseconds (``datetime.isoformat``'s form), formatting the
    date and time once per second: a third of the cost of a ``datetime`` per record."""
    second = int(wall)
    micro = round((wall - second) * 1e6)  # rounded as datetime.fromtimestamp rounds
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    cached = _second[0]
    if cached[0] != second:
        cached = _second[0] = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{micro:06d}+00:00"
