"""ORM habits other than N+1, each found from a documented SQL pattern (docs/rules.md).

Every rule reads only what a log shows: the statements' text and logged values (the
group's example and samples), the order a session ran them in (``Workload.traces``, with
each statement's value identity and time), and, for the wide-row rules, the average
width of each column. What the SQL cannot show is said in the finding's ``caveat``
instead of being guessed, and a rule whose evidence is missing stays quiet.

=========================== ===============================================================
``query-count``             ``SELECT count(*) AS count_1 FROM (SELECT ...) AS anon_1``:
                            legacy ``Query.count()``
``exists-instead-of-first`` ``SELECT <every column> ... LIMIT 1``, no ORDER BY, large
                            columns selected: ``.first()`` of a whole wide row
``wide-row``                every column of a table selected, some of them >= 1 kB a row
``offset-pagination``       ``OFFSET`` >= 1,000 seen, or a session walking pages that far
``large-in-list``           ``IN (...)`` of >= 1,000 items
``row-at-a-time-writes``    >= 10 single-row INSERT/UPDATE/DELETE of one shape in one
                            transaction, one round trip each (not an executemany batch)
``repeated-query``          one SELECT with the same values >= 3 times in one transaction
=========================== ===============================================================

The rewrites are code in the user's terms: class and attribute names from the
:class:`~explainer.orm.models.ModelMap` when given, else sqlacodegen-style names from the
tables (``order_items`` -> ``OrderItem``, the name the N+1 findings use), with the SQL the
new form emits, built as text in the form SQLAlchemy 2 emits it (the user's models are
never imported in explainer's process).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from explainer.advise.model import IndexCandidate, IndexKey
from explainer.capture.model import CapturedQuery
from explainer.db.stats import TableStats
from explainer.orm.loaders import Alternative
from explainer.orm.models import MappedClass, ModelMap, table_key
from explainer.orm.nplus1 import class_name, segments
from explainer.workload.model import QueryGroup, SessionTrace, Workload

__all__ = [
    "RULES",
    "OrmFinding",
    "PatternRewrite",
    "RuleId",
    "Thresholds",
    "detect_patterns",
]

RuleId = Literal[
    "query-count",
    "exists-instead-of-first",
    "wide-row",
    "offset-pagination",
    "large-in-list",
    "row-at-a-time-writes",
    "repeated-query",
]
RULES: tuple[RuleId, ...] = (
    "query-count",
    "exists-instead-of-first",
    "wide-row",
    "offset-pagination",
    "large-in-list",
    "row-at-a-time-writes",
    "repeated-query",
)
NamedFrom = Literal["models", "reflected", "sql"]


@dataclass(frozen=True)
class Thresholds:
    """Every trigger's number, documented in docs/rules.md."""

    large_column_bytes: float = 1024
    """A column is large when its average width is at least this (pg_stats avg_width)."""
    offset_rows: int = 1000
    """OFFSET seen (or reached by a walk of pages) at least this."""
    in_list_items: int = 1000
    """Items of one IN list; selectinload's chunks of 500 stay under it."""
    write_rows: int = 10
    """Single-row writes of one shape, with different values, in one transaction."""
    batch_ms_per_row: float = 0.2
    """A run that waited less than this per row between its statements (and under one ms
    in all) is one driver batch."""
    repeats: int = 3
    """Executions of one SELECT with the same values in one transaction."""
    max_gap_ms: int = 1000
    """Outside transactions, a request window ends at a pause longer than this."""


@dataclass(frozen=True)
class PatternRewrite:
    """The fix as code: imports, the statement before and after, and what it sends."""

    imports: tuple[str, ...]
    before: str
    after: str
    sql_after: tuple[str, ...]
    """The statements the new form emits (``$n`` for values, ``...`` for repeats)."""
    round_trips_before: int | None = None
    round_trips_after: int | None = None
    index: IndexCandidate | None = None
    """An index the new form needs (keyset pagination's sort key), for render/ to show in
    the models' terms."""


@dataclass
class OrmFinding:
    """One ORM pattern: the shapes involved, its numbers, and how to write it instead."""

    rule: RuleId
    message: str
    """One sentence with the numbers that triggered the rule."""
    shapes: tuple[QueryGroup, ...]
    table: str
    """As :func:`explainer.orm.models.table_key` writes it."""
    model_class: str
    named_from: NamedFrom
    executions: int
    """Executions of the flagged statements (all of the shape's, or of the runs found)."""
    occurrences: int
    """Runs found in the traces (trace rules), else the shape's calls."""
    database_ms: float | None
    """Server time of those executions, when the log has durations (the shape's total;
    for trace rules executions x the shape's mean)."""
    rewrite: PatternRewrite
    numbers: dict[str, int | float | str] = field(default_factory=dict)
    alternatives: tuple[Alternative, ...] = ()
    caveat: str | None = None
    """What the SQL cannot show, which decides whether the rewrite applies."""
    defined_at: str | None = None
    """``file:line`` of the class (or of the attribute's declaration), with models."""
    location: str | None = None
    """The application line that ran the flagged shape most often (``path:line``), when
    the input has call sites (the in-app capture)."""


def detect_patterns(
    workload: Workload,
    *,
    models: ModelMap | None = None,
    table_stats: Mapping[str, TableStats] | None = None,
    column_widths: Mapping[str, Mapping[str, float]] | None = None,
    thresholds: Thresholds | None = None,
) -> list[OrmFinding]:
    """The ORM pattern findings of a workload (built with ``keep_order=True`` for the two
    trace rules), the costliest first.

    ``table_stats`` and ``column_widths`` are keyed by table (``t`` or ``schema.t``);
    widths are average bytes per row of each column. ``TableStats`` gives widths when its
    ``ColumnStats`` carry an ``avg_width``; ``column_widths`` wins where both give one.
    Without widths the rules ``wide-row`` and ``exists-instead-of-first`` stay quiet.
    """
    limits = thresholds or Thresholds()
    context = _Context(workload, models, _widths(table_stats, column_widths), limits)
    findings: list[OrmFinding] = []
    for index, group in enumerate(workload.shapes):
        statement = context.statement(index)
        if statement is None:
            continue
        findings.extend(_count_wrapper(statement, group, context))
        findings.extend(_wide_rows(statement, group, context))
        findings.extend(_offsets(index, statement, group, context))
        findings.extend(_in_lists(statement, group, context))
    findings.extend(_write_bursts(context))
    findings.extend(_repeats(context))
    for finding in findings:
        if finding.location is None and finding.shapes:
            finding.location = finding.shapes[0].location
    return sorted(
        findings,
        key=lambda f: (f.database_ms is None, -(f.database_ms or 0.0), -f.executions, f.rule),
    )


