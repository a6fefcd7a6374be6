"""Safe EXPLAIN: every statement runs inside a transaction that is always rolled back.

``EXPLAIN ANALYZE`` executes the statement, so the guarantees live here, in one place:

* the transaction is opened by explainer and ended with ``ROLLBACK`` whatever happens;
* reads run ``READ ONLY``, so a volatile function that tries to write fails instead of
  writing;
* writes are executed only when the caller asked (``analyze_writes``), and are rolled
  back like everything else; otherwise they get a plain EXPLAIN;
* ``statement_timeout`` and ``lock_timeout`` are set with ``SET LOCAL`` so they end with
  the transaction and never leak into the caller's session settings (:func:`bound_session`
  bounds the rest of the session: catalog reads);
* a statement that calls a function whose effect a rollback does not undo (``nextval``,
  ``pg_terminate_backend``, session advisory locks...: see
  :data:`explainer.db.safety.IRREVERSIBLE_FUNCTIONS`) is explained without being run;
* a run that may write (a write, a locking read) can still advance a sequence the
  statement does not name (a serial column's default, a trigger): the sequences are read
  before and after, and the note names each one that moved.

* an EXPLAIN ANALYZE that reaches ``statement_timeout`` is not the end of the statement:
  its plan is fetched once more without ANALYZE (nothing runs), so the rules and the index
  advisor still judge it, on the estimated plan, and the note says so. A statement too
  slow to finish is the one that most needs advice.

Callers that need several steps in one transaction (index verification builds an index
between two EXPLAINs) use :func:`rolled_back` and :func:`run_explain` directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from explainer.db.safety import CheckedStatement, StatementKind
from explainer.errors import QueryFailed
from explainer.plan import Plan, parse_json_plan

Connection = psycopg.Connection[Any]


class StatementTimeout(QueryFailed):
    """The statement reached ``statement_timeout`` (the one failure that says something
    about the statement's speed rather than its text: callers fall back to an estimate)."""


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


def bound_session(conn: Connection, options: ExplainOptions) -> None:
    """Set ``statement_timeout`` and ``lock_timeout`` for the whole session.

    :func:`rolled_back` bounds the explained statements; this bounds everything else an
    analysis sends on the connection (catalog reads: index definitions, relation sizes,
    statistics), which would otherwise wait for ever behind another session's ACCESS
    EXCLUSIVE lock (``pg_get_indexdef`` and ``pg_relation_size`` lock the relation). The
    connection is explainer's own, so its session settings are explainer's to choose.
    """
    for name, value in (
        ("statement_timeout", options.timeout_ms),
        ("lock_timeout", options.lock_timeout_ms),
    ):
        conn.execute(
            sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(f"{value}ms"))
        )


def explain_sql(*, analyze: bool, buffers: bool = True, generic: bool = False) -> bytes:
    """The EXPLAIN prefix for a statement."""
    options = ["ANALYZE", "BUFFERS"] if analyze and buffers else ["ANALYZE"] if analyze else []
    if generic:
        options.append("GENERIC_PLAN")
    options.append("FORMAT JSON")
    return f"EXPLAIN ({', '.join(options)}) ".encode()


#: PostgreSQL 16 added EXPLAIN (GENERIC_PLAN) for statements with $n placeholders.
GENERIC_PLAN_VERSION = 160000

ReplayMode = Literal["text", "replay", "generic"]


@dataclass(frozen=True, slots=True)
class Execution:
    """How a statement runs under EXPLAIN.

    * ``text``: the statement has no ``$n`` placeholders and runs as written;
    * ``replay``: it has placeholders and the values were logged: it is PREPAREd and
      EXECUTEd with the values as literals, so the server binds them as parameters
      exactly as the application's driver did (never substituted into the text);
    * ``generic``: placeholders without values (pg_stat_statements, a truncated log
      value): only a generic plan, estimated, can be had.
    """

    statement: CheckedStatement
    parameters: tuple[str | None, ...] | None = None

    @property
    def mode(self) -> ReplayMode:
        if self.statement.parameter_count == 0:
            return "text"
        if self.parameters is not None and len(self.parameters) >= self.statement.parameter_count:
            return "replay"
        return "generic"

    @property
    def can_analyze(self) -> bool:
        return self.mode != "generic"


