"""Rules: each reads a plan and yields findings; see docs/rules.md for every rule.

Each rule module exposes ``RULES``, a tuple of :class:`Rule`; this registry keeps them in the
order ``explainer rules`` lists them. Findings are ranked by the time a fix could save, so the
order here never decides which finding comes first in a report.
"""

from __future__ import annotations

from collections.abc import Iterable

from explainer.plan import Plan
from explainer.rules import node_rules, plan_rules, seqscan
from explainer.rules.model import (
    Finding,
    Rule,
    RuleContext,
    Severity,
    TableFacts,
    severity_for_share,
    table_name,
)

RULES: tuple[Rule, ...] = (
    Rule(
        id=seqscan.RULE_ID,
        title="Sequential scan over a large table with a selective filter",
        check=seqscan.check,
        trigger="Seq Scan reading >= 10,000 rows of which the filter removes >= 90%",
    ),
    *node_rules.RULES,
    *plan_rules.RULES,
)


def rule_by_id(rule_id: str) -> Rule:
    """The rule with this id; KeyError names the known ids."""
    for rule in RULES:
        if rule.id == rule_id:
            return rule
    known = ", ".join(r.id for r in RULES)
    raise KeyError(f"unknown rule {rule_id!r} (known: {known})")


def run_rules(plan: Plan, context: RuleContext | None = None) -> list[Finding]:
    """All findings for a plan, the ones that could save the most time first."""
    context = context or RuleContext()
    return ranked([finding for rule in RULES for finding in rule.check(plan, context)])


def ranked(findings: Iterable[Finding]) -> list[Finding]:
    """Findings in the report's order: the ones that could save the most time first."""
    return sorted(findings, key=lambda f: (-f.potential_ms, -f.severity.rank, f.rule))


__all__ = [
    "RULES",
    "Finding",
    "Rule",
    "RuleContext",
    "Severity",
    "TableFacts",
    "ranked",
    "rule_by_id",
    "run_rules",
    "severity_for_share",
    "table_name",
]
