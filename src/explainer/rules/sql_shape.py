"""Rules that need the statement's shape as well as the plan: OFFSET pagination and
``count(*)`` used to ask "is there any row?".

The SQL is read with sqlglot (PostgreSQL dialect); a statement sqlglot cannot parse is
treated as unknown, never as evidence.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from explainer.plan import Plan, PlanNode
from explainer.rules.model import Finding, RuleContext, severity_for_share
from explainer.rules.node_common import executed_nodes, share_of_query

OFFSET_ID = "large-offset"
COUNT_ID = "count-for-existence"

#: A Limit must discard at least this many rows of its input ...
MIN_OFFSET_ROWS = 1_000
#: ... and its input must have produced at least this many times the rows it returned.
MIN_OFFSET_RATIO = 10.0
#: The counting aggregate must read at least this many rows: below, EXISTS saves little.
MIN_COUNTED_ROWS = 10_000


def _parse(sql: str | None) -> exp.Expr | None:
    if not sql:
        return None
    try:
        return sqlglot.parse_one(sql, read="postgres")
    except SqlglotError:
        return None


def _outer_child(node: PlanNode) -> PlanNode | None:
    for child in node.children:
        if child.parent_relationship not in ("InitPlan", "SubPlan"):
            return child
    return None


def _sql_offsets(tree: exp.Expr) -> list[int | None]:
    """Every OFFSET in the statement: its value when a literal, None for a parameter."""
    values: list[int | None] = []
    for offset in tree.find_all(exp.Offset):
        value = offset.args.get("expression")
        if isinstance(value, exp.Literal) and not value.is_string:
            try:
                values.append(int(value.this))
            except ValueError:
                values.append(None)
        else:
            values.append(None)
    return values


def check_offset(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    tree = _parse(context.sql)
    offsets = _sql_offsets(tree) if tree is not None else None
    if offsets == []:
        return  # the statement is known and has no OFFSET
    for node in executed_nodes(plan):
        if node.node_type != "Limit":
            continue
        child = _outer_child(node)
        if child is None or child.total_rows is None:
            continue
        fetched = child.total_rows
        returned = node.total_rows or 0.0
        discarded = fetched - returned
        if discarded < MIN_OFFSET_ROWS or fetched < MIN_OFFSET_RATIO * returned:
            continue
        saved = node.inclusive_ms * discarded / fetched
        share = share_of_query(plan, saved)
        known = [o for o in offsets or [] if o is not None]
        confirmed = f" (OFFSET {known[0]:,} in the query)" if len(known) == 1 else ""
        yield Finding(
            rule=OFFSET_ID,
            severity=severity_for_share(share),
            message=(
                f"Limit read {fetched:,.0f} rows to return {returned:,.0f}: {discarded:,.0f} "
                f"rows were produced and skipped{confirmed}, costing about {saved:,.1f} ms "
                f"({share:.0%} of the query); keyset pagination (WHERE sort_key > last value "
                f"seen ORDER BY sort_key LIMIT n) reads only the page"
            ),
            node_path=node.path,
            potential_ms=saved,
            details={
                "rows_fetched": fetched,
                "rows_returned": returned,
                "rows_skipped": discarded,
                "sql_offset": known[0] if len(known) == 1 else None,
                "confirmed_by_sql": offsets is not None,
                "time_ms": saved,
                "share_of_total": share,
            },
        )


# Comparisons of a count with a literal that mean "exists" / "does not exist":
# (operator, literal) with the count on the left.
_EXISTENCE_TESTS = {
    (exp.GT, 0),
    (exp.GTE, 1),
    (exp.NEQ, 0),
    (exp.EQ, 0),
    (exp.LT, 1),
    (exp.LTE, 0),
}
_MIRROR: dict[type[exp.Expr], type[exp.Expr]] = {
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
    exp.EQ: exp.EQ,
    exp.NEQ: exp.NEQ,
}


def _is_count(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren | exp.Alias):
        node = node.this
    if isinstance(node, exp.Count):
        return True
    if isinstance(node, exp.Subquery):
        select = node.this
        if isinstance(select, exp.Select) and len(select.expressions) == 1:
            return _is_count(select.expressions[0])
    return False


def _int_literal(node: exp.Expr) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(node.this)
        except ValueError:
            return None
    return None


def existence_counts(sql: str | None) -> list[str]:
    """The comparisons in ``sql`` that test a count against 0 (or 1) as an existence check.

    ``HAVING count(*) > 0`` on the group's own count is not one (every group has a row).
    """
    tree = _parse(sql)
    if tree is None:
        return []
    found: list[str] = []
    for operator in _MIRROR:
        for comparison in tree.find_all(operator):
            left, right = comparison.this, comparison.expression
            op: type[exp.Expr] = operator
            if not _is_count(left):
                left, right, op = right, left, _MIRROR[operator]
            if not _is_count(left):
                continue
            value = _int_literal(right)
            if value is None or (op, value) not in _EXISTENCE_TESTS:
                continue
            bare = left
            while isinstance(bare, exp.Paren | exp.Alias):
                bare = bare.this
            if comparison.find_ancestor(exp.Having) is not None and not isinstance(
                bare, exp.Subquery
            ):
                continue
            found.append(comparison.sql(dialect="postgres"))
    return found


def check_count(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    tests = existence_counts(context.sql)
    if not tests:
        return
    best: tuple[float, PlanNode] | None = None
    for node in executed_nodes(plan):
        if node.node_type != "Aggregate" or node.raw.get("Strategy") not in ("Plain", None):
            continue
        if (node.actual_rows or 0.0) > 1:
            continue
        child = _outer_child(node)
        counted = (child.total_rows or 0.0) if child is not None else 0.0
        if counted >= MIN_COUNTED_ROWS and (best is None or counted > best[0]):
            best = (counted, node)
    if best is None:
        return
    counted, node = best
    share = share_of_query(plan, node.inclusive_ms)
    yield Finding(
        rule=COUNT_ID,
        severity=severity_for_share(share),
        message=(
            f"The query counts {counted:,.0f} rows only to compare the count with zero "
            f"({tests[0]}), in {node.inclusive_ms:,.1f} ms ({share:.0%} of the query); "
            f"EXISTS (SELECT 1 ... ) or SELECT 1 ... LIMIT 1 stops at the first row"
        ),
        node_path=node.path,
        potential_ms=node.inclusive_ms,
        details={
            "rows_counted": counted,
            "comparisons": tests,
            "time_ms": node.inclusive_ms,
            "share_of_total": share,
        },
    )
