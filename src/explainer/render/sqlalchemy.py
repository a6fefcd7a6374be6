"""SQLAlchemy code for a suggestion, in the declarative style of SQLAlchemy 2.

Without the user's models, class names are guessed from table names the way sqlacodegen
names them: ``order_items`` -> ``OrderItem``. Two forms are given because projects use
both: an ``Index(...)`` on the mapped class's attributes (placed after the class), and
the ``__table_args__`` entry inside the class.

With the models (:func:`model_index_suggestion`), the code uses the real class and
attribute names, says which line of which file to change (``index=True`` on the column's
``mapped_column(...)`` for a single plain column, else the class's ``__table_args__``
with its existing entries kept), and names the index as the metadata's naming convention
would, since that is the name SQLAlchemy (and Alembic autogenerate) will create.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import sqlalchemy
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.schema import CreateIndex

from explainer.advise.ddl import create_index_sql, key_sql
from explainer.advise.model import IndexCandidate, IndexKey
from explainer.orm.models import MappedClass
from explainer.orm.reflect import class_name, singular

__all__ = [
    "ModelIndexSuggestion",
    "class_name",
    "imports",
    "index_declaration",
    "model_index_suggestion",
    "singular",
    "table_args_declaration",
]


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


def _expression_code(
    model: str, text: str, attributes: Mapping[str, str] | None = None
) -> str | None:
    """SQLAlchemy code for the common expression keys, None for the others.

    ``lower(email)`` -> ``func.lower(User.email)``; ``date_trunc('day', created_at)`` ->
    ``func.date_trunc("day", Event.created_at)``; ``(payload ->> 'kind')`` ->
    ``Event.payload["kind"].astext``. An ``Index`` of ``text()`` keys alone is attached
    to no table, so anything else is declared in ``__table_args__`` instead.
    """
    field = _JSON_FIELD.match(text.strip())
    if field:
        column, arrow, name = field.groups()
        ref = f'{_attribute_ref(model, column, attributes)}["{name}"]'
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
            args.append(_attribute_ref(model, column, attributes))
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


def _attribute_ref(model: str, column: str, attributes: Mapping[str, str] | None) -> str:
    """``Order.customer_id``; the attribute key when it differs from the column's name."""
    if attributes is not None and column in attributes:
        return f"{model}.{attributes[column]}"
    if column.isidentifier():
        return f"{model}.{column}"
    return f'{model}.__table__.c["{column}"]'


def index_declaration(
    candidate: IndexCandidate, mapped: MappedClass | None = None, *, name: str | None = None
) -> str:
    """``Index("ix_orders_customer_id", Order.customer_id)``, to place after the class.

    With ``mapped``, the class and attribute names are the model's own.
    """
    model = mapped.name if mapped is not None else class_name(candidate.table)
    attributes = mapped.columns if mapped is not None else None
    keys = []
    for key in candidate.keys:
        if key.expression:
            code = None if key.opclass else _expression_code(model, key.text, attributes)
            if code is None:
                return table_args_declaration(candidate, name=name)
            keys.append(_ordered(code, key))
            continue
        keys.append(_ordered(_attribute_ref(model, key.text, attributes), key))
    args = [f'"{name or candidate.name}"', *keys, *_options(candidate)]
    return f"Index({', '.join(args)})"


def _table_args_index(candidate: IndexCandidate, name: str | None = None) -> str:
    """``Index("ix", "status", text("created_at DESC"))``: column names, as the table has them."""
    keys = []
    for key in candidate.keys:
        if _needs_text(key) or key.descending or key.nulls_first is not None:
            keys.append(_text_key(key) if _needs_text(key) else f"text({key_sql(key)!r})")
        else:
            keys.append(f'"{key.text}"')
    args = [f'"{name or candidate.name}"', *keys, *_options(candidate)]
    return f"Index({', '.join(args)})"


def table_args_declaration(candidate: IndexCandidate, *, name: str | None = None) -> str:
    """The ``__table_args__`` form, inside ``class Model(Base):``."""
    return f"__table_args__ = ({_table_args_index(candidate, name)},)"


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


# --- in the models' terms ---------------------------------------------------------------