_PREPARED_NAME = "explainer_replay"


def _plan_from_row(row: tuple[Any, ...] | None) -> Plan:
    if row is None:
        raise QueryFailed("EXPLAIN returned no plan")
    document = row[0]
    if isinstance(document, str):
        document = json.loads(document)
    return parse_json_plan(document)


def run_explain(conn: Connection, execution: Execution | str, *, analyze: bool) -> Plan:
    """Run EXPLAIN inside the caller's transaction and parse the plan.

    Text is sent as is, without client-side parameters, so a ``%`` in it is not taken for
    a placeholder; it has been checked by :func:`explainer.db.safety.check_statement`.
    """
    if isinstance(execution, str):
        text = execution
        mode: ReplayMode = "text"
    else:
        text, mode = execution.statement.sql, execution.mode
    try:
        if mode == "text":
            return _plan_from_row(
                conn.execute(explain_sql(analyze=analyze) + text.encode()).fetchone()
            )
        assert isinstance(execution, Execution)
        if mode == "generic" and conn.info.server_version >= GENERIC_PLAN_VERSION:
            prefix = explain_sql(analyze=False, generic=True)
            return _plan_from_row(conn.execute(prefix + text.encode()).fetchone())
        return _explain_prepared(conn, execution, analyze=analyze and mode == "replay")
    except psycopg.Error as exc:
        raise query_failed(exc) from None


def _explain_prepared(conn: Connection, execution: Execution, *, analyze: bool) -> Plan:
    """PREPARE, EXPLAIN EXECUTE with the values (or NULLs for a generic plan), DEALLOCATE.

    Prepared statements outlive transactions, so the statement is always deallocated;
    a savepoint keeps the transaction usable for that when EXPLAIN fails.
    """
    statement = execution.statement
    if execution.mode == "generic":
        # Before PostgreSQL 16: force the generic plan; the NULLs are never used for it.
        conn.execute(b"SET LOCAL plan_cache_mode = force_generic_plan")
        values: tuple[str | None, ...] = (None,) * statement.parameter_count
    else:
        assert execution.parameters is not None
        values = execution.parameters[: statement.parameter_count]
    name = sql.Identifier(_PREPARED_NAME)
    conn.execute(b"SAVEPOINT explainer_prepare")
    conn.execute(sql.SQL("PREPARE {} AS ").format(name).as_bytes(conn) + statement.sql.encode())
    try:
        row = conn.execute(
            explain_sql(analyze=analyze)
            + sql.SQL("EXECUTE {}({})")
            .format(name, sql.SQL(", ").join(sql.Literal(v) for v in values))
            .as_bytes(conn)
        ).fetchone()
    except psycopg.Error:
        conn.execute(b"ROLLBACK TO SAVEPOINT explainer_prepare")
        raise
    finally:
        with suppress(psycopg.OperationalError):
            conn.execute(sql.SQL("DEALLOCATE {}").format(name))
    return _plan_from_row(row)


def explain(conn: Connection, execution: Execution, options: ExplainOptions) -> ExplainOutcome:
    """Explain one checked statement safely; see the module docstring for the rules."""
    statement = execution.statement
    analyze = options.analyze
    note = None
    if statement.irreversible and analyze:
        analyze = False
        note = irreversible_note(statement.irreversible)
    elif statement.kind is StatementKind.WRITE and analyze and not options.analyze_writes:
        analyze = False
        note = "a write: estimated only, not executed (pass --analyze-writes to measure it)"
    elif analyze and not execution.can_analyze:
        analyze = False
        count = statement.parameter_count
        placeholders = "$1" if count == 1 else f"$1..${count}"
        note = f"no usable values for {placeholders}: generic plan, estimated only"
    read_only = statement.kind is StatementKind.READ
    # A run that may write can advance a sequence (a serial column's default, a trigger),
    # which the rollback does not undo: the values before and after name what moved.
    sequences = sequence_values(conn) if analyze and not read_only else None
    try:
        outcome = _explain(conn, execution, options, analyze=analyze, read_only=read_only)
    except QueryFailed as exc:
        moved = advanced_sequences(conn, sequences)
        if moved is None:
            raise
        raise type(exc)(f"{exc}; {moved}") from None
    if note is not None:
        outcome.note = note if outcome.note is None else f"{note}; {outcome.note}"
    moved = advanced_sequences(conn, sequences)
    if moved is not None:
        outcome.note = moved if outcome.note is None else f"{outcome.note}; {moved}"
    return outcome