# -- shared context ---------------------------------------------------------------------

_CATALOG = re.compile(r"(?:pg_catalog|information_schema)\.|pg_", re.IGNORECASE)
_VERBS = ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")


def _widths(
    stats: Mapping[str, TableStats] | None, widths: Mapping[str, Mapping[str, float]] | None
) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for key, table in (stats or {}).items():
        for name, column in table.columns.items():
            width = column.avg_width or None
            if isinstance(width, int | float):
                found.setdefault(_key(key), {})[name] = float(width)
    for key, columns in (widths or {}).items():
        found.setdefault(_key(key), {}).update({c: float(w) for c, w in columns.items()})
    return found


def _key(table: str) -> str:
    schema, _, name = table.rpartition(".")
    return table_key(name, schema or None)


@dataclass(frozen=True)
class _Statement:
    tree: exp.Expression
    sql: str


class _Context:
    """The workload, the names and widths, and each shape's parse tree (parsed once)."""

    def __init__(
        self,
        workload: Workload,
        models: ModelMap | None,
        widths: dict[str, dict[str, float]],
        limits: Thresholds,
    ) -> None:
        self.workload = workload
        self.models = models
        self.widths = widths
        self.limits = limits
        self._trees: dict[int, _Statement | None] = {}

    def statement(self, shape: int) -> _Statement | None:
        if shape not in self._trees:
            group = self.workload.shapes[shape]
            self._trees[shape] = None if group.is_utility else _parse(group.example.sql)
        return self._trees[shape]

    def mapped(self, table: str) -> MappedClass | None:
        return self.models.for_table(table) if self.models is not None else None

    def class_of(self, table: str) -> str:
        mapped = self.mapped(table)
        return mapped.name if mapped is not None else class_name(table)

    def attr(self, table: str, column: str) -> str:
        """``Doc.body``: the attribute holding ``column`` (the column's name unmapped)."""
        mapped = self.mapped(table)
        key = mapped.attribute(column) if mapped is not None else None
        return f"{self.class_of(table)}.{key or column}"

    def named_from(self, table: str) -> NamedFrom:
        if self.models is not None and self.mapped(table) is not None:
            return self.models.source
        return "sql"

    def defined_at(self, table: str, column: str | None = None) -> str | None:
        mapped = self.mapped(table)
        if mapped is None or mapped.file is None:
            return None
        key = mapped.attribute(column) if column is not None else None
        line = mapped.attribute_lines.get(key, mapped.line) if key else mapped.line
        return f"{mapped.file}:{line}" if line is not None else mapped.file

    def all_columns(self, table: str) -> set[str] | None:
        """Every column of the table: the mapped ones, else those with a known width."""
        mapped = self.mapped(table)
        if mapped is not None and mapped.columns:
            return set(mapped.columns)
        widths = self.widths.get(table)
        return set(widths) if widths else None


def _parse(sql: str) -> _Statement | None:
    head = sql.lstrip()[:6].upper()
    if not head.startswith(_VERBS):
        return None
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except (SqlglotError, ValueError, RecursionError):
        return None
    if not isinstance(tree, exp.Expression) or any(
        _is_catalog(t) for t in tree.find_all(exp.Table)
    ):
        return None
    return _Statement(tree, sql)


def _is_catalog(table: exp.Table) -> bool:
    return bool(_CATALOG.match(f"{table.db}." if table.db else table.name))


def _table_name(table: exp.Table) -> str:
    return table_key(table.name, table.db or None)


def _aliases(select: exp.Select) -> dict[str, str]:
    """Alias or name -> table, for the tables of this SELECT (not of its subqueries)."""
    found: dict[str, str] = {}
    sources = [select.args.get("from_") or select.args.get("from")]
    sources += [join for join in select.args.get("joins") or ()]
    for source in sources:
        table = source.this if source is not None else None
        if isinstance(table, exp.Table):
            found[table.alias_or_name] = _table_name(table)
            found.setdefault(table.name, _table_name(table))
    return found


def _unwrap(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Cast | exp.Paren):
        node = node.this
    return node


def _value_text(node: exp.Expression, parameters: Sequence[str | None]) -> str | None:
    """The text of a literal, or of the logged value of ``$n``; None when unknown."""
    node = _unwrap(node)
    if isinstance(node, exp.Literal):
        return str(node.this)
    if isinstance(node, exp.Parameter | exp.Placeholder):
        number = node.this.this if isinstance(node.this, exp.Literal) else node.name
        try:
            index = int(number) - 1
        except (TypeError, ValueError):
            return None
        if 0 <= index < len(parameters):
            return parameters[index]
    return None


def _int_value(node: exp.Expression | None, parameters: Sequence[str | None]) -> int | None:
    if node is None:
        return None
    text = _value_text(node, parameters)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _executions(group: QueryGroup) -> list[CapturedQuery]:
    """The logged executions kept: the example and up to five samples."""
    return [group.example, *(s for s in group.samples if s is not group.example)]


def _projections(select: exp.Select) -> dict[str, list[str]]:
    """Table -> the columns this SELECT returns from it (qualified or single-table)."""
    aliases = _aliases(select)
    single = next(iter(set(aliases.values()))) if len(set(aliases.values())) == 1 else None
    found: dict[str, list[str]] = {}
    for projection in select.expressions:
        column = projection.unalias() if isinstance(projection, exp.Alias) else projection
        if not isinstance(column, exp.Column) or isinstance(column.this, exp.Star):
            continue
        table = aliases.get(column.table) if column.table else single
        if table is not None:
            found.setdefault(table, []).append(column.name)
    return found


def _limit_node(select: exp.Select, key: str) -> exp.Expression | None:
    node = select.args.get(key)
    return node.expression if isinstance(node, exp.Limit | exp.Offset) else None


def _ms(group: QueryGroup, executions: int | None = None) -> float | None:
    if executions is None:
        return group.total_ms
    mean = group.mean_ms
    return None if mean is None else mean * executions


# -- where clauses in the user's terms ---------------------------------------------------

