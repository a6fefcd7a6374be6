"""Verification: does the planner use a candidate index, and how much does it save?

Two methods, each with its place:

* **rollback** builds the real index inside a transaction that is rolled back, and runs
  the query with EXPLAIN ANALYZE before and after: measured time, the only proof that
  an index helps in a real run. CREATE INDEX takes a SHARE lock on the table for the
  length of the transaction (writes to that table wait), so ``lock_timeout`` and
  ``statement_timeout`` bound it, and a size guard keeps it off large tables unless the
  user allows it (building an index on a 50 GB table to test it is not a check, it is an
  outage). GIN and GiST candidates are verified this way: HypoPG cannot simulate them.
* **hypopg** creates hypothetical indexes (HypoPG) and compares the planner's cost with
  plain EXPLAIN: no lock, no build time, but estimates only. HypoPG indexes are invisible
  to EXPLAIN ANALYZE and are not transactional: they live in the backend until dropped.
  They are created in batches across statements (Dexter's approach): every candidate of
  a batch is created once, every statement of the batch is explained with all of them in
  place, and the plan says which one the planner picked (HypoPG names them
  ``<oid>btree_table_column``). ``hypopg_reset()`` between batches keeps the number alive
  far below HypoPG's limit (it draws OIDs from a small reserved range: about 2,800 on
  PostgreSQL 15 before "not more oid available").

Each query is run ``repeats`` times before and after, and the fastest run is kept, so
that a cold cache on the first run does not flatter the index. What was measured is not
measured again: the statement's own EXPLAIN ANALYZE (the pipeline's) counts as its first
"before" run, and a candidate whose plain EXPLAIN shows the planner would not use it is
not executed at all (a run cannot change that verdict).

**A statement too slow to finish.** When a run reaches ``statement_timeout`` its plan is
taken without ANALYZE and the run counts as "at least the timeout" (:func:`run_ms`). A
before-run that timed out is not a failure, it is the strongest case for an index: the
candidate is kept when the query then finishes within ``timeout x (1 - min_gain)`` (the
usual rule, with the timeout as the before time), so the after-run is stopped there
(:func:`after_limit_ms`). An after-run that is stopped counts as the timeout too, so it
never "helps".
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from explainer.advise.ddl import create_index_sql
from explainer.advise.model import Evidence, IndexCandidate
from explainer.db.catalog import index_tree_names
from explainer.db.explain import (
    Connection,
    Execution,
    ExplainOptions,
    StatementTimeout,
    query_failed,
    rolled_back,
    run_explain,
)
from explainer.db.safety import StatementKind
from explainer.errors import QueryFailed
from explainer.plan import Plan

#: A candidate is kept only when it saves at least this share of the query's time (or
#: cost, when time is not measured). Dexter uses 50% of cost; explainer starts there.
DEFAULT_MIN_GAIN = 0.5
#: Statements whose plan costs less than this are not worth an index (Dexter's default).
DEFAULT_MIN_COST = 100.0
#: Tables larger than this (pg_total_relation_size) get no test index without --allow-large.
DEFAULT_MAX_VERIFY_TABLE_BYTES = 1024**3
#: Hypothetical indexes alive at once; HypoPG runs out of OIDs near 2,800 (PostgreSQL 15).
DEFAULT_HYPOPG_BATCH = 256

#: Access methods HypoPG can simulate; GIN, GiST and SP-GiST it cannot.
HYPOPG_METHODS = frozenset({"btree", "brin", "hash", "bloom"})

_HYPO_NAME = re.compile(r"^<(\d+)>")


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    explain: ExplainOptions
    min_gain: float = DEFAULT_MIN_GAIN
    repeats: int = 2
    #: Below this plan cost a statement gets ``cheap_query`` and no verification.
    min_cost: float = DEFAULT_MIN_COST
    #: The size guard of the rollback method, in bytes...
    max_table_bytes: int = DEFAULT_MAX_VERIFY_TABLE_BYTES
    #: ...which ``--allow-large`` lifts.
    allow_large: bool = False
    hypopg_batch: int = DEFAULT_HYPOPG_BATCH


def hypopg_supports(candidate: IndexCandidate) -> bool:
    """Whether HypoPG can simulate the candidate (not GIN/GiST: those are built for real)."""
    return candidate.using in HYPOPG_METHODS


def _probe_name(candidate: IndexCandidate) -> str:
    """A private name for the index under test, so it cannot clash with a real one."""
    digest = hashlib.sha1(repr(candidate).encode()).hexdigest()[:12]
    return f"explainer_probe_{digest}"


def _uses_index(plan: Plan, name: str | Sequence[str]) -> bool:
    names = (name,) if isinstance(name, str) else tuple(name)
    return any(node.index_name and any(n in node.index_name for n in names) for node in plan.walk())


def _built_names(conn: Connection, candidate: IndexCandidate, name: str) -> tuple[str, ...]:
    """The test index's name and, on a partitioned table, the names PostgreSQL gave the
    index it built on each partition (``events_2024_user_id_idx``): the plan scans those."""
    return index_tree_names(conn, candidate.schema, name) or (name,)


def _best(plans: list[Plan]) -> Plan:
    return min(plans, key=lambda p: p.total_ms if p.total_ms is not None else p.root.total_cost)


def timed_out(plan: Plan, analyze: bool) -> bool:
    """Whether a run that was to be analyzed reached ``statement_timeout``: it then has
    the estimated plan only (see :func:`_runs`, and :func:`explainer.db.explain.explain`
    for the statement's own plan)."""
    return analyze and plan.total_ms is None


def run_ms(plan: Plan, analyze: bool, options: VerifyOptions) -> float | None:
    """The measured time of a run; for one that timed out, the timeout (a lower bound:
    "at least this long"); None when the run was not analyzed."""
    if not analyze:
        return None
    if plan.total_ms is None:
        return float(options.explain.timeout_ms)
    return plan.total_ms


def _runs(
    conn: Connection,
    execution: Execution,
    analyze: bool,
    repeats: int,
    known: Plan | None = None,
    limit_ms: int | None = None,
) -> Plan:
    """The fastest of ``repeats`` runs, each undone by a savepoint; ``known`` (a run
    already made, the statement's own EXPLAIN ANALYZE) counts as the first. ``limit_ms``
    lowers ``statement_timeout`` for the runs only (:func:`after_limit_ms`).

    Undoing each run matters for writes: every run then starts from the same rows, and
    the rows a write touched are not left as new versions in the transaction, which
    would make an index built afterwards unusable to it (``pg_index.indcheckxmin``).
    A run that reaches ``statement_timeout`` ends the series: its plan is fetched again
    without ANALYZE and returned alone (:func:`timed_out` tells it apart). The lowered
    limit is set inside the savepoint, so that this plain EXPLAIN runs under the
    transaction's own timeout: planning alone can take longer than a limit of 1 ms.
    """
    plans = [] if known is None else [known]
    if known is not None and timed_out(known, analyze):
        return known
    while len(plans) < max(1, repeats):
        conn.execute(b"SAVEPOINT explainer_run")
        if execution.statement.kind is StatementKind.READ:
            # The transaction is read-write (it builds the index), a read still runs READ
            # ONLY as in explain(): a function that writes fails instead of writing. The
            # savepoint's rollback makes the transaction read-write again.
            conn.execute(b"SET LOCAL transaction_read_only = on")
        if analyze and limit_ms is not None:
            conn.execute(
                sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(f"{limit_ms}ms"))
            )
        try:
            plans.append(run_explain(conn, execution, analyze=analyze))
        except StatementTimeout:
            if not analyze:
                raise
            conn.execute(b"ROLLBACK TO SAVEPOINT explainer_run")
            return run_explain(conn, execution, analyze=False)
        finally:
            with suppress(psycopg.OperationalError):  # a lost connection took it already
                conn.execute(b"ROLLBACK TO SAVEPOINT explainer_run")
    return _best(plans)


