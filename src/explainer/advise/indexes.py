"""The index advisor for statements: findings in, verified suggestions out.

For each finding an index can fix, the table access it points at gets its candidates
(sometimes several alternatives: a composite, a partial, a covering one); what an
existing index already serves is dropped, and the rest is verified: with HypoPG in
batches across statements, or by building the index in a rolled-back transaction. Of
the alternatives for one access the best that the planner uses and that saves at least
``--min-gain`` is kept. Everything not suggested is reported with a reason code, so a
user can tell "nothing to do" from "explainer could not tell".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from explainer.advise.candidates import covering_index, derive_candidates
from explainer.advise.model import (
    Evidence,
    IndexCandidate,
    NoSuggestion,
    NoSuggestionReason,
)
from explainer.advise.verify import (
    HypoItem,
    HypoStats,
    VerifyOptions,
    estimate_only,
    figures,
    helps,
    hypopg_supports,
    measure,
    ranking,
    verify_hypopg_batch,
    verify_rollback,
)
from explainer.db.catalog import TableInfo, resolve_table
from explainer.db.explain import Connection, Execution
from explainer.db.stats import TableStats, installed_extensions, table_stats
from explainer.errors import QueryFailed
from explainer.plan import Plan, PlanNode
from explainer.rules import Finding, table_name

VerifyMode = Literal["rollback", "hypopg", "none"]

FK_RULE = "slow-fk-trigger"
SORT_RULE = "sort-spills-to-disk"

#: Rules whose findings an index on one table access can fix. Not ``count-for-existence``
#: (rewrite the query), nor the memory, statistics and overhead rules.
INDEX_RULES = frozenset(
    {
        "seq-scan-selective",  # an index on the filtered columns
        "index-filter-removes-rows",  # a better (composite or partial) index
        "nested-loop-inner-scan",  # an index on the inner side's join key
        "filter-removes-most-rows",  # on a scan: an index on the filtered columns
        SORT_RULE,  # an index in the sort's order under the Sort
        FK_RULE,  # an index on the referencing columns
    }
)


@dataclass(slots=True)
class StatementAdvice:
    #: Verified candidates with their evidence and the rule that led to each.
    accepted: list[tuple[IndexCandidate, Evidence, str]] = field(default_factory=list)
    rejected: list[NoSuggestion] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StatementInput:
    """One explained statement, as the pipeline has it after the rules ran."""

    execution: Execution
    plan: Plan
    findings: Sequence[Finding]
    #: The plan's tables by the name findings use (schema-qualified unless public).
    tables: Mapping[str, TableInfo]


@dataclass(slots=True)
class _Access:
    """One table access a finding points at, with its alternative candidates."""

    rule: str
    table: TableInfo
    candidates: list[IndexCandidate]
    #: A foreign key whose trigger the index is for (verified by the trigger's time).
    constraint: str | None = None
    evidence: dict[IndexCandidate, Evidence] = field(default_factory=dict)


@dataclass(slots=True)
class _Statement:
    source: StatementInput
    accesses: list[_Access] = field(default_factory=list)
    advice: StatementAdvice = field(default_factory=StatementAdvice)


def advise_statement(
    conn: Connection,
    execution: Execution,
    plan: Plan,
    findings: Sequence[Finding],
    tables: Mapping[str, TableInfo],
    *,
    mode: VerifyMode,
    options: VerifyOptions,
) -> StatementAdvice:
    """Candidates for every index-worthy finding of one statement, verified by ``mode``."""
    [advice] = advise_statements(
        conn, [StatementInput(execution, plan, findings, tables)], mode=mode, options=options
    )
    return advice


def advise_statements(
    conn: Connection,
    statements: Sequence[StatementInput],
    *,
    mode: VerifyMode,
    options: VerifyOptions,
    stats: HypoStats | None = None,
) -> list[StatementAdvice]:
    """Advice for many statements at once, one per statement in order.

    With ``mode="hypopg"`` the hypothetical indexes are created in batches across the
    statements, so a workload of thousands of statements costs one ``hypopg_create_index``
    per distinct candidate per batch, not one per candidate per statement.
    """
    catalog = _Catalog(conn)
    prepared = [_prepare(catalog, s, options) for s in statements]
    if mode == "hypopg":
        _verify_hypopg(conn, prepared, options, stats)
    for statement in prepared:
        _verify_rest(conn, statement, mode, options)
        _decide(statement, options)
    return [s.advice for s in prepared]


def _prepare(catalog: _Catalog, source: StatementInput, options: VerifyOptions) -> _Statement:
    """The statement's table accesses and candidates; reasons for what gets none."""
    statement = _Statement(source)
    rejected = statement.advice.rejected
    findings = [f for f in source.findings if f.rule in INDEX_RULES]
    if not findings:
        return statement
    cost = source.plan.root.total_cost
    if cost < options.min_cost:
        # A foreign key trigger's work is not in the plan's cost: its finding stays.
        if any(f.rule != FK_RULE for f in findings):
            rejected.append(
                NoSuggestion(
                    NoSuggestionReason.CHEAP_QUERY,
                    f"the plan costs {cost:,.1f}, below --min-cost {options.min_cost:,.0f}: "
                    "not worth an index",
                )
            )
        findings = [f for f in findings if f.rule == FK_RULE]
    seen: set[IndexCandidate] = set()
    for finding in findings:
        name, node = _finding_access(source.plan, finding)
        if name is None:
            continue
        table = source.tables.get(name) or _lookup(catalog.conn, name)
        if table is None:
            rejected.append(
                NoSuggestion(
                    NoSuggestionReason.UNKNOWN_TABLE, f"{name} is not in the catalog", name
                )
            )
            continue
        candidates, reasons = _derive(catalog, source, finding, table, node)
        rejected.extend(reasons)
        fresh = [c for c in candidates if c not in seen]
        seen.update(fresh)
        if fresh:
            constraint = finding.details.get("constraint") if finding.rule == FK_RULE else None
            statement.accesses.append(
                _Access(finding.rule, table, fresh, str(constraint) if constraint else None)
            )
    return statement


