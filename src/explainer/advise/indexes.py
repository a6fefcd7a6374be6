"""The index advisor for statements: plans and findings in, verified suggestions out.

Advice is per *table access*, as Dexter does it, not only per finding: every scan of a
base table in the plan is looked at. An access a finding points at gets its candidates
for that finding's rule; an access without a finding is still considered, because some
needs show no symptom of their own (the unindexed foreign-key side of a hash join has no
filter, a 25%-selective filter deserves its ``low_selectivity``, a lookup an existing
index serves deserves its ``already_indexed``). What an existing index already serves is
dropped, twins (candidates that build the same index) are merged, and at most
:data:`MAX_CANDIDATES_PER_ACCESS` alternatives per access are verified: with HypoPG in
batches across statements (every candidate of a statement in place together), or by
building the index in a rolled-back transaction (once for all the statements that want it),
where the accesses' best candidates are then also built *together*, because on a join one
index can pay off only once the other exists. Of the alternatives for one access the best
that the planner uses and that saves at least ``--min-gain`` is kept. Everything not
suggested is reported with a reason code, so a user can tell "nothing to do" from
"explainer could not tell".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Literal

from explainer.advise.candidates import covering_index, derive_candidates
from explainer.advise.ddl import create_index_sql
from explainer.advise.model import (
    Evidence,
    IndexCandidate,
    NoSuggestion,
    NoSuggestionReason,
)
from explainer.advise.verify import (
    HypoItem,
    HypoStats,
    RollbackItem,
    VerifyOptions,
    as_fast,
    close_call,
    estimate_only,
    figures,
    helps,
    hypopg_supports,
    measure,
    ranking,
    second_look,
    verify_hypopg_batch,
    verify_rollback_set,
    verify_rollback_shared,
)
from explainer.db.catalog import TableInfo, resolve_table
from explainer.db.explain import Connection, Execution
from explainer.db.stats import TableStats, installed_extensions, table_stats
from explainer.errors import ExplainerError, QueryFailed
from explainer.plan import Plan, PlanNode
from explainer.rules import Finding, table_name

# Re-exported: sizes were parsed here before explainer.units existed.
from explainer.units import format_size as format_size
from explainer.units import parse_size as parse_size

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


#: Alternatives verified per table access at most (in the candidates' order of preference).
MAX_CANDIDATES_PER_ACCESS = 3
#: The scans of a base table that an index could replace or improve.
SCAN_NODES = frozenset({"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan"})
#: The ``rule`` of a suggestion no finding led to (an access looked at for its own sake).
NO_RULE = ""


@dataclass(slots=True)
class StatementAdvice:
    #: Verified candidates with their evidence and the rule that led to each
    #: (:data:`NO_RULE` when no finding pointed at the table access).
    accepted: list[tuple[IndexCandidate, Evidence, str]] = field(default_factory=list)
    rejected: list[NoSuggestion] = field(default_factory=list)
    #: Why the statement could not be advised at all (the rest of the workload goes on).
    error: str | None = None
    #: An accepted candidate that pays off only together with these other suggested
    #: indexes (its evidence is the run with all of them built).
    together: dict[IndexCandidate, tuple[IndexCandidate, ...]] = field(default_factory=dict)


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
    """One table access of the statement, with its alternative candidates."""

    #: The finding's rule, or :data:`NO_RULE` for an access no finding points at.
    rule: str
    table: TableInfo
    candidates: list[IndexCandidate]
    #: A foreign key whose trigger the index is for (verified by the trigger's time).
    constraint: str | None = None
    evidence: dict[IndexCandidate, Evidence] = field(default_factory=dict)
    #: Evidence from a run with the other accesses' best candidates built too, for a
    #: candidate that pays off only together with them (rollback; HypoPG always judges a
    #: statement's candidates together).
    together: dict[IndexCandidate, tuple[Evidence, tuple[IndexCandidate, ...]]] = field(
        default_factory=dict
    )

    @property
    def quiet(self) -> bool:
        """No finding points here: its reasons are worth reporting only when the statement
        has nothing else to say (a small lookup table of a join is not news)."""
        return self.rule == NO_RULE


@dataclass(slots=True)
class _Statement:
    source: StatementInput
    accesses: list[_Access] = field(default_factory=list)
    advice: StatementAdvice = field(default_factory=StatementAdvice)
    #: Reasons from accesses no finding points at (see :attr:`_Access.quiet`).
    quiet: list[NoSuggestion] = field(default_factory=list)
    seen: set[IndexCandidate] = field(default_factory=set)
    #: The statement measured without any new index (rollback), shared by its candidates.
    before: Plan | None = None


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
    """Candidates for every table access of one statement, verified by ``mode``."""
    [advice] = advise_statements(
        conn, [StatementInput(execution, plan, findings, tables)], mode=mode, options=options
    )
    if advice.error is not None:
        raise ExplainerError(advice.error)
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
    per distinct candidate per batch, not one per candidate per statement. A statement
    whose advice fails (a catalog lookup, a measurement) gets its ``error`` and the others
    go on.
    """
    catalog = _Catalog(conn)
    prepared = []
    for source in statements:
        statement = _Statement(source)
        _guarded(statement, partial(_prepare, catalog, statement, options))
        prepared.append(statement)
    if mode == "hypopg":
        _verify_hypopg(conn, [s for s in prepared if s.advice.error is None], options, stats)
    _verify_rest(conn, [s for s in prepared if s.advice.error is None], mode, options)
    if mode != "none":
        _second_look(conn, [s for s in prepared if s.advice.error is None], options)
    for statement in prepared:
        if statement.advice.error is not None:
            continue
        if mode != "none":
            _guarded(statement, partial(_verify_together, conn, statement, options))
        _decide(statement, options)
    return [s.advice for s in prepared]


