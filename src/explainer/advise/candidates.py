"""Index candidates for one table access, derived as an expert would from the query's own
parse tree, its plan and the planner's statistics.

API (what :mod:`explainer.advise.indexes` calls)::

    derive_candidates(sql, table, *, plan=None, node=None, stats=None,
                      extensions=frozenset()) -> CandidateResult

- ``sql``: the statement's text (literals or ``$n``); ``table``: the catalog entry of the
  table the finding points at (its columns and existing indexes).
- ``plan``/``node``: the statement's plan and the scan node the finding points at
  (``plan.node(finding.node_path)``); optional. The node tells whether the access is the
  inner side of a nested loop (then its join keys lead the index) and how many times it
  runs; its ``Filter``/``Join Filter`` add join keys the SQL hides.
- ``stats``: :func:`explainer.db.stats.table_stats` for the table; without it no
  selectivity, partial-index or covering judgement is made (size comes from ``table``).
- ``extensions``: :func:`explainer.db.stats.installed_extensions`; ``pg_trgm`` enables the
  trigram GIN candidates, otherwise a ``needs_extension`` rejection names it.

``CandidateResult.candidates`` are in order of preference (the first is the composite btree
when there is one; partial, covering, join-key and GIN alternatives follow) and none is
served by an existing valid index. ``rejected`` holds one :class:`NoSuggestion` per reason
nothing (or not everything) was proposed: ``already_indexed`` (the detail and
``covered_by`` name the existing index), ``small_table``, ``low_selectivity`` (with the
figures), ``needs_extension``, ``no_sargable_predicate``. Empty ``candidates`` always come
with at least one rejection.

How the keys are chosen, and why:

- Equality, ``IN`` and ``IS NULL`` columns first (a btree serves equality on its leading
  columns in any order), then one range column (only one range can use the index's
  order), then the ``ORDER BY`` columns with their direction when they follow the equality
  part, so that ``... ORDER BY ... LIMIT n`` becomes an ordered index scan that stops after
  n rows. ``NULLS FIRST/LAST`` is written only when the query asks for the non-default
  order (the planner matches it exactly). A range on another column than the ORDER BY
  ends the key: ordering after a range column is of no use.
- Join keys (``o.customer_id = c.id``) count as equality for the inner side of a nested
  loop; when the plan says the access is such an inner side (or nothing else filters the
  table) they lead the index, otherwise a join-key index is an alternative (it lets the
  planner choose a nested loop).
- Predicates on expressions (``lower(email) = ...``, ``(payload ->> 'kind') = ...``,
  ``date_trunc('day', created_at) = ...``) give expression keys written as PostgreSQL's own
  parser deparses the query's expression (pglast), so the index's expression tree is the
  query's and the planner matches it. A cast to a text type is the column itself (the
  planner strips such relabelling when matching).
- ``LIKE 'abc%'`` is a range on the column with ``text_pattern_ops`` (a plain btree serves
  it only under the C collation). ``LIKE/ILIKE '%abc%'`` asks for a trigram GIN
  (``gin_trgm_ops``) when pg_trgm is installed and the pattern has a run of at least
  :data:`TRIGRAM_MIN_CHARS` literal characters (shorter patterns extract no trigram and
  the GIN would be read whole). ``jsonb @> ...`` asks for ``GIN (col jsonb_path_ops)``
  (smaller and faster than the default ``jsonb_ops`` for containment, the only operator
  asked); an array ``@>`` the default GIN operator class.

Thresholds (documented in docs/rules.md by the lead; constants below):

- small table: fewer than :data:`SMALL_TABLE_ROWS` rows and :data:`SMALL_TABLE_PAGES`
  pages, *times the loops the scan ran* (a 5,000-row table scanned 1,000 times by a nested
  loop is not small).
- low selectivity: every key predicate has a pg_stats estimate and together they keep more
  than :data:`LOW_SELECTIVITY` of the rows, unless the index also serves ``ORDER BY ...
  LIMIT`` (then it stops early whatever the share). An equality to a ``$n`` has no
  estimate when some most common value keeps at most that share: the application may be
  sending that rare value, and the average would hide it.
- partial index: an equality to a literal that is a most common value kept by at most
  :data:`PARTIAL_MAX_SHARE` of the rows on a column with at most
  :data:`PARTIAL_MAX_DISTINCT` distinct values (a status-like column; a partial index per
  value of a high-cardinality column would be one of thousands), or ``IS [NOT] NULL``
  keeping at most that share; the index keys are the other keys, its WHERE the query's own
  predicate (same constant, same operator) so the planner proves the query implies it.
- selective join: a sequential scan whose own filter keeps more than
  :data:`LOW_SELECTIVITY` of the rows, feeding a hash or merge join that keeps at most that
  share of the rows the scan passes on, gets a covering index on the join keys then the
  equality keys (index-only lookups in a nested loop); only covering, since a lookup that
  visits the heap is what the planner already judged slower (through the primary key).
- covering index: a SELECT (not ``*``) that reads 1 to :data:`COVERING_MAX_COLUMNS` more
  columns of the table than the keys, when ``relallvisible / relpages`` >=
  :data:`COVERING_MIN_VISIBLE` (below that an index-only scan visits the heap for most
  rows anyway and INCLUDE only makes the index bigger).

:func:`covering_index` says which existing index already serves a candidate: a valid index
of the same method whose leading keys are the candidate's, the equality part in any order
and the rest in order with the same directions (or all reversed: a backward scan), whose
stored columns include the candidate's INCLUDE columns, and whose predicate is the same
(a partial candidate is also served by a full index whose leading equality keys include
the predicate's column). :func:`unique_index` rejects a btree candidate whose equality
part already contains every column of an existing unique index (``(id, email)`` beside the
primary key on ``id``): that index finds the one row already.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream
from sqlglot import exp
from sqlglot.errors import SqlglotError

from explainer.advise.model import IndexCandidate, IndexKey, NoSuggestion, NoSuggestionReason
from explainer.db.catalog import ExistingIndex, TableInfo
from explainer.db.stats import TableStats
from explainer.plan import Plan, PlanNode

#: More key columns than this rarely pays for the index's size and write cost.
MAX_KEY_COLUMNS = 4
#: A table below both sizes (times the loops of the scan) is read as fast without index.
SMALL_TABLE_ROWS = 10_000
SMALL_TABLE_PAGES = 100
#: Key predicates keeping more than this share of the rows make an index not worth it.
LOW_SELECTIVITY = 0.2
#: A constant this rare (share of rows) on a status-like column earns a partial index.
PARTIAL_MAX_SHARE = 0.1
PARTIAL_MAX_DISTINCT = 100
#: INCLUDE at most this many columns, and only with this share of all-visible pages.
COVERING_MAX_COLUMNS = 3
COVERING_MIN_VISIBLE = 0.5
#: A LIKE pattern needs a literal run this long for pg_trgm to extract a trigram.
TRIGRAM_MIN_CHARS = 3

PredicateKind = Literal["eq", "null", "range", "prefix", "pattern", "contains"]


@dataclass(frozen=True, slots=True)
class Predicate:
    """One conjunct on our table, reduced to what index design needs."""

    kind: PredicateKind
    #: The column name, or the expression's SQL as PostgreSQL deparses it.
    key: str
    expression: bool = False
    #: The conjunct as the query wrote it, unqualified, for a partial index's WHERE; None
    #: when it holds a ``$n`` (the planner cannot prove a partial predicate from it).
    text: str | None = None
    #: The literals compared with (``eq``: one, ``IN``: several); empty for ``$n``.
    values: tuple[str, ...] = ()
    #: ``null``: IS NULL (True) or IS NOT NULL (False).
    is_null: bool = True
    #: ``pattern``/``prefix``/``contains``: the literal pattern or document.
    literal: str | None = None
    case_insensitive: bool = False

    @property
    def index_key(self) -> IndexKey:
        return IndexKey(self.key, expression=self.expression)


@dataclass(slots=True)
class TableAccess:
    """How one table is used by one statement (every SELECT/UPDATE/DELETE that names it)."""

    predicates: list[Predicate] = field(default_factory=list)
    join_keys: list[str] = field(default_factory=list)
    #: ORDER BY keys, only when every key of the ORDER BY is our table's.
    order_by: list[IndexKey] = field(default_factory=list)
    limit: bool = False
    #: Columns of our table the statement reads anywhere (select list, predicates...).
    referenced: set[str] = field(default_factory=set)
    #: ``*`` or ``t.*``: every column is read, no index can cover the query.
    star: bool = False
    select_only: bool = True

    def keys_of(self, *kinds: PredicateKind) -> list[Predicate]:
        return [p for p in self.predicates if p.kind in kinds]


@dataclass(slots=True)
class CandidateResult:
    candidates: list[IndexCandidate] = field(default_factory=list)
    rejected: list[NoSuggestion] = field(default_factory=list)
    #: For each ``already_indexed`` rejection's candidate, the existing index serving it.
    covered_by: dict[IndexCandidate, ExistingIndex] = field(default_factory=dict)


# ---------------------------------------------------------------- SQL texts (pglast)


class _PgTexts:
    """Expressions as PostgreSQL's parser deparses them, looked up by sqlglot's rendering.

    sqlglot normalizes what it prints (``DATE_TRUNC('DAY', ...)``), which would make an
    index expression the planner does not match; pglast deparses the query's own tree.
    Column qualifiers are dropped: an index expression names bare columns.
    """

    def __init__(self, sql: str) -> None:
        self.texts: dict[str, str] = {}
        try:
            statements = parse_sql(sql)
        except ParseError:
            return
        nodes = list(_pg_walk(statements))
        for node in nodes:
            if isinstance(node, ast.ColumnRef) and node.fields and len(node.fields) > 1:
                node.fields = node.fields[-1:]
        for node in nodes:
            if isinstance(node, ast.A_Expr | ast.FuncCall | ast.TypeCast | ast.NullTest):
                try:
                    text = RawStream()(node)
                except Exception:  # a node pglast cannot print: keep sqlglot's text
                    continue
                key = _sqlglot_key(text)
                if key is not None:
                    self.texts.setdefault(key, text)

    def text(self, node: exp.Expr) -> str:
        bare = node.copy()
        for column in bare.find_all(exp.Column):
            column.set("table", None)
            column.set("db", None)
        rendered = bare.sql(dialect="postgres")
        return self.texts.get(rendered, rendered)


def _sqlglot_key(text: str) -> str | None:
    try:
        return sqlglot.parse_one(text, read="postgres").sql(dialect="postgres")
    except SqlglotError:
        return None


def _pg_walk(node: object) -> Iterator[ast.Node]:
    if isinstance(node, tuple | list):
        for item in node:
            yield from _pg_walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from _pg_walk(getattr(node, name))


# ---------------------------------------------------------------- reading the statement


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

    def __init__(self, scope: exp.Expr, table: TableInfo, aliases: set[str] | None = None) -> None:
        self.table = table
        self.columns = set(table.columns)
        if aliases is not None:
            self.names = set(aliases)
            self.single_table = True
            return
        tables = _scope_tables(scope)
        self.names = set()
        for t in tables:
            if t.name == table.name and (not t.db or t.db == table.schema):
                self.names.add(t.alias_or_name)
        self.single_table = len(tables) == 1

    @property
    def present(self) -> bool:
        return bool(self.names)

    def owns(self, node: exp.Expr) -> str | None:
        """The column name when ``node`` is a plain column of our table (or a cast of it
        to a text type, which the planner strips when matching an index)."""
        if isinstance(node, exp.Cast) and _text_type(node):
            return self.owns(node.this)
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

    def own_expression(self, node: exp.Expr) -> bool:
        """An expression over our columns only (at least one), with no subquery."""
        if isinstance(node, exp.Column | exp.Literal | exp.Placeholder | exp.Parameter):
            return False
        if node.find(exp.Select) is not None:
            return False
        columns = list(node.find_all(exp.Column))
        return bool(columns) and all(self.owns(c) for c in columns)

    def constant(self, node: exp.Expr) -> bool:
        """No column at all and no subquery: a literal, a ``$n``, ``now()``..."""
        return node.find(exp.Column) is None and node.find(exp.Select) is None


def _text_type(cast: exp.Cast) -> bool:
    to = cast.args.get("to")
    return isinstance(to, exp.DataType) and to.this in (
        exp.DataType.Type.TEXT,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.CHAR,
    )


def _literal(node: exp.Expr) -> str | None:
    """The text of a literal (a string, a number, or a string with a cast)."""
    if isinstance(node, exp.Paren):
        return _literal(node.this)
    if isinstance(node, exp.Cast):
        return _literal(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return f"-{node.this.this}"
    if isinstance(node, exp.Literal):
        return str(node.this)
    if isinstance(node, exp.Boolean):
        return "true" if node.this else "false"
    return None


class _Reader:
    def __init__(self, sql: str, table: TableInfo, texts: _PgTexts) -> None:
        self.sql = sql
        self.table = table
        self.texts = texts

    def key(self, node: exp.Expr, scope: _Scope) -> tuple[str, bool] | None:
        """(key, is_expression) for a side of a comparison that is ours."""
        column = scope.owns(node)
        if column is not None:
            return column, False
        inner = node.this if isinstance(node, exp.Paren) else node
        if scope.own_expression(inner):
            return self.texts.text(inner), True
        return None

    def classify(self, condition: exp.Expr, scope: _Scope, found: TableAccess) -> None:
        text = self._text(condition)
        if isinstance(condition, exp.EQ):
            for mine, other in (
                (condition.left, condition.right),
                (condition.right, condition.left),
            ):
                key = self.key(mine, scope)
                if key is None:
                    continue
                if not key[1] and scope.other_column(other):
                    found.join_keys.append(key[0])
                elif scope.constant(other):
                    value = _literal(other)
                    found.predicates.append(
                        Predicate(
                            "eq",
                            key[0],
                            key[1],
                            text if value is not None else None,
                            (value,) if value is not None else (),
                        )
                    )
                return
        elif isinstance(condition, exp.In):
            key = self.key(condition.this, scope)
            if key and not condition.args.get("query"):
                items = condition.expressions
                if all(scope.constant(i) for i in items):
                    values = tuple(v for i in items if (v := _literal(i)) is not None)
                    literal = len(values) == len(items)
                    found.predicates.append(
                        Predicate(
                            "eq",
                            key[0],
                            key[1],
                            text if literal else None,
                            values if literal else (),
                        )
                    )
        elif isinstance(condition, exp.Is):
            key = self.key(condition.this, scope)
            if key and isinstance(condition.expression, exp.Null):
                is_null = not condition.args.get("negate")
                found.predicates.append(Predicate("null", key[0], key[1], text, is_null=is_null))
        elif isinstance(condition, exp.Not) and isinstance(condition.this, exp.Is):
            inner = condition.this
            key = self.key(inner.this, scope)
            if key and isinstance(inner.expression, exp.Null):
                found.predicates.append(
                    Predicate("null", key[0], key[1], f"{key[0]} IS NOT NULL", is_null=False)
                )
        elif isinstance(condition, exp.GT | exp.GTE | exp.LT | exp.LTE):
            for mine, other in (
                (condition.left, condition.right),
                (condition.right, condition.left),
            ):
                key = self.key(mine, scope)
                if key and scope.constant(other):
                    found.predicates.append(Predicate("range", key[0], key[1], text))
                    return
        elif isinstance(condition, exp.Between):
            key = self.key(condition.this, scope)
            if key:
                found.predicates.append(Predicate("range", key[0], key[1], text))
        elif isinstance(condition, exp.Like | exp.ILike):
            self._pattern(condition, scope, found, text)
        elif isinstance(condition, exp.ArrayContainsAll):
            key = self.key(condition.this, scope)
            if key and scope.constant(condition.expression):
                found.predicates.append(
                    Predicate(
                        "contains", key[0], key[1], text, literal=_literal(condition.expression)
                    )
                )

    def _pattern(
        self, condition: exp.Like | exp.ILike, scope: _Scope, found: TableAccess, text: str
    ) -> None:
        if condition.args.get("negate"):
            # NOT LIKE keeps the rows that do not match: no index (btree or trigram)
            # can find those, so it is no predicate for one.
            return
        key = self.key(condition.this, scope)
        if key is None or not scope.constant(condition.expression):
            return
        pattern = _literal(condition.expression)
        insensitive = isinstance(condition, exp.ILike)
        if not insensitive and pattern is not None and _is_prefix_pattern(pattern):
            found.predicates.append(Predicate("prefix", key[0], key[1], text, literal=pattern))
        else:
            found.predicates.append(
                Predicate(
                    "pattern", key[0], key[1], text, literal=pattern, case_insensitive=insensitive
                )
            )

    def _text(self, condition: exp.Expr) -> str:
        return self.texts.text(condition)


def _is_prefix_pattern(pattern: str) -> bool:
    """``'abc%'`` can use a btree (with the right collation); ``'%abc'`` cannot."""
    return bool(pattern) and pattern[0] not in "%_"


def _trigram_run(pattern: str) -> int:
    """The longest run of literal characters in a LIKE pattern (what pg_trgm can use)."""
    runs = re.split(r"(?<!\\)[%_]", pattern)
    return max((len(r.replace("\\", "")) for r in runs), default=0)


def _order_keys(select: exp.Select, scope: _Scope) -> list[IndexKey]:
    """ORDER BY keys, only when every ORDER BY key is a column of our table."""
    order = select.args.get("order")
    if not isinstance(order, exp.Order):
        return []
    keys = []
    for ordered in order.expressions:
        column = scope.owns(ordered.this)
        if column is None:
            return []
        desc = bool(ordered.args.get("desc"))
        nulls_first = bool(ordered.args.get("nulls_first"))
        # PostgreSQL's default: NULLS LAST ascending, NULLS FIRST descending.
        explicit = None if nulls_first == desc else nulls_first
        keys.append(IndexKey(column, descending=desc, nulls_first=explicit))
    return keys


def _referenced(node: exp.Expr, scope: _Scope, found: TableAccess) -> None:
    """Columns of our table the scope reads (its own level), and whether it reads ``*``."""
    if isinstance(node, exp.Select):
        for item in node.expressions:
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column)
                and isinstance(item.this, exp.Star)
                and (not item.table or item.table in scope.names)
            ):
                found.star = True
    for column in node.find_all(exp.Column):
        name = scope.owns(column)
        if name is not None:
            found.referenced.add(name)
        elif isinstance(column.this, exp.Identifier) and column.table in scope.names:
            found.star = True  # a system column or a whole-row reference: not coverable


def table_access(sql: str, table: TableInfo) -> TableAccess:
    """Collect how ``table`` is used anywhere in the statement."""
    found = TableAccess()
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except SqlglotError:
        return found
    reader = _Reader(sql, table, _PgTexts(sql))
    for node in tree.find_all(exp.Select, exp.Update, exp.Delete):
        scope = _Scope(node, table)
        if not scope.present:
            continue
        if not isinstance(node, exp.Select):
            found.select_only = False
        conditions = list(_conjuncts(_where(node)))
        for join in node.args.get("joins") or []:
            conditions.extend(_conjuncts(join.args.get("on")))
        for condition in conditions:
            reader.classify(condition, scope, found)
        _referenced(node, scope, found)
        if not found.order_by and isinstance(node, exp.Select):
            found.order_by = _order_keys(node, scope)
            found.limit = found.limit or (
                bool(found.order_by) and node.args.get("limit") is not None
            )
    return found


def _where(node: exp.Expr) -> exp.Expr | None:
    where = node.args.get("where")
    return where.this if isinstance(where, exp.Where) else None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------- reading the plan


def _plan_join_keys(plan: Plan | None, node: PlanNode | None, table: TableInfo) -> list[str]:
    """Our join columns from the scan's Filter and, when it is the inner side of a nested
    loop, the loop's Join Filter (``(o.customer_id = c.id)``)."""
    if node is None:
        return []
    texts = [node.filter]
    parent = plan.parent(node) if plan is not None else None
    if parent is not None and parent.node_type == "Nested Loop":
        texts.append(parent.join_filter)
    aliases = {a for a in (node.alias, node.relation) if a}
    found = TableAccess()
    for text in texts:
        if not text:
            continue
        try:
            condition = sqlglot.parse_one(text, read="postgres")
        except SqlglotError:
            continue
        scope = _Scope(condition, table, aliases)
        # Unqualified columns in a scan's own Filter are the scan's; in a Join Filter they
        # would be ambiguous, but PostgreSQL qualifies every column there.
        reader = _Reader(text, table, _PgTexts(""))
        for conjunct in _conjuncts(condition):
            reader.classify(conjunct, scope, found)
    return found.join_keys


