"""The report: everything one analysis found, as plain data for the renderers.

Renderers (terminal, JSON, Markdown) and the TUI read this and nothing else, so what a
user sees in any format comes from the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from explainer.advise.caching import CachingCandidate, CachingRefusal
from explainer.advise.consolidate import Consolidation
from explainer.advise.model import IndexSuggestion, NoSuggestion
from explainer.advise.pooling import PoolingReport
from explainer.advise.removals import IndexRemoval
from explainer.capture.activity import ConnectionActivity
from explainer.db.catalog import StatsSince
from explainer.orm.models import ModelMap
from explainer.orm.nplus1 import NPlusOne
from explainer.orm.patterns import OrmFinding
from explainer.plan import Plan
from explainer.rules import Finding, Severity

if TYPE_CHECKING:
    # Not at run time: explainer.lint imports the renderers, which import this module.
    from explainer.lint.model import LintFinding


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    server_version: str
    database: str
    #: The DSN with its password replaced: safe to print and to export.
    dsn: str
    verify_method: str  # "rollback" | "hypopg" | "none"


@dataclass(slots=True)
class QueryReport:
    """One query shape: its example, where it came from, its plan and what is wrong with it."""

    id: str
    sql: str
    calls: int = 1
    #: Time the workload spent in this shape, from the log; None for pasted SQL.
    total_ms: float | None = None
    source: str = "<input>"
    line: int = 0
    plan: Plan | None = None
    analyzed: bool = False
    #: Why the statement was only estimated, when it was not the user's choice.
    note: str | None = None
    #: Why the statement could not be analyzed at all.
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)
    no_suggestion: list[NoSuggestion] = field(default_factory=list)
    #: The application lines that ran the shape, (``path:line``, executions), most first
    #: (in-app capture only; empty for logs).
    locations: list[tuple[str, int]] = field(default_factory=list)

    @property
    def execution_ms(self) -> float | None:
        return self.plan.execution_ms if self.plan and self.analyzed else None

    @property
    def planning_ms(self) -> float | None:
        return self.plan.planning_ms if self.plan else None

    @property
    def worst_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)


@dataclass(slots=True)
class InputSummary:
    """What the inputs held besides the analyzed queries."""

    sources: list[str] = field(default_factory=list)
    statements: int = 0
    #: Utility statements (BEGIN, SET, catalog lookups...) counted and set aside.
    set_aside: int = 0
    #: Lines or items a reader could not use, by reason.
    skipped: dict[str, int] = field(default_factory=dict)
    #: Connections the inputs showed (server log, in-app pool events), for pooling advice.
    activity: ConnectionActivity = field(default_factory=ConnectionActivity)


@dataclass(slots=True)
class OrmReport:
    """The ORM advisor's part of an analysis: whose names it uses, and what it found.

    ``models`` is the user's (``--models``, source ``"models"``), the database's
    (reflected, source ``"reflected"``: sqlacodegen-style guesses) or None (no models, no
    database: names come from the SQL alone, as each finding's ``named_from`` says).
    """

    models: ModelMap | None = None
    #: The ``--models`` target as given; None when reflected or absent.
    models_target: str | None = None
    #: N+1 lazy loads, most lookups first; nested ones also under their parent.
    nplus1: list[NPlusOne] = field(default_factory=list)
    #: The other ORM habits (docs/rules.md, "ORM patterns"), costliest first.
    patterns: list[OrmFinding] = field(default_factory=list)
    #: Why part of the detection could not run (statement order not kept...), else None.
    notes: list[str] = field(default_factory=list)

    @property
    def named_from(self) -> str:
        """``models``, ``reflected`` or ``sql``: where class and attribute names come from."""
        return self.models.source if self.models is not None else "sql"

    @property
    def user_models(self) -> ModelMap | None:
        """The user's own models (``--models``); None when reflected or absent, since
        guessed classes have no file to change."""
        return self.models if self.models is not None and self.models.source == "models" else None

    @property
    def count(self) -> int:
        """Findings of both kinds."""
        return len(self.nplus1) + len(self.patterns)


@dataclass(slots=True)
class Report:
    database: DatabaseInfo
    queries: list[QueryReport] = field(default_factory=list)
    #: The indexes to create: verified, merged across queries, chosen under the limits.
    suggestions: list[IndexSuggestion] = field(default_factory=list)
    inputs: InputSummary = field(default_factory=InputSummary)
    #: How the suggestions were merged and chosen, and each one's size, saving and writes.
    consolidation: Consolidation = field(default_factory=Consolidation)
    #: Existing indexes to drop (never mixed with the suggestions).
    removals: list[IndexRemoval] = field(default_factory=list)
    #: Since when the index usage counters behind ``unused`` removals count.
    stats_since: StatsSince | None = None
    #: N+1 and other ORM findings, and the models they are named in.
    orm: OrmReport = field(default_factory=OrmReport)
    #: What the analysis chose or could not do, one sentence each (HypoPG absent and
    #: the fallback taken, a step left out behind a lock...).
    notes: list[str] = field(default_factory=list)
    #: The schema lint of the tables the workload touches (explainer.lint.workload),
    #: most severe first; empty when not run (--no-lint, not connected, stopped).
    lint: list[LintFinding] = field(default_factory=list)
    #: Read-only queries an application cache would answer (explainer.advise.caching),
    #: most database time saved first.
    caching: list[CachingCandidate] = field(default_factory=list)
    #: Shapes repeated enough to cache that were refused, each with why.
    caching_refused: list[CachingRefusal] = field(default_factory=list)
    #: Connection pooling findings and the create_engine recommendation
    #: (explainer.advise.pooling); None when the analysis did not get that far.
    pooling: PoolingReport | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for q in self.queries for f in q.findings]

    @property
    def failed(self) -> list[QueryReport]:
        return [q for q in self.queries if q.error is not None]

    def meets(self, severity: Severity) -> bool:
        """Whether any finding, the schema lint's and the connection pooling's included,
        is at least ``severity`` (for ``--fail-on``)."""
        pooling = self.pooling.findings if self.pooling is not None else []
        return (
            any(f.severity >= severity for f in self.findings)
            or any(f.severity >= severity for f in self.lint)
            or any(f.severity >= severity for f in pooling)
        )