def _guarded(statement: _Statement, step: Callable[[], None]) -> None:
    try:
        step()
    except ExplainerError as exc:
        statement.advice.error = str(exc)


def _prepare(catalog: _Catalog, statement: _Statement, options: VerifyOptions) -> None:
    """The statement's table accesses and candidates; reasons for what gets none.

    First the accesses findings point at (their rule is the suggestion's), then every
    other scan of a base table, unless the whole statement is below ``--min-cost``.
    """
    source = statement.source
    findings = [f for f in source.findings if f.rule in INDEX_RULES]
    cost = source.plan.root.total_cost
    cheap = cost < options.min_cost
    if cheap:
        # A foreign key trigger's work is not in the plan's cost: its finding stays.
        if not findings or any(f.rule != FK_RULE for f in findings):
            statement.advice.rejected.append(
                NoSuggestion(
                    NoSuggestionReason.CHEAP_QUERY,
                    f"the plan costs {cost:,.1f}, below --min-cost {options.min_cost:,.0f}: "
                    "not worth an index",
                )
            )
        findings = [f for f in findings if f.rule == FK_RULE]
    handled: set[str] = set()
    for finding in findings:
        name, node = _finding_access(source.plan, finding)
        if name is None:
            continue
        if finding.rule != FK_RULE and node is not None:
            if node.path in handled:
                continue  # two findings on one scan: the first (heaviest) one's rule
            handled.add(node.path)
        constraint = finding.details.get("constraint") if finding.rule == FK_RULE else None
        _add_access(
            catalog, statement, name, node, finding, str(constraint) if constraint else None
        )
    if cheap:
        return
    for node in source.plan.walk():
        if node.node_type not in SCAN_NODES or node.path in handled:
            continue
        name = table_name(node)
        if name is not None:
            handled.add(node.path)
            _add_access(catalog, statement, name, node, None, None)


def _add_access(
    catalog: _Catalog,
    statement: _Statement,
    name: str,
    node: PlanNode | None,
    finding: Finding | None,
    constraint: str | None,
) -> None:
    source = statement.source
    rule = finding.rule if finding is not None else NO_RULE
    reasons = statement.quiet if finding is None else statement.advice.rejected
    table = source.tables.get(name) or _lookup(catalog.conn, name)
    if table is not None and table.partition_root is not None:
        # A partition's scan: the query names the partitioned table, and an index there
        # is built on every partition (the planner prunes per partition either way).
        table = _lookup(catalog.conn, ".".join(table.partition_root)) or table
    if table is None:
        reasons.append(
            NoSuggestion(NoSuggestionReason.UNKNOWN_TABLE, f"{name} is not in the catalog", name)
        )
        return
    candidates, rejected = _derive(catalog, source, finding, table, node)
    reasons.extend(rejected)
    fresh = []
    for candidate in candidates:
        candidate = catalog.canonical(candidate)
        if candidate not in statement.seen and candidate not in fresh:
            fresh.append(candidate)
    fresh = fresh[:MAX_CANDIDATES_PER_ACCESS]
    served = _served_by(node) if finding is None and node is not None else None
    if served is not None:
        # The plan reads the table through an index that removes (almost) nothing: no
        # other index is worth verifying here.
        if fresh and not rejected:
            reasons.append(
                NoSuggestion(
                    NoSuggestionReason.ALREADY_INDEXED,
                    f"the plan reads {table.qualified} through {served}, which finds the "
                    "rows it needs with few or none to filter out",
                    table.qualified,
                    existing=served,
                )
            )
        return
    statement.seen.update(fresh)
    if fresh:
        statement.accesses.append(_Access(rule, table, fresh, constraint))


