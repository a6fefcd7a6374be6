"""``stale-statistics``: a table whose planner statistics no longer describe it.

Needs the database (``RuleContext.tables`` filled from ``pg_class``, ``pg_stat_all_tables``
and ``pg_stats``): offline it is silent. The planner scales ``reltuples`` to the table's
current size, so the row count alone can still come out right; what goes stale with it is
every column statistic (most common values, histogram bounds, distinct counts), which decide
how many rows a WHERE clause or a join keeps. New rows beyond the old histogram (recent
timestamps, new ids) are then estimated at almost none, and the plan is chosen for that.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from explainer.plan import Plan, PlanNode
from explainer.rules.model import Finding, RuleContext, Severity, TableFacts, table_name

RULE_ID = "stale-statistics"

#: Tables smaller than this are cheap whatever the plan; autovacuum also leaves them alone.
MIN_ROWS = 1_000
#: reltuples off by this factor from what the plan read or the live row count.
ROW_FACTOR = 10.0
#: Rows changed since the last ANALYZE, as a share of the live rows. Autoanalyze starts at
#: 50 rows + autovacuum_analyze_scale_factor (0.1) x reltuples; twice that means it is not
#: keeping up (disabled, too slow, or blocked by long transactions), not merely due.
MOD_SHARE = 0.2


def _rows_seen(plan: Plan, nodes: list[PlanNode]) -> float | None:
    """Rows a Seq Scan of the table read in one pass (kept + removed by its filter).

    A full scan reads every live row, so this is a lower bound of the table's size; it can
    be lower than the table only when the scan stopped early (LIMIT, EXISTS), so it is only
    used to show that the table grew.
    """
    if not plan.analyzed:
        return None
    seen: float | None = None
    for node in nodes:
        if node.node_type != "Seq Scan" or node.never_executed or node.actual_rows is None:
            continue
        per_loop = node.actual_rows + (node.rows_removed_by_filter or 0.0)
        # A Parallel Seq Scan shares one pass among its processes (loops): add them up.
        rows = per_loop * (node.actual_loops or 1.0) if node.parallel_aware else per_loop
        seen = rows if seen is None else max(seen, rows)
    return seen


def _utc(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _factor(a: float, b: float) -> float:
    return max(a, 1.0) / max(b, 1.0)


def _judge(facts: TableFacts, seen: float | None) -> tuple[list[str], Severity, dict[str, object]]:
    reasons: list[str] = []
    severity = Severity.MEDIUM
    reltuples = facts.estimated_rows
    live = facts.live_rows
    size = max(reltuples, live or 0.0, seen or 0.0)
    details: dict[str, object] = {
        "reltuples": reltuples,
        "live_rows": live,
        "rows_seen": seen,
        "mod_since_analyze": facts.mod_since_analyze,
        "last_analyzed": facts.last_analyzed.isoformat() if facts.last_analyzed else None,
    }
    if size < MIN_ROWS:
        return [], severity, details
    if facts.has_column_stats is False:
        reasons.append("it was never analyzed (no column statistics)")
        severity = Severity.HIGH
    elif reltuples >= 0:
        if seen is not None and _factor(seen, reltuples) >= ROW_FACTOR:
            reasons.append(
                f"the planner counts {reltuples:,.0f} rows but the plan read {seen:,.0f} "
                f"({_factor(seen, reltuples):,.0f}x)"
            )
            details["factor"] = _factor(seen, reltuples)
            severity = Severity.HIGH
        elif live is not None and max(_factor(live, reltuples), _factor(reltuples, live)) >= (
            ROW_FACTOR
        ):
            factor = max(_factor(live, reltuples), _factor(reltuples, live))
            reasons.append(
                f"the planner counts {reltuples:,.0f} rows, the table has {live:,.0f} live "
                f"rows ({factor:,.0f}x)"
            )
            details["factor"] = factor
            severity = Severity.HIGH
    mod = facts.mod_since_analyze
    if mod is not None and live is not None and facts.has_column_stats is not False:
        mod_share = mod / max(live, 1.0)
        details["mod_share"] = mod_share
        if mod_share >= MOD_SHARE:
            when = (
                f"last analyzed {_utc(facts.last_analyzed)}"
                if facts.last_analyzed
                else "last analysis time unknown"
            )
            reasons.append(
                f"{mod:,.0f} rows changed since the last ANALYZE ({mod_share:.0%} of "
                f"{live:,.0f} live rows; {when})"
            )
    return reasons, severity, details


def check(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    if not context.tables:
        return
    by_table: dict[str, list[PlanNode]] = {}
    for node in plan.walk():
        name = table_name(node)
        if name is not None and node.node_type != "ModifyTable":
            by_table.setdefault(name, []).append(node)
    for name, nodes in by_table.items():
        facts = context.tables.get(name)
        if facts is None or facts.live_rows is None:
            continue  # no statistics facts: offline or not a plain table
        seen = _rows_seen(plan, nodes)
        reasons, severity, details = _judge(facts, seen)
        if not reasons:
            continue
        evidence = next((n for n in nodes if n.node_type == "Seq Scan"), nodes[0])
        yield Finding(
            rule=RULE_ID,
            severity=severity,
            message=(
                f"Statistics of {name} are out of date: "
                + "; ".join(reasons)
                + f". Run ANALYZE {name} (and check why autoanalyze did not)"
            ),
            node_path=evidence.path,
            table=name,
            potential_ms=0.0,
            details={**details, "reasons": reasons},
        )