@dataclass(frozen=True)
class ModelIndexSuggestion:
    """Where and how to declare a suggested index in the user's models.

    ``code`` is the changed line (``form == "column"``: the attribute's declaration with
    ``index=True``) or the class's whole ``__table_args__`` statement with the new entry
    among the existing ones (``form == "table_args"``); ``line`` is the line it replaces
    (or the class line when the class has no ``__table_args__`` yet). ``after_class`` is
    the same index as an ``Index(...)`` on the class's attributes, for projects that
    declare indexes after the class. ``name`` is the name SQLAlchemy will create, and
    ``sql`` the CREATE INDEX that both forms compile to.
    """

    class_name: str
    file: str | None
    line: int | None
    form: Literal["column", "table_args"]
    code: str
    #: None when a key can only be written as text() (an expression with an operator
    #: class): such an Index must sit in __table_args__ to know its table.
    after_class: str | None
    imports: str
    name: str
    sql: str


_DIALECT = PGDialect()  # type: ignore[no-untyped-call]

#: SQLAlchemy's own convention for indexes: what a MetaData without one uses.
_DEFAULT_IX = "ix_%(column_0_label)s"


def _plain_single_column(candidate: IndexCandidate) -> str | None:
    if len(candidate.keys) != 1 or candidate.using != "btree" or candidate.where:
        return None
    if candidate.include:
        return None
    key = candidate.keys[0]
    if key.expression or key.descending or key.nulls_first is not None or key.opclass:
        return None
    return key.text


def _throwaway_table(
    candidate: IndexCandidate, mapped: MappedClass, *extra: sqlalchemy.Index
) -> sqlalchemy.Table:
    """The mapped table's columns (untyped) under the model's naming convention."""
    metadata = sqlalchemy.MetaData(naming_convention=dict(mapped.naming_convention) or None)
    columns = dict.fromkeys([*mapped.columns, *candidate.column_names, *candidate.include])
    return sqlalchemy.Table(
        mapped.table,
        metadata,
        *[sqlalchemy.Column(c, sqlalchemy.types.NullType()) for c in columns if _is_name(c)],
        *extra,
        schema=mapped.schema,
    )


def _is_name(text: str) -> bool:
    return re.fullmatch(r"[^()' ]+", text) is not None


def _compiled_name(index: sqlalchemy.Index) -> str:
    statement = str(CreateIndex(index).compile(dialect=_DIALECT))
    match = re.match(r'CREATE INDEX ("(?:[^"]|"")+"|\S+) ON ', statement)
    if match is None:  # pragma: no cover - CreateIndex always names the index
        raise ValueError(statement)
    found = match.group(1)
    return found[1:-1].replace('""', '"') if found.startswith('"') else found


def _evaluate(code: str, candidate: IndexCandidate, mapped: MappedClass) -> sqlalchemy.Index:
    """The Index our own generated ``__table_args__`` entry builds, on a throwaway table."""
    namespace = {"Index": sqlalchemy.Index, "text": sqlalchemy.text}
    index = eval(code, namespace)  # our generated code only, never the user's
    if not isinstance(index, sqlalchemy.Index):  # pragma: no cover
        raise TypeError(code)
    _throwaway_table(candidate, mapped, index)
    return index


def _index_name(candidate: IndexCandidate, mapped: MappedClass) -> tuple[str, str]:
    """(the name to write in the code, the name SQLAlchemy will create).

    Under a naming convention of its own for indexes, the code carries the name the
    convention gives (so that code, database and Alembic agree); a convention that
    templates the given name (``%(constraint_name)s``) is applied to ours.
    """
    convention = mapped.naming_convention.get("ix")
    explicit: str = candidate.name
    # Convention tokens (%(column_0_N_name)s...) name columns: for expressions, directions
    # and NULLS orders they come out empty, so those keep the advisor's descriptive name.
    plain = all(
        not (k.expression or k.descending or k.nulls_first is not None) for k in candidate.keys
    )
    if (
        plain
        and convention
        and convention != _DEFAULT_IX
        and "%(constraint_name)s" not in convention
    ):
        try:
            unnamed = _table_args_index(candidate, "\0").replace('"\0"', "None", 1)
            explicit = _compiled_name(_evaluate(unnamed, candidate, mapped))
        except Exception:  # a convention token the keys cannot fill: keep our name
            explicit = candidate.name
        if explicit in mapped.indexes:  # e.g. the same columns with another predicate
            explicit = candidate.name
    try:
        created = _compiled_name(
            _evaluate(_table_args_index(candidate, explicit), candidate, mapped)
        )
    except Exception:
        created = explicit
    return explicit, created