def _served_by(node: PlanNode) -> str | None:
    """The index an index or bitmap scan reads when its filter and recheck remove fewer
    rows than they keep (None for a sequential scan, or when the index reads too much)."""
    if node.node_type == "Seq Scan":
        return None
    names = [n.index_name for n in node.walk() if n.index_name]
    if not names:
        return None
    removed = node.rows_removed_total
    kept = node.total_rows
    if removed is not None and kept is not None and removed > kept:
        return None
    return ", ".join(dict.fromkeys(names))


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
        self._canonical: dict[str, IndexCandidate] = {}

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

    def canonical(self, candidate: IndexCandidate) -> IndexCandidate:
        """The first candidate seen in this run that builds the same index (``created_at
        DESC`` and ``created_at DESC NULLS FIRST`` are one index): twins verified side by
        side would split the planner's choice, and the one it did not pick would be
        reported as not used."""
        return self._canonical.setdefault(create_index_sql(candidate), candidate)


def _derive(
    catalog: _Catalog,
    source: StatementInput,
    finding: Finding | None,
    table: TableInfo,
    node: PlanNode | None,
) -> tuple[list[IndexCandidate], list[NoSuggestion]]:
    """The alternatives for one access, and reasons for what was dropped."""
    if finding is None or finding.rule != FK_RULE:
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
                    _reasons(statement, access).append(
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


#: Statements measured in one rolled-back transaction with a shared test index at most:
#: the transaction holds the build's SHARE lock on the table until it ends.
MAX_SHARED_STATEMENTS = 20


def _verify_rest(
    conn: Connection, statements: Sequence[_Statement], mode: VerifyMode, options: VerifyOptions
) -> None:
    """Candidates HypoPG did not judge: unverified (``none``) or built for real, each
    distinct candidate once for all the statements that have it (its build is most of
    the cost), in first-seen order."""
    if mode == "none":
        for statement in statements:
            for access in statement.accesses:
                for candidate in access.candidates:
                    access.evidence[candidate] = estimate_only(statement.source.plan)
        return
    wanted: dict[IndexCandidate, list[tuple[_Statement, _Access]]] = {}
    for statement in statements:
        for access in statement.accesses:
            for candidate in list(access.candidates):
                if candidate in access.evidence or (
                    mode == "hypopg" and _by_hypopg(access, candidate)
                ):
                    continue
                source = statement.source
                reason = _rollback_refusal(source.execution, access.table, candidate, mode, options)
                if reason is not None:
                    _reasons(statement, access).append(reason)
                    access.candidates.remove(candidate)
                    continue
                wanted.setdefault(candidate, []).append((statement, access))
    for candidate, users in wanted.items():
        for start in range(0, len(users), MAX_SHARED_STATEMENTS):
            _verify_shared(conn, candidate, users[start : start + MAX_SHARED_STATEMENTS], options)


def _verify_shared(
    conn: Connection,
    candidate: IndexCandidate,
    users: Sequence[tuple[_Statement, _Access]],
    options: VerifyOptions,
) -> None:
    ready: list[tuple[_Statement, _Access, Plan]] = []
    for statement, access in users:
        if statement.advice.error is not None:
            continue
        try:
            if statement.before is None:
                # The statement's own EXPLAIN ANALYZE is one of the "before" runs (or, when
                # it timed out, the whole answer: see verify.measure).
                statement.before = measure(
                    conn, statement.source.execution, options, known=statement.source.plan
                )
        except QueryFailed as exc:
            _verify_failed(statement, access, candidate, exc)
            continue
        except ExplainerError as exc:
            statement.advice.error = str(exc)
            continue
        ready.append((statement, access, statement.before))
    results = _run_shared(conn, candidate, ready, options)
    if results is None:
        return
    for (statement, access, _), result in zip(ready, results, strict=True):
        if isinstance(result, QueryFailed):
            _verify_failed(statement, access, candidate, result)
        else:
            access.evidence[candidate] = result


def _run_shared(
    conn: Connection,
    candidate: IndexCandidate,
    users: Sequence[tuple[_Statement, _Access, Plan]],
    options: VerifyOptions,
) -> Sequence[Evidence | QueryFailed] | None:
    """``candidate`` built once and measured for each (statement, access, "before"); a
    build that fails is every statement's failure; a lost connection is every statement's
    error, and then None."""
    if not users:
        return []
    items = [RollbackItem(s.source.execution, before, a.constraint) for s, a, before in users]
    try:
        return verify_rollback_shared(conn, candidate, items, options)
    except QueryFailed as exc:
        return [exc] * len(users)
    except ExplainerError as exc:
        for statement, _, _ in users:
            statement.advice.error = str(exc)
        return None


def _second_look(
    conn: Connection, statements: Sequence[_Statement], options: VerifyOptions
) -> None:
    """Measure close calls again (:func:`verify.close_call`): a candidate whose measured
    saving landed within a few points of ``--min-gain``. The statement's "before" gets
    ``repeats`` more runs (its best so far counted), every close candidate is built once
    more for all the statements it is close for and run ``repeats`` more times; each side
    is then the best of twice as many runs, and the verdict is given on those. The new
    "before" replaces the old one in all the statement's evidence, so that its candidates
    are still judged against the same figure. A second look that fails keeps the first.
    """
    more = replace(options, repeats=options.repeats + 1)  # the best so far counts as one
    wanted: dict[IndexCandidate, list[tuple[_Statement, _Access, Plan]]] = {}
    for statement in statements:
        close = [
            (access, candidate)
            for access in statement.accesses
            if access.constraint is None
            for candidate, evidence in access.evidence.items()
            if close_call(evidence, options.min_gain)
        ]
        first = statement.before
        if not close or first is None:
            continue
        try:
            again = measure(conn, statement.source.execution, more, known=first)
        except QueryFailed:
            continue
        except ExplainerError as exc:
            statement.advice.error = str(exc)
            continue
        statement.before = again
        for access in statement.accesses:
            for candidate, evidence in access.evidence.items():
                if evidence.before_plan is first:
                    access.evidence[candidate] = replace(
                        evidence,
                        before_cost=again.root.total_cost,
                        before_ms=again.total_ms,
                        before_plan=again,
                    )
        for access, candidate in close:
            wanted.setdefault(candidate, []).append((statement, access, again))
    for candidate, users in wanted.items():
        results = _run_shared(conn, candidate, users, options)
        if results is None:
            continue
        for (_, access, before), result in zip(users, results, strict=True):
            if isinstance(result, Evidence):  # a failure keeps the first look
                access.evidence[candidate] = second_look(access.evidence[candidate], result, before)


def _verify_failed(
    statement: _Statement, access: _Access, candidate: IndexCandidate, exc: QueryFailed
) -> None:
    _reasons(statement, access).append(
        NoSuggestion(NoSuggestionReason.VERIFY_FAILED, str(exc), access.table.qualified, candidate)
    )
    access.candidates.remove(candidate)


def _reasons(statement: _Statement, access: _Access) -> list[NoSuggestion]:
    return statement.quiet if access.quiet else statement.advice.rejected


def _verify_together(conn: Connection, statement: _Statement, options: VerifyOptions) -> None:
    """Build the accesses' best candidates together and measure the statement once more.

    On a join, one index can pay off only once another exists: ``accounts(email)`` alone
    still leaves a sequential scan of all invoices to hash (little saved), and with
    ``invoices(account_id)`` alone the accounts scan is what remains; together the query is
    a few index probes. Each access offers its best candidate measured alone (one the
    planner used, else its first); when one of them does not pay off alone, all are built
    in one rolled-back transaction, and a candidate the planner uses there is credited
    with that run if the set beats, by ``--min-gain``, the best of the others alone (so an
    index is never credited with what another one saved).
    """
    picks: list[tuple[_Access, IndexCandidate, Evidence]] = []
    for access in statement.accesses:
        if access.constraint is not None:
            continue
        judged = [
            (c, access.evidence[c])
            for c in access.candidates
            if c in access.evidence and access.evidence[c].method == "rollback"
        ]
        used = [(c, e) for c, e in judged if e.index_used]
        pool = used or judged[:1]
        if pool:
            best = min(pool, key=lambda item: ranking(item[1]))
            picks.append((access, best[0], best[1]))
    if len(picks) < 2 or all(helps(e, options.min_gain) for _, _, e in picks):
        return
    source = statement.source
    try:
        evidence = verify_rollback_set(
            conn, source.execution, [c for _, c, _ in picks], options, before=statement.before
        )
    except QueryFailed:
        return  # each candidate keeps its own verdict from its own run
    for access, candidate, alone in picks:
        if helps(alone, options.min_gain) or not evidence[candidate].index_used:
            continue
        others = [e for a, _, e in picks if a is not access]
        baseline = min(others, key=ranking)
        joint = evidence[candidate]
        if _beats(joint, baseline, options.min_gain):
            partners = tuple(c for a, c, _ in picks if a is not access)
            access.together[candidate] = (joint, partners)


def _beats(joint: Evidence, baseline: Evidence, min_gain: float) -> bool:
    """The set's run saves ``min_gain`` over the best of the others measured alone."""
    if joint.after_ms is not None and baseline.after_ms is not None:
        return joint.after_ms <= baseline.after_ms * (1 - min_gain)
    if joint.before_ms is not None and joint.after_ms is None:
        # A measured statement whose set was not run (verify._after: the planner expected
        # too little of it after a timeout): no run to credit anyone with.
        return False
    if joint.after_cost is None or baseline.after_cost is None:
        return False
    return joint.after_cost <= baseline.after_cost * (1 - min_gain)


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
        reasons = _reasons(statement, access)
        judged = [(c, access.evidence[c]) for c in access.candidates if c in access.evidence]
        winners = [(c, e) for c, e in judged if helps(e, options.min_gain)]
        best = _pick(winners) if winners else None
        partners: tuple[IndexCandidate, ...] = ()
        if best is None and access.together:
            # Pays off only with the other accesses' indexes: credited with their run.
            candidate, (joint, partners) = next(iter(access.together.items()))
            best = (candidate, joint)
            advice.together[candidate] = partners
        if best is not None:
            advice.accepted.append((best[0], best[1], access.rule))
        used = [c for c, e in judged if e.index_used]
        for candidate, evidence in judged:
            if best is not None and candidate == best[0]:
                continue
            if best is not None and (
                helps(evidence, options.min_gain) or _lost_in_one_plan(evidence, best[1])
            ):
                reasons.append(_beaten(candidate, evidence, best))
            else:
                reason = _why_not(candidate, evidence, options.min_gain, used)
                if best is not None and partners:
                    reason = replace(
                        reason,
                        detail=f"{reason.detail}; {_label(best[0])} is proposed instead: it "
                        f"pays off together with {', '.join(_label(c) for c in partners)}",
                    )
                if source_is_generic:
                    reason = _not_replayable(reason)
                if access.quiet and _measured_use(evidence):
                    advice.rejected.append(reason)  # a measured near miss is news
                else:
                    reasons.append(reason)
    if not advice.accepted and not advice.rejected:
        advice.rejected.extend(statement.quiet)
    advice.rejected[:] = list(dict.fromkeys(advice.rejected))


def _measured_use(evidence: Evidence) -> bool:
    """The planner used the candidate and its time was measured. On an access no finding
    points at, such a candidate's "no gain" is still reported with the statement's other
    reasons (TPC-H Q10: the covering join index on ``lineitem`` saved 49%, just under the
    line, while the finding was about ``orders``); what such accesses say otherwise (a
    small lookup table of a join, an index the planner would not use) is noise then."""
    return evidence.index_used and evidence.method == "rollback" and evidence.after_ms is not None


def _pick(
    winners: Sequence[tuple[IndexCandidate, Evidence]],
) -> tuple[IndexCandidate, Evidence]:
    """The alternative to propose: the fastest, or the narrowest of those as fast as it
    (``(total)`` rather than ``(total) INCLUDE (id, status)`` when both take 0.05 ms), but
    not one that touched far more pages than another of them (:func:`_reads_more_pages`)."""
    fastest = min(winners, key=lambda item: ranking(item[1]))
    limit = fastest[1].after_ms
    if limit is None:
        return fastest  # compared by cost: no noise to allow for
    close = [
        item
        for item in winners
        if item[1].after_ms is not None and as_fast(item[1].after_ms, limit)
    ]
    frugal = min(close, key=lambda item: _pages(item[1].after_plan) or 0)
    close = [item for item in close if not _reads_more_pages(item[1], frugal[1])]
    return min(close, key=lambda item: (_width(item[0]), ranking(item[1])))


#: A narrower alternative as fast as the fastest in a measured run is still not as good
#: when it touches this many times the pages, and at least :data:`MORE_PAGES_MIN` more.
MORE_PAGES_SHARE = 2.0
MORE_PAGES_MIN = 1000


def _reads_more_pages(evidence: Evidence, frugal: Evidence) -> bool:
    """The alternative's run touched far more pages than ``frugal``'s (EXPLAIN's shared
    buffers, hit or read). The verification runs on a warm cache, where a heap page costs
    little more than an index page; with a cold cache every one of them is a read. TPC-H
    Q15 at scale 1: ``lineitem (l_shipdate)`` visits the heap for each of 225,000 rows
    and measured 246 ms against 237 ms for the covering index's index-only scan, which
    touches a few thousand index pages."""
    pages = _pages(evidence.after_plan)
    least = _pages(frugal.after_plan)
    if pages is None or least is None:
        return False
    return pages > least * MORE_PAGES_SHARE and pages - least >= MORE_PAGES_MIN


def _pages(plan: Plan | None) -> int | None:
    if plan is None or not plan.root.buffers:
        return None
    return plan.root.buffers.shared_total


def _width(candidate: IndexCandidate) -> int:
    return len(candidate.keys) + len(candidate.include)


def _label(candidate: IndexCandidate) -> str:
    """The candidate's name, with its INCLUDE columns (which the name leaves out, so that
    ``(email)`` and ``(email) INCLUDE (id)`` would read alike)."""
    if not candidate.include:
        return candidate.name
    return f"{candidate.name} INCLUDE ({', '.join(candidate.include)})"


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
        detail = f"not verified (--verify none): {_label(winner)} is proposed instead"
    elif _lost_in_one_plan(evidence, won):
        detail = (
            f"a better alternative: with both in place the planner chose {_label(winner)} "
            f"({figures(won)}) over {_label(candidate)}"
        )
    elif (
        won.after_ms is not None
        and evidence.after_ms is not None
        and won.after_ms > evidence.after_ms
        and _reads_more_pages(evidence, won)
    ):
        detail = (
            f"a better alternative: {_label(winner)} ({figures(won)}, "
            f"{_pages(won.after_plan):,} pages) is as fast as {_label(candidate)} "
            f"({figures(evidence)}) within the timing noise and touches far fewer pages "
            f"than its {_pages(evidence.after_plan):,} (each one a read with a cold cache)"
        )
    elif won.after_ms is not None and evidence.after_ms is not None and (
        won.after_ms > evidence.after_ms
    ):
        detail = (
            f"a better alternative: {_label(winner)} ({figures(won)}) is as fast as "
            f"{_label(candidate)} ({figures(evidence)}) within the timing noise, with fewer "
            "columns"
        )
    else:
        detail = (
            f"a better alternative: {_label(winner)} ({figures(won)}) beats "
            f"{_label(candidate)} ({figures(evidence)})"
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
    if not evidence.index_used:
        others = [_label(c) for c in used if c != candidate]
        instead = f" (it chose {', '.join(others)} instead)" if others else ""
        return NoSuggestion(
            NoSuggestionReason.NOT_USED,
            f"the planner did not use an index on {candidate.described}{instead}",
            table,
            candidate,
        )
    if evidence.before_timed_out and evidence.method == "rollback" and evidence.after_ms is None:
        # Not run: the planner expected too little of it (verify._after).
        return NoSuggestion(
            NoSuggestionReason.NO_GAIN,
            f"an index on {candidate.described} saves less than {min_gain:.0%} by the "
            f"planner's estimate ({figures(evidence)}); the statement timed out without "
            "it, so it was not run",
            table,
            candidate,
        )
    return NoSuggestion(
        NoSuggestionReason.NO_GAIN,
        f"an index on {candidate.described} saves less than {min_gain:.0%} "
        f"({figures(evidence)})",
        table,
        candidate,
    )