def after_limit_ms(before: Plan, analyze: bool, options: VerifyOptions) -> int | None:
    """How long an after-run may take when the before-run timed out, else None.

    Such a candidate is kept only when the statement finishes within ``timeout x (1 -
    min_gain)``; a run still going at that point cannot pass, so it is stopped there
    instead of at the timeout (at TPC-H scale 1, Q17's and Q20's candidates that do not
    make them finish cost half their time). It counts as timed out, as before.
    """
    if not timed_out(before, analyze):
        return None
    return max(1, math.ceil(options.explain.timeout_ms * (1 - options.min_gain)))


def _after(
    conn: Connection,
    execution: Execution,
    analyze: bool,
    options: VerifyOptions,
    names: Sequence[Sequence[str]],
    check_use: bool,
    before: Plan,
) -> tuple[Plan, bool]:
    """The statement with the test index(es) in place (``names``: each index's names, its
    partitions' included), and whether it was run. With ``check_use``, a plain EXPLAIN
    first: when the planner uses none of ``names`` the statement is not run (a run cannot
    make the planner use it, and a slow statement would cost its whole time again).

    When ``before`` timed out, the runs' ``statement_timeout`` is lowered to
    :func:`after_limit_ms` once the index is built; and a candidate whose plan the planner
    itself expects to save less than ``min_gain`` of the estimated cost is not run
    either: the "before" is an estimate too, and such a run would almost surely be
    stopped at the limit after costing half the timeout (TPC-H at scale 1: Q17's ``part
    (p_brand, p_container)`` costs 2,064,751 against 2,070,455, and each of five such
    runs took 15 s of the advisor's time; the candidates that do help Q17 and Q20 cut
    their estimates 10x to 20,000x)."""
    limit_ms = after_limit_ms(before, analyze, options)
    if analyze and check_use:
        estimated = run_explain(conn, execution, analyze=False)
        if not any(_uses_index(estimated, name) for name in names):
            return estimated, False
        if limit_ms is not None and not _expected_to_help(estimated, before, options.min_gain):
            return estimated, False
    return _runs(conn, execution, analyze, options.repeats, limit_ms=limit_ms), True


