"""SQLAlchemy code for a suggestion, in the declarative style of SQLAlchemy 2.

Until the user's models are loaded (a later capability), class names are guessed from
table names the way sqlacodegen names them: ``order_items`` -> ``OrderItem``. Two forms
are given because projects use both: an ``Index(...)`` on the mapped class's attributes
(placed after the class), and the ``__table_args__`` entry inside the class.
"""

from __future__ import annotations

import re

from explainer.advise.ddl import key_sql
from explainer.advise.model import IndexCandidate, IndexKey

_IRREGULAR = {
    "people": "person",
    "children": "child",
    "men": "man",
    "women": "woman",
    "data": "data",
    "media": "media",
    "series": "series",
    "news": "news",
}


def singular(word: str) -> str:
    """English singular of a table-name word, good enough for naming a model class."""
    lower = word.lower()
    if lower in _IRREGULAR:
        return _IRREGULAR[lower]
    for suffix, replacement in (
        ("ies", "y"),
        ("sses", "ss"),
        ("uses", "us"),
        ("xes", "x"),
        ("ches", "ch"),
        ("shes", "sh"),
    ):
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return word[: -len(suffix)] + replacement
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def class_name(table: str) -> str:
    """``order_items`` -> ``OrderItem``; ``Customer`` stays ``Customer``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", table) if w]
    if not words:
        return "Model"
    words[-1] = singular(words[-1])
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return name if name[0].isalpha() else f"T{name}"


def _options(candidate: IndexCandidate) -> list[str]:
    options = []
    if candidate.using != "btree":
        options.append(f'postgresql_using="{candidate.using}"')
    ops = {k.text: k.opclass for k in candidate.keys if k.opclass and not k.expression}
    if ops:
        pairs = ", ".join(f'"{name}": "{opclass}"' for name, opclass in ops.items())
        options.append("postgresql_ops={" + pairs + "}")
    if candidate.include:
        options.append(
            "postgresql_include=[" + ", ".join(f'"{c}"' for c in candidate.include) + "]"
        )
    if candidate.where:
        options.append(f"postgresql_where=text({candidate.where!r})")
    return options


_CALL = re.compile(r"^([a-z_][a-z0-9_]*)\((.*)\)$", re.S)
_JSON_FIELD = re.compile(r"^\(?\s*([a-z_][a-z0-9_]*)\s*(->>|->)\s*'([^']*)'\s*\)?$")
_ARG = re.compile(r"^(?:([a-z_][a-z0-9_]*)|('(?:[^']|'')*')|(-?\d+(?:\.\d+)?))$")


def _expression_code(model: str, text: str) -> str | None:
    """SQLAlchemy code for the common expression keys, None for the others.

    ``lower(email)`` -> ``func.lower(User.email)``; ``date_trunc('day', created_at)`` ->
    ``func.date_trunc("day", Event.created_at)``; ``(payload ->> 'kind')`` ->
    ``Event.payload["kind"].astext``. An ``Index`` of ``text()`` keys alone is attached
    to no table, so anything else is declared in ``__table_args__`` instead.
    """
    field = _JSON_FIELD.match(text.strip())
    if field:
        column, arrow, name = field.groups()
        ref = f'{model}.{column}["{name}"]'
        return ref + ".astext" if arrow == "->>" else ref
    call = _CALL.match(text.strip())
    if not call:
        return None
    args = []
    for arg in _split_args(call.group(2)):
        match = _ARG.match(arg.strip())
        if match is None:
            return None
        column, string, number = match.groups()
        if column:
            args.append(f"{model}.{column}")
        elif string:
            args.append(repr(string[1:-1].replace("''", "'")))
        else:
            args.append(number)
    return f"func.{call.group(1)}({', '.join(args)})"


def _split_args(text: str) -> list[str]:
    args, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            args.append(text[start:i])
            start = i + 1
    args.append(text[start:])
    return [a for a in args if a.strip()]


def _needs_text(key: IndexKey) -> bool:
    """Expressions and operator classes on expressions are written as ``text(...)``."""
    return key.expression


def _text_key(key: IndexKey) -> str:
    """``text("lower(email)")``: an expression key with its options, as SQL."""
    return f"text({key_sql(key)!r})"


def _ordered(ref: str, key: IndexKey) -> str:
    if key.descending:
        ref += ".desc()"
        if key.nulls_first is False:
            ref += ".nulls_last()"
    elif key.nulls_first:
        ref += ".nulls_first()"
    return ref


def index_declaration(candidate: IndexCandidate) -> str:
    """``Index("ix_orders_customer_id", Order.customer_id)``, to place after the class."""
    model = class_name(candidate.table)
    keys = []
    for key in candidate.keys:
        if key.expression:
            code = None if key.opclass else _expression_code(model, key.text)
            if code is None:
                return table_args_declaration(candidate)
            keys.append(_ordered(code, key))
            continue
        name = key.text
        ref = f"{model}.{name}" if name.isidentifier() else f'{model}.__table__.c["{name}"]'
        keys.append(_ordered(ref, key))
    args = [f'"{candidate.name}"', *keys, *_options(candidate)]
    return f"Index({', '.join(args)})"


def table_args_declaration(candidate: IndexCandidate) -> str:
    """The ``__table_args__`` form, inside ``class Model(Base):``."""
    keys = []
    for key in candidate.keys:
        if _needs_text(key) or key.descending or key.nulls_first is not None:
            keys.append(_text_key(key) if _needs_text(key) else f"text({key_sql(key)!r})")
        else:
            keys.append(f'"{key.text}"')
    args = [f'"{candidate.name}"', *keys, *_options(candidate)]
    return f"__table_args__ = (Index({', '.join(args)}),)"


def imports(candidate: IndexCandidate) -> str:
    """The import line the declarations need."""
    names = ["Index"]
    if any(k.expression and _CALL.match(k.text.strip()) for k in candidate.keys):
        names.append("func")
    if candidate.where or any(
        k.expression or k.descending or k.nulls_first is not None for k in candidate.keys
    ):
        names.append("text")
    return f"from sqlalchemy import {', '.join(names)}"