_OPERATORS: dict[type[exp.Expression], str] = {
    exp.EQ: "==",
    exp.NEQ: "!=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}


def _py_value(node: exp.Expression, column: str) -> str:
    node = _unwrap(node)
    if isinstance(node, exp.Literal):
        return repr(str(node.this)) if node.is_string else str(node.this)
    if isinstance(node, exp.Boolean):
        return "True" if node.this else "False"
    return column  # a bound value: named after its column, as the user's variable


def _where_code(where: exp.Expression | None, aliases: Mapping[str, str], ctx: _Context) -> str:
    """``Doc.owner_id == owner_id, Doc.title != 'x'``; ``...`` for what does not translate."""
    if where is None:
        return ""
    node = where.this if isinstance(where, exp.Where) else where
    terms = node.flatten() if isinstance(node, exp.And) else [node]
    parts = []
    for term in terms:
        code = _term_code(term, aliases, ctx) if isinstance(term, exp.Expression) else None
        parts.append(code or "...  # as in the original query")
    return ", ".join(parts)


def _column_attr(column: exp.Column, aliases: Mapping[str, str], ctx: _Context) -> str | None:
    table = aliases.get(column.table) if column.table else None
    if table is None and len(set(aliases.values())) == 1:
        table = next(iter(aliases.values()))
    return ctx.attr(table, column.name) if table is not None else None


def _term_code(term: exp.Expression, aliases: Mapping[str, str], ctx: _Context) -> str | None:
    term = _unwrap(term)
    operator = _OPERATORS.get(type(term))
    if operator is not None:
        left, right = _unwrap(term.this), _unwrap(term.expression)
        if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
            left, right = right, left
            operator = {">": "<", "<": ">", ">=": "<=", "<=": ">="}.get(operator, operator)
        if isinstance(left, exp.Column) and not isinstance(right, exp.Column):
            attr = _column_attr(left, aliases, ctx)
            return None if attr is None else f"{attr} {operator} {_py_value(right, left.name)}"
        return None
    if isinstance(term, exp.Is) and isinstance(term.this, exp.Column):
        attr = _column_attr(term.this, aliases, ctx)
        return None if attr is None else f"{attr}.is_(None)"
    if isinstance(term, exp.In) and isinstance(term.this, exp.Column):
        attr = _column_attr(term.this, aliases, ctx)
        return None if attr is None else f"{attr}.in_({term.this.name}s)"
    return None


def _select_code(select: exp.Select, ctx: _Context) -> str:
    """``select(Doc)`` when every column of one table is selected, else its columns."""
    projections = _projections(select)
    if len(projections) == 1:
        table, columns = next(iter(projections.items()))
        every = ctx.all_columns(table)
        if every is not None and every <= set(columns) and len(columns) == len(select.expressions):
            return f"select({ctx.class_of(table)})"
    names = []
    aliases = _aliases(select)
    for projection in select.expressions:
        column = projection.unalias() if isinstance(projection, exp.Alias) else projection
        if isinstance(column, exp.Column):
            attr = _column_attr(column, aliases, ctx)
            names.append(attr or column.sql(dialect="postgres"))
        else:
            names.append(f"text({projection.sql(dialect='postgres')!r})")
    return f"select({', '.join(names)})"


def _statement_code(
    select: exp.Select,
    ctx: _Context,
    head: str | None = None,
    *,
    tail: bool = True,
    parameters: Sequence[str | None] = (),
) -> str:
    """``select(Doc).where(Doc.owner_id == owner_id).order_by(Doc.id).limit(1)``; with
    ``tail`` False without ORDER BY and LIMIT (the caller writes its own)."""
    code = head or _select_code(select, ctx)
    aliases = _aliases(select)
    where = _where_code(select.args.get("where"), aliases, ctx)
    if where:
        code += f".where({where})"
    if not tail:
        return code
    tables = list(dict.fromkeys(aliases.values()))
    keys = _order_keys(select, aliases, tables[0]) if tables else []
    if keys:
        order = ", ".join(f"{ctx.attr(t, c)}.desc()" if d else ctx.attr(t, c) for t, c, d in keys)
        code += f".order_by({order})"
    limit = _limit_node(select, "limit")
    if limit is not None:
        value = _value_text(limit, parameters)
        code += f".limit({value if value is not None else 'limit'})"
    return code


# -- query-count and exists-instead-of-first ----------------------------------------------


def _count_wrapper(statement: _Statement, group: QueryGroup, ctx: _Context) -> list[OrmFinding]:
    """``SELECT count(*) AS count_1 FROM (SELECT ...) AS anon_1``: Query.count()."""
    outer = statement.tree
    if not isinstance(outer, exp.Select) or len(outer.expressions) != 1:
        return []
    count = outer.expressions[0].unalias()
    source = outer.args.get("from_") or outer.args.get("from")
    if not (
        isinstance(count, exp.Count)
        and isinstance(count.this, exp.Star)
        and isinstance(source, exp.From)
        and isinstance(source.this, exp.Subquery)
        and source.this.alias.startswith("anon_")
        and not outer.args.get("where")
        and not outer.args.get("joins")
    ):
        return []
    inner = source.this.this
    if not isinstance(inner, exp.Select) or inner.args.get("joins"):
        return []
    tables = list(_aliases(inner).values())
    if len(tables) != 1:
        return []
    table = tables[0]
    model = ctx.class_of(table)
    aliases = _aliases(inner)
    where = _where_code(inner.args.get("where"), aliases, ctx)
    filtered = f".where({where})" if where else ""
    inner_where = inner.args.get("where")
    where_sql = f" {_render(inner_where)}" if inner_where is not None else ""
    query_filter = f".filter({where})" if where else ""
    mean = group.mean_ms
    timing = f", {mean:.1f} ms each" if mean is not None else ""
    rewrite = PatternRewrite(
        imports=("from sqlalchemy import exists, func, select",),
        before=f"session.query({model}){query_filter}.count()",
        after=f"session.scalar(select(func.count()).select_from({model}){filtered})",
        sql_after=(f"SELECT count(*) AS count_1 FROM {table}{where_sql}",),
        round_trips_before=1,
        round_trips_after=1,
    )
    exists_code = f"session.scalar(select(exists(){filtered}))"
    return [
        OrmFinding(
            rule="query-count",
            message=(
                f"Query.count() on {model} ran {group.calls} time(s){timing}: it counts "
                "every matching row; an existence test needs only the first."
            ),
            shapes=(group,),
            table=table,
            model_class=model,
            named_from=ctx.named_from(table),
            executions=group.calls,
            occurrences=group.calls,
            database_ms=_ms(group),
            rewrite=rewrite,
            numbers={"calls": group.calls, **({"mean_ms": mean} if mean is not None else {})},
            alternatives=(
                Alternative(
                    "existence test",
                    exists_code,
                    "when the count is only compared with zero (`if q.count():`, `> 0`): "
                    "EXISTS stops at the first matching row. SQL: SELECT EXISTS (SELECT * "
                    f"FROM {table}{where_sql}) AS anon_1",
                ),
            ),
            caveat=(
                "PostgreSQL flattens the anon_1 subquery, so the wrapper itself costs "
                "nothing; whether the count is only compared with zero is not in the SQL."
            ),
            defined_at=ctx.defined_at(table),
        )
    ]


def _large(table: str, columns: Sequence[str], ctx: _Context) -> dict[str, float]:
    widths = ctx.widths.get(table, {})
    limit = ctx.limits.large_column_bytes
    return {c: widths[c] for c in columns if widths.get(c, 0.0) >= limit}


def _wide_rows(statement: _Statement, group: QueryGroup, ctx: _Context) -> list[OrmFinding]:
    """Every column of a table selected, some large: wide-row (and, for LIMIT 1 with no
    ORDER BY, exists-instead-of-first)."""
    select = statement.tree
    if not isinstance(select, exp.Select) or not ctx.widths:
        return []
    found: list[OrmFinding] = []
    for table, columns in _projections(select).items():
        every = ctx.all_columns(table)
        large = _large(table, columns, ctx)
        if not large or every is None or not every <= set(columns):
            continue
        if len(set(_projections(select))) == 1 and _first_row(select, group):
            found.append(_first_finding(select, group, table, large, ctx))
        found.append(_wide_finding(select, group, table, columns, large, ctx))
    return found


def _first_row(select: exp.Select, group: QueryGroup) -> bool:
    """LIMIT 1 (literal or logged value), no ORDER BY, no OFFSET, a WHERE that is not a
    primary-key equality alone."""
    if select.args.get("order") or select.args.get("offset") or not select.args.get("where"):
        return False
    node = _limit_node(select, "limit")
    if _int_value(node, group.example.parameters) != 1:
        return False
    where = select.args["where"].this
    return not (
        isinstance(where, exp.EQ)
        and any(
            isinstance(side, exp.Column) and side.name == "id" for side in where.iter_expressions()
        )
    )


def _without(select: exp.Select, table: str, drop: set[str]) -> str:
    """The SELECT's SQL without the projections of ``drop`` (columns of ``table``)."""
    aliases = _aliases(select)
    single = len(set(aliases.values())) == 1
    tree = select.copy()
    kept = []
    for projection in tree.expressions:
        column = projection.unalias() if isinstance(projection, exp.Alias) else projection
        owner = (
            aliases.get(column.table)
            if isinstance(column, exp.Column) and column.table
            else (table if single else None)
        )
        if isinstance(column, exp.Column) and owner == table and column.name in drop:
            continue
        kept.append(projection)
    tree.set("expressions", kept)
    return _render(tree)


def _wide_finding(
    select: exp.Select,
    group: QueryGroup,
    table: str,
    columns: Sequence[str],
    large: dict[str, float],
    ctx: _Context,
) -> OrmFinding:
    model = ctx.class_of(table)
    big = [ctx.attr(table, c) for c in large]
    small = [ctx.attr(table, c) for c in columns if c not in large]
    code = _statement_code(select, ctx, parameters=group.example.parameters)
    option = f"defer({', '.join(big)})" if len(big) == 1 else ", ".join(f"defer({b})" for b in big)
    after = code.replace(f"select({model})", f"select({model}).options({option})", 1)
    if after == code:  # not a whole-entity select(): name the columns wanted instead
        after = _statement_code(select, ctx, head=f"select({', '.join(small)})")
    bytes_per_row = sum(large.values())
    sizes = ", ".join(f"{c} {w:,.0f} B" for c, w in large.items())
    declared = _deferred_declarations(table, list(large), ctx)
    return OrmFinding(
        rule="wide-row",
        message=(
            f"{group.calls} execution(s) load every column of {model}, including "
            f"{sizes} on average a row: {bytes_per_row:,.0f} B a row the code may not read."
        ),
        shapes=(group,),
        table=table,
        model_class=model,
        named_from=ctx.named_from(table),
        executions=group.calls,
        occurrences=group.calls,
        database_ms=_ms(group),
        rewrite=PatternRewrite(
            imports=("from sqlalchemy import select", "from sqlalchemy.orm import defer"),
            before=code,
            after=after,
            sql_after=(_without(select, table, set(large)),),
            round_trips_before=1,
            round_trips_after=1,
        ),
        numbers={
            "calls": group.calls,
            "large_bytes_per_row": bytes_per_row,
            **{f"avg_width.{c}": w for c, w in large.items()},
        },
        alternatives=(
            Alternative(
                "load_only the columns used",
                "from sqlalchemy.orm import load_only\n"
                f"{code}.options(load_only({', '.join(small)}))",
                "the opposite list: every other column is deferred, including any added later.",
            ),
            Alternative(
                "deferred on the column (every query of the class)",
                declared,
                "the column loads on first access (one more query then); "
                "undefer() loads it where a query needs it. "
                f"defer({big[0]}, raiseload=True) makes an unplanned access raise instead.",
            ),
        ),
        caveat=(
            "Which attributes the code then reads is not in the SQL: defer only what it "
            "does not read, or each access costs a query."
        ),
        defined_at=ctx.defined_at(table, next(iter(large))),
    )


_MAPPED_COLUMN = re.compile(r"\b(mapped_column|Column)\(")


def _deferred_declarations(table: str, columns: list[str], ctx: _Context) -> str:
    """The columns' declarations with ``deferred=True``, as written in the model when known."""
    mapped = ctx.mapped(table)
    lines = []
    for column in columns:
        key = (mapped.attribute(column) if mapped is not None else None) or column
        source = mapped.attribute_sources.get(key) if mapped is not None else None
        match = _MAPPED_COLUMN.search(source) if source else None
        if source and match:
            end = source.rfind(")")
            inside = source[match.end() : end].strip()
            separator = ", " if inside else ""
            lines.append(f"{source[:end].rstrip()}{separator}deferred=True{source[end:]}")
        else:
            lines.append(f"{key}: Mapped[...] = mapped_column(..., deferred=True)")
    return "\n".join(lines)


def _first_finding(
    select: exp.Select, group: QueryGroup, table: str, large: dict[str, float], ctx: _Context
) -> OrmFinding:
    model = ctx.class_of(table)
    aliases = _aliases(select)
    where = _where_code(select.args.get("where"), aliases, ctx)
    where_sql = _render(select.args["where"])
    sizes = ", ".join(f"{c} {w:,.0f} B" for c, w in large.items())
    before = f"{_statement_code(select, ctx, tail=False)}.limit(1)"
    deferred = f"select({model}).options(defer({ctx.attr(table, next(iter(large)))}))"
    used = before.replace(f"select({model})", deferred, 1)
    return OrmFinding(
        rule="exists-instead-of-first",
        message=(
            f"{group.calls} LIMIT 1 fetch(es) of a whole {model} row with no ORDER BY read "
            f"{sizes} on average; if the code only tests whether a row exists, EXISTS "
            "reads none of it."
        ),
        shapes=(group,),
        table=table,
        model_class=model,
        named_from=ctx.named_from(table),
        executions=group.calls,
        occurrences=group.calls,
        database_ms=_ms(group),
        rewrite=PatternRewrite(
            imports=("from sqlalchemy import exists, select",),
            before=f"session.scalars({before}).first() is not None",
            after=f"session.scalar(select(exists().where({where})))",
            sql_after=(f"SELECT EXISTS (SELECT * FROM {table} {where_sql}) AS anon_1",),
            round_trips_before=1,
            round_trips_after=1,
        ),
        numbers={"calls": group.calls, "large_bytes_per_row": sum(large.values())},
        alternatives=(
            Alternative(
                "the row is used: skip its large columns",
                f"session.scalars({used}).first()",
                "see wide-row.",
            ),
        ),
        caveat=(
            "Whether the row is used or only tested for existence is not in the SQL; a "
            "LIMIT 1 with no ORDER BY returns an arbitrary row, which suggests the latter."
        ),
        defined_at=ctx.defined_at(table),
    )


# -- offset-pagination ------------------------------------------------------------------


def _offsets(
    shape: int, statement: _Statement, group: QueryGroup, ctx: _Context
) -> list[OrmFinding]:
    select = statement.tree
    if not isinstance(select, exp.Select) or select.args.get("offset") is None:
        return []
    offset_node = _limit_node(select, "offset")
    limit_node = _limit_node(select, "limit")
    offsets = [_int_value(offset_node, q.parameters) for q in _executions(group)]
    limits = [_int_value(limit_node, q.parameters) for q in _executions(group)]
    seen = max((o for o in offsets if o is not None), default=None)
    page = max((v for v in limits if v is not None), default=None)
    walk = _longest_walk(ctx.workload, shape)
    reached = (walk - 1) * page if page is not None and walk >= 3 else None
    limit = ctx.limits.offset_rows
    if not ((seen is not None and seen >= limit) or (reached is not None and reached >= limit)):
        return []
    aliases = _aliases(select)
    tables = list(dict.fromkeys(aliases.values()))
    table = tables[0] if tables else "?"
    model = ctx.class_of(table)
    keys = _order_keys(select, aliases, table)
    caveat = None
    if not keys:
        caveat = (
            "The query has no ORDER BY: OFFSET pages are not even stable; the rewrite orders by id."
        )
    if not keys or keys[-1][1] != "id":
        keys.append((table, "id", keys[-1][2] if keys else False))
    descending = {d for _, _, d in keys}
    if len(descending) > 1:
        caveat = (
            (caveat or "") + " Mixed directions: a row comparison cannot express it; "
            "expand it into (a < x) OR (a = x AND b > y)."
        )
    desc = descending == {True}
    attrs = [ctx.attr(t, c) for t, c, _ in keys]
    lasts = [f"last_{c}" for _, c, _ in keys]
    op = "<" if desc else ">"
    if len(keys) == 1:
        condition = f"{attrs[0]} {op} {lasts[0]}"
    else:
        condition = f"tuple_({', '.join(attrs)}) {op} tuple_({', '.join(lasts)})"
    order = ", ".join(f"{a}.desc()" if d else a for a, (_, _, d) in zip(attrs, keys, strict=True))
    page_text = str(page) if page is not None else "page_size"
    head = _statement_code(select, ctx, tail=False)
    before = f"{head}.order_by({order}).limit({page_text}).offset(offset)"
    after = f"{head}.where({condition}).order_by({order}).limit({page_text})"
    imports = ["from sqlalchemy import select"] + (
        ["from sqlalchemy import tuple_"] if len(keys) > 1 else []
    )
    sql_tree = select.copy()
    sql_tree.set("offset", None)
    number = _max_parameter(statement.sql)
    columns_sql = [f"{_bare(t)}.{c}" for t, c, _ in keys]
    params = [f"${number + i + 1}" for i in range(len(keys))]
    freed = _unwrap(offset_node) if offset_node is not None else None
    if isinstance(freed, exp.Parameter) and isinstance(freed.this, exp.Literal):
        params = [f"${freed.this.this}", *params[: len(keys) - 1]]  # OFFSET's $n is free
    if len(keys) == 1:
        cond_sql = f"{columns_sql[0]} {op} {params[0]}"
    else:
        cond_sql = f"({', '.join(columns_sql)}) {op} ({', '.join(params)})"
    sql_tree = sql_tree.where(cond_sql, dialect="postgres", copy=False)
    if not select.args.get("order"):
        sql_tree = sql_tree.order_by(*columns_sql, dialect="postgres", copy=False)
    index = None
    if [c for _, c, _ in keys] != ["id"]:
        schema, _, bare = table.rpartition(".")
        index = IndexCandidate(
            schema or "public", bare,
            tuple(IndexKey(c, descending=d) for _, c, d in keys),
        )  # fmt: skip
    parts = []
    if seen is not None:
        parts.append(f"OFFSET up to {seen:,} seen")
    if walk >= 3:
        parts.append(f"one session walked {walk} pages in a row")
    return [
        OrmFinding(
            rule="offset-pagination",
            message=(
                f"{model} is paginated with OFFSET ({'; '.join(parts)}): every page reads "
                "and discards the rows of all the pages before it."
            ),
            shapes=(group,),
            table=table,
            model_class=model,
            named_from=ctx.named_from(table),
            executions=group.calls,
            occurrences=group.calls,
            database_ms=_ms(group),
            rewrite=PatternRewrite(
                imports=tuple(imports),
                before=before,
                after=after,
                sql_after=(_render(sql_tree),),
                round_trips_before=1,
                round_trips_after=1,
                index=index,
            ),
            numbers={
                "calls": group.calls,
                **({"max_offset_seen": seen} if seen is not None else {}),
                **({"page_size": page} if page is not None else {}),
                "pages_walked": walk,
                **({"offset_reached_estimate": reached} if reached is not None else {}),
            },
            alternatives=(
                Alternative(
                    "keep OFFSET for the first pages only",
                    "jump to a page by its first key (a bookmark) instead of its number",
                    "keyset pagination cannot jump to page N; most UIs need next/previous only.",
                ),
            ),
            caveat=caveat.strip() if caveat else None,
            defined_at=ctx.defined_at(table),
        )
    ]


_CAST = re.compile(r"CAST\((\$\d+) AS ([A-Z][A-Z0-9_ ]*(?:\[\])?)\)")


def _render(tree: exp.Expression) -> str:
    """PostgreSQL text as a driver sends it: ``$1::INT``, not sqlglot's ``CAST($1 AS INT)``."""
    return _CAST.sub(r"\1::\2", tree.sql(dialect="postgres"))


def _bare(name: str) -> str:
    return name.rpartition(".")[2]


def _max_parameter(sql: str) -> int:
    return max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)


