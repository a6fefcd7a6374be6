"""Rules: each reads a plan and yields findings; see docs/rules.md for every rule."""

from __future__ import annotations

from explainer.plan import Plan
from explainer.rules import seqscan
from explainer.rules.model import Finding, Rule, RuleContext, Severity, TableFacts

RULES: tuple[Rule, ...] = (
    Rule(
        id=seqscan.RULE_ID,
        title="Sequential scan over a large table with a selective filter",
        check=seqscan.check,
    ),
)


def run_rules(plan: Plan, context: RuleContext | None = None) -> list[Finding]:
    """All findings for a plan, the ones that could save the most time first."""
    context = context or RuleContext()
    findings = [finding for rule in RULES for finding in rule.check(plan, context)]
    findings.sort(key=lambda f: (-f.potential_ms, -f.severity.rank, f.rule))
    return findings


__all__ = ["RULES", "Finding", "Rule", "RuleContext", "Severity", "TableFacts", "run_rules"]
