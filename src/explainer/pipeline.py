"""One analysis, end to end: workload in, report out.

This is the only place that strings the stages together (db -> plan -> rules -> advise),
so the CLI, the demo and the TUI all analyze the same way. A statement that fails
(bad SQL, a refused statement, a timeout) is recorded in its own report entry and the
rest of the workload goes on; so is a lost connection (a server restart, a terminated
backend), after which the analysis reconnects (:class:`_Link`).

The workbench (explainer.tui) watches an analysis as it runs: ``on_query`` hands over each
query's entry as soon as it is explained, ``on_connect`` hands over the connection so the
running statement can be cancelled on the server from another thread
(``conn.cancel_safe()``), and ``should_stop`` ends the analysis between statements.
"""

from __future__ import annotations

import glob
import math
import select
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import psycopg

from explainer.advise.candidates import coverable_columns, table_access
from explainer.advise.consolidate import (
    Consolidation,
    IndexFacts,
    LeftOut,
    Reverify,
    SizeSource,
    apply_limits,
    estimate_index_bytes,
    hot_update_warning,
    merge_prefixes,
    query_savings,
    updated_columns,
    widen_for_users,
    without_partners,
    write_overhead,
)
from explainer.advise.ddl import create_index_sql
from explainer.advise.indexes import StatementInput, VerifyMode, advise_statements
from explainer.advise.model import (
    Evidence,
    IndexCandidate,
    IndexSuggestion,
    NoSuggestion,
    NoSuggestionReason,
)
from explainer.advise.regressions import (
    TRADE_MARGIN,
    RegressionCheck,
    WorkloadQuery,
    check_regressions,
)
from explainer.advise.removals import find_removals
from explainer.advise.verify import (
    DEFAULT_MAX_VERIFY_TABLE_BYTES,
    DEFAULT_MIN_COST,
    DEFAULT_MIN_GAIN,
    RollbackItem,
    VerifyOptions,
    hypopg_supports,
    measure,
    verify_hypopg,
    verify_rollback_shared,
)
from explainer.capture import CapturedQuery, CaptureStats, open_input, read_sql_text
from explainer.db.catalog import (
    ServerInfo,
    TableInfo,
    TableWrites,
    estimated_rows,
    foreign_keys,
    hypothetical_index_size,
    index_usage,
    partition_tree,
    resolve_table,
    server_info,
    stats_since,
    table_statistics,
    table_writes,
)
from explainer.db.connection import connect, redact_dsn
from explainer.db.explain import (
    Connection,
    Execution,
    ExplainOptions,
    bound_session,
    explain,
    query_failed,
)
from explainer.db.safety import check_statement
from explainer.db.stat_statements import StatStatementsFilter, read_stat_statements
from explainer.db.stats import TableStats, table_stats
from explainer.errors import ConnectionFailed, ExplainerError, InputError
from explainer.lint.workload import lint_scope, plan_scope
from explainer.orm.models import ModelMap
from explainer.orm.nplus1 import detect as detect_nplus1
from explainer.orm.patterns import detect_patterns
from explainer.orm.reflect import reflect_models
from explainer.plan import Plan
from explainer.render.phrases import model_suggestion
from explainer.report import DatabaseInfo, InputSummary, OrmReport, QueryReport, Report
from explainer.rules import RuleContext, TableFacts, run_rules
from explainer.rules.model import ForeignKeyFacts
from explainer.units import format_size
from explainer.workload import QueryGroup, Workload, WorkloadBuilder
from explainer.workload.parallel import build_workload_parallel

VerifyChoice = Literal["auto", "rollback", "hypopg", "none"]
ProgressCallback = Callable[[int, int, QueryGroup], None]
#: Called with each query's entry as soon as it is explained (findings, no advice yet) and
#: the report being filled; both are later completed in place by the advice.
QueryCallback = Callable[[QueryReport, Report], None]
#: Called with the analysis's connection before any statement runs, and again with each
#: new connection made after one was lost.
ConnectCallback = Callable[[Connection], None]

#: The error of the query whose statement was running when the analysis was stopped.
CANCELLED = "cancelled: the analysis was stopped while this statement ran"