def _order_keys(
    select: exp.Select, aliases: Mapping[str, str], table: str
) -> list[tuple[str, str, bool]]:
    order = select.args.get("order")
    keys: list[tuple[str, str, bool]] = []
    for ordered in order.expressions if isinstance(order, exp.Order) else ():
        column = ordered.this
        if not isinstance(column, exp.Column):
            return []
        owner = aliases.get(column.table, table) if column.table else table
        keys.append((owner, column.name, bool(ordered.args.get("desc"))))
    return keys


def _longest_walk(workload: Workload, shape: int) -> int:
    """The most executions of ``shape`` in a row in one session, each with values unlike
    the one before (a walk through pages); other statements between them do not count."""
    best = 0
    for trace in workload.traces.values():
        run, last = 0, None
        for step, value in zip(trace.steps, trace.values, strict=True):
            if step != shape:
                continue
            run = run + 1 if value != last else 1
            last = value
            best = max(best, run)
    return best


# -- large-in-list ----------------------------------------------------------------------

_TYPES = {
    "INT": "Integer",
    "BIGINT": "BigInteger",
    "SMALLINT": "SmallInteger",
    "VARCHAR": "String",
    "TEXT": "Text",
    "UUID": "Uuid",
    "DATE": "Date",
    "TIMESTAMP": "DateTime",
}


