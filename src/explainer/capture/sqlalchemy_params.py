"""Read the parameters SQLAlchemy logs: a Python ``repr``, made PostgreSQL input text.

SQLAlchemy logs what the driver got as the ``repr`` of a dict, a tuple or a list of those,
cut short where values or sets are long. The replay needs each value as the text
PostgreSQL reads for a ``$n`` parameter (``datetime.date(2026, 1, 2)`` -> ``2026-01-02``),
so this module reads such a repr without running it: the structure is split on
top-level commas, each value goes through :func:`ast.parse` and is evaluated only if it
is a literal or a call of an allow-listed constructor (``datetime``, ``Decimal``,
``UUID``...), and :func:`pg_text` writes it out. What it cannot read stays
:class:`Unknown`, with its logged text. It lives apart from the reader because it knows
nothing of log records, only of reprs and values.
"""

from __future__ import annotations

import ast
import datetime
import decimal
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

# PostgreSQL numbers parameters $1 to $65535 (a Bind message's count is 16 bits): a
# bigger number is no parameter, and no count of values can exceed it.
_MAX_PARAMETERS = 65535

# -- truncation markers ---------------------------------------------------------------

_VALUE_CUT = re.compile(r" \.\.\. \((\d{1,9}) characters truncated\) \.\.\. ")
_VALUE_HALF = 150  # sqlalchemy.sql.util._repr_base.trunc: max_chars (300) // 2
_PARAMS_CUT = re.compile(r" \.\.\. (\d{1,9}) parameters truncated \.\.\. ")
# (?<!\s): tried once per run of spaces, not from each space (quadratic on long runs).
_SETS_CUT = re.compile(
    r"(?<!\s)\s*\.\.\. displaying (\d{1,9}) of (\d{1,9}) total bound parameter sets \.\.\.\s*"
)

# Python reprs, token by token: quoted strings whole, brackets and separators alone.
_REPR_TOKEN = re.compile(
    r"""[bBrRuU]{0,2}'(?:[^'\\]|\\.)*'|[bBrRuU]{0,2}"(?:[^"\\]|\\.)*"|[()\[\]{},:]"""
    r"""|[^'"()\[\]{},:]+|['"]""",
    re.DOTALL,
)


# -- parameter reprs ------------------------------------------------------------------


