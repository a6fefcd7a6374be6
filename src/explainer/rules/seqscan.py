"""``seq-scan-selective``: a sequential scan that reads a large table to keep few rows.

This is the most common fixable slow query: the filter is selective, so an index on the
filtered columns lets PostgreSQL read only the rows it keeps. The thresholds are
documented in docs/rules.md; they are deliberately loose, because the advisor verifies
every index it derives from this finding and drops those that do not help.
"""

from __future__ import annotations

from collections.abc import Iterator

from explainer.plan import Plan, PlanNode
from explainer.rules.model import (
    Finding,
    RuleContext,
    Severity,
    severity_for_share,
    table_name,
)

RULE_ID = "seq-scan-selective"

#: A table with fewer rows than this is read quickly enough without an index.
MIN_ROWS_READ = 10_000
#: The filter must discard at least this share of the rows read.
MIN_REMOVED_SHARE = 0.9


def _analyzed_finding(plan: Plan, node: PlanNode) -> Finding | None:
    loops = node.actual_loops or 0
    if loops == 0 or node.actual_rows is None:
        return None
    kept = node.actual_rows * loops
    removed = (node.rows_removed_by_filter or 0) * loops
    read = kept + removed
    if read < MIN_ROWS_READ or removed / read < MIN_REMOVED_SHARE:
        return None
    total = plan.total_ms or 0.0
    share = node.inclusive_ms / total if total > 0 else 0.0
    relation = node.relation or "?"
    return Finding(
        rule=RULE_ID,
        severity=severity_for_share(share),
        message=(
            f"Seq Scan on {relation} reads {read:,.0f} rows to keep {kept:,.0f} "
            f"({removed / read:.1%} removed by the filter) in {node.inclusive_ms:,.1f} ms"
            f" ({share:.0%} of the query)"
        ),
        node_path=node.path,
        table=table_name(node),
        potential_ms=node.inclusive_ms,
        details={
            "rows_read": read,
            "rows_kept": kept,
            "removed_share": removed / read,
            "time_ms": node.inclusive_ms,
            "share_of_total": share,
            "filter": node.filter,
        },
    )


def _estimated_finding(node: PlanNode, context: RuleContext) -> Finding | None:
    """Without ANALYZE, judge by the planner's estimate against the table's size."""
    facts = context.tables.get(table_name(node) or "")
    if facts is None or facts.estimated_rows < MIN_ROWS_READ:
        return None
    kept = node.plan_rows
    share_removed = 1 - kept / facts.estimated_rows
    if share_removed < MIN_REMOVED_SHARE:
        return None
    return Finding(
        rule=RULE_ID,
        severity=Severity.MEDIUM,
        message=(
            f"Seq Scan on {node.relation} is estimated to read {facts.estimated_rows:,.0f} rows "
            f"to keep {kept:,.0f} ({share_removed:.1%} removed by the filter; estimate only)"
        ),
        node_path=node.path,
        table=table_name(node),
        details={
            "rows_read": facts.estimated_rows,
            "rows_kept": kept,
            "removed_share": share_removed,
            "filter": node.filter,
            "estimated": True,
        },
    )


def check(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    for node in plan.walk():
        if node.node_type != "Seq Scan" or not node.filter or node.relation is None:
            continue
        finding = (
            _analyzed_finding(plan, node) if plan.analyzed else _estimated_finding(node, context)
        )
        if finding is not None:
            yield finding