def _nested_loop_inner(plan: Plan | None, node: PlanNode | None) -> bool:
    """The scan runs once per outer row: under a nested loop's inner side (possibly
    through a Materialize/Memoize/Hash... chain)."""
    if plan is None or node is None:
        return False
    current = node
    while True:
        parent = plan.parent(current)
        if parent is None:
            return False
        if parent.node_type == "Nested Loop":
            return current.parent_relationship == "Inner"
        if parent.node_type not in ("Materialize", "Memoize", "Bitmap Heap Scan", "Gather"):
            return False
        current = parent


# ---------------------------------------------------------------- deriving


def derive_candidates(
    sql: str,
    table: TableInfo,
    *,
    plan: Plan | None = None,
    node: PlanNode | None = None,
    stats: TableStats | None = None,
    extensions: frozenset[str] = frozenset(),
) -> CandidateResult:
    """The indexes an expert would try for ``table`` in this statement (see the module
    docstring for the rules and thresholds), and why some were not proposed."""
    result = CandidateResult()
    qualified = table.qualified
    small = _small_table(table, stats, node)
    if small is not None:
        result.rejected.append(NoSuggestion(NoSuggestionReason.SMALL_TABLE, small, qualified))
        return result
    access = table_access(sql, table)
    for key in _plan_join_keys(plan, node, table):
        if key not in access.join_keys:
            access.join_keys.append(key)
    rows = _rows(table, stats)

    proposed: list[tuple[IndexCandidate, int]] = []  # candidate, size of its equality part
    primary = _btree(access, table, joins_lead=_nested_loop_inner(plan, node))
    if primary is not None:
        candidate, equality, predicates, ordered = primary
        unselective = _low_selectivity(predicates, access, stats, rows, ordered)
        if unselective is not None:
            result.rejected.append(
                NoSuggestion(NoSuggestionReason.LOW_SELECTIVITY, unselective, qualified, candidate)
            )
            selective = _selective_join(access, table, plan, node, stats)
            if selective is not None:
                proposed.append(selective)
        else:
            proposed.append((candidate, equality))
            for partial in _partials(access, candidate, equality, predicates, stats, rows):
                proposed.append(partial)
            covering = _covering(access, candidate, stats)
            if covering is not None:
                proposed.append((covering, equality))
            joined = _join_alternative(access, table, candidate)
            if joined is not None:
                proposed.append(joined)
    gins, missing = _gins(access, table, stats, extensions)
    proposed.extend((g, 0) for g in gins)
    result.rejected.extend(missing)

    primary_covered = False
    for index, (candidate, equality) in enumerate(proposed):
        if any(candidate == c for c in result.candidates):
            continue
        existing = covering_index(candidate, table.indexes, equality=equality)
        detail = f"already covers ({', '.join(candidate.columns)})"
        if existing is None:
            existing = unique_index(candidate, table.indexes, equality=equality)
            if existing is not None:
                detail = (
                    f"is unique on ({', '.join(existing.columns)}): it finds the one row "
                    f"({', '.join(candidate.columns)}) would"
                )
        if existing is None and candidate.using == "btree" and primary_covered:
            continue  # the query is served already: no btree alternative on top
        if existing is not None:
            primary_covered = primary_covered or index == 0
            result.covered_by[candidate] = existing
            result.rejected.append(
                NoSuggestion(
                    NoSuggestionReason.ALREADY_INDEXED,
                    f"{existing.name} {detail}",
                    qualified,
                    candidate,
                )
            )
            continue
        result.candidates.append(candidate)
    if not proposed and not result.rejected:
        result.rejected.append(
            NoSuggestion(
                NoSuggestionReason.NO_SARGABLE_PREDICATE,
                f"no predicate on {qualified} that an index could serve",
                qualified,
            )
        )
    return result


