"""``nested-loop-inner-scan``: a nested loop that re-reads a whole input once per outer row.

A nested loop is the right join when its inner side is an index lookup (a few rows per
loop). When the inner side is a scan (a Seq Scan, a Materialize of a subquery, a Function or
CTE Scan, a bitmap scan that keeps few of the rows it reads), the work is outer rows x inner
rows, which is what a hash join or an index on the join key avoids.
"""

from __future__ import annotations

from collections.abc import Iterator

from explainer.plan import Plan, PlanNode
from explainer.plan.labels import short_label
from explainer.rules.model import Finding, RuleContext, severity_for_share, table_name
from explainer.rules.node_common import (
    MOST_REMOVED_SHARE,
    executed_nodes,
    is_material,
    share_of_query,
)

RULE_ID = "nested-loop-inner-scan"

#: The inner side must run at least this many times.
MIN_INNER_LOOPS = 1_000

#: Inner nodes that read their whole input on every loop.
SCAN_TYPES = frozenset(
    {
        "Seq Scan",
        "Materialize",
        "Function Scan",
        "Table Function Scan",
        "CTE Scan",
        "WorkTable Scan",
        "Values Scan",
        "Foreign Scan",
        "Subquery Scan",
        "Sample Scan",
        "Named Tuplestore Scan",
    }
)


def _rows_read_per_loop(node: PlanNode) -> float:
    return (
        (node.actual_rows or 0.0)
        + (node.rows_removed_by_filter or 0.0)
        + (node.rows_removed_by_index_recheck or 0.0)
    )


def _is_scan(node: PlanNode) -> bool:
    if node.node_type in SCAN_TYPES:
        return True
    if node.node_type == "Bitmap Heap Scan":
        read = _rows_read_per_loop(node)
        return read > 0 and 1 - (node.actual_rows or 0.0) / read >= MOST_REMOVED_SHARE
    return False


def repeated_inner_scan(plan: Plan, join: PlanNode) -> PlanNode | None:
    """The inner node a Nested Loop re-scans at least MIN_INNER_LOOPS times, if it is a scan
    (through a Memoize, whose misses are the real re-scans) and the work is material."""
    if join.node_type != "Nested Loop" or len(join.children) < 2:
        return None
    inner = join.children[1]
    if inner.node_type == "Memoize" and inner.children:
        inner = inner.children[0]
    loops = inner.actual_loops or 0.0
    if loops < MIN_INNER_LOOPS or not _is_scan(inner):
        return None
    rows_read = _rows_read_per_loop(inner) * loops
    if not is_material(plan, rows_read, inner.inclusive_ms):
        return None
    return inner


def check(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    for join in executed_nodes(plan):
        inner = repeated_inner_scan(plan, join)
        if inner is None:
            continue
        loops = inner.actual_loops or 0.0
        rows_read = _rows_read_per_loop(inner) * loops
        saved = join.exclusive_ms + join.children[1].inclusive_ms
        share = share_of_query(plan, saved)
        yield Finding(
            rule=RULE_ID,
            severity=severity_for_share(share),
            message=(
                f"Nested Loop runs {short_label(inner)} {loops:,.0f} times, reading "
                f"{rows_read:,.0f} rows in all, in {saved:,.1f} ms ({share:.0%} of the query):"
                f" an index on the join key makes each loop a lookup, or a hash join reads the "
                f"input once (check the outer row estimate and work_mem)"
            ),
            node_path=join.path,
            table=table_name(inner),
            potential_ms=saved,
            details={
                "inner_path": inner.path,
                "inner_node": inner.node_type,
                "inner_loops": loops,
                "inner_rows_per_loop": _rows_read_per_loop(inner),
                "inner_rows_read": rows_read,
                "join_filter": join.join_filter,
                "time_ms": saved,
                "share_of_total": share,
            },
        )