def _lookup(conn: Connection, name: str) -> TableInfo | None:
    """A table no plan node reads (a foreign key's referencing table)."""
    schema, _, relation = name.rpartition(".")
    return resolve_table(conn, relation, schema or None)


def _finding_access(plan: Plan, finding: Finding) -> tuple[str | None, PlanNode | None]:
    """The table the index belongs to and the scan node reading it.

    For a nested loop, the inner side's scan; for a Sort, the one table read under it (an
    index in the sort's order replaces the Sort only over a single table).
    """
    path = finding.node_path
    if finding.rule == "nested-loop-inner-scan":
        inner = finding.details.get("inner_path")
        path = str(inner) if inner else path
    node = _node(plan, path)
    if finding.rule != SORT_RULE or node is None:
        return finding.table, node
    while node.relation is None:
        inputs = [c for c in node.children if c.parent_relationship not in ("InitPlan", "SubPlan")]
        if len(inputs) != 1:
            return None, None
        node = inputs[0]
    return table_name(node), node


def _node(plan: Plan, path: str | None) -> PlanNode | None:
    if path is None:
        return None
    try:
        return plan.node(path)
    except KeyError:
        return None


class _Catalog:
    """Statistics and extensions read once per advisor run, as candidates need them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._stats: dict[tuple[str, str], TableStats | None] = {}
        self._extensions: frozenset[str] | None = None

    def stats(self, table: TableInfo) -> TableStats | None:
        key = (table.schema, table.name)
        if key not in self._stats:
            self._stats[key] = table_stats(self.conn, table.schema, table.name)
        return self._stats[key]

    @property
    def extensions(self) -> frozenset[str]:
        if self._extensions is None:
            self._extensions = installed_extensions(self.conn)
        return self._extensions


def _derive(
    catalog: _Catalog,
    source: StatementInput,
    finding: Finding,
    table: TableInfo,
    node: PlanNode | None,
) -> tuple[list[IndexCandidate], list[NoSuggestion]]:
    """The alternatives for one access, and reasons for what was dropped."""
    if finding.rule != FK_RULE:
        result = derive_candidates(
            source.execution.statement.sql,
            table,
            plan=source.plan,
            node=node,
            stats=catalog.stats(table),
            extensions=catalog.extensions,
        )
        rejected = [
            replace(r, existing=result.covered_by[r.candidate].name)
            if r.existing is None and r.candidate is not None and r.candidate in result.covered_by
            else r
            for r in result.rejected
        ]
        return result.candidates, rejected
    # The referencing columns of the foreign key, in the constraint's order.
    columns = finding.details.get("referencing_columns")
    if not columns:
        return [], []
    candidate = IndexCandidate.of(table.schema, table.name, *(str(c) for c in columns))
    existing = covering_index(candidate, table.indexes)
    if existing is not None:
        return [], [
            NoSuggestion(
                NoSuggestionReason.ALREADY_INDEXED,
                f"{existing.name} already covers ({', '.join(candidate.columns)})",
                table.qualified,
                candidate,
                existing=existing.name,
            )
        ]
    return [candidate], []


def _by_hypopg(access: _Access, candidate: IndexCandidate) -> bool:
    # A foreign key's index serves the trigger's query, which no plan shows.
    return access.constraint is None and hypopg_supports(candidate)


def _verify_hypopg(
    conn: Connection,
    statements: list[_Statement],
    options: VerifyOptions,
    stats: HypoStats | None,
) -> None:
    """All statements' HypoPG candidates in batches; the evidence lands on each access."""
    items, owners = [], []
    for statement in statements:
        wanted = tuple(c for a in statement.accesses for c in a.candidates if _by_hypopg(a, c))
        if wanted:
            items.append(HypoItem(statement.source.execution, wanted))
            owners.append(statement)
    results = verify_hypopg_batch(conn, items, options, stats)
    for statement, result in zip(owners, results, strict=True):
        for access in statement.accesses:
            # Another statement's candidate that the planner preferred for this table
            # becomes one more alternative here: it would serve this statement too.
            for other in result.used:
                if other not in access.candidates and _same_table(other, access.table):
                    access.candidates.append(other)
            for candidate in list(access.candidates):
                if not _by_hypopg(access, candidate):
                    continue
                problem = result.error or result.failed.get(candidate)
                if problem is not None:
                    statement.advice.rejected.append(
                        NoSuggestion(
                            NoSuggestionReason.VERIFY_FAILED,
                            problem,
                            access.table.qualified,
                            candidate,
                        )
                    )
                    access.candidates.remove(candidate)
                    continue
                access.evidence[candidate] = result.evidence(candidate)