def _rows(table: TableInfo, stats: TableStats | None) -> float:
    return stats.reltuples if stats is not None else table.estimated_rows


def _small_table(table: TableInfo, stats: TableStats | None, node: PlanNode | None) -> str | None:
    rows = _rows(table, stats)
    if rows < 0:
        return None  # never analyzed: unknown, not small
    pages = stats.relpages if stats is not None else table.total_bytes // 8192
    loops = max(node.actual_loops or 1.0, 1.0) if node is not None else 1.0
    if rows * loops >= SMALL_TABLE_ROWS or pages * loops >= SMALL_TABLE_PAGES:
        return None
    scanned = f" scanned {loops:.0f} times" if loops > 1 else ""
    return (
        f"{table.qualified} has about {rows:.0f} rows in {pages} pages{scanned}: below "
        f"{SMALL_TABLE_ROWS} rows and {SMALL_TABLE_PAGES} pages an index saves nothing"
    )


def _btree(
    access: TableAccess, table: TableInfo, *, joins_lead: bool
) -> tuple[IndexCandidate, int, list[Predicate], bool] | None:
    """(candidate, size of the equality part, its key predicates, serves ORDER BY LIMIT)."""
    # IS NOT NULL keeps what a btree cannot seek to: a partial index's business only.
    equality_preds = _unique_preds([p for p in access.keys_of("eq", "null") if p.is_null])
    keys: list[IndexKey] = [p.index_key for p in equality_preds]
    used: list[Predicate] = list(equality_preds)
    joins = [j for j in _unique(access.join_keys) if j not in {k.text for k in keys}]
    if joins and (joins_lead or not access.predicates):
        keys.extend(IndexKey(j) for j in joins)
    equality = len(keys)
    names = {k.text for k in keys}
    ranges = [p for p in _unique_preds(access.keys_of("range", "prefix")) if p.key not in names]
    order = [k for k in access.order_by if k.text not in names]
    ordered = False
    if ranges:
        first = ranges[0]
        if order and order[0].text == first.key and first.kind == "range":
            keys.extend(order)  # the range column serves the ORDER BY too
            ordered = True
        elif first.kind == "prefix":
            keys.append(IndexKey(first.key, first.expression, opclass="text_pattern_ops"))
        else:
            keys.append(first.index_key)
        used.append(first)
    elif order and (equality or access.limit):
        keys.extend(order)
        ordered = True
    if not keys:
        return None
    keys = _unique_keys(keys)[:MAX_KEY_COLUMNS]
    candidate = IndexCandidate(table.schema, table.name, tuple(keys))
    return candidate, min(equality, len(keys)), used, ordered and access.limit


