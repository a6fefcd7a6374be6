"""Safe EXPLAIN: every statement runs inside a transaction that is always rolled back.

``EXPLAIN ANALYZE`` executes the statement, so the guarantees live here, in one place:

* the transaction is opened by explainer and ended with ``ROLLBACK`` whatever happens;
* reads run ``READ ONLY``, so a volatile function that tries to write fails instead of
  writing;
* writes are executed only when the caller asked (``analyze_writes``), and are rolled
  back like everything else; otherwise they get a plain EXPLAIN;
* ``statement_timeout`` and ``lock_timeout`` are set with ``SET LOCAL`` so they end with
  the transaction and never leak into the caller's session settings.

Callers that need several steps in one transaction (index verification builds an index
between two EXPLAINs) use :func:`rolled_back` and :func:`run_explain` directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from explainer.db.safety import CheckedStatement, StatementKind
from explainer.errors import QueryFailed
from explainer.plan import Plan, parse_json_plan

Connection = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class ExplainOptions:
    #: Run EXPLAIN ANALYZE (executing the statement) rather than plain EXPLAIN.
    analyze: bool = True
    #: Also execute INSERT/UPDATE/DELETE/MERGE (still rolled back).
    analyze_writes: bool = False
    #: statement_timeout for each explained statement, in milliseconds.
    timeout_ms: int = 30_000
    #: lock_timeout, in milliseconds: a statement waiting on another session's lock gives up.
    lock_timeout_ms: int = 5_000


@dataclass(slots=True)
class ExplainOutcome:
    plan: Plan
    #: Whether the statement was executed (EXPLAIN ANALYZE).
    analyzed: bool
    #: Why it was not analyzed, when that is not the user's explicit choice.
    note: str | None = None


@contextmanager
def rolled_back(
    conn: Connection, *, read_only: bool, timeout_ms: int, lock_timeout_ms: int
) -> Iterator[Connection]:
    """A transaction that always ends with ROLLBACK, with its timeouts set locally.

    The connection must be in autocommit mode: explainer issues BEGIN itself so that no
    driver-level transaction handling can turn the ending into a COMMIT.
    """
    if not conn.autocommit:
        raise RuntimeError("rolled_back() needs an autocommit connection")
    conn.execute(b"BEGIN READ ONLY" if read_only else b"BEGIN")
    try:
        conn.execute(
            sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(f"{timeout_ms}ms"))
        )
        conn.execute(
            sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{lock_timeout_ms}ms"))
        )
        yield conn
    finally:
        # If the connection is gone, so is the transaction; the original error, if any,
        # is what the caller needs to see.
        with suppress(psycopg.OperationalError):
            conn.execute(b"ROLLBACK")


def explain_sql(*, analyze: bool, buffers: bool = True) -> bytes:
    """The EXPLAIN prefix for a statement."""
    options = ["ANALYZE", "BUFFERS"] if analyze and buffers else ["ANALYZE"] if analyze else []
    options.append("FORMAT JSON")
    return f"EXPLAIN ({', '.join(options)}) ".encode()


def run_explain(conn: Connection, statement: str, *, analyze: bool) -> Plan:
    """Run EXPLAIN inside the caller's transaction and parse the plan.

    The statement text is sent as is, without parameters, so a ``%`` in it is not taken
    for a placeholder; it has been checked by :func:`explainer.db.safety.check_statement`.
    """
    try:
        row = conn.execute(explain_sql(analyze=analyze) + statement.encode()).fetchone()
    except psycopg.Error as exc:
        raise query_failed(exc) from None
    if row is None:
        raise QueryFailed("EXPLAIN returned no plan")
    document = row[0]
    if isinstance(document, str):
        document = json.loads(document)
    return parse_json_plan(document)


def explain(
    conn: Connection, statement: CheckedStatement, options: ExplainOptions
) -> ExplainOutcome:
    """Explain one checked statement safely; see the module docstring for the rules."""
    analyze = options.analyze
    note = None
    if statement.kind is StatementKind.WRITE and analyze and not options.analyze_writes:
        analyze = False
        note = "a write: estimated only, not executed (pass --analyze-writes to measure it)"
    with rolled_back(
        conn,
        read_only=statement.kind is StatementKind.READ,
        timeout_ms=options.timeout_ms,
        lock_timeout_ms=options.lock_timeout_ms,
    ):
        plan = run_explain(conn, statement.sql, analyze=analyze)
    return ExplainOutcome(plan=plan, analyzed=analyze, note=note)


def query_failed(exc: psycopg.Error) -> QueryFailed:
    """One line for a statement the server rejected, with what to do when there is something."""
    diag = exc.diag
    primary = (diag.message_primary or str(exc).strip().splitlines()[0]).rstrip(".")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return QueryFailed(f"{primary} (statement_timeout reached: raise it with --timeout)")
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return QueryFailed(f"{primary} (another session holds a lock: lock_timeout reached)")
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return QueryFailed(f"{primary} (the query writes: explain it as a write)")
    if isinstance(exc, psycopg.OperationalError):
        return QueryFailed(f"connection lost: {primary}")
    if diag.sqlstate:
        return QueryFailed(f"{primary} [{diag.sqlstate}]")
    return QueryFailed(primary)