#: How long a lost connection is tried again before the rest of the workload is given up:
#: a restarting server takes seconds to accept connections again (read at each reconnect).
RECONNECT_WITHIN_S = 30.0
#: The pauses between two attempts to reconnect, the last one repeated.
RECONNECT_PAUSES_S = (0.2, 0.5, 1.0, 2.0)
#: How the error of a query whose connection was lost begins (:func:`query_failed`'s words).
CONNECTION_LOST = "connection lost"


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
    #: Lint the schema of the tables the workload touches (``Report.lint``): on for
    #: ``explainer analyze`` unless ``--no-lint``; off for the callers that show no
    #: schema section (the workbench, the demo).
    lint: bool = False


#: Why ``--verify auto`` built the candidates for real (said in every report it applies to).
HYPOPG_FALLBACK_NOTE = (
    "HypoPG is not installed in this database: each candidate index was verified by "
    "building it in a rolled-back transaction and timing the queries (CREATE EXTENSION "
    "hypopg to compare planner costs instead, without building anything)"
)


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


def analyzed_groups(workload: Workload, options: AnalyzeOptions) -> list[QueryGroup]:
    """The shapes :func:`analyze_workload` explains, in its order (heaviest first)."""
    groups = list(workload.groups)
    if options.include_utility:
        groups += workload.utility
    return select_groups(groups, options)


def read_workload(
    *,
    sql_files: Sequence[str] = (),
    queries: Sequence[str] = (),
    logs: Iterable[str] = (),
    log_format: str | None = None,
    log_prefix: str | None = None,
    jobs: int = 1,
    stat_statements: StatStatementsFilter | None = None,
    dsn: str | None = None,
) -> tuple[Workload, InputSummary, bool]:
    """Read every input and group it as it streams: a large log is never held whole.

    The inputs of ``explainer analyze`` and of the workbench: SQL files, single statements
    (``queries``), logs of any format (globs the shell did not expand are expanded) and,
    with ``stat_statements``, the live pg_stat_statements of ``dsn``. Each session's order
    of statements is kept too (12 bytes a statement) for the N+1 and other ORM rules; the
    last value says whether it was kept for every input (not for logs read in parallel,
    ``jobs`` > 1).
    """
    builder = WorkloadBuilder(keep_order=True)
    summary = InputSummary()

    def take(source: str, read: tuple[Iterable[CapturedQuery], CaptureStats]) -> None:
        captured, stats = read
        for query in captured:
            builder.add(query)
            summary.statements += 1
        summary.sources.append(source)
        for reason, count in stats.skip_reasons.items():
            summary.skipped[reason] = summary.skipped.get(reason, 0) + count
        summary.activity.merge(stats.activity)

    for path in sql_files:
        with open_input(path, log_format="sql") as read:
            take("<stdin>" if path == "-" else path, read)
    for number, text in enumerate(queries, start=1):
        take(f"<query {number}>", read_sql_text(text, f"<query {number}>"))
    parallel: list[Workload] = []
    for path in expand_paths(logs):
        if jobs > 1 and path != "-" and not (log_format or log_prefix):
            part, stats = build_workload_parallel(path, jobs)
            parallel.append(part)
            take(path, ([], stats))
            summary.statements += stats.queries
            continue
        with open_input(path, log_format=log_format, log_prefix=log_prefix) as read:
            take(path, read)
    if stat_statements is not None:
        with connect(dsn) as conn:
            take("pg_stat_statements", read_stat_statements(conn, stat_statements))
    workload = builder.build()
    workload.merge(*parallel)
    return workload, summary, not parallel


def expand_paths(paths: Iterable[str]) -> Iterator[str]:
    """Paths as given, and globs the shell did not expand (quoted, or on Windows)."""
    for path in paths:
        if path != "-" and not Path(path).exists() and glob.has_magic(path):
            matches = sorted(glob.glob(path))
            if not matches:
                raise InputError(f"no file matches {path}")
            yield from matches
        else:
            yield path


