"""The workload check: does the chosen set of indexes make any *other* query slower?

Each index was verified for the queries it was suggested for. But a new index is seen by
every query on its table, and the planner may like it for a query it does not help: its
estimates say the new plan is cheaper, a real run says it is slower (TPC-H at scale 1:
``orders (o_custkey)``, suggested for Q22, turned Q5, Q7 and Q8 into nested loops 1.7-1.9x
slower). Only measuring catches that, so after consolidation has chosen the set:

1. Every query of the workload that reads a table getting a new index is planned (plain
   EXPLAIN) without and with the *whole* set, built for real in one transaction that is
   always rolled back (the rollback method's timeouts apply; tables above the size guard
   are left out unless ``--allow-large``).
2. A query whose plan changes is measured: EXPLAIN ANALYZE, best of ``repeats``, with the
   set in place, then without it (the indexes dropped inside the same transaction), each
   run undone by a savepoint as :func:`explainer.advise.verify.verify_rollback` does. The
   query's own EXPLAIN ANALYZE from the analysis counts as one "without" run, and one
   that timed out there is not run again (it counts as the timeout).
3. A query more than :data:`MAX_SLOWDOWN` slower and by more than :data:`NOISE_FLOOR_MS`
   (a few milliseconds are the machine, not the plan) is a *regression*. The index to
   blame is the new index its new plan uses. That index is dropped from the set unless
   what it saves elsewhere, calls x saving per call over the queries it was verified for,
   is at least :data:`TRADE_MARGIN` times what it costs here, calls x loss per call.
   Either way the report lists the query, the index, both times and the decision.

One pass: the set is not checked again after a drop (a drop can only bring a query back
to a plan measured above, or to one that uses another index of the set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import psycopg

from explainer.advise.consolidate import saving_ms
from explainer.advise.ddl import create_index_sql
from explainer.advise.model import IndexCandidate, IndexSuggestion
from explainer.advise.verify import (
    VerifyOptions,
    _analyze,
    _probe_name,
    _runs,
    _transaction,
    _uses_index,
    run_ms,
)
from explainer.db.explain import Connection, Execution, query_failed, run_explain
from explainer.errors import QueryFailed
from explainer.plan import Plan

#: A query this much slower with the set than without it is a regression (the issue's 10%).
MAX_SLOWDOWN = 0.10
#: ...and by more than this many milliseconds per call: below it, timing noise.
NOISE_FLOOR_MS = 5.0
#: An index that makes a query slower stays only when it saves at least this many times
#: what it costs. Both sides are best-of-2 runs on a machine doing other work (TPC-H at
#: scale 1: Q22's 323 ms saving, verified, was 207 ms in the benchmark's alternated runs),
#: and the loss lands on users of a query nobody asked to change, so an even trade is
#: not enough to make one query slower for another.
TRADE_MARGIN = 2.0

Decision = Literal["dropped", "kept", "no_index"]


@dataclass(frozen=True, slots=True)
class WorkloadQuery:
    """One explained query of the workload, as the check needs it."""

    id: str
    execution: Execution
    calls: int
    #: (schema, table) of every relation its plan reads.
    tables: frozenset[tuple[str, str]]
    #: Its plan from the analysis (EXPLAIN ANALYZE, or the estimate after a timeout).
    plan: Plan | None = None


@dataclass(frozen=True, slots=True)
class Regression:
    """A query the chosen set makes slower, and what was done about it."""

    query: str
    #: The new index its slower plan uses (None: the plan changed without using one).
    index: IndexCandidate | None
    before_ms: float
    after_ms: float
    calls: int
    #: calls x (after - before), ms.
    loss_ms: float
    #: What the index saves its own queries, calls x saving, ms (0 when unknown).
    saving_ms: float
    decision: Decision
    reason: str

    @property
    def slowdown(self) -> float:
        return self.after_ms / self.before_ms if self.before_ms else float("inf")


@dataclass(slots=True)
class RegressionCheck:
    """What the workload check looked at and found."""

    #: Queries whose plans were compared with and without the set.
    checked: list[str] = field(default_factory=list)
    #: Of those, the queries whose plan changed (and were measured).
    changed: list[str] = field(default_factory=list)
    regressions: list[Regression] = field(default_factory=list)
    #: Indexes the check removed from the set.
    dropped: list[IndexCandidate] = field(default_factory=list)
    #: Why some or all of the check could not run (size guard, a failure).
    notes: list[str] = field(default_factory=list)
    #: Per query measured: (without ms, with ms).
    measured: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Per index of the set, the measured queries whose plan with the set uses it and no
    #: other index of the set (what widening an index to cover them is judged against).
    used_alone_by: dict[IndexCandidate, list[str]] = field(default_factory=dict)
    #: The runs behind ``measured``, per query: without the set, and with it. A later
    #: check of another set reuses a run whose plan it would repeat.
    runs: dict[str, tuple[Plan, Plan]] = field(default_factory=dict)


def _shape(plan: Plan) -> list[tuple[str, str | None, str | None]]:
    return [(n.node_type, n.relation, n.index_name) for n in plan.walk()]


def index_savings_ms(
    suggestion: IndexSuggestion,
    calls: Mapping[str, int],
    execution_ms: Mapping[str, float | None],
    exclude: frozenset[str] = frozenset(),
) -> float:
    """calls x saving per call over the queries the index was verified for, in ms (a
    saving known only as a cost share is applied to the query's measured time; one with
    no time at all counts nothing: a measured loss is not traded for a guess)."""
    total = 0.0
    for query_id, evidence in suggestion.evidence.items():
        if query_id in exclude:
            continue
        saved = saving_ms(evidence, execution_ms.get(query_id))
        if saved is not None and saved > 0:
            total += calls.get(query_id, 1) * saved
    return total


def check_regressions(
    conn: Connection,
    queries: Sequence[WorkloadQuery],
    chosen: Sequence[IndexSuggestion],
    options: VerifyOptions,
    *,
    table_bytes: Mapping[tuple[str, str], int] | None = None,
    execution_ms: Mapping[str, float | None] | None = None,
    max_slowdown: float = MAX_SLOWDOWN,
    noise_floor_ms: float = NOISE_FLOOR_MS,
    earlier: RegressionCheck | None = None,
) -> RegressionCheck:
    """Measure the workload's queries with and without ``chosen`` (module docstring);
    the result's ``dropped`` are the indexes to take out of the set.

    ``earlier``, a check of another set on the same database (the set before widening):
    a run of it is reused where the plan is the same, so that checking the wider set
    runs only what it changes (without the set, every plan is the same)."""
    check = RegressionCheck()
    sizes = table_bytes or {}
    testable: list[IndexSuggestion] = []
    for suggestion in chosen:
        c = suggestion.candidate
        size = sizes.get((c.schema, c.table), 0)
        if size > options.max_table_bytes and not options.allow_large:
            check.notes.append(
                f"{c.name} not checked against the other queries: {c.qualified_table} is "
                "above --max-verify-table-size (pass --allow-large)"
            )
            continue
        testable.append(suggestion)
    if not testable:
        return check
    new_tables = {(s.candidate.schema, s.candidate.table) for s in testable}
    affected = [q for q in queries if q.tables & new_tables]
    if not affected:
        return check
    names = {s.candidate: _probe_name(s.candidate) for s in testable}
    try:
        measured = _measure(conn, affected, names, options, check, earlier)
    except QueryFailed as exc:
        check.notes.append(f"the workload check could not run: {exc}")
        return check
    _judge(
        check, affected, testable, names, measured, execution_ms or {}, max_slowdown, noise_floor_ms
    )
    return check


@dataclass(slots=True)
class _Measured:
    query: WorkloadQuery
    before_ms: float
    after_ms: float
    used: list[IndexCandidate]


def _measure(
    conn: Connection,
    affected: Sequence[WorkloadQuery],
    names: Mapping[IndexCandidate, str],
    options: VerifyOptions,
    check: RegressionCheck,
    earlier: RegressionCheck | None = None,
) -> list[_Measured]:
    """Plans without and with the set; for the changed ones, runs with then without (or
    the ``earlier`` check's run of the same plan)."""
    reusable = earlier.runs if earlier is not None else {}
    results: list[_Measured] = []
    with _transaction(conn, options):
        without: dict[str, Plan] = {}
        for query in affected:
            try:
                without[query.id] = _plain(conn, query.execution)
            except QueryFailed as exc:
                check.notes.append(f"{query.id} not checked: {exc}")
        for candidate, name in names.items():
            try:
                conn.execute(create_index_sql(candidate, name=name).encode())
            except psycopg.Error as exc:
                raise query_failed(exc) from None
        changed: list[tuple[WorkloadQuery, Plan]] = []
        for query in affected:
            if query.id not in without:
                continue
            check.checked.append(query.id)
            try:
                with_plan = _plain(conn, query.execution)
            except QueryFailed as exc:
                check.notes.append(f"{query.id} not checked: {exc}")
                continue
            if _shape(with_plan) != _shape(without[query.id]):
                check.changed.append(query.id)
                changed.append((query, with_plan))
        runs: dict[str, Plan] = {}
        for query, with_plan in changed:
            if not _analyze(query.execution, options):
                check.notes.append(f"{query.id}: plan changed, not measured (not executed)")
                continue
            done = reusable.get(query.id)
            if done is not None and _shape(done[1]) == _shape(with_plan):
                runs[query.id] = done[1]
                continue
            runs[query.id] = _runs(conn, query.execution, True, options.repeats)
        for name in names.values():
            conn.execute(f'DROP INDEX "{name}"'.encode())
        for query, _ in changed:
            if query.id not in runs:
                continue
            done = reusable.get(query.id)
            if done is not None and _shape(done[0]) == _shape(without[query.id]):
                before = done[0]
            else:
                # The analysis' own run counts as a "without" run when its plan is the same.
                own = query.plan
                same = own is not None and _shape(own) == _shape(without[query.id])
                before = _runs(conn, query.execution, True, options.repeats, own if same else None)
            after = runs[query.id]
            check.runs[query.id] = (before, after)
            used = [c for c, n in names.items() if _uses_index(after, n)]
            results.append(_Measured(query, _ms(before, options), _ms(after, options), used))
            check.measured[query.id] = (results[-1].before_ms, results[-1].after_ms)
            if len(used) == 1:
                check.used_alone_by.setdefault(used[0], []).append(query.id)
    return results


def _ms(plan: Plan, options: VerifyOptions) -> float:
    value = run_ms(plan, True, options)
    assert value is not None
    return value


def _plain(conn: Connection, execution: Execution) -> Plan:
    conn.execute(b"SAVEPOINT explainer_plan")
    try:
        return run_explain(conn, execution, analyze=False)
    finally:
        conn.execute(b"ROLLBACK TO SAVEPOINT explainer_plan")


def _judge(
    check: RegressionCheck,
    affected: Sequence[WorkloadQuery],
    testable: Sequence[IndexSuggestion],
    names: Mapping[IndexCandidate, str],
    measured: Sequence[_Measured],
    execution_ms: Mapping[str, float | None],
    max_slowdown: float,
    noise_floor_ms: float,
) -> None:
    calls = {q.id: q.calls for q in affected}
    slower = [
        m
        for m in measured
        if m.after_ms > m.before_ms * (1 + max_slowdown)
        and m.after_ms - m.before_ms > noise_floor_ms
    ]
    regressed = frozenset(m.query.id for m in slower)
    by_candidate = {s.candidate: s for s in testable}
    losses: dict[IndexCandidate, float] = {}
    for m in slower:
        for candidate in m.used:
            loss = m.query.calls * (m.after_ms - m.before_ms)
            losses[candidate] = losses.get(candidate, 0.0) + loss
    savings = {c: index_savings_ms(by_candidate[c], calls, execution_ms, regressed) for c in losses}
    drop = {c for c, loss in losses.items() if savings[c] < loss * TRADE_MARGIN}
    check.dropped = [s.candidate for s in testable if s.candidate in drop]
    for m in slower:
        loss = m.query.calls * (m.after_ms - m.before_ms)
        if not m.used:
            check.regressions.append(
                Regression(
                    m.query.id,
                    None,
                    m.before_ms,
                    m.after_ms,
                    m.query.calls,
                    loss,
                    0.0,
                    "no_index",
                    "the plan changed without using a new index (the indexes changed the "
                    "planner's estimates): no index to blame, none dropped",
                )
            )
            continue
        for candidate in m.used:
            saved, total_loss = savings[candidate], losses[candidate]
            dropped = candidate in drop
            reason = (
                f"dropped: its saving on the queries it was verified for "
                f"({saved:,.1f} ms over all calls) is less than {TRADE_MARGIN:g}x the loss "
                f"({total_loss:,.1f} ms over all calls)"
                if dropped
                else f"kept: its saving on the queries it was verified for "
                f"({saved:,.1f} ms over all calls) is at least {TRADE_MARGIN:g}x the loss "
                f"({total_loss:,.1f} ms over all calls)"
            )
            check.regressions.append(
                Regression(
                    m.query.id,
                    candidate,
                    m.before_ms,
                    m.after_ms,
                    m.query.calls,
                    loss,
                    saved,
                    "dropped" if dropped else "kept",
                    reason,
                )
            )


def regression_dict(regression: Regression) -> dict[str, object]:
    """One ``consolidation.regressions[]`` entry of the report JSON."""
    index = regression.index
    return {
        "query": regression.query,
        "index": index.name if index is not None else None,
        "table": index.qualified_table if index is not None else None,
        "columns": list(index.columns) if index is not None else [],
        "before_ms": round(regression.before_ms, 3),
        "after_ms": round(regression.after_ms, 3),
        "slowdown": round(regression.slowdown, 3),
        "calls": regression.calls,
        "loss_ms": round(regression.loss_ms, 3),
        "saving_ms": round(regression.saving_ms, 3),
        "decision": regression.decision,
        "reason": regression.reason,
    }
