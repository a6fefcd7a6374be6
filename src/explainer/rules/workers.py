"""``workers-not-launched``: a Gather that got fewer parallel workers than the plan counted on.

The planner chose a parallel plan for ``Workers Planned`` processes; at run time the server
had no free background worker slot for some of them (``max_parallel_workers`` or
``max_worker_processes`` in use by other queries), so the parallel part ran on fewer
processes and took longer. The plan itself is fine; the server was short of workers.
"""

from __future__ import annotations

from collections.abc import Iterator

from explainer.plan import Plan, PlanNode
from explainer.rules.model import Finding, RuleContext, Severity, severity_for_share
from explainer.rules.plan_helpers import share

RULE_ID = "workers-not-launched"

GATHER_TYPES = frozenset({"Gather", "Gather Merge"})

#: The settings that cap how many workers can run at once, shown when the plan carries them.
WORKER_SETTINGS = (
    "max_parallel_workers",
    "max_worker_processes",
    "max_parallel_workers_per_gather",
)


def _leader_participates(plan: Plan, gather: PlanNode) -> int:
    if gather.raw.get("Single Copy") is True:
        return 0
    return 0 if plan.settings.get("parallel_leader_participation") == "off" else 1


def check(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    if not plan.analyzed:
        return
    for node in plan.walk():
        if node.node_type not in GATHER_TYPES or node.never_executed:
            continue
        planned, launched = node.workers_planned, node.workers_launched
        if planned is None or launched is None or launched >= planned:
            continue
        leader = _leader_participates(plan, node)
        # With no worker at all the leader runs the parallel part itself.
        processes = max(launched + leader, 1)
        expected = max(planned + leader, 1)
        # If the parallel part scaled with processes, this much of the Gather's time is lost.
        potential = node.inclusive_ms * (1 - processes / expected)
        severity = (
            severity_for_share(share(potential, plan.total_ms)) if plan.has_timing else Severity.LOW
        )
        settings = {k: plan.settings[k] for k in WORKER_SETTINGS if k in plan.settings}
        shown = ", ".join(f"{k} = {v}" for k, v in settings.items())
        cost = (
            f"; if it scales with processes, up to {potential:,.1f} ms of its "
            f"{node.inclusive_ms:,.1f} ms was lost"
            if plan.has_timing
            else ""
        )
        yield Finding(
            rule=RULE_ID,
            severity=severity,
            message=(
                f"{node.node_type} planned {planned} workers but launched {launched}, so the "
                f"parallel part ran on {processes} of {expected} processes{cost}: other queries "
                f"held the worker slots; raise max_parallel_workers (and max_worker_processes, "
                f"a restart) or run fewer parallel queries at once"
                + (f" ({shown})" if shown else "")
            ),
            node_path=node.path,
            potential_ms=potential,
            details={
                "workers_planned": planned,
                "workers_launched": launched,
                "processes": processes,
                "planned_processes": expected,
                "gather_ms": node.inclusive_ms,
                "settings": settings,
            },
        )