def _same_table(candidate: IndexCandidate, table: TableInfo) -> bool:
    return candidate.schema == table.schema and candidate.table == table.name


def _verify_rest(
    conn: Connection, statement: _Statement, mode: VerifyMode, options: VerifyOptions
) -> None:
    """Candidates HypoPG did not judge: unverified (``none``) or built for real."""
    source = statement.source
    if mode == "none":
        for access in statement.accesses:
            for candidate in access.candidates:
                access.evidence[candidate] = estimate_only(source.plan)
        return
    before: Plan | None = None
    for access in statement.accesses:
        for candidate in list(access.candidates):
            if candidate in access.evidence or (mode == "hypopg" and _by_hypopg(access, candidate)):
                continue
            reason = _rollback_refusal(source.execution, access.table, candidate, mode, options)
            try:
                if reason is not None:
                    raise _Refused(reason)
                if before is None:
                    before = measure(conn, source.execution, options)
                access.evidence[candidate] = verify_rollback(
                    conn,
                    source.execution,
                    candidate,
                    options,
                    before=before,
                    constraint=access.constraint,
                )
            except _Refused as refusal:
                statement.advice.rejected.append(refusal.reason)
            except QueryFailed as exc:
                statement.advice.rejected.append(
                    NoSuggestion(
                        NoSuggestionReason.VERIFY_FAILED,
                        str(exc),
                        access.table.qualified,
                        candidate,
                    )
                )
            else:
                continue
            access.candidates.remove(candidate)


class _Refused(Exception):
    def __init__(self, reason: NoSuggestion) -> None:
        super().__init__(reason.detail)
        self.reason = reason


def _rollback_refusal(
    execution: Execution,
    table: TableInfo,
    candidate: IndexCandidate,
    mode: VerifyMode,
    options: VerifyOptions,
) -> NoSuggestion | None:
    """Why the rollback method must not verify this candidate, if it must not."""
    why = "" if mode == "rollback" else f" (HypoPG cannot simulate {candidate.using})"
    if table.total_bytes > options.max_table_bytes and not options.allow_large:
        return NoSuggestion(
            NoSuggestionReason.TABLE_TOO_LARGE,
            f"{table.qualified} is {format_size(table.total_bytes)}, above "
            f"--max-verify-table-size {format_size(options.max_table_bytes)}: building a test "
            f"index{why} would lock its writes for the build; pass --allow-large to verify it",
            table.qualified,
            candidate,
        )
    return None


