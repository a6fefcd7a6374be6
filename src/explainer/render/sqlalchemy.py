"""SQLAlchemy code for a suggestion, in the declarative style of SQLAlchemy 2.

Until the user's models are loaded (a later capability), class names are guessed from
table names the way sqlacodegen names them: ``order_items`` -> ``OrderItem``. Two forms
are given because projects use both: an ``Index(...)`` on the mapped class's attributes
(placed after the class), and the ``__table_args__`` entry inside the class.
"""

from __future__ import annotations

import re

from explainer.advise.model import IndexCandidate

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
    if candidate.include:
        options.append(
            "postgresql_include=[" + ", ".join(f'"{c}"' for c in candidate.include) + "]"
        )
    if candidate.where:
        options.append(f"postgresql_where=text({candidate.where!r})")
    return options


def index_declaration(candidate: IndexCandidate) -> str:
    """``Index("ix_orders_customer_id", Order.customer_id)``, to place after the class."""
    model = class_name(candidate.table)
    keys = []
    for column in candidate.columns:
        name = column.removesuffix(" DESC")
        ref = f"{model}.{name}" if name.isidentifier() else f'{model}.__table__.c["{name}"]'
        keys.append(f"{ref}.desc()" if column.endswith(" DESC") else ref)
    args = [f'"{candidate.name}"', *keys, *_options(candidate)]
    return f"Index({', '.join(args)})"


def table_args_declaration(candidate: IndexCandidate) -> str:
    """The ``__table_args__`` form, inside ``class Model(Base):``."""
    keys = []
    for column in candidate.columns:
        name = column.removesuffix(" DESC")
        keys.append(f'text("{name} DESC")' if column.endswith(" DESC") else f'"{name}"')
    args = [f'"{candidate.name}"', *keys, *_options(candidate)]
    return f"__table_args__ = (Index({', '.join(args)}),)"


def imports(candidate: IndexCandidate) -> str:
    """The import line the declarations need."""
    names = ["Index"]
    if candidate.where or any(c.endswith(" DESC") for c in candidate.columns):
        names.append("text")
    return f"from sqlalchemy import {', '.join(names)}"