class _Unreadable(Exception):
    """A repr (or part of one) this module does not read."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """A value the log does not show whole, or shows in a repr this module cannot read."""

    text: str


@dataclass(frozen=True, slots=True)
class _Missing:
    """Values SQLAlchemy left out of a long parameter set (``... N parameters truncated``)."""

    count: int


@dataclass(frozen=True, slots=True)
class _HiddenSets:
    """``executemany()`` sets SQLAlchemy left out of the display."""

    count: int


@dataclass(slots=True)
class LoggedSeq:
    """A logged tuple or list: a positional parameter set, several sets, or an array value."""

    items: list[object]
    bracket: str
    raw: str


@dataclass(slots=True)
class LoggedDict:
    """A logged dict: a named parameter set (or a dict value, which is not replayable)."""

    items: dict[str, object]
    raw: str
    missing: int = 0


ParameterSet = LoggedSeq | LoggedDict


_MISSING_VALUE = _Missing(1)
_MAX_DEPTH = 32  # sets in a list, values in a set, arrays of arrays: a few levels


def parse_parameters(text: str) -> ParameterSet | None:
    """Read a logged parameters repr; None when its structure cannot be read.

    Truncation markers are first replaced by names the item parser knows (a cut value's
    repr spans exactly 150 characters each side of its marker, so it is cut out whole),
    then the structure is split on top-level commas and each value read on its own, so
    one odd value costs only itself.
    """
    try:
        marked, gaps = _mark_gaps(text.strip())
        top = _parse_value(marked, gaps, strict=True)
    except (_Unreadable, RecursionError, MemoryError):
        return None
    if isinstance(top, LoggedSeq | LoggedDict):
        return top
    return None


def _mark_gaps(text: str) -> tuple[str, dict[str, object]]:
    """Replace SQLAlchemy's truncation markers by names standing for what they hide.

    The markers break the repr's syntax (a cut value may end mid-escape or mid-string),
    so they go before the structure is split; each name maps to what the item parser
    returns in its place.
    """
    gaps: dict[str, object] = {}
    cuts = list(_VALUE_CUT.finditer(text))
    for index, match in reversed(list(enumerate(cuts))):
        start, end = match.start() - _VALUE_HALF, match.end() + _VALUE_HALF
        if start < 0 or end > len(text):
            raise _Unreadable
        before, after = text[:start], text[end:]
        if not before.endswith(("(", "[", "{", ", ", ": ")) or after[:1] not in ("", *",)]}"):
            raise _Unreadable
        name = f"__explainer_cut_{index}__"
        gaps[name] = Unknown(text[start:end])
        text = before + name + after
    sets = _SETS_CUT.search(text)
    if sets is not None:
        gaps["__explainer_sets__"] = _HiddenSets(max(int(sets[2]) - int(sets[1]), 0))
        text = text[: sets.start()] + ", __explainer_sets__, " + text[sets.end() :]

    def missing(match: re.Match[str]) -> str:
        count = int(match[1])
        if count > _MAX_PARAMETERS:
            raise _Unreadable
        name = f"__explainer_missing_{len(gaps)}__"
        gaps[name] = _Missing(count)
        return f", {name}, "

    return _PARAMS_CUT.sub(missing, text), gaps


def _parse_value(
    text: str, gaps: dict[str, object], *, strict: bool = False, depth: int = 0
) -> object:
    item = text.strip()
    if item in gaps:
        return gaps[item]
    try:
        if depth > _MAX_DEPTH:
            raise _Unreadable  # each level rescans its text: keep the cost linear
        if item[:1] == "{" and item[-1:] == "}":
            return _parse_mapping(item, gaps, depth + 1)
        if (item[:1], item[-1:]) in (("(", ")"), ("[", "]")):
            return _parse_seq(item, gaps, depth + 1)
    except _Unreadable:
        if strict:
            raise
        return Unknown(item)
    if strict:
        raise _Unreadable
    return _atom(item)


def _parse_seq(text: str, gaps: dict[str, object], depth: int) -> LoggedSeq:
    items: list[object] = []
    for piece in _split_top_level(text[1:-1], ","):
        value = _parse_value(piece, gaps, depth=depth)
        if isinstance(value, _Missing):
            items.extend([_MISSING_VALUE] * value.count)
        else:
            items.append(value)
    return LoggedSeq(items, text[0], text)


def _parse_mapping(text: str, gaps: dict[str, object], depth: int) -> LoggedDict:
    mapping = LoggedDict({}, text)
    for piece in _split_top_level(text[1:-1], ","):
        gap = gaps.get(piece.strip())
        if isinstance(gap, _Missing):
            mapping.missing += gap.count
            continue
        colon = _split_top_level(piece, ":", limit=1)
        if len(colon) != 2:
            raise _Unreadable
        key = _atom(colon[0].strip())
        if not isinstance(key, str):
            raise _Unreadable
        mapping.items[key] = _parse_value(colon[1], gaps, depth=depth)
    return mapping


def _split_top_level(text: str, separator: str, limit: int | None = None) -> list[str]:
    """Split at ``separator`` outside brackets and quotes; a trailing empty piece goes."""
    pieces: list[str] = []
    depth = 0
    start = 0
    for match in _REPR_TOKEN.finditer(text):
        token = match.group()
        if token in ("'", '"'):
            raise _Unreadable  # an unterminated string
        if token in ("(", "[", "{"):
            depth += 1
        elif token in (")", "]", "}"):
            depth -= 1
            if depth < 0:
                raise _Unreadable
        elif token == separator and depth == 0 and (limit is None or len(pieces) < limit):
            pieces.append(text[start : match.start()])
            start = match.end()
    if depth:
        raise _Unreadable
    last = text[start:]
    if last.strip() or (pieces and separator != ","):
        pieces.append(last)
    return [piece.strip() for piece in pieces] if separator == "," else pieces


# -- single values --------------------------------------------------------------------


class _Zone(datetime.tzinfo):
    """``zoneinfo.ZoneInfo(key=...)`` as logged: PostgreSQL reads the zone name itself, so
    no time zone database is consulted here."""

    def __init__(self, key: str) -> None:
        if not isinstance(key, str):
            raise _Unreadable
        self.key = key

    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta | None:
        return None

    def dst(self, dt: datetime.datetime | None) -> datetime.timedelta | None:
        return None

    def tzname(self, dt: datetime.datetime | None) -> str | None:
        return self.key


@dataclass(frozen=True, slots=True)
class _Json:
    """psycopg 3's ``Json(...)`` / ``Jsonb(...)`` wrappers."""

    value: object


@dataclass(frozen=True, slots=True)
class _Range:
    """A range: SQLAlchemy's ``Range(lower=, upper=, bounds=, empty=)`` and psycopg 3's."""

    lower: object = None
    upper: object = None
    bounds: str = "[)"
    empty: bool = False


def _bytearray(value: object) -> bytearray:
    if not isinstance(value, bytes):  # bytearray(10**12) would allocate, not parse
        raise _Unreadable
    return bytearray(value)


