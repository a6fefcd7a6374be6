"""Findings: what a rule says about a plan, with the numbers that made it say so."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from explainer.plan import Plan, PlanNode


class Severity(Enum):
    """How much a finding matters, ordered so that ``--fail-on`` can compare them."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


@dataclass(frozen=True, slots=True)
class TableFacts:
    """What the catalog says about a table, for rules that need more than the plan."""

    estimated_rows: float
    total_bytes: int


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Facts from outside the plan; every field is optional so rules also run offline."""

    #: Keyed by the relation name as the plan shows it ("orders" or "sales.orders").
    tables: Mapping[str, TableFacts] = field(default_factory=dict)
    #: The statement the plan is for, when known (rules that read the query's shape).
    sql: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # stable id, documented in docs/rules.md
    severity: Severity
    message: str  # one sentence with the numbers
    node_path: str | None  # PlanNode.path the finding points at
    table: str | None = None
    #: Time the fix could save, in ms: used to rank findings across a report.
    potential_ms: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    check: Callable[[Plan, RuleContext], Iterable[Finding]]
    #: One line for ``explainer rules``: what triggers it, with the threshold.
    trigger: str = ""


def severity_for_share(share_of_total: float) -> Severity:
    """The severity of a time-based finding from the node's share of the query (docs/rules.md)."""
    if share_of_total >= 0.5:
        return Severity.HIGH
    if share_of_total >= 0.1:
        return Severity.MEDIUM
    return Severity.LOW


def table_name(node: PlanNode) -> str | None:
    """The relation as the catalog and the advisor name it: schema-qualified unless public."""
    if node.relation is None:
        return None
    if node.schema and node.schema != "public":
        return f"{node.schema}.{node.relation}"
    return node.relation
