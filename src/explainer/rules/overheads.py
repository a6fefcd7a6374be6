"""Time spent outside the plan's nodes: ``jit-overhead`` and ``slow-planning``.

Both are fixed costs paid on every execution, which matter most for short queries run often:
JIT compiles expressions to machine code (worth it for long analytical queries, pure
overhead for a query that runs in milliseconds), and planning a query with many joins or
partitions can take longer than running it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from explainer.plan import Plan
from explainer.rules.model import Finding, RuleContext, Severity, severity_for_share
from explainer.rules.plan_helpers import number, raw_number, share

JIT_ID = "jit-overhead"
PLANNING_ID = "slow-planning"

#: JIT must take at least this share of the execution time...
JIT_MIN_SHARE = 0.1
#: ...and at least this long. JIT only starts above jit_above_cost (100,000 by default), so
#: any JIT time on a millisecond query means the cost estimate or the threshold is off.
JIT_MIN_MS = 1.0

#: Planning must take longer than execution and at least this long.
PLANNING_MIN_MS = 5.0
#: From this long, planning is a high-severity finding.
PLANNING_HIGH_MS = 100.0
#: From this many relations, join_collapse_limit and from_collapse_limit (8) cut the search.
MANY_RELATIONS = 8
#: From this many scans under Append nodes, partitions are a likely planning cost.
MANY_PARTITIONS = 100

_JIT_PHASES = ("Generation", "Inlining", "Optimization", "Emission")


def _phase_ms(timing: Mapping[str, Any], phase: str) -> float | None:
    value = timing.get(phase)
    if isinstance(value, Mapping):  # PostgreSQL 17+: {"Deform": ..., "Total": ...}
        return number(value.get("Total"))
    return number(value)


def jit_timing(jit: Mapping[str, Any] | None) -> tuple[float, dict[str, float]] | None:
    """(total ms, ms per phase) of the JIT section; None without timing (no ANALYZE, or
    TIMING OFF). ``Generation`` is a number up to PostgreSQL 16 and an object from 17."""
    if jit is None:
        return None
    timing = jit.get("Timing")
    if not isinstance(timing, Mapping):
        return None
    phases = {p: ms for p in _JIT_PHASES if (ms := _phase_ms(timing, p)) is not None}
    total = number(timing.get("Total"))
    if total is None:
        if not phases:
            return None
        total = sum(phases.values())
    return total, phases


def check_jit(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    timing = jit_timing(plan.jit)
    execution = plan.total_ms
    if timing is None or not plan.analyzed or not execution:
        return
    jit_ms, phases = timing
    jit_share = share(jit_ms, execution)
    if jit_ms < JIT_MIN_MS or jit_share < JIT_MIN_SHARE:
        return
    assert plan.jit is not None
    options = plan.jit.get("Options")
    options = options if isinstance(options, Mapping) else {}
    functions = number(plan.jit.get("Functions"))
    expensive = [o for o in ("Inlining", "Optimization") if options.get(o) is True]
    if expensive:
        passes = " and ".join(o.lower() for o in expensive)
        advice = (
            f"{passes} ran (jit_inline_above_cost / jit_optimize_above_cost); raise those, "
            f"raise jit_above_cost, or SET jit = off for short queries"
        )
    else:
        advice = "raise jit_above_cost or SET jit = off for short (OLTP) queries"
    setting = plan.settings.get("jit_above_cost")
    if setting is not None:
        advice += f" (jit_above_cost = {setting})"
    counted = f" for {functions:,.0f} functions" if functions is not None else ""
    # Parallel workers compile their own copies: their times are added to the leader's.
    how_much = (
        "summed over the parallel processes, more than"
        if jit_ms > execution
        else f"{jit_share:.0%} of"
    )
    yield Finding(
        rule=JIT_ID,
        severity=severity_for_share(jit_share),
        message=(
            f"JIT compilation took {jit_ms:,.1f} ms{counted}, {how_much} the "
            f"{execution:,.1f} ms execution: {advice}"
        ),
        node_path=None,
        potential_ms=min(jit_ms, execution),
        details={
            "jit_ms": jit_ms,
            "share_of_total": jit_share,
            "execution_ms": execution,
            "functions": functions,
            "phases_ms": phases,
            "options": dict(options),
        },
    )


def _planning_hints(plan: Plan) -> tuple[list[str], dict[str, Any]]:
    relations = sum(1 for n in plan.walk() if n.relation is not None)
    partitions = sum(
        len(n.children) for n in plan.walk() if n.node_type in ("Append", "Merge Append")
    )
    planning = plan.raw.get("Planning")
    planning = planning if isinstance(planning, Mapping) else {}
    catalog_reads = raw_number(planning, "Shared Read Blocks") or 0.0
    hints = ["a prepared statement reuses its plan (PREPARE, or the driver's statement cache)"]
    if relations >= MANY_RELATIONS:
        hints.append(
            f"{relations} relations: a lower join_collapse_limit / from_collapse_limit "
            f"(or geqo_threshold) cuts the join search"
        )
    if partitions >= MANY_PARTITIONS:
        hints.append(
            f"{partitions} partitions under Append: fewer partitions, or a WHERE the planner "
            f"can prune with"
        )
    if catalog_reads > 0:
        hints.append(
            f"planning read {catalog_reads:,.0f} catalog blocks (a new connection's cold "
            f"caches: a connection pool keeps them warm)"
        )
    details = {
        "relations": relations,
        "append_children": partitions,
        "planning_blocks_read": catalog_reads,
    }
    return hints, details


def check_planning(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    planning, execution = plan.planning_ms, plan.execution_ms
    if not plan.analyzed or planning is None or execution is None:
        return
    if planning < PLANNING_MIN_MS or planning <= execution:
        return
    hints, details = _planning_hints(plan)
    yield Finding(
        rule=PLANNING_ID,
        severity=Severity.HIGH if planning >= PLANNING_HIGH_MS else Severity.MEDIUM,
        message=(
            f"Planning took {planning:,.1f} ms, longer than the {execution:,.1f} ms execution: "
            + "; ".join(hints)
        ),
        node_path=None,
        potential_ms=planning,
        details={"planning_ms": planning, "execution_ms": execution, **details},
    )
