"""One analysis, end to end: workload in, report out.

This is the only place that strings the stages together (db -> plan -> rules -> advise),
so the CLI, the demo and the TUI all analyze the same way. A statement that fails
(bad SQL, a refused statement, a timeout) is recorded in its own report entry and the
rest of the workload goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Literal

import psycopg

from explainer.advise.consolidate import (
    Consolidation,
    IndexFacts,
    SizeSource,
    apply_limits,
    estimate_index_bytes,
    hot_update_warning,
    merge_prefixes,
    query_savings,
    updated_columns,
    write_overhead,
)
from explainer.advise.ddl import create_index_sql
from explainer.advise.indexes import StatementInput, VerifyMode, advise_statements
from explainer.advise.model import Evidence, IndexCandidate, IndexSuggestion
from explainer.advise.removals import find_removals
from explainer.advise.verify import (
    DEFAULT_MAX_VERIFY_TABLE_BYTES,
    DEFAULT_MIN_COST,
    DEFAULT_MIN_GAIN,
    VerifyOptions,
    hypopg_supports,
    verify_hypopg,
    verify_rollback,
)
from explainer.capture import CapturedQuery
from explainer.db.catalog import (
    ServerInfo,
    TableInfo,
    TableWrites,
    estimated_rows,
    foreign_keys,
    hypothetical_index_size,
    index_usage,
    resolve_table,
    server_info,
    stats_since,
    table_statistics,
    table_writes,
)
from explainer.db.connection import connect, redact_dsn
from explainer.db.explain import Connection, Execution, ExplainOptions, explain
from explainer.db.safety import check_statement
from explainer.errors import ExplainerError, InputError
from explainer.orm.models import ModelMap
from explainer.orm.nplus1 import detect as detect_nplus1
from explainer.orm.patterns import detect_patterns
from explainer.orm.reflect import reflect_models
from explainer.plan import Plan
from explainer.report import DatabaseInfo, InputSummary, OrmReport, QueryReport, Report
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
    #: Statements whose plan costs less get ``cheap_query`` (Dexter's minimum initial cost).
    min_cost: float = DEFAULT_MIN_COST
    #: The rollback method builds no test index on a larger table (bytes)...
    max_verify_table_bytes: int = DEFAULT_MAX_VERIFY_TABLE_BYTES
    #: ...unless allowed (``--allow-large``).
    allow_large: bool = False
    #: Analyze only the N heaviest shapes...
    top: int | None = None
    #: ...that ran at least this often...
    min_calls: int = 1
    #: ...and took at least this long in all (shapes without durations are kept).
    min_total_ms: float = 0.0
    #: Explain utility statements too, so that each gets its refusal (pasted SQL).
    include_utility: bool = False
    #: Suggest at most this many indexes (``--max-indexes``): the set that saves most.
    max_indexes: int | None = None
    #: ...whose estimated sizes add up to at most this many bytes (``--max-size``).
    max_size_bytes: int | None = None


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

    def known(self) -> list[TableInfo]:
        """Every table looked up so far that exists."""
        return [info for info in self._tables.values() if info is not None]

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


#: Why N+1 and the other trace rules see nothing when the statements' order was not kept.
NO_ORDER_NOTE = (
    "statement order is not kept when a log is read with --jobs: N+1 and the other "
    "rules that read a session's order were not run on it (read it with --jobs 1)"
)


def analyze_orm(
    workload: Workload,
    models: ModelMap | None,
    *,
    models_target: str | None = None,
    column_widths: dict[str, dict[str, float]] | None = None,
    ordered: bool = True,
) -> OrmReport:
    """The ORM advisor over a workload (built with ``keep_order=True``): N+1 lazy loads
    and the other ORM habits, named in ``models`` when given.

    Needs no database: ``explainer workload`` runs it on a log alone. ``column_widths``
    (average bytes per column, by table) lets the wide-row rules speak; ``ordered`` False
    says the workload's order was not kept (parallel ingest), which the report notes.
    """
    orm = OrmReport(models=models, models_target=models_target)
    orm.nplus1 = detect_nplus1(workload, models)
    orm.patterns = detect_patterns(workload, models=models, column_widths=column_widths)
    if not ordered:
        orm.notes.append(NO_ORDER_NOTE)
    if workload.untraced:
        traced = sum(len(t.steps) for t in workload.traces.values())
        orm.notes.append(
            f"statement order was kept for the first {traced:,} statements only (memory "
            f"bound): N+1 and the other order-based rules did not see the last "
            f"{workload.untraced:,}"
        )
    return orm


def analyze_workload(
    dsn: str | None,
    workload: Workload,
    options: AnalyzeOptions,
    *,
    inputs: InputSummary | None = None,
    progress: ProgressCallback | None = None,
    models: ModelMap | None = None,
    models_target: str | None = None,
    ordered: bool = True,
) -> Report:
    """Connect, explain every shape of the workload (heaviest first), and advise.

    ``models`` (the user's, from ``--models``) name the ORM findings and the index
    suggestions' code; without them the database is reflected and the ORM findings are
    named as sqlacodegen would (guesses, which the report says).
    """
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
        explained: list[tuple[QueryReport, StatementInput]] = []
        for number, group in enumerate(groups, start=1):
            if progress is not None:
                progress(number, len(groups), group)
            entry, statement = _analyze_group(conn, group, options, tables)
            report.queries.append(entry)
            if statement is not None:
                explained.append((entry, statement))
        suggestions = _advise(conn, explained, options, mode)
        _consolidate(conn, server, mode, options, workload, groups, tables, report, suggestions)
        report.orm = _orm(conn, workload, tables, models, models_target, ordered)
    return report


def _orm(
    conn: Connection,
    workload: Workload,
    tables: _TableCache,
    models: ModelMap | None,
    models_target: str | None,
    ordered: bool,
) -> OrmReport:
    """The ORM section of a connected analysis: the database reflected when the user gave
    no models, and the column widths of the tables the plans read for the wide-row rules.
    Neither is worth failing the analysis for: without them the findings are named from
    the SQL, and the wide-row rules stay quiet."""
    notes: list[str] = []
    if models is None:
        try:
            models = reflect_models(conn)
        except psycopg.Error as exc:
            notes.append(f"the database could not be reflected for model names: {exc}")
    widths: dict[str, dict[str, float]] = {}
    read = {(t.schema, t.name) for t in tables.known()}
    with suppress(psycopg.Error):
        for (schema, name), writes in table_writes(conn, read).items():
            key = name if schema == "public" else f"{schema}.{name}"
            widths[key] = {c: float(w) for c, w in writes.column_widths.items()}
    orm = analyze_orm(
        workload, models, models_target=models_target, column_widths=widths, ordered=ordered
    )
    orm.notes[:0] = notes
    return orm


def _analyze_group(
    conn: Connection,
    group: QueryGroup,
    options: AnalyzeOptions,
    tables: _TableCache,
) -> tuple[QueryReport, StatementInput | None]:
    """Explain one shape and run the rules: its report entry, and what the advisor needs
    (None when the statement failed: the entry says why)."""
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
    except ExplainerError as exc:
        entry.error = str(exc)
        return entry, None
    return entry, StatementInput(execution, outcome.plan, entry.findings, plan_tables)


def _advise(
    conn: Connection,
    explained: list[tuple[QueryReport, StatementInput]],
    options: AnalyzeOptions,
    mode: VerifyMode,
) -> dict[IndexCandidate, IndexSuggestion]:
    """Advise every explained statement in one call, after all were explained, so that
    HypoPG judges the workload's candidates in batches across statements (and an index
    one statement's plan prefers is credited to every statement it serves)."""
    advice = advise_statements(
        conn, [statement for _, statement in explained], mode=mode, options=_verify_options(options)
    )
    suggestions: dict[IndexCandidate, IndexSuggestion] = {}
    for (entry, _), result in zip(explained, advice, strict=True):
        if result.error is not None:
            entry.error = result.error
            continue
        entry.no_suggestion = result.rejected
        for candidate, evidence, rule in result.accepted:
            suggestion = suggestions.setdefault(candidate, IndexSuggestion(candidate, {}))
            suggestion.evidence[entry.id] = evidence
            if rule and rule not in suggestion.rules:
                suggestion.rules.append(rule)
    return suggestions


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


def _consolidate(
    conn: Connection,
    server: ServerInfo,
    mode: VerifyMode,
    options: AnalyzeOptions,
    workload: Workload,
    groups: list[QueryGroup],
    tables: _TableCache,
    report: Report,
    suggestions: dict[IndexCandidate, IndexSuggestion],
) -> None:
    """The workload-wide view (advise/consolidate.py): merge INCLUDE variants and prefixes,
    size each index, weigh its writes, choose under ``--max-indexes``/``--max-size``, check
    the chosen set against the whole workload (advise/regressions.py); then what to drop."""
    # Imported here: this function's body is the consolidation's part of the pipeline.
    from explainer.advise.consolidate import LeftOut, merge_includes
    from explainer.advise.regressions import WorkloadQuery, check_regressions

    by_id = {g.fingerprint: g for g in groups}
    # The "before" each query was measured with already: a re-verification reuses it.
    befores = {
        query_id: evidence.before_plan
        for s in suggestions.values()
        for query_id, evidence in s.evidence.items()
        if evidence.method == "rollback" and evidence.before_plan is not None
    }
    reverified: dict[tuple[str, IndexCandidate], Evidence | str] = {}

    def reverify(query_id: str, candidate: IndexCandidate) -> Evidence | str:
        if (query_id, candidate) not in reverified:
            reverified[query_id, candidate] = _reverify(query_id, candidate)
        return reverified[query_id, candidate]

    def _reverify(query_id: str, candidate: IndexCandidate) -> Evidence | str:
        group = by_id.get(query_id)
        if mode == "none":
            return "candidates are not verified (--verify none)"
        if group is None:
            return "the query is not in this analysis"
        info = tables.get(candidate.qualified_table)
        verify_options = _verify_options(options)
        try:
            execution = Execution(check_statement(group.example.sql), _replay_values(group.example))
            if mode == "hypopg" and hypopg_supports(candidate):
                return verify_hypopg(conn, execution, candidate, verify_options)
            too_large = info is not None and info.total_bytes > options.max_verify_table_bytes
            if too_large and not options.allow_large:
                return f"{candidate.qualified_table} is above the size limit for a test index"
            return verify_rollback(
                conn, execution, candidate, verify_options, before=befores.get(query_id)
            )
        except ExplainerError as exc:
            return str(exc)

    consolidation = Consolidation(
        max_indexes=options.max_indexes, max_size_bytes=options.max_size_bytes
    )
    variants, include_merges, include_apart = merge_includes(
        suggestions.values(), reverify, options.min_gain
    )
    kept, prefix_merges, prefix_apart = merge_prefixes(variants, reverify, options.min_gain)
    consolidation.merges = include_merges + prefix_merges
    consolidation.kept_apart = include_apart + prefix_apart
    calls = {q.id: q.calls for q in report.queries}
    execution_ms = {q.id: q.execution_ms for q in report.queries}
    savings, consolidation.unit = query_savings(kept, calls, execution_ms)
    writes = table_writes(conn, ((s.candidate.schema, s.candidate.table) for s in kept))
    updated = updated_columns((g.example.sql, g.calls) for g in workload.groups)
    for suggestion in kept:
        candidate = suggestion.candidate
        table_writes_ = writes.get((candidate.schema, candidate.table))
        info = tables.get(candidate.qualified_table)
        size, source = _index_size(conn, server, candidate, table_writes_, info)
        warning, hot_columns = hot_update_warning(
            candidate,
            table_writes_,
            updated.get(candidate.table, {}),
            info.columns if info is not None else (),
        )
        consolidation.facts[candidate] = IndexFacts(
            size_bytes=size,
            size_source=source,
            serves=savings[candidate],
            write=write_overhead(candidate, table_writes_, bool(hot_columns))
            if table_writes_ is not None
            else None,
            hot_update_warning=warning,
            hot_update_columns=hot_columns,
            replaces=[m.absorbed for m in consolidation.merges if m.into == candidate],
        )
    chosen = apply_limits(kept, consolidation)
    if mode != "none" and chosen:
        queries = []
        for entry in report.queries:
            group = by_id.get(entry.id)
            if entry.plan is None or entry.error is not None or group is None:
                continue
            try:
                execution = Execution(
                    check_statement(group.example.sql), _replay_values(group.example)
                )
            except ExplainerError:
                continue
            read = frozenset((t.schema, t.name) for t in tables.for_plan(entry.plan).values())
            queries.append(WorkloadQuery(entry.id, execution, entry.calls, read, entry.plan))
        check = check_regressions(
            conn,
            queries,
            chosen,
            _verify_options(options),
            table_bytes={(t.schema, t.name): t.total_bytes for t in tables.known()},
            execution_ms=execution_ms,
        )
        consolidation.regressions = check.regressions
        consolidation.regression_checked = check.checked
        consolidation.regression_changed = check.changed
        consolidation.regression_notes = check.notes
        for candidate in check.dropped:
            f = consolidation.facts[candidate]
            consolidation.left_out.append(
                LeftOut(candidate, "regression", f.size_bytes, f.total_saving)
            )
        chosen = [s for s in chosen if s.candidate not in check.dropped]
    report.suggestions = chosen
    report.consolidation = consolidation
    report.stats_since = stats_since(conn)
    report.removals = find_removals(index_usage(conn), report.stats_since)


def _verify_options(options: AnalyzeOptions) -> VerifyOptions:
    return VerifyOptions(
        explain=options.explain,
        min_gain=options.min_gain,
        min_cost=options.min_cost,
        max_table_bytes=options.max_verify_table_bytes,
        allow_large=options.allow_large,
    )


def _index_size(
    conn: Connection,
    server: ServerInfo,
    candidate: IndexCandidate,
    writes: TableWrites | None,
    info: TableInfo | None,
) -> tuple[int, SizeSource]:
    """HypoPG's size when it can simulate the index, else the estimate from pg_stats."""
    if server.has_hypopg and hypopg_supports(candidate):
        size = hypothetical_index_size(conn, create_index_sql(candidate))
        if size is not None:
            return size, "hypopg"
    rows = writes.reltuples if writes is not None else info.estimated_rows if info else 0.0
    if rows < 0 and info is not None:
        rows = info.estimated_rows
    if candidate.where is not None:
        # When the predicate cannot be estimated, the whole table's rows: an upper bound.
        with suppress(psycopg.Error):
            rows = estimated_rows(conn, candidate.schema, candidate.table, candidate.where)
    widths = writes.column_widths if writes is not None else {}
    return estimate_index_bytes(candidate, max(rows, 0.0), widths), "estimate"