def _decide(statement: _Statement, options: VerifyOptions) -> None:
    """Per access: keep the best alternative that helps; say why for the others."""
    advice = statement.advice
    source_is_generic = statement.source.execution.mode == "generic"
    for access in statement.accesses:
        judged = [(c, access.evidence[c]) for c in access.candidates if c in access.evidence]
        winners = [(c, e) for c, e in judged if helps(e, options.min_gain)]
        best = min(winners, key=lambda item: ranking(item[1])) if winners else None
        if best is not None:
            advice.accepted.append((best[0], best[1], access.rule))
        used = [c for c, e in judged if e.index_used]
        for candidate, evidence in judged:
            if best is not None and candidate == best[0]:
                continue
            if best is not None and (
                helps(evidence, options.min_gain) or _lost_in_one_plan(evidence, best[1])
            ):
                advice.rejected.append(_beaten(candidate, evidence, best))
            else:
                reason = _why_not(candidate, evidence, options.min_gain, used)
                if source_is_generic:
                    reason = _not_replayable(reason)
                advice.rejected.append(reason)


def _lost_in_one_plan(evidence: Evidence, won: Evidence) -> bool:
    """HypoPG judged both in one plan and the planner picked the other: by cost, the other
    is the better alternative (this one was never costed alone)."""
    return (
        evidence.method == "hypopg"
        and not evidence.index_used
        and evidence.after_plan is not None
        and evidence.after_plan is won.after_plan
    )


def _beaten(
    candidate: IndexCandidate, evidence: Evidence, best: tuple[IndexCandidate, Evidence]
) -> NoSuggestion:
    winner, won = best
    if evidence.method == "estimate":
        detail = f"not verified (--verify none): {winner.name} is proposed instead"
    elif _lost_in_one_plan(evidence, won):
        detail = (
            f"a better alternative: with both in place the planner chose {winner.name} "
            f"({figures(won)}) over {candidate.name}"
        )
    else:
        detail = (
            f"a better alternative: {winner.name} ({figures(won)}) beats "
            f"{candidate.name} ({figures(evidence)})"
        )
    return NoSuggestion(NoSuggestionReason.NO_GAIN, detail, candidate.qualified_table, candidate)


def _not_replayable(reason: NoSuggestion) -> NoSuggestion:
    """A $n statement without logged values was judged on its generic plan only: a "not
    used" or "no gain" there says little about the values the application sends (a generic
    plan avoids an index that only some values make worth using)."""
    return NoSuggestion(
        NoSuggestionReason.NOT_REPLAYABLE,
        f"judged on the generic plan only (no logged parameter values): {reason.detail}; "
        "log the values (log_min_duration_statement with the extended protocol, or "
        "log_parameter_max_length) to verify it with real ones",
        reason.table,
        reason.candidate,
        reason.existing,
    )


def _why_not(
    candidate: IndexCandidate,
    evidence: Evidence,
    min_gain: float,
    used: Sequence[IndexCandidate] = (),
) -> NoSuggestion:
    table = candidate.qualified_table
    columns = ", ".join(candidate.columns)
    if not evidence.index_used:
        others = [c.name for c in used if c != candidate]
        instead = f" (it chose {', '.join(others)} instead)" if others else ""
        return NoSuggestion(
            NoSuggestionReason.NOT_USED,
            f"the planner did not use an index on {table} ({columns}){instead}",
            table,
            candidate,
        )
    return NoSuggestion(
        NoSuggestionReason.NO_GAIN,
        f"an index on {table} ({columns}) saves less than {min_gain:.0%} ({figures(evidence)})",
        table,
        candidate,
    )


_UNITS = (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("kB", 1024))


def format_size(size: int) -> str:
    """Bytes as PostgreSQL's pg_size_pretty would round them: ``1.5 GB``, ``8 kB``."""
    for unit, factor in _UNITS:
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{size} bytes"


def parse_size(text: str) -> int:
    """``500MB``, ``1 GB``, ``8kB``, ``1024`` (bytes) -> bytes; units are 1024-based as in
    PostgreSQL. ValueError with the accepted forms when the text is none of them."""
    cleaned = text.strip().replace(" ", "")
    number = cleaned.rstrip("BbKkMmGgTtYyEeSs")
    unit = cleaned[len(number) :].upper()
    factors = {"": 1, "B": 1, "BYTES": 1, "K": 1024, "KB": 1024}
    factors |= {u.upper(): f for u, f in _UNITS} | {u[0]: f for u, f in _UNITS if u != "kB"}
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in factors or value < 0:
        raise ValueError(f"not a size: {text!r} (write it like 500MB, 1GB or 8kB)")
    return int(value * factors[unit])