def _in_lists(statement: _Statement, group: QueryGroup, ctx: _Context) -> list[OrmFinding]:
    limit = ctx.limits.in_list_items
    best: tuple[int, _Statement] | None = None
    for query in _executions(group):
        if query.sql.count(",") < limit - 1:
            continue
        parsed = statement if query.sql == statement.sql else _parse(query.sql)
        if parsed is None:
            continue
        size = max((len(i.expressions) for i in parsed.tree.find_all(exp.In)), default=0)
        if size >= limit and (best is None or size > best[0]):
            best = (size, parsed)
    if best is None:
        return []
    size, parsed = best
    in_list = max(parsed.tree.find_all(exp.In), key=lambda i: len(i.expressions))
    column = in_list.this
    if not isinstance(column, exp.Column):
        return []
    select = in_list.find_ancestor(exp.Select)
    aliases = _aliases(select) if select is not None else {}
    table = aliases.get(column.table) if column.table else next(iter(aliases.values()), None)
    if table is None:
        tables = [_table_name(t) for t in parsed.tree.find_all(exp.Table)]
        table = tables[0] if tables else "?"
    attr = ctx.attr(table, column.name)
    model = ctx.class_of(table)
    first = _unwrap(in_list.expressions[0])
    cast = in_list.expressions[0]
    sa_type = _TYPES.get(cast.to.this.name, "Integer") if isinstance(cast, exp.Cast) else "Integer"
    pg_type = cast.to.sql(dialect="postgres") if isinstance(cast, exp.Cast) else "INTEGER"
    bound = isinstance(first, exp.Parameter | exp.Placeholder)
    new_tree = parsed.tree.copy()
    target = max(new_tree.find_all(exp.In), key=lambda i: len(i.expressions))
    target.replace(
        sqlglot.parse_one(
            f"{column.sql(dialect='postgres')} = ANY($1::{pg_type}[])", read="postgres"
        )
    )
    sql_after = _render(new_tree)
    values = "parameters" if bound else "literals"
    head = _select_code(select, ctx) if select is not None else "select(...)"
    name = f"{column.name}s"
    return [
        OrmFinding(
            rule="large-in-list",
            message=(
                f"An IN list of {size:,} {values} on {attr} ({group.calls} execution(s)): "
                "every list length is another statement to parse and plan, and bound "
                "values count against the protocol's 65,535-parameter limit."
            ),
            shapes=(group,),
            table=table,
            model_class=model,
            named_from=ctx.named_from(table),
            executions=group.calls,
            occurrences=group.calls,
            database_ms=_ms(group),
            rewrite=PatternRewrite(
                imports=(
                    "from sqlalchemy import ARRAY, any_, bindparam, select",
                    f"from sqlalchemy import {sa_type}",
                ),
                before=f"{head}.where({attr}.in_({name}))",
                after=(
                    f'{head}.where({attr} == any_(bindparam("{name}", '
                    f'type_=ARRAY({sa_type}))))  # executed with {{"{name}": {name}}}'
                ),
                sql_after=(sql_after,),
                round_trips_before=1,
                round_trips_after=1,
            ),
            numbers={"calls": group.calls, "items": size},
            alternatives=(
                Alternative(
                    "a join or subquery",
                    f"select(...).where({attr}.in_(select(Other.{column.name}).where(...)))",
                    f"when the {size:,} values came from another query, let PostgreSQL read "
                    "them itself: no round trip of the list at all.",
                ),
            ),
            caveat=(
                None
                if len({len(q.sql) for q in _executions(group)}) <= 1
                else "The shape's logged executions differ in text (lists of other lengths, "
                "or already = ANY: one shape to PostgreSQL's fingerprint); the largest list "
                "seen is reported, the executions counted are the shape's."
            ),
            defined_at=ctx.defined_at(table, column.name),
        )
    ]