def _explain(
    conn: Connection,
    execution: Execution,
    options: ExplainOptions,
    *,
    analyze: bool,
    read_only: bool,
) -> ExplainOutcome:
    """The EXPLAIN itself, and its estimate when the run reaches ``statement_timeout``."""
    try:
        with rolled_back(
            conn,
            read_only=read_only,
            timeout_ms=options.timeout_ms,
            lock_timeout_ms=options.lock_timeout_ms,
        ):
            plan = run_explain(conn, execution, analyze=analyze)
    except StatementTimeout:
        if not analyze:
            raise
        # Planning alone never takes that long: the plain EXPLAIN gets the same timeout.
        with rolled_back(
            conn,
            read_only=read_only,
            timeout_ms=options.timeout_ms,
            lock_timeout_ms=options.lock_timeout_ms,
        ):
            plan = run_explain(conn, execution, analyze=False)
        return ExplainOutcome(plan=plan, analyzed=False, note=timeout_note(options.timeout_ms))
    return ExplainOutcome(plan=plan, analyzed=analyze)


def irreversible_note(functions: tuple[str, ...]) -> str:
    """The note of a statement not executed because it calls ``functions``."""
    calls = ", ".join(f"{name}()" for name in functions)
    return f"calls {calls}, which a rollback does not undo: estimated only, not executed"


SequenceValues = dict[str, int | None]


def sequence_values(conn: Connection) -> SequenceValues | None:
    """Every sequence's ``last_value`` the role may read (None: never used), by qualified
    name; None when they cannot be read. Sequences are not transactional, so the values
    read after a ROLLBACK are the ones the statement left."""
    try:
        rows = conn.execute(
            b"SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), last_value "
            b"FROM pg_sequences"
        ).fetchall()
    except psycopg.Error:
        return None
    return {str(name): None if value is None else int(value) for name, value in rows}


def advanced_sequences(conn: Connection, before: SequenceValues | None) -> str | None:
    """The note naming the sequences that moved since ``before``, or None for none."""
    if before is None:
        return None
    after = sequence_values(conn)
    if after is None:
        return None
    moved = [
        f"{name} {'unused' if before.get(name) is None else before[name]} -> {value}"
        for name, value in sorted(after.items())
        if value is not None and before.get(name) != value
    ]
    if not moved:
        return None
    return "sequences advanced (a rollback does not reset them): " + ", ".join(moved)


def timeout_note(timeout_ms: int) -> str:
    """The note of a statement whose EXPLAIN ANALYZE reached ``statement_timeout``."""
    seconds = timeout_ms / 1000
    shown = f"{seconds:g}" if seconds >= 1 else f"{seconds:.3g}"
    return f"timed out after {shown} s; judged on the estimated plan"


def query_failed(exc: psycopg.Error) -> QueryFailed:
    """One line for a statement the server rejected, with what to do when there is something."""
    diag = exc.diag
    primary = (diag.message_primary or str(exc).strip().splitlines()[0]).rstrip(".")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        if primary.endswith("due to user request"):
            # A cancel (explainer's own stop, Ctrl+C, pg_cancel_backend from another
            # session), not slowness: no estimate fallback, and no advice to wait longer.
            # (The server's English text: in another lc_messages it reads as a timeout.)
            return QueryFailed(f"{primary} (the statement was cancelled)")
        return StatementTimeout(f"{primary} (statement_timeout reached: raise it with --timeout)")
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return QueryFailed(f"{primary} (another session holds a lock: lock_timeout reached)")
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return QueryFailed(f"{primary} (it writes, through a function: reads run READ ONLY)")
    if isinstance(exc, psycopg.OperationalError):
        return QueryFailed(f"connection lost: {primary}")
    if diag.sqlstate:
        return QueryFailed(f"{primary} [{diag.sqlstate}]")
    return QueryFailed(primary)
