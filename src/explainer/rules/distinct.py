"""``distinct-underestimate``: GROUP BY found many more groups than ``pg_stats`` counts.

The planner estimates a GROUP BY's (or DISTINCT's) groups from the column's
``pg_stats.n_distinct``, and chooses from that figure between a hash and a sorted
aggregate, sizes the hash table, and costs every plan above it. ANALYZE reads a sample of
about 300 x the statistics target rows, and on a large table whose values repeat a varying
number of times, clustered together (order lines by order), that sample shows far fewer
distinct values than there are: TPC-H's ``lineitem.l_orderkey`` at scale factor 1 has
1,500,000 distinct values and ``pg_stats`` says 382,034. A hash aggregate planned for a
quarter of its groups spills to disk, and Q18 computes it in each of three processes; told
the true figure the planner reads the primary key in order instead (8.4 s -> 3.6 s in
docs/benchmarks.md). An ``n_distinct`` someone set by hand when the table was
small goes wrong the same way.

When an aggregate groups by one plain column of a table that it reads whole (no filter, no
index condition), the groups it found are the column's distinct count, exactly. The rule
compares them with the planner's figure and, at :data:`FACTOR` or more, gives the fix: the
true figure as the column's ``n_distinct`` (minus the share of rows when that share is above
10%, as ANALYZE writes it, so that it stays right as the table grows), then ANALYZE, which
is what reads the setting.
"""

from __future__ import annotations

from collections.abc import Iterator

from explainer.db.names import qualified_name, quote_ident
from explainer.plan import Plan, PlanNode
from explainer.plan.labels import short_label
from explainer.rules.model import Finding, RuleContext, TableFacts, severity_for_share, table_name
from explainer.rules.node_common import share_of_query

RULE_ID = "distinct-underestimate"

#: Groups found per distinct value the planner expected.
FACTOR = 2.0
#: Fewer groups than this fit any hash table: the estimate cannot matter.
MIN_GROUPS = 10_000
#: The scan must have read about the whole table (its rows against ``reltuples``).
WHOLE_TABLE = 0.9
#: Above this share of the rows, ANALYZE stores n_distinct as minus the share.
SCALING_SHARE = 0.1

#: Scans that can read a whole table, and what can sit between one and the aggregate.
_SCANS = frozenset({"Seq Scan", "Index Scan", "Index Only Scan"})
_BETWEEN = frozenset({"Sort", "Incremental Sort", "Materialize"})


def _column(key: str, scan: PlanNode) -> str | None:
    """The plain column a group key names (``l_orderkey``, ``lineitem_1.l_orderkey``,
    ``"Order"."Key"``), when it is the scan's; None for an expression."""
    parts = key.split(".")
    if not 1 <= len(parts) <= 2:
        return None
    names: list[str] = []
    for part in parts:
        if len(part) > 2 and part[0] == part[-1] == '"':
            names.append(part[1:-1].replace('""', '"'))
        elif part.replace("_", "").replace("$", "").isalnum():
            names.append(part)
        else:
            return None  # an expression, a cast, a function call
    if len(names) == 2 and names[0] not in {scan.alias, scan.relation}:
        return None
    return names[-1]


def _whole_scan(aggregate: PlanNode) -> PlanNode | None:
    """The scan feeding the aggregate, when it reads every row of its table unfiltered."""
    node = aggregate.children[0] if aggregate.children else None
    while node is not None and node.node_type in _BETWEEN and len(node.children) == 1:
        node = node.children[0]
    if node is None or node.node_type not in _SCANS or node.parallel_aware:
        return None
    if node.filter or node.index_cond or node.relation is None:
        return None
    return node


def _planned_distinct(stored: float, rows: float) -> float:
    return stored if stored >= 0 else -stored * rows


def setting(groups: float, rows: float) -> float:
    """The ``n_distinct`` to store: as ANALYZE would, minus the share above 10% of the rows
    (two significant digits), else the count (three)."""
    share = groups / max(rows, 1.0)
    if share > SCALING_SHARE:
        return -float(f"{share:.2g}")
    return float(f"{groups:.3g}")


def fix_sql(table: str, column: str, value: float) -> str:
    """The two statements that fix the figure (``table`` already qualified and quoted);
    ANALYZE is what reads the setting."""
    number = f"{value:g}" if value < 0 else f"{value:.0f}"
    return (
        f"ALTER TABLE {table} ALTER COLUMN {quote_ident(column)} SET (n_distinct = {number}); "
        f"ANALYZE {table};"
    )


def check(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    if not context.tables or not plan.analyzed:
        return
    for node in plan.walk():
        if node.node_type != "Aggregate" or node.never_executed or node.actual_rows is None:
            continue
        if node.raw.get("Partial Mode", "Simple") != "Simple":
            continue  # a partial aggregate sees only its worker's share of the rows
        keys = node.raw.get("Group Key")
        if not isinstance(keys, list) or len(keys) != 1 or not isinstance(keys[0], str):
            continue
        scan = _whole_scan(node)
        if scan is None or scan.actual_rows is None:
            continue
        name = table_name(scan)
        facts = context.tables.get(name) if name else None
        column = _column(keys[0], scan)
        if facts is None or column is None or column not in facts.distinct:
            continue
        finding = _judge(plan, node, scan, facts, name or "", column)
        if finding is not None:
            yield finding


def _judge(
    plan: Plan, aggregate: PlanNode, scan: PlanNode, facts: TableFacts, table: str, column: str
) -> Finding | None:
    rows = scan.actual_rows or 0.0
    if facts.estimated_rows <= 0 or rows < WHOLE_TABLE * facts.estimated_rows:
        return None  # not the whole table (or statistics too stale to compare: see
        # stale-statistics)
    # Per loop: each process that ran the aggregate read the whole table itself.
    groups = (aggregate.actual_rows or 0.0) + (aggregate.rows_removed_by_filter or 0.0)
    stored = facts.distinct[column]
    planned = _planned_distinct(stored, facts.estimated_rows)
    if groups < MIN_GROUPS or groups < FACTOR * max(planned, 1.0):
        return None
    value = setting(groups, rows)
    sql = fix_sql(qualified_name(scan.schema or "public", scan.relation or table), column, value)
    factor = groups / max(planned, 1.0)
    share = share_of_query(plan, aggregate.inclusive_ms)
    return Finding(
        rule=RULE_ID,
        severity=severity_for_share(share),
        message=(
            f"{short_label(aggregate)} found {groups:,.0f} distinct {column} in {table}, the "
            f"planner expected {planned:,.0f} (pg_stats.n_distinct {stored:g}; {factor:,.1f}x "
            f"fewer): the aggregate's strategy and everything above it were planned for that. "
            f"Store the true figure: {sql}"
        ),
        node_path=aggregate.path,
        table=table,
        potential_ms=0.0,
        details={
            "column": column,
            "groups": groups,
            "planned_distinct": planned,
            "stored_n_distinct": stored,
            "factor": factor,
            "rows_read": rows,
            "n_distinct": value,
            "sql": sql,
        },
    )