def _expected_to_help(estimated: Plan, before: Plan, min_gain: float) -> bool:
    """The planner's own estimate saves ``min_gain`` of the estimated "before" cost."""
    return estimated.root.total_cost <= before.root.total_cost * (1 - min_gain)


def _analyze(execution: Execution, options: VerifyOptions) -> bool:
    """EXPLAIN ANALYZE when the user allows it for this statement and it can run (not a
    statement calling a function a rollback does not undo: see explainer.db.safety)."""
    return (
        options.explain.analyze
        and execution.can_analyze
        and not execution.statement.irreversible
        and (execution.statement.kind is not StatementKind.WRITE or options.explain.analyze_writes)
    )


def _transaction(conn: Connection, options: VerifyOptions) -> AbstractContextManager[Connection]:
    return rolled_back(
        conn,
        read_only=False,
        timeout_ms=options.explain.timeout_ms,
        lock_timeout_ms=options.explain.lock_timeout_ms,
    )


def measure(
    conn: Connection, execution: Execution, options: VerifyOptions, known: Plan | None = None
) -> Plan:
    """The statement's plan without any new index, best of ``repeats``: the "before" that
    every candidate of the statement is compared with. ``known``, the statement's own
    EXPLAIN ANALYZE, counts as one of the runs (when it is one: an estimated plan where a
    run was expected means it timed out, and then it is the whole answer)."""
    analyze = _analyze(execution, options)
    if known is not None and (not analyze or timed_out(known, analyze)):
        return known
    with _transaction(conn, options):
        return _runs(conn, execution, analyze, options.repeats, known)


