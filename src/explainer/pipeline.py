"""One analysis, end to end: workload in, report out.

This is the only place that strings the stages together (db -> plan -> rules -> advise),
so the CLI, the demo and the TUI all analyze the same way. A statement that fails
(bad SQL, a refused statement, a timeout) is recorded in its own report entry and the
rest of the workload goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from explainer.advise.indexes import VerifyMode, advise_statement
from explainer.advise.model import IndexCandidate, IndexSuggestion
from explainer.advise.verify import DEFAULT_MIN_GAIN, VerifyOptions
from explainer.capture import CapturedQuery
from explainer.db.catalog import (
    ServerInfo,
    TableInfo,
    foreign_keys,
    resolve_table,
    server_info,
    table_statistics,
)
from explainer.db.connection import connect, redact_dsn
from explainer.db.explain import Connection, Execution, ExplainOptions, explain
from explainer.db.safety import check_statement
from explainer.errors import ExplainerError, InputError
from explainer.plan import Plan
from explainer.report import DatabaseInfo, InputSummary, QueryReport, Report
from explainer.rules import RuleContext, TableFacts, run_rules
from explainer.rules.model import ForeignKeyFacts
from explainer.workload import QueryGroup, Workload

VerifyChoice = Literal["auto", "rollback", "hypopg", "none"]
ProgressCallback = Callable[[int, int, QueryGroup], None]


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    explain: ExplainOptions = field(default_factory=ExplainOptions)
    verify: VerifyChoice = "auto"
    min_gain: float = DEFAULT_MIN_GAIN
    #: Analyze only the N heaviest shapes...
    top: int | None = None
    #: ...that ran at least this often...
    min_calls: int = 1
    #: ...and took at least this long in all (shapes without durations are kept).
    min_total_ms: float = 0.0
    #: Explain utility statements too, so that each gets its refusal (pasted SQL).
    include_utility: bool = False


def choose_verify_mode(choice: VerifyChoice, server: ServerInfo) -> VerifyMode:
    """``auto`` uses HypoPG when the extension is installed in the database, else rollback."""
    if choice == "auto":
        return "hypopg" if server.has_hypopg else "rollback"
    if choice == "hypopg" and not server.has_hypopg:
        hint = (
            "run CREATE EXTENSION hypopg"
            if server.hypopg_available
            else "install HypoPG on the server"
        )
        raise InputError(f"--verify hypopg: the hypopg extension is not installed ({hint})")
    return choice


def select_groups(groups: list[QueryGroup], options: AnalyzeOptions) -> list[QueryGroup]:
    """The shapes to analyze: ``--min-calls``, ``--min-total-ms``, then the ``--top`` N."""
    kept = [
        g
        for g in groups
        if g.calls >= options.min_calls
        and (g.total_ms is None or g.total_ms >= options.min_total_ms)
    ]
    return kept if options.top is None else kept[: options.top]


class _TableCache:
    """Catalog lookups once per table per analysis."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._tables: dict[str, TableInfo | None] = {}

    def get(self, name: str) -> TableInfo | None:
        if name not in self._tables:
            schema, _, relation = name.rpartition(".")
            self._tables[name] = resolve_table(self.conn, relation, schema or None)
        return self._tables[name]

    def for_plan(self, plan: Plan) -> dict[str, TableInfo]:
        found: dict[str, TableInfo] = {}
        for node in plan.walk():
            if node.relation is None:
                continue
            key = (
                f"{node.schema}.{node.relation}"
                if node.schema and node.schema != "public"
                else node.relation
            )
            info = self.get(key)
            if info is not None:
                found[key] = info
        return found


def analyze_workload(
    dsn: str | None,
    workload: Workload,
    options: AnalyzeOptions,
    *,
    inputs: InputSummary | None = None,
    progress: ProgressCallback | None = None,
) -> Report:
    """Connect, explain every shape of the workload (heaviest first), and advise."""
    with connect(dsn) as conn:
        server = server_info(conn)
        mode = choose_verify_mode(options.verify, server)
        report = Report(
            database=DatabaseInfo(
                server_version=server.version,
                database=server.database,
                dsn=redact_dsn(dsn),
                verify_method=mode,
            ),
            inputs=inputs or InputSummary(),
        )
        groups = list(workload.groups)
        if options.include_utility:
            groups += workload.utility
        else:
            report.inputs.set_aside += sum(g.calls for g in workload.utility)
        groups = select_groups(groups, options)
        tables = _TableCache(conn)
        suggestions: dict[IndexCandidate, IndexSuggestion] = {}
        for number, group in enumerate(groups, start=1):
            if progress is not None:
                progress(number, len(groups), group)
            entry = _analyze_group(conn, group, options, mode, tables, suggestions)
            report.queries.append(entry)
        report.suggestions = sorted(
            suggestions.values(), key=lambda s: _saving(s, report), reverse=True
        )
    return report