class _Link:
    """The analysis's connection, opened again when the server restarted or the connection
    dropped.

    Everything that talks to the server reads :attr:`conn` when it needs it, so a
    reconnection reaches the whole analysis; each new connection is bound by
    :func:`bound_session` like the first and handed to ``on_connect`` (the workbench's Esc
    cancels the statement running on it). A lost connection is one psycopg knows is
    closed: whatever error reported it (a FATAL from a terminated backend, a socket closed
    under it) and whoever caught that error (the advisor records errors per statement).
    """

    def __init__(
        self,
        dsn: str | None,
        options: ExplainOptions,
        on_connect: ConnectCallback | None,
        stop: Callable[[], bool],
    ) -> None:
        self._dsn = dsn
        self._options = options
        self._on_connect = on_connect
        self.stop = stop
        #: Why the last :meth:`reconnect` failed; None after a success.
        self.failure: str | None = None
        self.conn = self._open(connect(dsn))

    def _open(self, conn: Connection) -> Connection:
        try:
            # Catalog reads too wait at most the timeouts, never for ever behind a lock.
            bound_session(conn, self._options)
        except BaseException:
            conn.close()
            raise
        if self._on_connect is not None:
            self._on_connect(conn)
        return conn

    @property
    def lost(self) -> bool:
        return self.conn.closed

    def dropped_while_idle(self) -> bool:
        """Whether the server closed the connection since its last statement (a restart
        or a terminated session between two statements): then the next statement need not
        fail, the connection is made again first. The server's goodbye (a FATAL message,
        then the end of the stream) waits on the socket, and nothing else comes to an idle
        session that does not LISTEN, so a readable socket is worth one ``SELECT 1``; an
        unreadable one costs nothing."""
        if self.conn.closed:
            return True
        try:
            readable, _, _ = select.select([self.conn.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True
        if readable:
            with suppress(psycopg.Error):
                self.conn.execute(b"SELECT 1")
        return self.conn.closed

    def reconnect(self) -> str | None:
        """Connect again with the same DSN, for up to :data:`RECONNECT_WITHIN_S`, pausing a
        little longer after each failure. None once connected, else why not (the last
        attempt's one-line reason, or the stop the user asked for meanwhile), which
        :attr:`failure` keeps."""
        self.failure = self._reconnect()
        return self.failure

    def _reconnect(self) -> str | None:
        self.conn.close()
        deadline = time.monotonic() + RECONNECT_WITHIN_S
        pauses = iter(RECONNECT_PAUSES_S)
        while True:
            if self.stop():
                return "not reconnected: the analysis was stopped"
            remaining = deadline - time.monotonic()
            try:
                # libpq waits at least 2 s for a connection; a host that does not answer
                # must not use up the whole budget in one attempt.
                timeout = max(2, min(5, math.ceil(remaining)))
                self.conn = self._open(connect(self._dsn, connect_timeout=timeout))
                return None
            except ConnectionFailed as exc:
                reason = str(exc)
            except psycopg.Error as exc:  # the new session died while it was being set up
                reason = str(query_failed(exc))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return f"not reconnected within {RECONNECT_WITHIN_S:g} s: {reason}"
            _pause(min(next(pauses, RECONNECT_PAUSES_S[-1]), remaining), self.stop)

    def close(self) -> None:
        self.conn.close()


def _pause(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep, but return soon after ``stop()`` becomes true."""
    deadline = time.monotonic() + seconds
    while not stop() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(0.1, left))


class _TableCache:
    """Catalog lookups once per table per analysis (``conn`` is replaced on a reconnection:
    what it cached stays true of the same database)."""

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
    on_query: QueryCallback | None = None,
    on_connect: ConnectCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Report:
    """Connect, explain every shape of the workload (heaviest first), and advise.

    ``models`` (the user's, from ``--models``) name the ORM findings and the index
    suggestions' code; without them the database is reflected and the ORM findings are
    named as sqlacodegen would (guesses, which the report says).

    Stopping: once ``should_stop()`` is true (the caller has usually also cancelled the
    running statement with ``conn.cancel_safe()``), the statement being explained ends
    with :data:`CANCELLED` as its entry's error, no further shape starts, and the report
    holds the entries explained so far with their findings and no index advice: advice
    weighs the whole workload and verifying it runs more statements (rollback builds test
    indexes), which is what the user just asked to stop; a stop during the advice drops
    what it had decided. The ORM findings, which need no database, are still made. The
    caller, who asked for the stop, knows the report is partial.

    Faults: when the server restarts or the connection drops, the query whose statement
    was running gets the error ``connection lost: <reason>; reconnected``, a new
    connection is made with the same DSN (for up to :data:`RECONNECT_WITHIN_S`, as a
    restarting server takes seconds; bound and handed to ``on_connect`` like the first),
    and the workload goes on; the entries already explained are kept as they were. The
    failed query is not run again: a statement that brought the server down (out of
    memory, a crashing extension) would bring it down again. A connection the server
    closed between two statements is made again before the next one, which no fault hit
    (:meth:`_Link.dropped_while_idle`). If no connection can be made, the query's error
    ends with why, every remaining query is reported unanalyzed with that reason, there
    is no index advice, a note says where the analysis ended, and the report still comes
    back. A loss during the index advice is survived once by running the advice again
    from the start (see :func:`_advice`).
    """
    stop = should_stop or (lambda: False)
    link = _Link(dsn, options.explain, on_connect, stop)
    try:
        server = server_info(link.conn)
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
        if options.verify == "auto" and mode == "rollback":
            report.notes.append(HYPOPG_FALLBACK_NOTE)
        _pooling(link.conn, report)
        if not options.include_utility:
            report.inputs.set_aside += sum(g.calls for g in workload.utility)
        groups = analyzed_groups(workload, options)
        tables = _TableCache(link.conn)
        explained: list[tuple[QueryReport, StatementInput]] = []
        # Why the rest of the workload goes unanalyzed: the connection is gone for good.
        gone: str | None = None
        for number, group in enumerate(groups, start=1):
            if gone is None and link.dropped_while_idle() and not stop():
                gone = _reconnect_analysis(link, tables)
                if gone is not None:
                    report.notes.append(_ended_at(number, len(groups), gone))
            if stop():
                break
            if gone is not None:
                entry, statement = _entry(group), None
                entry.error = gone
            else:
                if progress is not None:
                    progress(number, len(groups), group)
                entry, statement = _stoppable_group(link.conn, group, options, tables, stop)
                if link.lost and not stop():
                    gone = _reconnect_analysis(link, tables)
                    entry.error = f"{entry.error}; {link.failure or 'reconnected'}"
                    if gone is not None:
                        report.notes.append(_ended_at(number, len(groups), gone))
            report.queries.append(entry)
            if statement is not None:
                explained.append((entry, statement))
            if on_query is not None:
                on_query(entry, report)
        if not stop() and gone is None:
            gone = _advice(link, server, mode, options, workload, groups, tables, report, explained)
        if stop() or gone is not None:
            report.orm = analyze_orm(workload, models, models_target=models_target, ordered=ordered)
            _caching(None, workload, report, ordered)
            return report
        report.orm = _orm(link.conn, workload, tables, models, models_target, ordered)
        if link.lost and link.reconnect() is None:
            # Once more on a new connection: model names and column widths come from it.
            tables.conn = link.conn
            report.orm = _orm(link.conn, workload, tables, models, models_target, ordered)
        if options.lint:
            _lint(link, tables, report)
        _caching(link, workload, report, ordered)
    finally:
        link.close()
    _model_names(report)
    return report


def _caching(link: _Link | None, workload: Workload, report: Report, ordered: bool) -> None:
    """Caching candidates (explainer.advise.caching), judged with the tables' read and write
    counters and the functions' volatility when connected. Reading those is not worth the
    analysis: on failure the candidates are found without them (write rates unknown, as
    each says) and a note says why; without a connection (stopped, lost), likewise."""
    from explainer.advise.caching import find_caching, find_caching_connected

    if not ordered:
        report.notes.append(
            "caching candidates need each session's statements in order: not looked for in "
            "logs read with --jobs (read them with --jobs 1)"
        )
        return
    result = None
    if link is not None and not link.lost and not link.stop():
        since = report.stats_since.since if report.stats_since is not None else None
        try:
            result = find_caching_connected(link.conn, workload, since=since)
        except psycopg.Error as exc:
            report.notes.append(
                f"caching candidates: the tables' write counters could not be read "
                f"({query_failed(exc)}); their write rates are unknown"
            )
    if result is None:
        result = find_caching(workload)
    report.caching, report.caching_refused = result.candidates, result.refused
    report.notes.extend(result.notes)


def _lint(link: _Link, tables: _TableCache, report: Report) -> None:
    """The schema lint of the tables the explained statements touch, on the analysis's
    connection, once the advice is done (a foreign key a suggestion serves is not listed
    again; see explainer.lint.workload). Not worth the analysis: a failure (a catalog
    read behind a lock, a lost connection) leaves the lint out and says why in a note;
    after a stop it is left out silently, as the advice is."""
    if link.lost:
        report.notes.append("the schema lint did not run: the connection to the server was lost")
        return
    plans = [q.plan for q in report.queries if q.plan is not None]
    try:
        report.lint = lint_scope(link.conn, plan_scope(plans, tables.for_plan), report.suggestions)
    except psycopg.Error as exc:
        report.lint = []
        if not link.stop():
            report.notes.append(f"the schema lint did not run: {query_failed(exc)}")


def _pooling(conn: Connection, report: Report) -> None:
    """Connection pooling advice (explainer.advise.pooling) from the inputs' connection
    activity and a snapshot of pg_stat_activity, taken before the analysis adds its own
    load. Not worth the analysis: when the snapshot cannot be read, the advice is made
    from the inputs alone and a note says why."""
    from explainer.advise.pooling import advise_pooling
    from explainer.db.activity import server_activity

    server = None
    try:
        server = server_activity(conn)
    except psycopg.Error as exc:
        report.notes.append(
            f"connection pooling: pg_stat_activity could not be read ({query_failed(exc)})"
        )
    report.pooling = advise_pooling(report.inputs.activity, server)


def _reconnect_analysis(link: _Link, tables: _TableCache) -> str | None:
    """:meth:`_Link.reconnect` for the whole analysis: None once reconnected, else the
    error of every query it cannot analyze (None as well after a stop: the analysis
    ends anyway, and says so its own way)."""
    failure = link.reconnect()
    tables.conn = link.conn
    if failure is None or link.stop():
        return None
    return f"the connection to the server was lost and {failure}"


def _ended_at(number: int, total: int, gone: str) -> str:
    return f"the analysis ended at query {number} of {total}, without index advice: {gone}"


def _advice(
    link: _Link,
    server: ServerInfo,
    mode: VerifyMode,
    options: AnalyzeOptions,
    workload: Workload,
    groups: list[QueryGroup],
    tables: _TableCache,
    report: Report,
    explained: list[tuple[QueryReport, StatementInput]],
) -> str | None:
    """The index advice (advise, consolidate, partitions), surviving one lost connection.

    When the connection is lost during the advice, what the advice had decided is dropped
    (it weighed part of the workload), a new connection is made and the whole advice runs
    again: nothing of the first run survives on the server to account for, since a test
    index is built in a transaction that died with its session and HypoPG's hypothetical
    indexes live in the session. A second loss leaves the report without advice, said in
    its notes. Returns why the connection is gone for good (no advice either, and a note),
    else None.
    """
    stop = link.stop
    if link.dropped_while_idle():
        gone = _reconnect_analysis(link, tables)
        if gone is not None:
            report.notes.append(f"no index advice was given: {gone}")
        if gone is not None or stop():
            return gone
    explained_as = [(e, e.error, e.no_suggestion) for e in report.queries]
    notes = len(report.notes)
    first_loss: str | None = None
    for _attempt in range(2):
        # The advisor records a failed statement's error and goes on, so a loss may
        # surface as nothing raised but a closed connection.
        reason = "the connection was closed"
        try:
            suggestions = _advise(link.conn, explained, options, mode)
            _consolidate(
                link.conn, server, mode, options, workload, groups, tables, report, suggestions
            )
            _partitions(link.conn, report)
        except (psycopg.Error, ExplainerError) as exc:
            if not (stop() or link.lost):
                raise
            reason = str(query_failed(exc)) if isinstance(exc, psycopg.Error) else str(exc)
        if stop():
            _drop_advice(report, explained_as)
            return None
        if not link.lost:
            if first_loss is not None:
                report.notes.append(
                    f"the connection was lost during the index advice ({first_loss}): "
                    "it was reconnected and the advice run again from the start"
                )
            return None
        _drop_advice(report, explained_as)
        del report.notes[notes:]
        gone = _reconnect_analysis(link, tables)
        if stop():
            return None
        if gone is not None:
            report.notes.append(f"no index advice was given: {gone} (during it: {reason})")
            return gone
        if first_loss is not None:
            report.notes.append(
                "no index advice was given: the connection was lost during it twice "
                f"({first_loss}; then {reason})"
            )
            return None
        first_loss = reason
    return None


def _drop_advice(
    report: Report, explained_as: list[tuple[QueryReport, str | None, list[NoSuggestion]]]
) -> None:
    """A stop during the advice: what it decided is dropped (it was cut short, so it
    weighed part of the workload) and the entries are left as they were explained (the
    advice's cancelled statements are no fault of theirs)."""
    for entry, error, no_suggestion in explained_as:
        entry.error, entry.no_suggestion = error, no_suggestion
    report.suggestions, report.consolidation = [], Consolidation()
    report.removals, report.stats_since = [], None


def _model_names(report: Report) -> None:
    """Each suggestion named as the user's models will name it (their naming convention,
    ``index=True``), so the migration, the SQL script and the patched model build one
    index under one name and ``alembic revision --autogenerate`` finds no difference."""
    models = report.orm.user_models
    if models is None:
        return
    for suggestion in report.suggestions:
        candidate = suggestion.candidate
        in_model = model_suggestion(candidate, models)
        if in_model is not None and in_model.name != candidate.name:
            suggestion.candidate = replace(candidate, given_name=in_model.name)


def _partitions(conn: Connection, report: Report) -> None:
    """The partition tree under each suggestion on a partitioned table: its index must be
    built partition by partition (see :func:`explainer.render.sql.partitioned_index_statements`)."""
    for suggestion in report.suggestions:
        candidate = suggestion.candidate
        suggestion.partitions = partition_tree(conn, candidate.schema, candidate.table)


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


def _stoppable_group(
    conn: Connection,
    group: QueryGroup,
    options: AnalyzeOptions,
    tables: _TableCache,
    stop: Callable[[], bool],
) -> tuple[QueryReport, StatementInput | None]:
    """:func:`_analyze_group`, except that once a stop was asked, whatever the cancelled
    statement left (a QueryCanceled from a catalog query, or the estimate EXPLAIN falls
    back to after a cancel, which looks like a timeout to it) becomes :data:`CANCELLED`;
    and that when the connection is lost, the entry says so (``connection lost: ...``),
    without the plan or findings of a step that may have been cut short. The caller
    reconnects."""
    try:
        entry, statement = _analyze_group(conn, group, options, tables)
    except psycopg.Error as exc:
        if not (stop() or conn.closed):
            raise
        entry, statement = _entry(group), None
        entry.error = str(query_failed(exc))
    if stop() or conn.closed:
        entry.plan, entry.analyzed, entry.note, entry.findings = None, False, None, []
        if stop():
            entry.error = CANCELLED
        elif not (entry.error or "").startswith(CONNECTION_LOST):
            # Lost in a step whose error does not say so (a sequence read, a catalog read
            # turned into the statement's error).
            entry.error = CONNECTION_LOST + (f": {entry.error}" if entry.error else "")
        return entry, None
    return entry, statement


def _entry(group: QueryGroup) -> QueryReport:
    example = group.example
    return QueryReport(
        id=group.fingerprint,
        sql=example.sql,
        calls=group.calls,
        total_ms=group.total_ms,
        source=example.source,
        line=example.line,
        locations=group.ranked_locations(),
    )


def _analyze_group(
    conn: Connection,
    group: QueryGroup,
    options: AnalyzeOptions,
    tables: _TableCache,
) -> tuple[QueryReport, StatementInput | None]:
    """Explain one shape and run the rules: its report entry, and what the advisor needs
    (None when the statement failed: the entry says why)."""
    example = group.example
    entry = _entry(group)
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
            if candidate in result.together:
                suggestion.partners[entry.id] = result.together[candidate]
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
            distinct=st.distinct if st else {},
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
    the chosen set against the whole workload (advise/regressions.py), widen what other
    queries use (:func:`_widen`); then what to drop."""
    # Imported here: this function's body is the consolidation's part of the pipeline.
    from explainer.advise.consolidate import merge_includes

    by_id = {g.fingerprint: g for g in groups}
    # The "before" each query was measured with already: a re-verification reuses it.
    befores = {
        query_id: evidence.before_plan
        for s in suggestions.values()
        for query_id, evidence in s.evidence.items()
        if evidence.method == "rollback" and evidence.before_plan is not None
    }
    analysed = {entry.id: entry.plan for entry in report.queries if entry.plan is not None}
    reverified: dict[tuple[str, IndexCandidate], Evidence | str] = {}

    def reverify(
        query_ids: Sequence[str], candidate: IndexCandidate
    ) -> dict[str, Evidence | str]:
        """Evidence for ``candidate`` on each query (remembered): by rollback, the index is
        built once for all of them (verify.verify_rollback_shared)."""
        missing = list(dict.fromkeys(q for q in query_ids if (q, candidate) not in reverified))
        if missing:
            for query_id, result in _reverify(missing, candidate).items():
                reverified[query_id, candidate] = result
        return {q: reverified[q, candidate] for q in query_ids}

    def _reverify(query_ids: list[str], candidate: IndexCandidate) -> dict[str, Evidence | str]:
        if mode == "none":
            return dict.fromkeys(query_ids, "candidates are not verified (--verify none)")
        info = tables.get(candidate.qualified_table)
        too_large = info is not None and info.total_bytes > options.max_verify_table_bytes
        by_rollback = not (mode == "hypopg" and hypopg_supports(candidate))
        if by_rollback and too_large and not options.allow_large:
            why = f"{candidate.qualified_table} is above the size limit for a test index"
            return dict.fromkeys(query_ids, why)
        verify_options = _verify_options(options)
        results: dict[str, Evidence | str] = {}
        shared: list[tuple[str, RollbackItem]] = []
        for query_id in query_ids:
            group = by_id.get(query_id)
            if group is None:
                results[query_id] = "the query is not in this analysis"
                continue
            try:
                execution = Execution(
                    check_statement(group.example.sql), _replay_values(group.example)
                )
                if not by_rollback:
                    results[query_id] = verify_hypopg(conn, execution, candidate, verify_options)
                    continue
                if query_id not in befores:
                    # A query no suggestion was verified for (widening's users): its own
                    # EXPLAIN ANALYZE is one of the "before" runs (verify.measure).
                    befores[query_id] = measure(
                        conn, execution, verify_options, known=analysed.get(query_id)
                    )
                shared.append((query_id, RollbackItem(execution, befores[query_id])))
            except ExplainerError as exc:
                results[query_id] = str(exc)
        if shared:
            try:
                found: Sequence[Evidence | ExplainerError] = verify_rollback_shared(
                    conn, candidate, [item for _, item in shared], verify_options
                )
            except ExplainerError as exc:
                found = [exc] * len(shared)
            for (query_id, _), result in zip(shared, found, strict=True):
                results[query_id] = str(result) if isinstance(result, ExplainerError) else result
        return {q: results[q] for q in query_ids}

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
    updated = updated_columns((g.example.sql, g.calls) for g in workload.groups)

    def weigh(suggestions: list[IndexSuggestion]) -> None:
        """Size, write overhead and savings of each suggestion, into the consolidation."""
        savings, consolidation.unit = query_savings(suggestions, calls, execution_ms)
        writes = table_writes(conn, ((s.candidate.schema, s.candidate.table) for s in suggestions))
        for suggestion in suggestions:
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

    weigh(kept)
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
        table_bytes = {(t.schema, t.name): t.total_bytes for t in tables.known()}
        check = check_regressions(
            conn,
            queries,
            chosen,
            _verify_options(options),
            table_bytes=table_bytes,
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
        chosen, partly = without_partners(chosen, check.dropped, consolidation)
        if partly:
            weigh(chosen)
        chosen = _widen(
            conn, chosen, check, queries, consolidation, reverify, options, by_id, tables,
            weigh, table_bytes, execution_ms,
        )  # fmt: skip
    report.suggestions = chosen
    report.consolidation = consolidation
    _explain_left_out(report, consolidation)
    report.stats_since = stats_since(conn)
    try:
        report.removals = find_removals(index_usage(conn), report.stats_since)
    except psycopg.Error as exc:
        # pg_relation_size waits for a lock another session holds: the removals are left
        # out (and said so), the analysis is not lost.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        report.notes.append(f"indexes to remove were not looked for: {reason}")


def _explain_left_out(report: Report, consolidation: Consolidation) -> None:
    """A query whose verified index the workload's choice left out, and that has no other
    suggestion, says so: every query without a suggestion carries a reason."""
    served = {query_id for s in report.suggestions for query_id in s.queries}
    entries = {entry.id: entry for entry in report.queries}
    for left in consolidation.left_out:
        facts = consolidation.facts.get(left.candidate)
        if facts is None:
            continue
        for saving in facts.serves:
            entry = entries.get(saving.query)
            if entry is None or saving.query in served:
                continue
            entry.no_suggestion.append(
                NoSuggestion(
                    NoSuggestionReason.LEFT_OUT,
                    f"an index on {left.candidate.described} helps this query but was left "
                    "out: "
                    + _left_out_why(left, consolidation),
                    left.candidate.qualified_table,
                    left.candidate,
                )
            )


def _left_out_why(left: LeftOut, consolidation: Consolidation) -> str:
    if left.reason == "regression":
        slower = [
            f"{r.query} {r.slowdown:.2f}x"
            for r in consolidation.regressions
            if r.index == left.candidate and r.decision == "dropped"
        ]
        return (
            "it made other queries of the workload slower, and saves less than "
            f"{TRADE_MARGIN:g}x what they lose"
            + (f" ({', '.join(slower)})" if slower else "")
        )
    if left.reason == "partner":
        names = ", ".join(c.described for c in left.partners)
        return f"it pays off only together with {names}, which was left out"
    if left.reason == "max_indexes":
        return f"--max-indexes {consolidation.max_indexes} kept indexes that save more"
    limit = consolidation.max_size_bytes
    return f"--max-size {format_size(limit or 0)} kept indexes that save more for their size"


def _widen(
    conn: Connection,
    chosen: list[IndexSuggestion],
    check: RegressionCheck,
    queries: list[WorkloadQuery],
    consolidation: Consolidation,
    reverify: Reverify,
    options: AnalyzeOptions,
    by_id: dict[str, QueryGroup],
    tables: _TableCache,
    weigh: Callable[[list[IndexSuggestion]], None],
    table_bytes: dict[tuple[str, str], int],
    execution_ms: dict[str, float | None],
) -> list[IndexSuggestion]:
    """Widen chosen indexes for the other queries that use them (consolidate.py,
    ``widen_for_users``), fold what the wider ones now lead into them, and check the new
    set against the workload again: if that check would drop any index, the set before
    widening stays (it passed its check) and a note says so."""
    users = {
        candidate: [(q, check.measured[q][1]) for q in query_ids]
        for candidate, query_ids in check.used_alone_by.items()
    }
    stats: dict[tuple[str, str], TableStats | None] = {}

    def columns(query_id: str, candidate: IndexCandidate) -> frozenset[str] | None:
        group = by_id.get(query_id)
        info = tables.get(candidate.qualified_table)
        if group is None or info is None:
            return None
        key = (candidate.schema, candidate.table)
        if key not in stats:
            stats[key] = table_stats(conn, candidate.schema, candidate.table)
        return coverable_columns(table_access(group.example.sql, info), stats[key])

    widened, widenings, notes = widen_for_users(chosen, users, columns, reverify, options.min_gain)
    consolidation.regression_notes += notes
    if not widenings:
        return chosen
    folded, merges, apart = merge_prefixes(widened, reverify, options.min_gain)
    second = check_regressions(
        conn,
        queries,
        folded,
        _verify_options(options),
        table_bytes=table_bytes,
        execution_ms=execution_ms,
        earlier=check,
    )
    if second.dropped:
        names = ", ".join(c.name for c in second.dropped)
        consolidation.regression_notes.append(
            f"the wider indexes were not kept: with them the workload check would drop {names}"
        )
        return chosen
    merged_before = list(consolidation.merges)
    consolidation.merges += merges
    weigh(folded)
    limit = consolidation.max_size_bytes
    if limit is not None and consolidation.total_size_bytes(folded) > limit:
        consolidation.merges = merged_before
        weigh(chosen)
        consolidation.regression_notes.append(
            "the wider indexes were not kept: they would exceed --max-size"
        )
        return chosen
    consolidation.widenings = widenings
    consolidation.kept_apart += apart
    known = {(r.query, r.index) for r in consolidation.regressions}
    consolidation.regressions += [r for r in second.regressions if (r.query, r.index) not in known]
    for query_id in second.checked:
        if query_id not in consolidation.regression_checked:
            consolidation.regression_checked.append(query_id)
    for query_id in second.changed:
        if query_id not in consolidation.regression_changed:
            consolidation.regression_changed.append(query_id)
    consolidation.regression_notes += second.notes
    return folded


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