def trigger_ms(plan: Plan, constraint: str) -> float | None:
    """Time of the constraint's trigger(s) in an analyzed plan, None when not listed."""
    times = [
        float(t["Time"])
        for t in plan.triggers
        if t.get("Constraint Name") == constraint and isinstance(t.get("Time"), int | float)
    ]
    return sum(times) if times else None


def verify_rollback(
    conn: Connection,
    execution: Execution,
    candidate: IndexCandidate,
    options: VerifyOptions,
    *,
    before: Plan | None = None,
    constraint: str | None = None,
) -> Evidence:
    """Build the index in a rolled-back transaction and measure the query around it.

    ``before`` is the statement measured without the index (:func:`measure`), shared by
    the alternatives for one statement; without it, it is measured here first.
    ``constraint`` names a foreign key whose trigger the index is for: the trigger's own
    query does not appear in the plan, so "used" means the trigger's time fell.
    """
    with _transaction(conn, options):
        if before is None:
            before = _runs(conn, execution, _analyze(execution, options), options.repeats)
        built = _build(conn, candidate)
        return _with_index(conn, execution, built, options, before, constraint)


@dataclass(frozen=True, slots=True)
class RollbackItem:
    """A statement to measure with a test index built once for several
    (:func:`verify_rollback_shared`): its "before" (:func:`measure`) and, for a foreign
    key's index, the constraint whose trigger it is for."""

    execution: Execution
    before: Plan
    constraint: str | None = None


def verify_rollback_shared(
    conn: Connection,
    candidate: IndexCandidate,
    items: Sequence[RollbackItem],
    options: VerifyOptions,
) -> list[Evidence | QueryFailed]:
    """:func:`verify_rollback` for every statement that has ``candidate`` among its
    alternatives, with the index built once: on a large table the build is most of what
    verifying a candidate costs (TPC-H at scale 1: ``lineitem (l_shipdate)`` is wanted by
    five statements, each build of it takes seconds). One rolled-back transaction; each
    statement's runs sit in a savepoint, so a statement that fails gets its error and the
    others are still measured. A build that fails raises, for all of them."""
    results: list[Evidence | QueryFailed] = []
    with _transaction(conn, options):
        built = _build(conn, candidate)
        for item in items:
            conn.execute(b"SAVEPOINT explainer_item")
            try:
                results.append(
                    _with_index(conn, item.execution, built, options, item.before, item.constraint)
                )
            except QueryFailed as exc:
                try:
                    conn.execute(b"ROLLBACK TO SAVEPOINT explainer_item")
                except psycopg.Error as lost:
                    raise query_failed(lost) from None
                results.append(exc)
            else:
                conn.execute(b"RELEASE SAVEPOINT explainer_item")
    return results


def _build(conn: Connection, candidate: IndexCandidate) -> tuple[str, ...]:
    """Build the test index in the caller's transaction; the names its plans show."""
    name = _probe_name(candidate)
    try:
        conn.execute(create_index_sql(candidate, name=name).encode())
    except psycopg.Error as exc:
        raise query_failed(exc) from None
    return _built_names(conn, candidate, name)


def _with_index(
    conn: Connection,
    execution: Execution,
    built: tuple[str, ...],
    options: VerifyOptions,
    before: Plan,
    constraint: str | None,
) -> Evidence:
    """The statement measured with the test index ``built`` in place, against ``before``."""
    analyze = _analyze(execution, options)
    after, ran = _after(conn, execution, analyze, options, [built], constraint is None, before)
    if constraint is not None:
        old, new = trigger_ms(before, constraint), trigger_ms(after, constraint)
        used = old is not None and new is not None and new < old
    else:
        used = _uses_index(after, built)
    return Evidence(
        method="rollback",
        before_cost=before.root.total_cost,
        after_cost=after.root.total_cost,
        before_ms=run_ms(before, analyze, options),
        after_ms=_after_ms(after, analyze, options, ran),
        index_used=used,
        before_plan=before,
        after_plan=after,
    )