_CONSTRUCTORS: dict[str, Callable[..., object]] = {
    "datetime.datetime": datetime.datetime,
    "datetime.date": datetime.date,
    "datetime.time": datetime.time,
    "datetime.timedelta": datetime.timedelta,
    "datetime.timezone": datetime.timezone,
    "Decimal": decimal.Decimal,
    "decimal.Decimal": decimal.Decimal,
    "UUID": uuid.UUID,
    "uuid.UUID": uuid.UUID,
    "IPv4Address": ipaddress.IPv4Address,
    "IPv6Address": ipaddress.IPv6Address,
    "IPv4Network": ipaddress.IPv4Network,
    "IPv6Network": ipaddress.IPv6Network,
    "IPv4Interface": ipaddress.IPv4Interface,
    "IPv6Interface": ipaddress.IPv6Interface,
    "bytearray": _bytearray,
    "zoneinfo.ZoneInfo": _Zone,
    "ZoneInfo": _Zone,
    "Json": _Json,
    "Jsonb": _Json,
    "Range": _Range,
}
_CONSTANTS: dict[str, object] = {
    "datetime.timezone.utc": datetime.UTC,
    "inf": math.inf,
    "nan": math.nan,
}


def _atom(text: str) -> object:
    """One scalar repr as a value, or :class:`Unknown` keeping the text as logged."""
    try:
        value = _evaluate(ast.parse(text, mode="eval").body)
        pg_text(value)  # only values that convert are values
    except (
        _Unreadable,
        SyntaxError,
        ValueError,
        TypeError,
        ArithmeticError,
        RecursionError,
        MemoryError,
    ):
        return Unknown(text)
    return value


def _evaluate(node: ast.expr) -> object:
    """Literals and allow-listed constructors only: this is not ``eval``."""
    if isinstance(node, ast.Constant):
        if node.value is None or isinstance(node.value, str | bytes | int | float):
            return node.value
        raise _Unreadable
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _evaluate(node.operand)
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            raise _Unreadable
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Tuple | ast.List):
        return [_evaluate(element) for element in node.elts]
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise _Unreadable
        return {
            _evaluate(key): _evaluate(value)  # type: ignore[arg-type]
            for key, value in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.Name | ast.Attribute):
        name = _dotted(node)
        if name not in _CONSTANTS:
            raise _Unreadable
        return _CONSTANTS[name]
    if isinstance(node, ast.Call):
        constructor = _CONSTRUCTORS.get(_dotted(node.func))
        if constructor is None or any(k.arg is None for k in node.keywords):
            raise _Unreadable
        args = [_evaluate(arg) for arg in node.args]
        kwargs = {str(k.arg): _evaluate(k.value) for k in node.keywords}
        return constructor(*args, **kwargs)
    raise _Unreadable


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise _Unreadable


def pg_text(value: object) -> str | None:
    """A value as PostgreSQL input text (None is NULL); :class:`_Unreadable` if no form fits."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return "\\x" + value.hex()
    if isinstance(value, datetime.datetime):
        return _with_zone(value.replace(tzinfo=None).isoformat(sep=" "), value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return _with_zone(value.replace(tzinfo=None).isoformat(), value)
    if isinstance(value, datetime.timedelta):
        return f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(value)
    if isinstance(value, LoggedSeq):
        return _array_text(value.items)
    if isinstance(value, list | tuple):
        return _array_text(list(value))
    if isinstance(value, _Json):
        return json.dumps(_jsonable(value.value))
    if isinstance(value, _Range):
        return _range_text(value)
    raise _Unreadable  # Unknown, gaps, dicts (JSON or hstore?), anything else


def _with_zone(text: str, value: datetime.datetime | datetime.time) -> str:
    zone = value.tzinfo
    if zone is None:
        return text
    if isinstance(zone, _Zone):
        return f"{text} {zone.key}"
    offset = value.utcoffset() if isinstance(value, datetime.datetime) else zone.utcoffset(None)
    if offset is None:
        raise _Unreadable
    sign = "-" if offset < datetime.timedelta(0) else "+"
    seconds = int(abs(offset).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def _array_text(items: list[object]) -> str:
    parts: list[str] = []
    for item in items:
        if isinstance(item, LoggedSeq | list | tuple):
            parts.append(pg_text(item) or "NULL")
            continue
        text = pg_text(item)
        if text is None:
            parts.append("NULL")
        else:
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def _range_text(value: _Range) -> str:
    if value.empty:
        return "empty"
    if not isinstance(value.bounds, str) or len(value.bounds) != 2:
        raise _Unreadable

    def bound(item: object) -> str:
        text = pg_text(item)
        if text is None:
            return ""
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return f"{value.bounds[0]}{bound(value.lower)},{bound(value.upper)}{value.bounds[1]}"


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    raise _Unreadable
