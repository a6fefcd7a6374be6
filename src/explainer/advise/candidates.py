"""Index candidates derived from the query's own predicates, read with sqlglot.

The plan says *which* table is scanned badly; the query's syntax tree says *how* the
table is filtered: which columns are compared with ``=``, ``IN`` or ``IS NULL`` (they go
first in a btree, in any order), which one with a range (only one range column can use
the index's order, so it comes next), and whether an ``ORDER BY`` could be served by the
index instead of a sort. Working from the tree rather than the plan's ``Filter`` text
keeps operators and sides of comparisons exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from explainer.advise.model import IndexCandidate
from explainer.db.catalog import ExistingIndex, TableInfo

#: More key columns than this rarely pays for the index's size and write cost.
MAX_KEY_COLUMNS = 4


@dataclass(slots=True)
class TablePredicates:
    """How one table is constrained by one query."""

    equality: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    order_by: list[str] = field(default_factory=list)
    join_keys: list[str] = field(default_factory=list)


def _conjuncts(condition: exp.Expr | None) -> Iterator[exp.Expr]:
    if condition is None:
        return
    if isinstance(condition, exp.And):
        yield from _conjuncts(condition.left)
        yield from _conjuncts(condition.right)
    elif isinstance(condition, exp.Paren):
        yield from _conjuncts(condition.this)
    else:
        yield condition


def _scope_tables(scope: exp.Expr) -> list[exp.Table]:
    """Tables named directly in one SELECT/UPDATE/DELETE (not in its subqueries).

    For UPDATE and DELETE that is the target table, plus UPDATE's FROM and DELETE's USING.
    """
    sources: list[exp.Expr] = []
    if isinstance(scope, exp.Update | exp.Delete):
        sources.append(scope.this)
        sources.extend(scope.args.get("using") or [])
    from_ = scope.args.get("from_") or scope.args.get("from")
    if isinstance(from_, exp.From):
        sources.append(from_.this)
    sources.extend(join.this for join in scope.args.get("joins") or [])
    return [s for s in sources if isinstance(s, exp.Table)]


class _Scope:
    """Answers "is this column one of our table's?" inside one SELECT."""

    def __init__(self, scope: exp.Expr, table: TableInfo) -> None:
        self.table = table
        tables = _scope_tables(scope)
        self.names: set[str] = set()
        for t in tables:
            if t.name == table.name and (not t.db or t.db == table.schema):
                self.names.add(t.alias_or_name)
        self.single_table = len(tables) == 1
        self.columns = set(table.columns)

    @property
    def present(self) -> bool:
        return bool(self.names)

    def owns(self, node: exp.Expr) -> str | None:
        """The column name when ``node`` is a plain column of our table."""
        if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier):
            return None
        name = node.name
        if name not in self.columns:
            return None
        if node.table:
            return name if node.table in self.names else None
        return name if self.single_table or self.present else None

    def other_column(self, node: exp.Expr) -> bool:
        return isinstance(node, exp.Column) and self.owns(node) is None


def _classify(condition: exp.Expr, scope: _Scope, found: TablePredicates) -> None:
    if isinstance(condition, exp.EQ):
        for mine, other in ((condition.left, condition.right), (condition.right, condition.left)):
            column = scope.owns(mine)
            if column is None:
                continue
            if scope.other_column(other):
                found.join_keys.append(column)
            elif not any(scope.owns(c) for c in other.find_all(exp.Column)):
                found.equality.append(column)
            return
    elif isinstance(condition, exp.In):
        column = scope.owns(condition.this)
        if column and not condition.args.get("query"):
            found.equality.append(column)
    elif isinstance(condition, exp.Is):
        column = scope.owns(condition.this)
        if column and isinstance(condition.expression, exp.Null):
            found.equality.append(column)
    elif isinstance(condition, exp.GT | exp.GTE | exp.LT | exp.LTE):
        for side in (condition.left, condition.right):
            column = scope.owns(side)
            if column:
                found.ranges.append(column)
                return
    elif isinstance(condition, exp.Between):
        column = scope.owns(condition.this)
        if column:
            found.ranges.append(column)
    elif isinstance(condition, exp.Like):
        column = scope.owns(condition.this)
        pattern = condition.expression
        if column and isinstance(pattern, exp.Literal) and _is_prefix_pattern(pattern.this):
            found.ranges.append(column)


def _is_prefix_pattern(pattern: str) -> bool:
    """``'abc%'`` can use a btree (with the right collation); ``'%abc'`` cannot."""
    return bool(pattern) and pattern[0] not in "%_"


def _order_columns(select: exp.Select, scope: _Scope) -> list[str]:
    """ORDER BY columns, only when every ORDER BY key is a column of our table."""
    order = select.args.get("order")
    if not isinstance(order, exp.Order):
        return []
    columns = []
    for ordered in order.expressions:
        column = scope.owns(ordered.this)
        if column is None:
            return []
        columns.append(f"{column} DESC" if ordered.args.get("desc") else column)
    return columns


def table_predicates(sql: str, table: TableInfo) -> TablePredicates:
    """Collect how ``table`` is constrained anywhere in the statement."""
    found = TablePredicates()
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except SqlglotError:
        return found
    for node in tree.find_all(exp.Select, exp.Update, exp.Delete):
        scope = _Scope(node, table)
        if not scope.present:
            continue
        conditions = list(_conjuncts(_where(node)))
        for join in node.args.get("joins") or []:
            conditions.extend(_conjuncts(join.args.get("on")))
        for condition in conditions:
            _classify(condition, scope, found)
        if not found.order_by and isinstance(node, exp.Select):
            found.order_by = _order_columns(node, scope)
    return found


def _where(node: exp.Expr) -> exp.Expr | None:
    where = node.args.get("where")
    return where.this if isinstance(where, exp.Where) else None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def derive_candidate(sql: str, table: TableInfo) -> IndexCandidate | None:
    """The btree a query's predicates on ``table`` ask for, or None when there is none.

    Order: equality columns, then one range column; with no range column, the ORDER BY
    columns so that the index can also return rows in order. Join keys are used only
    when nothing else filters the table (the inner side of a nested loop).
    """
    found = table_predicates(sql, table)
    equality = _unique(found.equality)
    columns = list(equality)
    ranges = [c for c in _unique(found.ranges) if c not in equality]
    if ranges:
        columns.append(ranges[0])
    elif found.order_by and equality:
        columns.extend(c for c in found.order_by if c.removesuffix(" DESC") not in equality)
    if not columns:
        columns = _unique(found.join_keys)
    if not columns:
        return None
    return IndexCandidate.of(table.schema, table.name, *columns[:MAX_KEY_COLUMNS])


def covering_index(
    candidate: IndexCandidate, existing: tuple[ExistingIndex, ...]
) -> ExistingIndex | None:
    """An existing valid btree that already serves the candidate, if any.

    It serves it when its leading key columns are the candidate's columns: the equality
    part in any order (a btree serves equality on its leading columns whatever their
    order), then the rest in the same order.
    """
    wanted = candidate.column_names
    for index in existing:
        if not index.is_valid or index.method != "btree" or index.predicate:
            continue
        keys = tuple(k.strip('"') for k in index.columns)
        if len(keys) < len(wanted):
            continue
        if keys[: len(wanted)] == wanted or (
            set(keys[: len(wanted)]) == set(wanted) and len(set(wanted)) == len(wanted)
        ):
            return index
    return None