def _after_ms(plan: Plan, analyze: bool, options: VerifyOptions, ran: bool) -> float | None:
    """The after-run's time; None for one not run (see :func:`_after`): nothing to claim
    about its time, the evidence is the planner's cost."""
    if analyze and not ran:
        return None
    return run_ms(plan, analyze, options)


@dataclass(frozen=True, slots=True)
class HypoItem:
    """One statement and the candidates it asks HypoPG to judge."""

    execution: Execution
    candidates: tuple[IndexCandidate, ...]


@dataclass(slots=True)
class HypoResult:
    """One statement's plans with and without the batch's hypothetical indexes."""

    before: Plan | None = None
    after: Plan | None = None
    #: The batch's candidates the "after" plan uses: the statement's own, or another
    #: statement's that the planner liked better (credited to this statement too).
    used: tuple[IndexCandidate, ...] = ()
    #: Why the statement (or a candidate of it) could not be judged.
    error: str | None = None
    failed: dict[IndexCandidate, str] = field(default_factory=dict)

    def evidence(self, candidate: IndexCandidate) -> Evidence:
        assert self.before is not None and self.after is not None
        return Evidence(
            method="hypopg",
            before_cost=self.before.root.total_cost,
            after_cost=self.after.root.total_cost,
            index_used=candidate in self.used,
            before_plan=self.before,
            after_plan=self.after,
        )


@dataclass(slots=True)
class HypoStats:
    """What a batched run did: for tests and the benchmark's account of the advisor."""

    statements: int = 0
    indexes_created: int = 0
    batches: int = 0


def verify_rollback_set(
    conn: Connection,
    execution: Execution,
    candidates: Sequence[IndexCandidate],
    options: VerifyOptions,
    *,
    before: Plan | None = None,
) -> dict[IndexCandidate, Evidence]:
    """Build all ``candidates`` in one rolled-back transaction and measure the statement
    with them in place: the same figures for each, ``index_used`` each its own.

    The set's counterpart of :func:`verify_rollback` (same transaction, timeouts,
    savepoint per run and fastest of ``repeats``): a statement on two tables may need both
    indexes before either pays off (a join whose inner side is unindexed).
    """
    analyze = _analyze(execution, options)
    probes = {c: _probe_name(c) for c in candidates}
    names: dict[IndexCandidate, tuple[str, ...]] = {}
    with _transaction(conn, options):
        if before is None:
            before = _runs(conn, execution, analyze, options.repeats)
        for candidate, probe in probes.items():
            try:
                conn.execute(create_index_sql(candidate, name=probe).encode())
            except psycopg.Error as exc:
                raise query_failed(exc) from None
            names[candidate] = _built_names(conn, candidate, probe)
        after, ran = _after(conn, execution, analyze, options, list(names.values()), True, before)
    return {
        candidate: Evidence(
            method="rollback",
            before_cost=before.root.total_cost,
            after_cost=after.root.total_cost,
            before_ms=run_ms(before, analyze, options),
            after_ms=_after_ms(after, analyze, options, ran),
            index_used=_uses_index(after, name),
            before_plan=before,
            after_plan=after,
        )
        for candidate, name in names.items()
    }


def _batches(items: Sequence[HypoItem], limit: int) -> Iterator[list[int]]:
    """Consecutive items whose distinct candidates number at most ``limit`` (an item with
    more than ``limit`` candidates makes a batch of its own)."""
    batch: list[int] = []
    distinct: set[IndexCandidate] = set()
    for number, item in enumerate(items):
        wanted = distinct | {c for c in item.candidates if hypopg_supports(c)}
        if batch and len(wanted) > limit:
            yield batch
            batch, wanted = [], {c for c in item.candidates if hypopg_supports(c)}
        batch.append(number)
        distinct = wanted
    if batch:
        yield batch


