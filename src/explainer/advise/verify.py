"""Verification: does the planner use a candidate index, and how much does it save?

Two methods, each with its place:

* **rollback** builds the real index inside a transaction that is rolled back, and runs
  the query with EXPLAIN ANALYZE before and after: measured time, the only proof that
  an index helps in a real run. CREATE INDEX takes a SHARE lock on the table for the
  length of the transaction (writes to that table wait), so ``lock_timeout`` and
  ``statement_timeout`` bound it.
* **hypopg** creates a hypothetical index (HypoPG) and compares the planner's cost with
  plain EXPLAIN: no lock, no build time, but estimates only. HypoPG indexes are invisible
  to EXPLAIN ANALYZE and are not transactional, so they are dropped explicitly.

Each query is run ``repeats`` times before and after, and the fastest run is kept, so
that a cold cache on the first run does not flatter the index.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from dataclasses import dataclass

import psycopg

from explainer.advise.ddl import create_index_sql
from explainer.advise.model import Evidence, IndexCandidate
from explainer.db.explain import (
    Connection,
    Execution,
    ExplainOptions,
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


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    explain: ExplainOptions
    min_gain: float = DEFAULT_MIN_GAIN
    repeats: int = 2


def _probe_name(candidate: IndexCandidate) -> str:
    """A private name for the index under test, so it cannot clash with a real one."""
    digest = hashlib.sha1(repr(candidate).encode()).hexdigest()[:12]
    return f"explainer_probe_{digest}"


def _uses_index(plan: Plan, name: str) -> bool:
    return any(node.index_name and name in node.index_name for node in plan.walk())


def _best(plans: list[Plan]) -> Plan:
    return min(plans, key=lambda p: p.total_ms if p.total_ms is not None else p.root.total_cost)


def _runs(conn: Connection, execution: Execution, analyze: bool, repeats: int) -> Plan:
    """The fastest of ``repeats`` runs, each undone by a savepoint.

    Undoing each run matters for writes: every run then starts from the same rows, and
    the rows a write touched are not left as new versions in the transaction, which
    would make an index built afterwards unusable to it (``pg_index.indcheckxmin``).
    """
    plans = []
    for _ in range(max(1, repeats)):
        conn.execute(b"SAVEPOINT explainer_run")
        try:
            plans.append(run_explain(conn, execution, analyze=analyze))
        finally:
            with suppress(psycopg.OperationalError):  # a lost connection took it already
                conn.execute(b"ROLLBACK TO SAVEPOINT explainer_run")
    return _best(plans)


def verify_rollback(
    conn: Connection, execution: Execution, candidate: IndexCandidate, options: VerifyOptions
) -> Evidence:
    """Build the index in a rolled-back transaction and measure the query around it."""
    analyze = (
        options.explain.analyze
        and execution.can_analyze
        and (execution.statement.kind is not StatementKind.WRITE or options.explain.analyze_writes)
    )
    name = _probe_name(candidate)
    with rolled_back(
        conn,
        read_only=False,
        timeout_ms=options.explain.timeout_ms,
        lock_timeout_ms=options.explain.lock_timeout_ms,
    ):
        before = _runs(conn, execution, analyze, options.repeats)
        try:
            conn.execute(create_index_sql(candidate, name=name).encode())
        except psycopg.Error as exc:
            raise query_failed(exc) from None
        after = _runs(conn, execution, analyze, options.repeats)
    return Evidence(
        method="rollback",
        before_cost=before.root.total_cost,
        after_cost=after.root.total_cost,
        before_ms=before.total_ms if analyze else None,
        after_ms=after.total_ms if analyze else None,
        index_used=_uses_index(after, name),
        before_plan=before,
        after_plan=after,
    )


def verify_hypopg(
    conn: Connection, execution: Execution, candidate: IndexCandidate, options: VerifyOptions
) -> Evidence:
    """Compare the planner's cost with and without a hypothetical index."""
    ddl = create_index_sql(candidate, name=_probe_name(candidate))
    try:
        with rolled_back(
            conn,
            read_only=False,
            timeout_ms=options.explain.timeout_ms,
            lock_timeout_ms=options.explain.lock_timeout_ms,
        ):
            before = run_explain(conn, execution, analyze=False)
            try:
                row = conn.execute(
                    "SELECT indexname FROM hypopg_create_index(%s)", (ddl,)
                ).fetchone()
            except psycopg.Error as exc:
                raise query_failed(exc) from None
            if row is None:
                raise QueryFailed("HypoPG did not create the hypothetical index")
            after = run_explain(conn, execution, analyze=False)
    finally:
        # Hypothetical indexes live in the backend, outside any transaction.
        conn.execute("SELECT hypopg_reset()")
    return Evidence(
        method="hypopg",
        before_cost=before.root.total_cost,
        after_cost=after.root.total_cost,
        index_used=_uses_index(after, str(row[0])),
        before_plan=before,
        after_plan=after,
    )


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
