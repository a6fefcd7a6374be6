"""Rules on rows read and then thrown away: filters after an index, on CTE scans, on joins.

Each one points at a node that does work for rows nobody needed; the thresholds (docs/rules.md)
follow pev2, which colours a node red when its filter removes more than 90% of the rows,
plus a materiality floor so that a 50-row catalog scan is not reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from explainer.plan import Plan, PlanNode
from explainer.plan.labels import short_label
from explainer.rules.joins import repeated_inner_scan
from explainer.rules.model import Finding, RuleContext, Severity, severity_for_share, table_name
from explainer.rules.node_common import (
    INDEX_SCAN_TYPES,
    JOIN_TYPES,
    MOST_REMOVED_SHARE,
    executed_nodes,
    filter_counts,
    is_material,
    raw_number,
    share_of_query,
)
from explainer.rules.seqscan import MIN_ROWS_READ as SEQ_SCAN_MIN_ROWS

INDEX_FILTER_ID = "index-filter-removes-rows"
HEAP_FETCHES_ID = "index-only-heap-fetches"
CTE_FILTER_ID = "cte-scan-filter"
FILTER_ID = "filter-removes-most-rows"

#: Index-only scans: heap fetches must be at least this share of the rows the index returned.
HEAP_FETCH_SHARE = 0.1
#: ... and at least this many, so a handful of recently updated pages stays quiet.
MIN_HEAP_FETCHES = 1_000


def _removed_share(kept: float, removed: float) -> float:
    read = kept + removed
    return removed / read if read > 0 else 0.0


def check_index_filter(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    """Index scans whose ``Filter`` throws away most of what the index condition found."""
    for node in executed_nodes(plan):
        if node.node_type not in INDEX_SCAN_TYPES or not node.filter:
            continue
        kept, removed = filter_counts(node)
        share_removed = _removed_share(kept, removed)
        if share_removed < MOST_REMOVED_SHARE or not is_material(
            plan, kept + removed, node.inclusive_ms
        ):
            continue
        share = share_of_query(plan, node.inclusive_ms)
        index = node.index_name or "the index"
        yield Finding(
            rule=INDEX_FILTER_ID,
            severity=severity_for_share(share),
            message=(
                f"{short_label(node)} fetches {kept + removed:,.0f} rows through {index} and its "
                f"filter discards {removed:,.0f} ({share_removed:.1%}) in "
                f"{node.inclusive_ms:,.1f} ms ({share:.0%} of the query): an index that also "
                f"covers the filtered columns would read only the {kept:,.0f} rows kept"
            ),
            node_path=node.path,
            table=table_name(node),
            potential_ms=node.inclusive_ms,
            details={
                "index": node.index_name,
                "index_cond": node.index_cond or node.recheck_cond,
                "filter": node.filter,
                "rows_fetched": kept + removed,
                "rows_kept": kept,
                "rows_removed": removed,
                "removed_share": share_removed,
                "loops": node.actual_loops,
                "time_ms": node.inclusive_ms,
                "share_of_total": share,
            },
        )


def check_heap_fetches(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    """Index-only scans that still visit the heap: the visibility map is out of date."""
    for node in executed_nodes(plan):
        if node.node_type != "Index Only Scan":
            continue
        fetches = raw_number(node, "Heap Fetches")
        if not fetches or fetches < MIN_HEAP_FETCHES:
            continue
        kept, removed = filter_counts(node)
        returned = kept + removed
        if returned <= 0:
            continue
        fetch_share = min(1.0, fetches / returned)
        if fetch_share < HEAP_FETCH_SHARE:
            continue
        saved = node.exclusive_ms * fetch_share
        table = table_name(node) or node.relation or "the table"
        yield Finding(
            rule=HEAP_FETCHES_ID,
            severity=severity_for_share(share_of_query(plan, saved)),
            message=(
                f"Index Only Scan on {node.relation or '?'} fetched {fetches:,.0f} heap pages "
                f"for {returned:,.0f} index entries ({fetch_share:.0%}): the visibility map is "
                f"stale, run VACUUM {table} (and make autovacuum visit it more often)"
            ),
            node_path=node.path,
            table=table_name(node),
            potential_ms=saved,
            details={
                "heap_fetches": fetches,
                "rows_from_index": returned,
                "fetch_share": fetch_share,
                "index": node.index_name,
                "time_ms": node.exclusive_ms,
            },
        )


def _cte_node(plan: Plan, name: str) -> PlanNode | None:
    for node in plan.walk():
        if node.subplan_name == f"CTE {name}":
            return node
    return None


def check_cte_filter(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    """A filter on a CTE Scan that removes most rows: the CTE computed them for nothing."""
    for node in executed_nodes(plan):
        if node.node_type != "CTE Scan" or not node.filter or not node.cte_name:
            continue
        kept, removed = filter_counts(node)
        share_removed = _removed_share(kept, removed)
        cte = _cte_node(plan, node.cte_name)
        cte_ms = cte.inclusive_ms if cte is not None else 0.0
        time_ms = cte_ms + node.exclusive_ms
        if share_removed < MOST_REMOVED_SHARE or not is_material(plan, kept + removed, time_ms):
            continue
        references = sum(
            1 for n in plan.walk() if n.node_type == "CTE Scan" and n.cte_name == node.cte_name
        )
        saved = time_ms * share_removed
        share = share_of_query(plan, saved)
        yield Finding(
            rule=CTE_FILTER_ID,
            severity=severity_for_share(share),
            message=(
                f"CTE Scan on {node.cte_name} discards {removed:,.0f} of the {kept + removed:,.0f}"
                f" rows the CTE produced ({share_removed:.1%}): the filter is not pushed into the "
                f"materialized CTE; inline it or write WITH {node.cte_name} AS NOT MATERIALIZED "
                f"(PostgreSQL 12+) so the filter reaches its scans"
            ),
            node_path=node.path,
            potential_ms=saved,
            details={
                "cte": node.cte_name,
                "filter": node.filter,
                "rows_read": kept + removed,
                "rows_kept": kept,
                "removed_share": share_removed,
                "cte_ms": cte_ms,
                "cte_references": references,
                "share_of_total": share,
            },
        )


def _handled_elsewhere(node: PlanNode) -> bool:
    """Filters that a more specific rule judges (so one node gets one finding)."""
    if node.node_type in INDEX_SCAN_TYPES or node.node_type == "CTE Scan":
        return True
    if node.node_type == "Seq Scan":
        kept, removed = filter_counts(node)
        return kept + removed >= SEQ_SCAN_MIN_ROWS  # seq-scan-selective's domain
    return False


def _repeated_inner_ms(node: PlanNode) -> float:
    """Exclusive time of the nodes on a join's inner side that ran once per outer row: a node
    that ran once (a Materialize's input, a Hash) is not repeated, nor is anything below it."""
    if len(node.children) < 2:
        return 0.0
    total = 0.0
    stack = [node.children[1]]
    while stack:
        current = stack.pop()
        if (current.actual_loops or 0) <= 1:
            continue
        total += current.exclusive_ms
        stack.extend(c for c in current.children if c.parent_relationship != "SubPlan")
    return total


def check_filters(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    """Filters and join filters removing most rows, on nodes no other rule covers."""
    for node in executed_nodes(plan):
        if node.filter and not _handled_elsewhere(node):
            kept, removed = filter_counts(node)
            finding = _filter_finding(plan, node, kept, removed, node.inclusive_ms, "Filter")
            if finding is not None:
                yield finding
        if node.join_filter and node.node_type in JOIN_TYPES:
            if repeated_inner_scan(plan, node) is not None:
                continue  # nested-loop-inner-scan says it, with the fix
            kept = node.total_rows or 0.0
            removed = node.rows_removed_by_join_filter_total or 0.0
            time_ms = node.exclusive_ms + _repeated_inner_ms(node)
            finding = _filter_finding(plan, node, kept, removed, time_ms, "Join Filter")
            if finding is not None:
                yield finding


def _filter_finding(
    plan: Plan, node: PlanNode, kept: float, removed: float, time_ms: float, which: str
) -> Finding | None:
    share_removed = _removed_share(kept, removed)
    if share_removed < MOST_REMOVED_SHARE or not is_material(plan, kept + removed, time_ms):
        return None
    share = share_of_query(plan, time_ms)
    if which == "Join Filter":
        advice = (
            "the join condition is not usable as a hash, merge or index condition; "
            "check for a missing join condition or an index on the join key"
        )
    else:
        advice = "an index on the filtered columns, or filtering earlier, avoids producing them"
    return Finding(
        rule=FILTER_ID,
        severity=severity_for_share(share) if time_ms > 0 else Severity.LOW,
        message=(
            f"{short_label(node)}: its {which} removes {removed:,.0f} of "
            f"{kept + removed:,.0f} rows "
            f"({share_removed:.1%}) in {time_ms:,.1f} ms ({share:.0%} of the query); {advice}"
        ),
        node_path=node.path,
        table=table_name(node),
        potential_ms=time_ms,
        details={
            "filter_kind": which,
            "filter": node.join_filter if which == "Join Filter" else node.filter,
            "rows_read": kept + removed,
            "rows_kept": kept,
            "rows_removed": removed,
            "removed_share": share_removed,
            "time_ms": time_ms,
            "share_of_total": share,
        },
    )