def _unique_preds(predicates: list[Predicate]) -> list[Predicate]:
    seen: dict[str, Predicate] = {}
    for p in predicates:
        seen.setdefault(p.key, p)
    return list(seen.values())


def _unique_keys(keys: list[IndexKey]) -> list[IndexKey]:
    seen: dict[str, IndexKey] = {}
    for k in keys:
        seen.setdefault(k.text, k)
    return list(seen.values())


def _selectivity(p: Predicate, stats: TableStats | None, rows: float) -> float | None:
    if stats is None or p.expression:
        return None
    column = stats.column(p.key)
    if column is None or not column.analyzed:
        return None
    if p.kind == "null":
        return column.null_frac if p.is_null else 1.0 - column.null_frac
    if p.kind == "eq":
        if not p.values:
            # A $n: the average share hides a rare value the application may be the one
            # sending ('pending' of 'pending'/'done'): unknown, the verification judges.
            if any(f <= LOW_SELECTIVITY for f in column.most_common_freqs):
                return None
            return column.equality_selectivity(None, rows)
        shares = [column.equality_selectivity(v, rows) for v in p.values]
        known = [s for s in shares if s is not None]
        return min(sum(known), 1.0) if len(known) == len(shares) else None
    return None  # ranges and patterns: no histogram read, the verification judges them


