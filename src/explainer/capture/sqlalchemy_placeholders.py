"""Put a logged statement in PostgreSQL's ``$n`` form and bind its logged values.

psycopg2 and psycopg 3 log ``%(name)s`` / ``%s`` placeholders (``%%`` for ``%``), asyncpg
``$1``; the replay prepares statements with ``$n`` parameters, as psycopg 3 and asyncpg
send them. This module numbers the placeholders, splits ``executemany()`` parameters
into one set per execution, and binds each set to ``$1``, ``$2``... as PostgreSQL text.
It is separate from the reader because it works on one statement and its parsed
parameters (:mod:`explainer.capture.sqlalchemy_params`), whatever log they came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from explainer.capture.sqlalchemy_params import (
    _MAX_PARAMETERS,
    _MISSING_VALUE,
    LoggedDict,
    LoggedSeq,
    ParameterSet,
    Unknown,
    _HiddenSets,
    _Missing,
    _Unreadable,
    pg_text,
)

# -- placeholders ---------------------------------------------------------------------

_PERCENT = re.compile(r"%%|%\((?P<name>[^()]*)\)[sbt]|%[sbt]")
_DOLLAR = re.compile(r"(?<![\w$])\$([1-9]\d{0,4})\b")


@dataclass(frozen=True, slots=True)
class Placeholders:
    """A statement in ``$n`` form and what each ``$n`` is bound to."""

    sql: str
    slots: tuple[str | int, ...]
    """For ``$1``, ``$2``...: a name in a dict set, or an index in a positional set."""


# -- statements -----------------------------------------------------------------------


def to_dollar_placeholders(sql: str, parameters: ParameterSet | None) -> Placeholders:
    """The statement in PostgreSQL ``$n`` form, and what each ``$n`` takes.

    psycopg2 and psycopg 3 substitute ``%(name)s``, ``%s`` and ``%%`` wherever they are,
    quotes included (SQLAlchemy doubles a literal ``%``), so the whole text is scanned.
    Which style a statement uses is read from the text and the logged values: a dict
    means named placeholders (and ``%%`` escapes even with no placeholder, as with
    ``{}``); a tuple with ``$n`` in the text means asyncpg's numeric style.
    """
    named_values = isinstance(parameters, LoggedDict) or (
        isinstance(parameters, LoggedSeq)
        and any(isinstance(i, LoggedDict) for i in parameters.items)
    )
    dollar = [n for n in map(int, _DOLLAR.findall(sql)) if n <= _MAX_PARAMETERS]
    percent = any(m.group() != "%%" for m in _PERCENT.finditer(sql))
    if named_values or (percent and not (dollar and isinstance(parameters, LoggedSeq))):
        return _from_percent(sql)
    return Placeholders(sql, tuple(range(max(dollar, default=0))))


def _from_percent(sql: str) -> Placeholders:
    parts: list[str] = []
    slots: list[str | int] = []
    numbers: dict[str, int] = {}
    positional = 0
    position = 0
    for match in _PERCENT.finditer(sql):
        parts.append(sql[position : match.start()])
        position = match.end()
        if match.group() == "%%":
            parts.append("%")
            continue
        name = match["name"]
        if name is None:
            slots.append(positional)
            positional += 1
            parts.append(f"${len(slots)}")
            continue
        number = numbers.get(name)
        if number is None:
            slots.append(name)
            number = numbers[name] = len(slots)
        parts.append(f"${number}")
    parts.append(sql[position:])
    return Placeholders("".join(parts), tuple(slots))


def parameter_sets(
    parameters: ParameterSet, placeholders: Placeholders
) -> tuple[list[ParameterSet], int]:
    """The sets of one execution each, and how many more SQLAlchemy did not display.

    A list or tuple of dicts is ``executemany()``. A sequence of sequences is too when
    it is a list (a single positional set is logged as a tuple) or when its members, not
    itself, have one value per placeholder; a tuple of arrays for a one-placeholder
    statement stays one set.
    """
    if isinstance(parameters, LoggedDict):
        return [parameters], 0
    items = parameters.items
    hidden = sum(item.count for item in items if isinstance(item, _HiddenSets))
    shown = [item for item in items if not isinstance(item, _HiddenSets)]
    sets = [item for item in shown if isinstance(item, LoggedSeq | LoggedDict)]
    if hidden or (shown and all(isinstance(item, LoggedDict) for item in shown)):
        return sets, hidden
    if shown and len(sets) == len(shown) and all(isinstance(item, LoggedSeq) for item in shown):
        count = len(placeholders.slots)
        if parameters.bracket == "[" or (
            count != len(shown) and all(len(item.items) == count for item in sets)
        ):
            return sets, 0
    return [parameters], 0


def bind(
    placeholders: Placeholders, parameters: ParameterSet
) -> tuple[tuple[str | None, ...], bool]:
    """The text of ``$1``, ``$2``... from one set, and whether all of it is as executed."""
    values: list[str | None] = []
    complete = True
    for slot in placeholders.slots:
        value: object = _MISSING_VALUE
        if isinstance(slot, str) and isinstance(parameters, LoggedDict):
            value = parameters.items.get(slot, _MISSING_VALUE)
        elif (
            isinstance(slot, int)
            and isinstance(parameters, LoggedSeq)
            and slot < len(parameters.items)
        ):
            value = parameters.items[slot]
        text, known = _value_text(value)
        values.append(text)
        complete = complete and known
    if isinstance(parameters, LoggedSeq) and len(parameters.items) != len(placeholders.slots):
        complete = False
    return tuple(values), complete


def _value_text(value: object) -> tuple[str | None, bool]:
    if isinstance(value, _Missing):
        return None, False
    try:
        return pg_text(value), True
    except (_Unreadable, RecursionError):
        if isinstance(value, Unknown):
            return value.text, False
        if isinstance(value, LoggedSeq | LoggedDict):
            return value.raw, False
        return repr(value), False


def _confirms(sql: str, parameters: ParameterSet | None) -> bool | None:
    """Whether a rebuilt statement's placeholders are exactly the logged parameters."""
    if parameters is None:
        return None
    placeholders = to_dollar_placeholders(sql, parameters)
    sets, hidden = parameter_sets(parameters, placeholders)
    if hidden or len(sets) != 1:
        return None
    values = sets[0]
    if isinstance(values, LoggedDict):
        if values.missing:
            return None
        return set(placeholders.slots) == set(values.items)
    if any(isinstance(item, _Missing) for item in values.items):
        return None
    return placeholders.slots == tuple(range(len(values.items)))