# -- trace rules: row-at-a-time-writes, repeated-query ----------------------------------


@dataclass(frozen=True)
class _Write:
    verb: Literal["INSERT", "UPDATE", "DELETE"]
    table: str
    columns: tuple[str, ...]
    """INSERT: the inserted columns; UPDATE: the SET columns; DELETE: none."""
    keys: tuple[str, ...]
    """UPDATE/DELETE: the WHERE's equality columns."""


def _write_of(statement: _Statement | None) -> _Write | None:
    """A single-row write: INSERT of one VALUES row, UPDATE/DELETE by equalities."""
    if statement is None:
        return None
    tree = statement.tree
    if isinstance(tree, exp.Insert):
        values = tree.expression
        schema = tree.this
        if not isinstance(values, exp.Values) or len(values.expressions) != 1:
            return None  # INSERT ... SELECT, multi-row VALUES (insertmanyvalues)
        if not isinstance(schema, exp.Schema) or not isinstance(schema.this, exp.Table):
            return None
        columns = tuple(c.name for c in schema.expressions)
        return _Write("INSERT", _table_name(schema.this), columns, ())
    if isinstance(tree, exp.Update | exp.Delete) and isinstance(tree.this, exp.Table):
        keys = _equality_keys(tree.args.get("where"))
        if not keys:
            return None
        sets = tuple(
            e.this.name for e in tree.expressions if isinstance(e, exp.EQ)
        ) if isinstance(tree, exp.Update) else ()  # fmt: skip
        verb: Literal["UPDATE", "DELETE"] = "UPDATE" if isinstance(tree, exp.Update) else "DELETE"
        return _Write(verb, _table_name(tree.this), sets, keys)
    return None