def _analyze_group(
    conn: Connection,
    group: QueryGroup,
    options: AnalyzeOptions,
    mode: VerifyMode,
    tables: _TableCache,
    suggestions: dict[IndexCandidate, IndexSuggestion],
) -> QueryReport:
    example = group.example
    entry = QueryReport(
        id=group.fingerprint,
        sql=example.sql,
        calls=group.calls,
        total_ms=group.total_ms,
        source=example.source,
        line=example.line,
    )
    try:
        execution = Execution(check_statement(example.sql), _replay_values(example))
        outcome = explain(conn, execution, options.explain)
        entry.plan, entry.analyzed, entry.note = outcome.plan, outcome.analyzed, outcome.note
        plan_tables = tables.for_plan(outcome.plan)
        context = rule_context(conn, outcome.plan, plan_tables, example.sql)
        entry.findings = run_rules(outcome.plan, context)
        advice = advise_statement(
            conn,
            execution,
            outcome.plan,
            entry.findings,
            plan_tables,
            mode=mode,
            options=VerifyOptions(explain=options.explain, min_gain=options.min_gain),
        )
    except ExplainerError as exc:
        entry.error = str(exc)
        return entry
    entry.no_suggestion = advice.rejected
    for candidate, evidence, rule in advice.accepted:
        suggestion = suggestions.setdefault(candidate, IndexSuggestion(candidate, {}))
        suggestion.evidence[group.fingerprint] = evidence
        if rule not in suggestion.rules:
            suggestion.rules.append(rule)
    return entry


def rule_context(
    conn: Connection, plan: Plan, plan_tables: dict[str, TableInfo], sql: str | None
) -> RuleContext:
    """The catalog facts the rules read: sizes, statistics freshness, foreign keys.

    Statistics are read for every statement (one query for all its tables), not cached,
    because they are what a rule judges and they change as the workload runs.
    """
    stats = table_statistics(conn, ((t.schema, t.name) for t in plan_tables.values()))
    facts: dict[str, TableFacts] = {}
    for key, info in plan_tables.items():
        st = stats.get((info.schema, info.name))
        facts[key] = TableFacts(
            estimated_rows=info.estimated_rows,
            total_bytes=info.total_bytes,
            live_rows=st.live_rows if st else None,
            mod_since_analyze=st.mod_since_analyze if st else None,
            last_analyzed=st.last_analyzed if st else None,
            has_column_stats=st.has_column_stats if st else None,
        )
    constraints = [
        (name, relation if isinstance(relation, str) else None)
        for trigger in plan.triggers
        if isinstance(name := trigger.get("Constraint Name"), str)
        for relation in [trigger.get("Relation")]
    ]
    keys = {
        name: ForeignKeyFacts(
            name=fk.name,
            table=fk.qualified,
            columns=fk.columns,
            referenced_table=fk.referenced_qualified,
            referenced_columns=fk.referenced_columns,
            index=fk.index,
        )
        for name, fk in foreign_keys(conn, constraints).items()
    }
    return RuleContext(tables=facts, sql=sql, foreign_keys=keys)


def _replay_values(query: CapturedQuery) -> tuple[str | None, ...] | None:
    """Logged values to bind, or None when there are none usable (then: a generic plan)."""
    if not query.replayable or not query.parameters:
        return None
    return query.parameters


def _saving(suggestion: IndexSuggestion, report: Report) -> tuple[float, float]:
    """What a suggestion saves across the workload: calls x saving per call.

    Measured time first; planner cost (HypoPG, or writes not executed) breaks ties and
    ranks suggestions that have no measured time.
    """
    calls = {q.id: q.calls for q in report.queries}
    saved_ms = saved_cost = 0.0
    for query_id, evidence in suggestion.evidence.items():
        weight = calls.get(query_id, 1)
        if evidence.before_ms is not None and evidence.after_ms is not None:
            saved_ms += weight * (evidence.before_ms - evidence.after_ms)
        if evidence.after_cost is not None:
            saved_cost += weight * (evidence.before_cost - evidence.after_cost)
    return saved_ms, saved_cost
