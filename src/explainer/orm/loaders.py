"""Loader-option rewrites: an N+1 burst's fix as code, with the SQL it will run instead.

explainer never imports the user's models in its own process (they are described by a
subprocess, :mod:`explainer.orm.models`), so the SQL a rewrite emits cannot come from
SQLAlchemy's compiler. It is built as text from what the log and the model map hold,
in the form SQLAlchemy 2.x emits it:

- ``selectinload``: the lazy load's own statement (same columns, same table) with its
  ``col = $1`` replaced by ``col IN (...)`` over the parent keys: one statement for up
  to 500 parents (SQLAlchemy's chunk size), where the lazy load ran one per parent.
- ``joinedload``: the parent query with ``LEFT OUTER JOIN target AS target_1 ON
  target_1.remote = owner.local`` and the target's columns added: no second statement.

Column lists come from the logged lazy load (it selects every mapped column of the
target), so they are the user's, not guessed; the join condition comes from the
relationship's local and remote columns (from the models, or ``<singular>_id`` = ``id``
when named from the SQL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from explainer.orm.models import MappedClass, ModelMap

__all__ = [
    "SELECTIN_CHUNK",
    "Alternative",
    "LoaderRewrite",
    "LoaderStep",
    "Strategy",
    "rewrite",
]

Strategy = Literal["selectinload", "joinedload"]

#: Parent keys per ``IN`` list of one selectinload statement (SQLAlchemy's
#: ``SelectInLoader._chunksize``): more parents than this take one statement more each.
SELECTIN_CHUNK = 500


@dataclass(frozen=True)
class LoaderStep:
    """One relationship on a loader path: ``selectinload(Author.books)``."""

    owner_class: str
    attribute: str
    strategy: Strategy
    kind: Literal["collection", "many-to-one"]
    owner_table: str
    target_table: str
    target_class: str
    local_columns: tuple[str, ...]
    """Columns of the owner's table the relationship joins on (``authors.id``; for a
    many-to-one ``books.author_id``)."""
    remote_columns: tuple[str, ...]
    """The matching columns of the target table (``books.author_id``; ``authors.id``)."""

    @property
    def option(self) -> str:
        return f"{self.strategy}({self.owner_class}.{self.attribute})"


@dataclass(frozen=True)
class Alternative:
    """Another way to the same fix, or a guard that keeps the bug from coming back."""

    title: str
    code: str
    note: str


@dataclass(frozen=True)
class LoaderRewrite:
    """The fix as code: what to import, the statement before and after, and its cost."""

    root_class: str
    imports: tuple[str, ...]
    before: str
    after: str
    options: tuple[str, ...]
    """The loader options, one per loaded path (chained for nested relationships)."""
    sql_after: tuple[str, ...]
    """The statements the new form emits, in order."""
    queries_before: int
    """Per loop: the parent query and one lazy load per parent (1 + N; more when nested)."""
    queries_after: int
    """1, plus one per ``selectinload`` on the path (per 500 parents)."""
    alternatives: tuple[Alternative, ...]
    defined_at: str | None = None
    """``file:line`` of the class that declares the (first) relationship, with models."""


def rewrite(
    root_sql: str,
    paths: Sequence[tuple[LoaderStep, ...]],
    *,
    queries_before: int,
    models: ModelMap | None = None,
    repeated_sql: Mapping[tuple[LoaderStep, ...], str] | None = None,
) -> LoaderRewrite:
    """The rewrite that loads every relationship of ``paths`` with the root query.

    ``root_sql`` is the query that read the root class's rows (the burst's source);
    ``repeated_sql`` maps each path (and each of its prefixes that is a path of a
    finding) to the lazy load it replaces, whose columns the emitted SQL reuses.
    """
    if not paths or not paths[0]:
        raise ValueError("rewrite needs at least one loader path")
    lazy_sql = dict(repeated_sql or {})
    root = paths[0][0].owner_class
    options = tuple(".".join(step.option for step in path) for path in paths)
    strategies = sorted({step.strategy for path in paths for step in path})
    imports = (
        "from sqlalchemy import select",
        f"from sqlalchemy.orm import {', '.join(strategies)}",
    )
    before = f"session.scalars(select({root}))"
    after = f"session.scalars(select({root}).options({', '.join(options)}))"
    sql_after, selectin_steps = _emitted_sql(root_sql, paths, lazy_sql)
    first = paths[0][0]
    owner = models.for_table(first.owner_table) if models is not None else None
    return LoaderRewrite(
        root_class=root,
        imports=imports,
        before=before,
        after=after,
        options=options,
        sql_after=sql_after,
        queries_before=queries_before,
        queries_after=1 + selectin_steps,
        alternatives=_alternatives(root, first, options, owner),
        defined_at=_defined_at(owner, first.attribute),
    )


# -- the SQL the new form emits -----------------------------------------------------------


def _emitted_sql(
    root_sql: str,
    paths: Sequence[tuple[LoaderStep, ...]],
    lazy_sql: Mapping[tuple[LoaderStep, ...], str],
) -> tuple[tuple[str, ...], int]:
    """The statements in emission order, and how many are selectinload statements.

    Each distinct prefix of the paths is one step; a joinedload step is joined into the
    statement that loads its owner (the root query, or its owner's selectin statement).
    """
    statements: dict[tuple[LoaderStep, ...], str] = {(): root_sql}
    order: list[tuple[LoaderStep, ...]] = [()]
    aliases: dict[str, int] = {}
    for path in paths:
        for depth in range(1, len(path) + 1):
            prefix = path[:depth]
            if prefix in statements:
                continue
            step = prefix[-1]
            lazy = lazy_sql.get(prefix)
            if step.strategy == "selectinload":
                statements[prefix] = _selectin_sql(step, lazy)
                order.append(prefix)
                continue
            host = _host(prefix[:-1], statements)
            aliases[step.target_table] = aliases.get(step.target_table, 0) + 1
            alias = f"{_bare(step.target_table)}_{aliases[step.target_table]}"
            statements[host] = _joined_sql(statements[host], step, lazy, alias)
            statements[prefix] = statements[host]
    return tuple(statements[p] for p in order), len(order) - 1


def _host(
    prefix: tuple[LoaderStep, ...], statements: Mapping[tuple[LoaderStep, ...], str]
) -> tuple[LoaderStep, ...]:
    """The statement that loads the owner of a joinedload step: the nearest selectin
    prefix above it, else the root query."""
    while prefix and prefix[-1].strategy != "selectinload":
        prefix = prefix[:-1]
    return prefix if prefix in statements else ()


def _parse(sql: str | None) -> exp.Select | None:
    if not sql:
        return None
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except (SqlglotError, ValueError):
        return None
    return tree if isinstance(tree, exp.Select) else None


def _bare(name: str) -> str:
    return name.rpartition(".")[2]


def _render(tree: exp.Expression) -> str:
    return tree.sql(dialect="postgres")


def _selectin_sql(step: LoaderStep, lazy: str | None) -> str:
    """``SELECT <the lazy load's columns> FROM target WHERE target.key IN (...)``."""
    table = _bare(step.target_table)
    keys = step.remote_columns
    key = f"{table}.{keys[0]}" if len(keys) == 1 else f"({', '.join(f'{table}.{k}' for k in keys)})"
    condition = f"{key} IN ($1, $2, ...)"
    tree = _parse(lazy)
    if tree is None:
        return f"SELECT {table}.* FROM {step.target_table} WHERE {condition}"
    tree = tree.copy()
    tree.set("where", None)
    return f"{_render(tree)} WHERE {condition}"


def _joined_sql(host_sql: str, step: LoaderStep, lazy: str | None, alias: str) -> str:
    """``host LEFT OUTER JOIN target AS alias ON alias.remote = owner.local`` with the
    target's columns (those the lazy load selected) added to the select list."""
    owner = _bare(step.owner_table)
    on = " AND ".join(
        f"{alias}.{remote} = {owner}.{local}"
        for local, remote in zip(step.local_columns, step.remote_columns, strict=False)
    )
    lazy_tree = _parse(lazy)
    columns = (
        [
            f"{alias}.{projection.unalias().name}"
            for projection in lazy_tree.expressions
            if isinstance(projection.unalias(), exp.Column)
        ]
        if lazy_tree is not None
        else []
    ) or [f"{alias}.*"]
    tree = _parse(host_sql)
    if tree is None:
        return f"{host_sql} /* + */ LEFT OUTER JOIN {step.target_table} AS {alias} ON {on}"
    tree = tree.copy()
    tree = tree.select(*columns, append=True, copy=False)
    tree = tree.join(f"{step.target_table} AS {alias}", on=on, join_type="LEFT OUTER", copy=False)
    return _render(tree)


# -- alternatives ------------------------------------------------------------------------

_LAZY = re.compile(r"""\blazy\s*=\s*("[^"]*"|'[^']*'|\w+)""")


def _with_lazy(source: str, lazy: str) -> str | None:
    """The declaration ``source`` (``books: Mapped[...] = relationship(...)``) with
    ``lazy=`` set; None when it is not one ``relationship(...)`` call on one line."""
    if _LAZY.search(source):
        return _LAZY.sub(f'lazy="{lazy}"', source, count=1)
    start = source.find("relationship(")
    end = source.rfind(")")
    if start < 0 or end < start:
        return None
    inside = source[start + len("relationship(") : end].strip()
    separator = ", " if inside else ""
    return f'{source[:end].rstrip()}{separator}lazy="{lazy}"{source[end:]}'


def _alternatives(
    root: str, first: LoaderStep, options: tuple[str, ...], owner: MappedClass | None
) -> tuple[Alternative, ...]:
    lazy = "selectin" if first.strategy == "selectinload" else "joined"
    declared = owner.attribute_sources.get(first.attribute) if owner is not None else None
    changed = _with_lazy(declared, lazy) if declared else None
    relationship_code = changed or (
        f'{first.attribute} = relationship(..., lazy="{lazy}")  # on class {first.owner_class}'
    )
    guard = "raiseload('*')"
    guarded = f"select({root}).options({', '.join((*options, guard))})"
    return (
        Alternative(
            "relationship-level default",
            relationship_code,
            f"every query of {first.owner_class} then loads {first.attribute} this way, "
            "including those that never read it: prefer the option where only some do.",
        ),
        Alternative(
            "raiseload, so the N+1 cannot come back",
            f"from sqlalchemy.orm import raiseload\n{guarded}",
            "any other lazy load of these objects raises instead of querying: a missing "
            'eager load fails in tests, not in production. On the relationship: lazy="raise".',
        ),
    )


def _defined_at(owner: MappedClass | None, attribute: str) -> str | None:
    """Where the relationship is declared (the class when its line is unknown)."""
    if owner is None or owner.file is None:
        return None
    line = owner.attribute_lines.get(attribute, owner.line)
    return f"{owner.file}:{line}" if line is not None else owner.file