def _equality_keys(where: exp.Expression | None) -> tuple[str, ...]:
    if not isinstance(where, exp.Where):
        return ()
    terms = where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
    keys = []
    for term in terms:
        if not isinstance(term, exp.EQ):
            return ()
        sides = [_unwrap(term.this), _unwrap(term.expression)]
        columns = [s for s in sides if isinstance(s, exp.Column)]
        if len(columns) != 1:
            return ()
        keys.append(columns[0].name)
    return tuple(sorted(keys))


@dataclass(frozen=True)
class _Run:
    session: str
    transaction: str | None
    steps: tuple[int, ...]
    distinct: int
    span_ms: int | None


def _runs_by_shape(
    trace: SessionTrace, start: int, end: int, wanted: set[int]
) -> dict[int, list[int]]:
    positions: dict[int, list[int]] = {}
    for step in range(start, end):
        shape = trace.steps[step]
        if shape in wanted:
            positions.setdefault(shape, []).append(step)
    return positions


def _write_bursts(ctx: _Context) -> list[OrmFinding]:
    writes = {
        index: write
        for index in range(len(ctx.workload.shapes))
        if (write := _write_of(ctx.statement(index))) is not None
    }
    if not writes:
        return []
    limits = ctx.limits
    found: dict[int, list[_Run]] = {}
    batched: dict[int, int] = {}
    for trace in ctx.workload.traces.values():
        for start, end, transaction in segments(trace, limits.max_gap_ms):
            for shape, steps in _runs_by_shape(trace, start, end, set(writes)).items():
                distinct = len({trace.values[s] for s in steps})
                if distinct < limits.write_rows:
                    continue
                times = [trace.time_of(s) for s in steps]
                if any(t is None for t in times):
                    continue  # without times a loop cannot be told from a batch
                span = max(t for t in times if t is not None) - min(
                    t for t in times if t is not None
                )
                # Timestamps mark each statement's end: the span holds the executions of
                # all but the first, and the waits between them. A driver batch has no
                # waits however slow the server (a pipelined executemany of large rows
                # on a loaded machine spans seconds); a loop waits a round trip a row.
                busy = (len(steps) - 1) * (ctx.workload.shapes[shape].mean_ms or 0.0)
                if span - busy <= max(1.0, limits.batch_ms_per_row * len(steps)):
                    batched[shape] = batched.get(shape, 0) + 1
                    continue
                run = _Run(trace.session, transaction, tuple(steps), distinct, span)
                found.setdefault(shape, []).append(run)
    return [_write_finding(shape, writes[shape], runs, ctx) for shape, runs in found.items()]