def _low_selectivity(
    predicates: list[Predicate],
    access: TableAccess,
    stats: TableStats | None,
    rows: float,
    ordered_limit: bool,
) -> str | None:
    if ordered_limit or not predicates or (access.join_keys and not access.predicates):
        return None
    shares = [(p, _selectivity(p, stats, rows)) for p in predicates]
    if any(s is None for _, s in shares):
        return None
    combined = 1.0
    for _, share in shares:
        combined *= share or 0.0
    if combined <= LOW_SELECTIVITY:
        return None
    figures = ", ".join(f"{p.text or p.key} keeps {s:.0%}" for p, s in shares if s is not None)
    return (
        f"{figures} of about {rows:.0f} rows: more than {LOW_SELECTIVITY:.0%}, "
        "a sequential scan reads them as fast as an index"
    )


def _partials(
    access: TableAccess,
    candidate: IndexCandidate,
    equality: int,
    predicates: list[Predicate],
    stats: TableStats | None,
    rows: float,
) -> Iterator[tuple[IndexCandidate, int]]:
    if stats is None:
        return
    for p in _unique_preds(access.keys_of("eq", "null")):
        if p.text is None or p.expression or p.kind not in ("eq", "null"):
            continue
        column = stats.column(p.key)
        if column is None or not column.analyzed:
            continue
        if p.kind == "eq":
            if len(p.values) != 1:
                continue
            share = column.frequency(p.values[0])
            distinct = column.distinct_count(rows)
            if share is None or share > PARTIAL_MAX_SHARE or distinct > PARTIAL_MAX_DISTINCT:
                continue
        else:
            share = column.null_frac if p.is_null else 1.0 - column.null_frac
            if share > PARTIAL_MAX_SHARE:
                continue
        keys = tuple(k for k in candidate.keys if k.text != p.key)
        if not keys:
            continue
        was_equality = any(k.text == p.key for k in candidate.keys[:equality])
        yield (
            IndexCandidate(candidate.schema, candidate.table, keys, where=p.text),
            equality - 1 if was_equality else equality,
        )