def _with_index_true(source: str, attribute: str, column: str) -> str:
    """The attribute's declaration with ``index=True`` added to its column call."""
    if re.search(r"\bindex\s*=\s*True\b", source):
        return source  # already declared: the database lacks it (run the migrations?)
    call = re.search(r"\b(mapped_column|Column)\(", source)
    if call is None:
        if ":" in source.split("=")[0] and "=" not in source:  # ``rating: Mapped[int]``
            first = f'"{column}", ' if column != attribute else ""
            return f"{source} = mapped_column({first}index=True)"
        return source + "  # add index=True to its column"
    depth, end = 0, None
    for i in range(call.end() - 1, len(source)):
        if source[i] == "(":
            depth += 1
        elif source[i] == ")":
            depth -= 1
            if depth == 0:
                end = i
                break
    if end is None:
        return source + "  # add index=True to its column"
    inside = source[call.end() : end].rstrip()
    separator = "" if not inside else ("" if inside.endswith(",") else ", ")
    if inside.endswith(","):
        separator = " "
    return source[: call.end()] + inside + separator + "index=True" + source[end:]


def _merged_table_args(existing: str | None, entry: str) -> str:
    """``__table_args__`` with ``entry`` added and the existing entries kept."""
    if existing is None:
        return f"__table_args__ = ({entry},)"
    try:
        statement = ast.parse(existing.strip()).body[0]
    except (SyntaxError, IndexError):
        statement = None
    value = getattr(statement, "value", None)
    if isinstance(value, ast.Dict):
        options = ast.get_source_segment(existing.strip(), value)
        return f"__table_args__ = (\n    {entry},\n    {options},\n)"
    if isinstance(value, ast.Tuple):
        parts = [ast.get_source_segment(existing.strip(), e) or "" for e in value.elts]
        if value.elts and isinstance(value.elts[-1], ast.Dict):
            parts.insert(len(parts) - 1, entry)
        else:
            parts.append(entry)
        body = "".join(f"    {p},\n" for p in parts)
        return f"__table_args__ = (\n{body})"
    return f"{existing.strip()}  # add {entry} to these entries"


def model_index_suggestion(candidate: IndexCandidate, mapped: MappedClass) -> ModelIndexSuggestion:
    """The suggestion as a change to the user's model class ``mapped``."""
    explicit, created = _index_name(candidate, mapped)
    after_class: str | None = index_declaration(candidate, mapped, name=explicit)
    if after_class is not None and after_class.startswith("__table_args__"):
        after_class = None
    column = _plain_single_column(candidate)
    attribute = mapped.columns.get(column) if column is not None else None
    if column is not None and attribute is not None:
        # index=True names the index after the convention (SQLAlchemy's default one too).
        # Column(index=True) creates Index(None, column, _column_flag=True).
        flagged = sqlalchemy.Index(None, column, _column_flag=True)
        _throwaway_table(candidate, mapped, flagged)
        created = _compiled_name(flagged)
        source = mapped.attribute_sources.get(attribute, f"{attribute} = mapped_column()")
        return ModelIndexSuggestion(
            class_name=mapped.name,
            file=mapped.file,
            line=mapped.attribute_lines.get(attribute, mapped.line),
            form="column",
            code=_with_index_true(source, attribute, column),
            after_class=index_declaration(candidate, mapped, name=created),
            imports=imports(candidate),
            name=created,
            sql=create_index_sql(candidate, name=created),
        )
    entry = _table_args_index(candidate, explicit)
    return ModelIndexSuggestion(
        class_name=mapped.name,
        file=mapped.file,
        line=mapped.table_args_line or mapped.line,
        form="table_args",
        code=_merged_table_args(mapped.table_args_source, entry),
        after_class=after_class,
        imports=imports(candidate),
        name=created,
        sql=create_index_sql(candidate, name=created),
    )
