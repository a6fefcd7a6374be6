"""Findings: what a rule says about a plan, with the numbers that made it say so."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
    """What the catalog says about a table, for rules that need more than the plan.

    The statistics fields come from ``pg_stat_all_tables`` and ``pg_stats``; they are None
    when unknown (offline, or a table the statistics views do not cover), and rules that
    need them stay silent then.
    """

    estimated_rows: float  # pg_class.reltuples: what the planner believes (-1: never counted)
    total_bytes: int
    #: ``n_live_tup``: the statistics system's running count of live rows.
    live_rows: float | None = None
    #: ``n_mod_since_analyze``: rows inserted, updated or deleted since the last ANALYZE.
    mod_since_analyze: float | None = None
    #: The later of ``last_analyze`` and ``last_autoanalyze``; None when neither is known.
    last_analyzed: datetime | None = None
    #: Whether ``pg_stats`` holds column statistics for the table (it was analyzed once).
    has_column_stats: bool | None = None
    #: ``pg_stats.n_distinct`` per column as stored (negative: minus a share of the rows).
    distinct: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ForeignKeyFacts:
    """A foreign key as ``pg_constraint`` describes it, to explain slow constraint triggers."""

    name: str
    #: The referencing table (the one with the foreign key columns), named as table_name does.
    table: str
    columns: tuple[str, ...]
    #: The referenced table (the one whose key is referenced).
    referenced_table: str
    referenced_columns: tuple[str, ...]
    #: A valid index on ``table`` whose leading key columns are ``columns`` (any order);
    #: None when there is none, which makes every delete or key update on the referenced
    #: table scan the referencing table.
    index: str | None = None


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Facts from outside the plan; every field is optional so rules also run offline."""

    #: Keyed by the relation name as the plan shows it ("orders" or "sales.orders").
    tables: Mapping[str, TableFacts] = field(default_factory=dict)
    #: The statement the plan is for, when known (rules that read the query's shape).
    sql: str | None = None
    #: Foreign keys named by the plan's constraint triggers, keyed by constraint name.
    foreign_keys: Mapping[str, ForeignKeyFacts] = field(default_factory=dict)


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