def coverable_columns(access: TableAccess, stats: TableStats | None) -> frozenset[str] | None:
    """The columns of the table the statement reads, when an index could cover them (a
    SELECT without ``*``, on a table whose all-visible share makes index-only scans
    worth it: :data:`COVERING_MIN_VISIBLE`); None otherwise."""
    if not access.select_only or access.star or stats is None:
        return None
    visible = stats.visible_share
    if visible is None or visible < COVERING_MIN_VISIBLE:
        return None
    return frozenset(access.referenced)


def _covering(
    access: TableAccess, candidate: IndexCandidate, stats: TableStats | None
) -> IndexCandidate | None:
    referenced = coverable_columns(access, stats)
    if referenced is None:
        return None
    if any(k.expression for k in candidate.keys):
        keyed = {k.text for k in candidate.keys}
    else:
        keyed = set(candidate.column_names)
    extra = sorted(referenced - keyed)
    if not extra or len(extra) > COVERING_MAX_COLUMNS:
        return None
    return IndexCandidate(candidate.schema, candidate.table, candidate.keys, include=tuple(extra))


def _join_alternative(
    access: TableAccess, table: TableInfo, primary: IndexCandidate
) -> tuple[IndexCandidate, int] | None:
    """An index on the join keys (then the equality keys), letting the planner choose a
    nested loop into this table, when the primary candidate does not lead with them."""
    joins = _unique(access.join_keys)
    if not joins or primary.column_names[: len(joins)] == tuple(joins):
        return None
    equality = [
        p.key
        for p in _unique_preds(access.keys_of("eq", "null"))
        if p.is_null and p.key not in joins
    ]
    keys = [IndexKey(j) for j in joins] + [IndexKey(e) for e in equality]
    candidate = IndexCandidate(table.schema, table.name, tuple(keys[:MAX_KEY_COLUMNS]))
    return None if candidate == primary else (candidate, len(candidate.keys))