def verify_hypopg_batch(
    conn: Connection,
    items: Sequence[HypoItem],
    options: VerifyOptions,
    stats: HypoStats | None = None,
) -> list[HypoResult]:
    """Judge every item's candidates with HypoPG, batched; one result per item, in order.

    The connection must be in autocommit mode and have the extension. Whatever happens,
    no hypothetical index outlives the call (``hypopg_reset()`` after every batch).
    """
    stats = stats if stats is not None else HypoStats()
    results = [HypoResult() for _ in items]
    for batch in _batches(items, max(1, options.hypopg_batch)):
        stats.batches += 1
        try:
            _hypopg_batch(conn, items, batch, results, options, stats)
        finally:
            # Hypothetical indexes live in the backend, outside any transaction.
            with suppress(psycopg.OperationalError):
                conn.execute("SELECT hypopg_reset()")
    return results


def _explain_plain(conn: Connection, execution: Execution, options: VerifyOptions) -> Plan:
    with _transaction(conn, options):
        return run_explain(conn, execution, analyze=False)


def _hypopg_batch(
    conn: Connection,
    items: Sequence[HypoItem],
    batch: list[int],
    results: list[HypoResult],
    options: VerifyOptions,
    stats: HypoStats,
) -> None:
    conn.execute("SELECT hypopg_reset()")
    # Before: no hypothetical index exists yet.
    for number in batch:
        try:
            results[number].before = _explain_plain(conn, items[number].execution, options)
        except QueryFailed as exc:
            results[number].error = str(exc)
    by_oid: dict[int, IndexCandidate] = {}
    failed: dict[IndexCandidate, str] = {}
    for number in batch:
        for candidate in items[number].candidates:
            if not hypopg_supports(candidate) or candidate in failed:
                continue
            if candidate in by_oid.values():
                continue
            ddl = create_index_sql(candidate, name=_probe_name(candidate))
            try:
                row = conn.execute(
                    "SELECT indexrelid FROM hypopg_create_index(%s)", (ddl,)
                ).fetchone()
            except psycopg.Error as exc:
                failed[candidate] = str(query_failed(exc))
                continue
            if row is None:
                failed[candidate] = "HypoPG did not create the hypothetical index"
                continue
            by_oid[int(row[0])] = candidate
            stats.indexes_created += 1
    for number in batch:
        result = results[number]
        result.failed = {c: failed[c] for c in items[number].candidates if c in failed}
        if result.before is None:
            continue
        stats.statements += 1
        try:
            result.after = _explain_plain(conn, items[number].execution, options)
        except QueryFailed as exc:
            result.error = str(exc)
            continue
        result.used = tuple(dict.fromkeys(_hypothetical_used(result.after, by_oid)))


def _hypothetical_used(plan: Plan, by_oid: dict[int, IndexCandidate]) -> Iterator[IndexCandidate]:
    for node in plan.walk():
        match = _HYPO_NAME.match(node.index_name or "")
        if match and int(match.group(1)) in by_oid:
            yield by_oid[int(match.group(1))]


def verify_hypopg(
    conn: Connection, execution: Execution, candidate: IndexCandidate, options: VerifyOptions
) -> Evidence:
    """Compare the planner's cost with and without one hypothetical index."""
    [result] = verify_hypopg_batch(conn, [HypoItem(execution, (candidate,))], options)
    if result.error is not None:
        raise QueryFailed(result.error)
    if candidate in result.failed:
        raise QueryFailed(result.failed[candidate])
    return result.evidence(candidate)


def estimate_only(plan: Plan) -> Evidence:
    """No verification: the original plan's cost, and nothing claimed about the index."""
    return Evidence(
        method="estimate",
        before_cost=plan.root.total_cost,
        after_cost=None,
        before_ms=plan.total_ms,
        before_plan=plan,
    )