def _write_finding(shape: int, write: _Write, runs: list[_Run], ctx: _Context) -> OrmFinding:
    group = ctx.workload.shapes[shape]
    table = write.table
    model = ctx.class_of(table)
    executions = sum(len(r.steps) for r in runs)
    most = max(len(r.steps) for r in runs)
    spans = [r.span_ms for r in runs if r.span_ms is not None]
    span = sum(spans) if spans else None
    verb = write.verb
    row = ", ".join(f'"{_attr_key(ctx, table, c)}": ...' for c in (*write.keys, *write.columns))
    batches = math.ceil(most / 1000)
    if verb == "INSERT":
        columns = ", ".join(write.columns)
        placeholders = ", ".join(f"${i + 1}" for i in range(len(write.columns)))
        second = ", ".join(f"${i + 1 + len(write.columns)}" for i in range(len(write.columns)))
        before = f"for row in rows:\n    session.add({model}(**row))\n    session.flush()"
        after = f"session.execute(insert({model}), rows)  # rows = [{{{row}}}, ...]"
        imports: tuple[str, ...] = ("from sqlalchemy import insert",)
        sql_after: tuple[str, ...] = (
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}), ({second}), ... "
            "(insertmanyvalues, up to 1,000 rows a statement, when keys are returned; else "
            "the driver's executemany, pipelined by psycopg 3)",
        )
        alternatives: tuple[Alternative, ...] = (
            Alternative(
                "add all, flush once",
                f"session.add_all([{model}(**row) for row in rows])\nsession.flush()",
                "one flush batches the INSERTs of one class (executemany or insertmanyvalues) "
                "where a flush per object sends one each.",
            ),
        )
    else:
        keys = " AND ".join(f"{table}.{k} = $n" for k in write.keys)
        key_attr = ctx.attr(table, write.keys[0])
        if verb == "UPDATE":
            sets = ", ".join(f"{c}=$n" for c in write.columns)
            changed = _attr_key(ctx, table, write.columns[0]) if write.columns else "..."
            before = f"for obj in objects:\n    obj.{changed} = ...\n    session.flush()"
            after = f"session.execute(update({model}), rows)  # rows = [{{{row}}}, ...]"
            imports = ("from sqlalchemy import update",)
            sql_after = (
                f"UPDATE {table} SET {sets} WHERE {keys}  (one executemany: the driver sends "
                "all rows at once)",
            )
            same = ", ".join(f"{_attr_key(ctx, table, c)}=..." for c in write.columns)
            alternatives = (
                Alternative(
                    "every row gets the same new values",
                    f"session.execute(update({model}).where({key_attr}.in_(ids)).values({same}))",
                    "one statement for all rows.",
                ),
            )
        else:
            before = "for obj in objects:\n    session.delete(obj)\n    session.flush()"
            after = f"session.execute(delete({model}).where({key_attr}.in_(ids)))"
            imports = ("from sqlalchemy import delete",)
            sql_after = (f"DELETE FROM {table} WHERE {table}.{write.keys[0]} IN ($1, $2, ...)",)
            alternatives = ()
    timing = f" over {span:,} ms" if span is not None else ""
    return OrmFinding(
        rule="row-at-a-time-writes",
        message=(
            f"{verb} into {model} one row at a time: {executions} statements in "
            f"{len(runs)} transaction(s) (up to {most} in one{timing}), a round trip each."
        ),
        shapes=(group,),
        table=table,
        model_class=model,
        named_from=ctx.named_from(table),
        executions=executions,
        occurrences=len(runs),
        database_ms=_ms(group, executions),
        rewrite=PatternRewrite(
            imports=imports,
            before=before,
            after=after,
            sql_after=sql_after,
            round_trips_before=most,
            round_trips_after=batches,
        ),
        numbers={
            "statements": executions,
            "transactions": len(runs),
            "max_in_one": most,
            **({"span_ms": span} if span is not None else {}),
        },
        alternatives=alternatives,
        caveat=(
            "A run logged within one millisecond, or faster than 0.2 ms a row, is taken for "
            "one driver batch (executemany) and not reported."
        ),
        defined_at=ctx.defined_at(table),
    )


def _attr_key(ctx: _Context, table: str, column: str) -> str:
    return ctx.attr(table, column).rpartition(".")[2]


_VOLATILE = re.compile(r"\b(nextval|random|now|clock_timestamp|gen_random_uuid|setval)\s*\(", re.I)


def _repeatable(statement: _Statement | None) -> bool:
    """A SELECT reading a table, without volatile functions: re-running it with the same
    values reads the same rows (in one transaction, barring the transaction's own writes)."""
    if statement is None or not isinstance(statement.tree, exp.Select):
        return False
    if not any(True for _ in statement.tree.find_all(exp.Table)):
        return False
    return not _VOLATILE.search(statement.sql)


def _repeats(ctx: _Context) -> list[OrmFinding]:
    limits = ctx.limits
    found: dict[int, list[tuple[str, str | None, int]]] = {}
    for trace in ctx.workload.traces.values():
        for start, end, transaction in segments(trace, limits.max_gap_ms):
            counts: dict[tuple[int, int], int] = {}
            for step in range(start, end):
                key = (trace.steps[step], trace.values[step])
                counts[key] = counts.get(key, 0) + 1
            for (shape, _), count in counts.items():
                if count >= limits.repeats and _repeatable(ctx.statement(shape)):
                    found.setdefault(shape, []).append((trace.session, transaction, count))
    return [_repeat_finding(shape, runs, ctx) for shape, runs in found.items()]


def _repeat_finding(
    shape: int, runs: list[tuple[str, str | None, int]], ctx: _Context
) -> OrmFinding:
    group = ctx.workload.shapes[shape]
    statement = ctx.statement(shape)
    assert statement is not None and isinstance(statement.tree, exp.Select)
    select = statement.tree
    aliases = _aliases(select)
    tables = list(dict.fromkeys(aliases.values()))
    table = tables[0] if tables else "?"
    model = ctx.class_of(table)
    executions = sum(c for _, _, c in runs)
    redundant = executions - len(runs)
    most = max(c for _, _, c in runs)
    code = _statement_code(select, ctx)
    keys = _equality_keys(select.args.get("where"))
    by_pk = keys == ("id",) and len(tables) == 1 and not select.args.get("joins")
    if by_pk:
        after = f"session.get({model}, id)"
        imports: tuple[str, ...] = ()
        note = (
            "session.get() looks in the identity map first: while the object is referenced "
            "in the session, the second call sends nothing."
        )
        if _select_code(select, ctx) != f"select({model})":
            note += " (It loads the whole object where the query may have read some columns.)"
        sql_after: tuple[str, ...] = (statement.sql,)
    else:
        after = f"result = session.execute({code}).all()  # once, then reuse result"
        imports = ()
        note = "run it once per transaction and pass the result where it is needed."
        sql_after = (statement.sql,)
    return OrmFinding(
        rule="repeated-query",
        message=(
            f"The same query on {model} ran with the same values {most} times in one "
            f"transaction ({redundant} redundant execution(s) in {len(runs)} transaction(s))."
        ),
        shapes=(group,),
        table=table,
        model_class=model,
        named_from=ctx.named_from(table),
        executions=executions,
        occurrences=len(runs),
        database_ms=_ms(group, redundant),
        rewrite=PatternRewrite(
            imports=imports,
            before=f"session.scalars({code}).one()  # run {most} times",
            after=after,
            sql_after=sql_after,
            round_trips_before=most,
            round_trips_after=1,
        ),
        numbers={"executions": executions, "redundant": redundant, "max_in_one": most},
        alternatives=(Alternative("reuse the result", after, note),),
        caveat=(
            "Between the executions the transaction may have written the rows (then the "
            "re-read is deliberate); the log shows no such write of this table."
            if not _wrote(ctx, table)
            else "The workload also writes this table: check that no write comes between "
            "the executions before reusing the first result."
        ),
        defined_at=ctx.defined_at(table),
    )


def _wrote(ctx: _Context, table: str) -> bool:
    return any(
        (write := _write_of(ctx.statement(i))) is not None and write.table == table
        for i in range(len(ctx.workload.shapes))
    )