#: Scans whose rows a join passes through, on the way up to the join.
_JOIN_PASSTHROUGH = frozenset({"Hash", "Gather", "Gather Merge", "Materialize", "Sort"})


def _join_keeps(plan: Plan | None, node: PlanNode | None) -> float | None:
    """Rows of the hash or merge join above a sequential scan per row the scan passes on
    (analyzed figures when there are, else the estimates: both sides the same kind, per
    process alike in a parallel plan); None when the scan does not feed such a join."""
    if plan is None or node is None or node.node_type not in ("Seq Scan", "Parallel Seq Scan"):
        return None
    current = plan.parent(node)
    while current is not None and current.node_type in _JOIN_PASSTHROUGH:
        current = plan.parent(current)
    if current is None or current.node_type not in ("Hash Join", "Merge Join"):
        return None
    joined, scanned = current.total_rows, node.total_rows
    if joined is None or scanned is None:
        joined, scanned = current.plan_rows, node.plan_rows
    return joined / scanned if scanned > 0 else None


def _selective_join(
    access: TableAccess,
    table: TableInfo,
    plan: Plan | None,
    node: PlanNode | None,
    stats: TableStats | None,
) -> tuple[IndexCandidate, int] | None:
    """A covering index on the join keys, then the equality keys, for a table whose own
    filter keeps too much for an index but whose hash or merge join keeps at most
    :data:`LOW_SELECTIVITY` of the rows the scan passes on: the planner can then look the few
    joined rows up in a nested loop, reading the index alone (TPC-H Q10: all of
    ``lineitem`` read and hashed for ``l_returnflag = 'R'``, 25%, of which the join with
    one quarter's orders keeps 8%). Covering, or not at all: looking the rows up in the
    heap is what the planner already judged slower than the scan (an existing index on
    the join keys, a primary key, is there and unused)."""
    joins = _unique(access.join_keys)
    covered = coverable_columns(access, stats)
    keeps = _join_keeps(plan, node)
    if not joins or covered is None or keeps is None or keeps > LOW_SELECTIVITY:
        return None
    equality = [
        p.index_key
        for p in _unique_preds(access.keys_of("eq", "null"))
        if p.is_null and p.key not in joins
    ]
    keys = _unique_keys([IndexKey(j) for j in joins] + equality)[:MAX_KEY_COLUMNS]
    keyed = {k.text for k in keys}
    extra = sorted(covered - keyed)
    if any(k.expression for k in keys) or len(extra) > COVERING_MAX_COLUMNS:
        return None
    candidate = IndexCandidate(table.schema, table.name, tuple(keys), include=tuple(extra))
    return candidate, len(keys)


def _gins(
    access: TableAccess, table: TableInfo, stats: TableStats | None, extensions: frozenset[str]
) -> tuple[list[IndexCandidate], list[NoSuggestion]]:
    candidates: list[IndexCandidate] = []
    rejected: list[NoSuggestion] = []
    for p in _unique_preds(access.keys_of("pattern")):
        if p.literal is not None and _trigram_run(p.literal) < TRIGRAM_MIN_CHARS:
            rejected.append(
                NoSuggestion(
                    NoSuggestionReason.NO_SARGABLE_PREDICATE,
                    f"{p.text}: fewer than {TRIGRAM_MIN_CHARS} literal characters, "
                    "a trigram index cannot narrow the search",
                    table.qualified,
                )
            )
            continue
        candidate = IndexCandidate(
            table.schema,
            table.name,
            (IndexKey(p.key, p.expression, opclass="gin_trgm_ops"),),
            using="gin",
        )
        if "pg_trgm" in extensions:
            candidates.append(candidate)
        else:
            rejected.append(
                NoSuggestion(
                    NoSuggestionReason.NEEDS_EXTENSION,
                    f"{p.text} needs a trigram index: CREATE EXTENSION pg_trgm "
                    "(it is not installed in this database)",
                    table.qualified,
                    candidate,
                )
            )
    for p in _unique_preds(access.keys_of("contains")):
        opclass = _containment_opclass(p, stats)
        if opclass == "":
            continue
        candidates.append(
            IndexCandidate(
                table.schema,
                table.name,
                (IndexKey(p.key, p.expression, opclass=opclass),),
                using="gin",
            )
        )
    return candidates, rejected


def _containment_opclass(p: Predicate, stats: TableStats | None) -> str | None:
    """``jsonb_path_ops`` for jsonb, the default (None) for arrays, "" when no GIN helps."""
    column = stats.column(p.key) if stats is not None and not p.expression else None
    if column is not None and column.type:
        if column.type == "jsonb":
            return "jsonb_path_ops"
        return None if column.type.endswith("[]") else ""
    try:
        document = json.loads(p.literal or "")
    except ValueError:
        return None
    return "jsonb_path_ops" if isinstance(document, dict | list) else None


# ---------------------------------------------------------------- existing indexes


@dataclass(frozen=True, slots=True)
class _ExistingKey:
    text: str  # normalized
    descending: bool
    nulls_first: bool
    opclass: str | None


def _normalize(text: str) -> str:
    """Expression/predicate text compared loosely the way pg_get_indexdef prints it:
    ``lower((email)::text)`` and ``lower(email)`` are the same key."""
    text = re.sub(r"::(text|character varying|varchar|bpchar)\b", "", text)
    return re.sub(r'[\s()"]', "", text)