def helps(evidence: Evidence, min_gain: float) -> bool:
    """The rule for keeping a candidate: the planner uses it and it saves enough."""
    if evidence.method == "estimate":
        return True
    if not evidence.index_used:
        return False
    if evidence.before_ms is not None and evidence.after_ms is not None:
        return evidence.after_ms <= evidence.before_ms * (1 - min_gain)
    if evidence.after_cost is None:
        return False
    return evidence.after_cost <= evidence.before_cost * (1 - min_gain)


#: Two runs within this of each other (share of the faster one's time, plus ms) are as
#: fast: a run's time varies by a few percent and tenths of a millisecond, and a wider
#: index that saves less than that is not worth its size and upkeep.
SAME_TIME_SHARE = 0.1
SAME_TIME_MS = 0.5


def as_fast(ms: float, reference_ms: float) -> bool:
    """``ms`` is no slower than ``reference_ms`` beyond a run's noise."""
    return ms <= reference_ms * (1 + SAME_TIME_SHARE) + SAME_TIME_MS


def ranking(evidence: Evidence) -> tuple[float, float]:
    """Sort key among alternatives: measured time first, else planner cost (lower wins)."""
    time = evidence.after_ms if evidence.after_ms is not None else float("inf")
    cost = evidence.after_cost if evidence.after_cost is not None else float("inf")
    return (time, cost)


#: A measured saving within this many points of ``--min-gain`` (40% to 60% with the
#: default 50%) is a close call: a run's noise could have put it on either side.
CLOSE_CALL = 0.1


def close_call(evidence: Evidence, min_gain: float) -> bool:
    """The verdict on a measured candidate could go either way with the next runs.

    A statement's runs vary by 10-30% on a busy or small machine (TPC-H at scale 1 on two
    cores: Q10's "before" measured 561 to 701 ms in runs of the same code, and the
    selective-join index that saves it 44% to 60% was kept in some runs and not in
    others). Such a verdict is measured again (both sides, :func:`second_look`) rather
    than given on the first best-of-``repeats``. Only measured evidence whose "before"
    finished: a timed-out statement's verdict is "finishes within the limit or not".
    """
    if evidence.method != "rollback" or not evidence.index_used or evidence.measured_again:
        return False
    if evidence.before_timed_out or evidence.before_ms is None or evidence.after_ms is None:
        return False
    if evidence.before_ms <= 0:
        return False
    saving = 1 - evidence.after_ms / evidence.before_ms
    return abs(saving - min_gain) <= CLOSE_CALL


def second_look(first: Evidence, again: Evidence, before: Plan) -> Evidence:
    """``first`` with ``again``'s runs added: the "before" is ``before`` (the statement
    measured again, its earlier best counted), the "after" the faster of both after-runs;
    each side is then the best of twice the runs of a first look."""
    after = _best([p for p in (first.after_plan, again.after_plan) if p is not None])
    used = again.index_used if after is again.after_plan else first.index_used
    return replace(
        first,
        before_cost=before.root.total_cost,
        before_ms=before.total_ms,
        before_plan=before,
        after_cost=after.root.total_cost,
        after_ms=after.total_ms,
        after_plan=after,
        index_used=used,
        measured_again=True,
    )


def figures(evidence: Evidence) -> str:
    """``120.0 ms -> 1.2 ms`` or ``cost 20000 -> 8``: the numbers behind a decision."""
    if evidence.before_ms is not None and evidence.after_ms is not None:
        again = ", measured again: close to the line" if evidence.measured_again else ""
        return f"{_ms(evidence.before_ms)} ms -> {_ms(evidence.after_ms)} ms{again}"
    return f"cost {evidence.before_cost:.0f} -> {evidence.after_cost or 0:.0f}"


def _ms(value: float) -> str:
    """Enough digits to tell 0.027 ms from 0.3 ms, no more."""
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.3f}"