def _existing_keys(index: ExistingIndex) -> list[_ExistingKey] | None:
    try:
        statement = parse_sql(index.definition)[0].stmt
    except (ParseError, IndexError):
        statement = None
    if not isinstance(statement, ast.IndexStmt):
        return [_ExistingKey(_normalize(c), False, False, None) for c in index.columns]
    elems = statement.indexParams or ()
    # The key texts as PostgreSQL prints each column (pg_get_indexdef), the rest from the tree.
    texts = list(index.columns) if len(index.columns) == len(elems) else None
    keys = []
    for position, elem in enumerate(elems):
        if texts is not None:
            text = texts[position]
        else:
            text = elem.name if elem.name else RawStream()(elem.expr)
        # SortByDir: 2 is DESC; SortByNulls: 0 default, 1 FIRST, 2 LAST.
        desc = int(elem.ordering or 0) == 2
        nulls = int(elem.nulls_ordering or 0)
        nulls_first = desc if nulls == 0 else nulls == 1
        opclass = elem.opclass[-1].sval if elem.opclass else None
        keys.append(_ExistingKey(_normalize(text), bool(desc), bool(nulls_first), opclass))
    return keys


def _wanted(key: IndexKey) -> _ExistingKey:
    nulls_first = key.descending if key.nulls_first is None else key.nulls_first
    return _ExistingKey(_normalize(key.text), key.descending, nulls_first, key.opclass)


def covering_index(
    candidate: IndexCandidate,
    existing: tuple[ExistingIndex, ...],
    *,
    equality: int = 0,
) -> ExistingIndex | None:
    """An existing valid index that already serves the candidate, if any.

    ``equality`` is the number of leading candidate keys compared by equality: only those
    may appear in another order in the existing index (a btree serves equality on its
    leading columns whatever their order); the rest must follow in order, with the same
    directions or all of them reversed (a backward scan).
    """
    wanted = [_wanted(k) for k in candidate.keys]
    for index in existing:
        if not index.is_valid or not _same_method(candidate, index):
            continue
        keys = _existing_keys(index)
        if keys is None:
            continue
        stored = {k.text for k in keys} | {_normalize(c) for c in index.include}
        if not {_normalize(c) for c in candidate.include} <= stored:
            continue
        if candidate.where is not None and index.predicate is None:
            # A full index leading with the predicate's column(s) serves the partial one.
            where_key = _predicate_column(candidate.where)
            if where_key is not None and _serves(
                keys, [_ExistingKey(where_key, False, False, None), *wanted], equality + 1
            ):
                return index
            continue
        if _normalize(candidate.where or "") != _normalize(index.predicate or ""):
            continue
        if _serves(keys, wanted, equality):
            return index
    return None


def unique_index(
    candidate: IndexCandidate, existing: tuple[ExistingIndex, ...], *, equality: int
) -> ExistingIndex | None:
    """An existing valid unique index on columns the candidate's equality part all
    compares: every lookup the candidate would serve already finds at most one row by it,
    so the candidate adds nothing (``(id, email)`` beside the primary key on ``id``).

    Only the equality part counts: after a unique match there is nothing left to order or
    range over. A partial unique index proves uniqueness only for its own rows: ignored.
    """
    if candidate.using != "btree" or equality <= 0:
        return None
    compared = {_normalize(k.text) for k in candidate.keys[:equality]}
    for index in existing:
        if not (index.is_unique or index.is_primary) or not index.is_valid:
            continue
        if index.predicate is not None or not index.columns:
            continue
        if {_normalize(c) for c in index.columns} <= compared:
            return index
    return None


def _predicate_column(where: str) -> str | None:
    match = re.match(r"^\s*\"?([a-z_][a-z0-9_]*)\"?\s*=\s*'", where)
    return match.group(1) if match else None


def _same_method(candidate: IndexCandidate, index: ExistingIndex) -> bool:
    if index.method == candidate.using:
        return True
    # A hash index serves a single equality key as a btree would.
    return candidate.using == "btree" and index.method == "hash" and len(candidate.keys) == 1


def _serves(keys: list[_ExistingKey], wanted: list[_ExistingKey], equality: int) -> bool:
    if len(keys) < len(wanted):
        return False
    equality = min(equality, len(wanted))
    head = keys[: len(wanted)]
    if {k.text for k in head[:equality]} != {w.text for w in wanted[:equality]}:
        return False
    if any(not _opclass_serves(w, _find(head, w.text)) for w in wanted):
        return False
    rest = list(zip(head[equality:], wanted[equality:], strict=True))
    if any(k.text != w.text for k, w in rest):
        return False
    same = all(k.descending == w.descending and k.nulls_first == w.nulls_first for k, w in rest)
    flipped = all(k.descending != w.descending and k.nulls_first != w.nulls_first for k, w in rest)
    return same or flipped


def _find(keys: list[_ExistingKey], text: str) -> _ExistingKey | None:
    return next((k for k in keys if k.text == text), None)


def _opclass_serves(wanted: _ExistingKey, have: _ExistingKey | None) -> bool:
    if have is None or wanted.opclass == have.opclass:
        return True
    # jsonb_ops (the default) also serves @>, only larger.
    return wanted.opclass == "jsonb_path_ops" and have.opclass in (None, "jsonb_ops")


# ---------------------------------------------------------------- the former API


def derive_candidate(sql: str, table: TableInfo) -> IndexCandidate | None:
    """The first btree candidate for ``table`` without plan or statistics (the former API;
    :func:`derive_candidates` replaces it)."""
    access = table_access(sql, table)
    primary = _btree(access, table, joins_lead=False)
    return primary[0] if primary is not None else None
