"""PostgreSQL log records, and the one assembler that turns them into queries.

Every server-log format (stderr with any ``log_line_prefix``, syslog, Heroku logplex,
csvlog, jsonlog, Cloud SQL and CloudNativePG envelopes) says the same things in a
different layout. Each format therefore only has to produce :class:`LogRecord` s; the
rules that decide what a *query* is live here, once, so the formats cannot drift apart.

Statements come from independent settings, and a log may hold any mix of them:

- ``log_min_duration_statement``: one entry, ``duration: X ms  statement: SQL`` (or
  ``execute <name>: SQL`` for the extended protocol, preceded by ``parse`` and ``bind``
  entries, which are steps of the same execution and are not counted);
- ``log_statement = all`` (+ ``log_duration``): ``statement: SQL`` when it starts, and a
  bare ``duration: X ms`` from the same backend when it ends. Parse and bind steps log
  bare durations too, before their ``execute``; with no statement waiting they are
  dropped;
- ``auto_explain``: ``duration: X ms  plan:`` and the plan, whose ``Query Text`` is the
  statement. With the simple protocol the plan is logged *before* the statement's own
  entry, with the extended protocol *after* its ``execute`` (when the portal is dropped),
  so a plan is matched to its statement by backend and text, never by adjacency: one
  execution logged both ways is one query, carrying the plan.

Entries of concurrent backends interleave, so pairing state is kept per backend and only
while something waits: memory grows with the number of busy backends, never with the
file. Queries come out in the order they completed, each once its record has been read
with the one after it (a ``DETAIL: parameters`` is always the very next record: the
server writes a message and its DETAIL in one write, and the syslog source keeps the parts
of one message together). That order is what makes a log cut at entry boundaries and read
in pieces give the same queries as one pass. Once the log has shown an auto_explain plan,
an ``execute`` instead waits for its backend's next step, since its plan may come after
other backends' entries; only such logs see that order loosened.

A statement whose backend then logs an ERROR (or FATAL/PANIC) did not complete: it is not
a query but is counted in the stats, as is the ``STATEMENT:`` echo of a failed statement
that was never logged itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from explainer.capture.activity import record_connection
from explainer.capture.auto_explain import parse_plan_message
from explainer.capture.model import CapturedQuery, CaptureStats

FAILED = "statement failed (ERROR)"
EMPTY = "empty statement"
UNKNOWN_DURATION = "unrecognised duration message"
UNREADABLE_PLAN = "auto_explain plan that could not be read"
PLAN_OF_READ_EXECUTE = "auto_explain plan of an execute already read"

SEVERITIES = (
    "LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?"
    "|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION"
)


@dataclass(slots=True)
class LogRecord:
    """One message of a PostgreSQL log, whatever format carried it.

    stderr and syslog write a message's DETAIL, CONTEXT and STATEMENT as records of their
    own (severity ``DETAIL``...); csvlog and jsonlog put them in fields of the message's
    record. The assembler accepts both, so sources pass on what they read and never
    reshape it.
    """

    line: int
    """1-based line of the input where the record starts."""
    session: str
    """Backend pid (or session id when the format has no pid); ``""`` when unknown."""
    severity: str
    message: str
    """The message text; lines after the first are joined with ``\\n``."""
    timestamp: str | None = None
    user: str | None = None
    database: str | None = None
    application: str | None = None
    transaction: str | None = None
    """Virtual or real transaction id (``%v``/``%x``, csvlog/jsonlog fields) when the
    record was written inside a transaction; see :func:`transaction_of`."""
    detail: str | None = None
    context: str | None = None
    statement: str | None = None
    """The statement an error (or temp-file message...) was about, as csvlog's ``query``."""


def transaction_of(vxid: str | None, xid: str | None) -> str | None:
    """The transaction a record was written in, from its vxid and xid, if any.

    A statement's ``duration`` entry is written after an autocommit transaction ended,
    with vxid ``N/0`` and xid ``0``: those mean "no transaction", not one shared one.
    """
    if vxid and not vxid.endswith("/0"):
        return vxid
    if xid and xid != "0":
        return f"xid {xid}"
    return None


_DURATION = re.compile(r"duration: (\d+(?:\.\d+)?) ms(?: +(.*))?\Z", re.DOTALL)
# ``execute <name>[/<portal>]: SQL``; names may hold a colon (``py:0x7f...``), so the
# name runs to the last ``: `` that is followed by the statement.
_STATEMENT = re.compile(
    r"(statement|execute|parse|bind)(?: fetch from)?(?: \S*)?:(?: |\Z)(.*)\Z", re.DOTALL
)
TIMED_STEP = re.compile(
    r"duration: (?P<ms>\d+(?:\.\d+|)) ms +"
    r"(?P<kind>statement|execute|parse|bind)(?: fetch from|)(?: \S*|): "
)
"""The start of the commonest message, ``duration: X ms  statement: `` (or ``execute
<name>: ``, ``parse``, ``bind``): where it matches, :data:`_DURATION` then
:data:`_STATEMENT` split the message the same way (same regex, less the empty statement).
The stderr reader matches it in the same pass as the line prefix (see
:func:`explainer.capture.prefix.compile_fast`) and passes the pieces to
:meth:`StatementAssembler.feed_timed`."""
# One ``$n = value`` of a ``parameters:`` DETAIL: number, NULL, quoted value, ``...``.
_PARAMETER = r"(?:, |)\$(\d+) = (?:(NULL)|'([^']*(?:''[^']*)*)'(\.\.\.)?)"
_PARAMETERS = re.compile(rf"(?:{_PARAMETER})*")
"""Any number of them, one after another from the start."""
_ONE_PARAMETER = re.compile(_PARAMETER)
_NUMBERS = tuple(str(number) for number in range(1, 101))  # "1", "2"...: $n in order
_MAX_PARAMETER = 65535  # PostgreSQL's limit on the parameters of one statement
_TRANSACTION_START = re.compile(r"(?:BEGIN|START\s+TRANSACTION)\b", re.IGNORECASE)
_TRANSACTION_END = re.compile(
    r"(?:COMMIT|END|ROLLBACK|ABORT|PREPARE\s+TRANSACTION)\b"
    r"(?!\s+PREPARED\b)(?!\s+(?:WORK\s+|TRANSACTION\s+)?TO\b)",
    re.IGNORECASE,
)


def _heads(*words: str) -> frozenset[str]:
    """The first two characters of ``words`` in any case, as ``(?i)`` matches them (it
    also takes the long s, U+017F, for an s): a cheap test before the regexes above."""

    def cases(char: str) -> str:
        return char.upper() + char.lower() + ("\u017f" if char in "sS" else "")

    return frozenset(a + b for word in words for a in cases(word[0]) for b in cases(word[1]))


_TRANSACTION_START_HEADS = _heads("BEGIN", "START")
_TRANSACTION_END_HEADS = _heads("COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE")


def _is_plan(record: LogRecord) -> bool:
    """Whether ``record`` is an auto_explain entry (``duration: X ms  plan:``)."""
    return record.severity == "LOG" and record.message.find(" plan:", 0, 40) > 0


PLAN_ENTRY = re.compile(r"duration: \d+(?:\.\d+)? ms +plan:")
"""How an auto_explain entry starts, in any format: a reader that sees one in the first
lines of a log tells the assembler to wait for plans from the start."""


_PARAMETERS_DETAIL = frozenset({"parameters: ", "Parameters: "})
_FAILURES = frozenset({"ERROR", "FATAL", "PANIC"})
# Messages that accompany the entry before them (an ERROR's HINT, CONTEXT...): they
# neither settle a failure nor start anything.
_ATTACHED = frozenset({"HINT", "CONTEXT", "QUERY", "LOCATION"})

# A backend with nothing logged for this many records has its waiting execute, plans and
# transaction marker released: its plan would have come long ago, and the state of
# backends that ended without a ``disconnection`` line must not pile up.
WINDOW = 50_000
_SWEEP_EVERY = 4096
# Plans of nested statements (auto_explain.log_nested_statements) pile up before their
# caller's entry; beyond this many per backend the oldest become queries of their own.
_MAX_PLANS = 64

_NO_FAILURE, _COUNTED, _UNCOUNTED = 0, 1, 2


@dataclass(slots=True)
class _Plan:
    sql: str
    plan: Any  # a plan as logged; Any, not object: mypyc cannot compile the latter here
    ms: float
    record: LogRecord


@dataclass(slots=True)
class _Session:
    """What one backend has in flight between log records."""

    awaiting: CapturedQuery | None = None
    """Logged when it started (log_statement); waits for its ``duration:``."""
    awaiting_execute: bool = False
    held: CapturedQuery | None = None
    """A complete ``execute`` of a log with plans; waits for its plan until the
    backend's next step."""
    read_execute: str | None = None
    """The text of an ``execute`` already passed on before the log showed any plan: a
    plan of that text before the backend's next step belongs to it, and is no query."""
    plans: list[_Plan] = field(default_factory=list)
    """auto_explain plans logged before their statement's entry (simple protocol)."""
    failure: int = _NO_FAILURE
    """After an ERROR: whether the failed statement was already counted as skipped."""
    detail_target: CapturedQuery | None = None
    """The query the previous record started: a ``DETAIL: parameters`` belongs to it."""
    transaction: str | None = None
    """Set between a logged BEGIN and its COMMIT/ROLLBACK."""
    seen: int = 0

    def idle(self) -> bool:
        return (
            self.awaiting is None
            and self.held is None
            and self.read_execute is None
            and not self.plans
            and self.failure == _NO_FAILURE
            and self.transaction is None
        )


def assemble(
    records: Iterable[LogRecord], source: str, stats: CaptureStats
) -> Iterator[CapturedQuery]:
    """Stream the queries of ``records``; skips are counted in ``stats``."""
    return StatementAssembler(source, stats).run(records)


class StatementAssembler:
    """The per-backend state machine; see the module docstring for the rules.

    :meth:`feed` appends completed queries to :attr:`out` (the caller drains it), which
    costs less per record than a generator would.
    """

    def __init__(self, source: str, stats: CaptureStats, plans: bool = False) -> None:
        """``plans``: the log has auto_explain plans (its first lines showed one), so
        every ``execute`` waits for its plan from the start."""
        self.source = source
        self.stats = stats
        self.sessions: dict[str, _Session] = {}
        self.out: list[CapturedQuery] = []
        self._count = 0
        self._transactions = 0
        # The query the previous record completed, passed on after the next record
        # unless that is its DETAIL (or, for an execute, its plan).
        self._next: CapturedQuery | None = None
        self._next_session = ""
        self._plans_seen = plans

    def run(self, records: Iterable[LogRecord]) -> Iterator[CapturedQuery]:
        """Stream the queries of ``records``."""
        out = self.out
        feed = self.feed
        for record in records:
            feed(record)
            if out:
                yield from out
                out.clear()
        self.finish()
        yield from out
        out.clear()

    # -- records ----------------------------------------------------------------------

    def feed(self, record: LogRecord) -> None:
        self._count += 1
        if self._count % _SWEEP_EVERY == 0:
            self._sweep()
        key = record.session
        severity = record.severity
        waiting = self._next
        if waiting is not None and (
            key != self._next_session or not (severity == "DETAIL" or _is_plan(record))
        ):
            self.out.append(waiting)
            self._next = None
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = _Session()
        session.seen = self._count
        if severity == "DETAIL":
            self._detail(session, record.message)
        else:
            session.detail_target = None
            if severity == "LOG":
                session.failure = _NO_FAILURE
                self._log(session, record)
            elif severity in _ATTACHED:
                pass
            elif severity in _FAILURES:
                self._fail(session)
            elif severity == "STATEMENT":
                self._statement_echo(session)
            else:  # WARNING, NOTICE...: the statement before them did not fail
                session.failure = _NO_FAILURE
        if record.detail is not None:
            self._detail(session, record.detail)
        if record.statement is not None:
            self._statement_echo(session)
        if session.idle():
            del self.sessions[key]

    # -- the fast path ------------------------------------------------------------------
    #
    # Most records of a log are a handful of shapes: ``duration: X ms  statement: SQL``,
    # the extended protocol's ``parse``/``bind``/``execute`` with a duration, and their
    # ``DETAIL:  parameters:``. A reader that recognises those while it splits a line
    # (the stderr reader does, in the same regex match as the prefix) hands them over
    # with the two methods below instead of building a LogRecord for :meth:`feed`. They do
    # exactly what :meth:`feed` would do with that record, but only in the common state
    # (no sweep due, no plans, no log_statement entry waiting for its duration...): when
    # they return False nothing has changed, and the caller must :meth:`feed` the record.

    def feed_timed(
        self,
        line: int,
        key: str,
        kind: str,
        ms: str,
        sql: str,
        timestamp: str | None,
        user: str | None,
        database: str | None,
        application: str | None,
        transaction: str | None,
    ) -> bool:
        """A ``LOG`` record ``duration: <ms> ms  <kind> [name]: <sql>`` (a whole message,
        ``kind`` one of statement, execute, parse, bind), or False if it needs :meth:`feed`.
        """
        count = self._count + 1
        waiting = self._next
        if count % _SWEEP_EVERY == 0 or (waiting is not None and key == self._next_session):
            return False  # a sweep is due, or the waiting execute may take this as its plan
        session = self.sessions.get(key)
        if kind == "parse" or kind == "bind":
            # Steps of an execution: not queries, but the backend's state moves on.
            self._count = count
            if waiting is not None:
                self.out.append(waiting)
                self._next = None
            if session is not None:
                session.seen = count
                session.detail_target = None
                session.failure = _NO_FAILURE
                if kind == "bind":
                    self._release(session)
                if session.idle():
                    del self.sessions[key]
            return True
        execute = kind == "execute"
        if session is not None and (
            session.awaiting is not None or session.held is not None or session.plans
        ):
            return False
        if execute and self._plans_seen:
            return False
        text = sql.strip()
        if text.endswith(";"):
            text = clean_sql(text)
        if not text:
            return False
        self._count = count
        if waiting is not None:
            self.out.append(waiting)
            self._next = None
        if session is None and (
            execute or (text[:2] in _TRANSACTION_START_HEADS and _TRANSACTION_START.match(text))
        ):
            session = self.sessions[key] = _Session()
        query = self._make_query(
            line, key, timestamp, user, database, application, transaction, text, float(ms), session
        )
        if session is None:  # an idle backend: nothing to remember about it
            self.out.append(query)
            return True
        session.seen = count
        session.failure = _NO_FAILURE
        session.read_execute = None  # all _release has to do: nothing held, no plans
        if execute:
            # _executed: its DETAIL may follow; passed on after the next record.
            self._next, self._next_session = query, key
            session.read_execute = text
            session.detail_target = query
            return True
        session.detail_target = None
        self.out.append(query)
        if session.transaction is None:  # so idle: the rest was checked or set above
            del self.sessions[key]
        return True

    def feed_detail(self, key: str, message: str) -> bool:
        """A ``DETAIL`` record (its whole message), or False if it needs :meth:`feed`."""
        count = self._count + 1
        if count % _SWEEP_EVERY == 0:
            return False
        self._count = count
        waiting = self._next
        if waiting is not None and key != self._next_session:
            self.out.append(waiting)
            self._next = None
        session = self.sessions.get(key)
        if session is not None:  # else a new, idle backend: a DETAIL alone does nothing
            session.seen = count
            self._detail(session, message)
            if session.idle():
                del self.sessions[key]
        return True

    def finish(self) -> None:
        """The input ended: what still waits is complete as far as anyone will know."""
        if self._next is not None:
            self.out.append(self._next)
            self._next = None
        pending: list[CapturedQuery] = []
        for session in self.sessions.values():
            if session.held is not None:
                pending.append(session.held)
            pending.extend(self._plan_query(plan) for plan in session.plans)
            if session.awaiting is not None:
                # The log ended before its duration: it ran, for an unknown time.
                pending.append(session.awaiting)
        self.sessions.clear()
        pending.sort(key=lambda query: query.line)
        self.out.extend(pending)

    def _sweep(self) -> None:
        oldest = self._count - WINDOW
        for key, session in list(self.sessions.items()):
            if session.seen < oldest:
                self._release(session)
                session.failure = _NO_FAILURE
                session.transaction = None
                if session.idle():
                    del self.sessions[key]

    # -- what a record means ------------------------------------------------------------

    def _log(self, session: _Session, record: LogRecord) -> None:
        message = record.message
        duration = _DURATION.match(message)
        if duration is not None:
            ms = float(duration.group(1))
            rest = duration.group(2)
            if rest is None:  # log_duration: the end of the statement logged earlier
                self._duration(session, record, ms)
                return
            statement = _STATEMENT.match(rest)
            if statement is None:
                if rest.startswith("plan:"):
                    self._plan(session, record, ms, rest[5:])
                else:
                    self.stats.skip(UNKNOWN_DURATION)
                return
            self._timed(session, record, ms, statement.group(1), statement.group(2))
            return
        if message.startswith(("disconnection:", "connection ")):
            # Connection activity (log_connections/log_disconnections), for pooling advice.
            record_connection(
                self.stats.activity,
                record.session,
                message,
                record.timestamp,
                record.user,
                record.database,
            )
            if message.startswith("connection ") and not message.startswith(
                "connection received:"
            ):
                return
            # The backend ended (or a new one took its pid): nothing more will come.
            self._release(session)
            if session.awaiting is not None:
                self.out.append(session.awaiting)
                session.awaiting = None
            session.transaction = None
            return
        statement = _STATEMENT.match(message)
        if statement is None:
            return  # a server message (connection, checkpoint, temp file...), not a query
        kind = statement.group(1)
        if kind == "parse":
            return
        self._release(session)
        if kind == "bind":
            return
        query = self._query(session, record, statement.group(2), None)
        if query is None:
            return
        if session.awaiting is not None:  # no duration came: log_duration is off
            self.out.append(session.awaiting)
        session.awaiting = query
        session.awaiting_execute = kind == "execute"
        session.detail_target = query

    def _duration(self, session: _Session, record: LogRecord, ms: float) -> None:
        query = session.awaiting
        if query is None:
            return  # a parse/bind step, or its statement predates the log
        session.awaiting = None
        query.duration_ms = ms
        if session.awaiting_execute:
            self._executed(session, record, query)
        else:
            self._complete(session, query)

    def _timed(self, session: _Session, record: LogRecord, ms: float, kind: str, sql: str) -> None:
        if kind == "parse":
            # Not a step that ends the previous execute: in a pipeline its portal, and so
            # its plan, may end after the next statement is parsed.
            return
        if kind == "bind":
            self._release(session)  # binding drops the unnamed portal: its plan is out
            return
        query = self._query(session, record, sql, ms)
        if query is None:
            self._release(session)
            return
        waiting = session.awaiting
        if waiting is not None and waiting.sql == query.sql:
            # log_statement and log_min_duration_statement both on: one execution, two
            # entries. Keep the first (its line is where the statement started).
            waiting.duration_ms = ms
            query = waiting
        elif waiting is not None:
            self.out.append(waiting)
        session.awaiting = None
        if kind == "execute":
            self._executed(session, record, query)
            session.detail_target = query
        else:
            self._complete(session, query)

    def _executed(self, session: _Session, record: LogRecord, query: CapturedQuery) -> None:
        """A complete ``execute``: its DETAIL, and maybe its plan, are still to come."""
        self._release(session)
        if self._plans_seen:
            session.held = query
        else:
            self._next, self._next_session = query, record.session
            session.read_execute = query.sql

    def _complete(self, session: _Session, query: CapturedQuery) -> None:
        """A finished simple-protocol statement, with the plan logged before it."""
        plan = self._take_plan(session, query.sql)
        self._release(session)
        if plan is not None and query.observed_plan is None:
            query.observed_plan = plan.plan
        self.out.append(query)

    def _plan(self, session: _Session, record: LogRecord, ms: float, body: str) -> None:
        self._plans_seen = True
        parsed = parse_plan_message(body)
        if parsed is None:
            self.stats.skip(UNREADABLE_PLAN)
            return
        sql = clean_sql(parsed[0])
        if not sql:
            self.stats.skip(EMPTY)
            return
        plan = parsed[1]
        for waiting in (self._next, session.held, session.awaiting):
            if waiting is not None and waiting.observed_plan is None and waiting.sql == sql:
                if waiting is self._next and self._next_session != record.session:
                    continue
                waiting.observed_plan = plan
                if waiting is session.held:
                    session.held = None
                    self.out.append(waiting)
                session.read_execute = None
                return
        if session.read_execute == sql:
            # The plan of an execute passed on before this log showed plans: it was read.
            session.read_execute = None
            self.stats.skip(PLAN_OF_READ_EXECUTE)
            return
        if len(session.plans) >= _MAX_PLANS:
            self.out.append(self._plan_query(session.plans.pop(0)))
        session.plans.append(_Plan(sql, plan, ms, record))

    def _take_plan(self, session: _Session, sql: str) -> _Plan | None:
        """The pending plan of ``sql``; others of the same text go with it.

        A simple query string of several statements logs one entry but a plan per
        statement, all with the whole string as their text: they are one execution.
        """
        plans = session.plans
        if not plans:
            return None
        matching = [plan for plan in plans if plan.sql == sql]
        if not matching:
            return None
        session.plans = [plan for plan in plans if plan.sql != sql]
        return matching[0]

    def _release(self, session: _Session) -> None:
        """The backend moved on: its held execute and unmatched plans are complete."""
        session.read_execute = None
        if session.held is not None:
            self.out.append(session.held)
            session.held = None
        if session.plans:
            # Plans whose statement was never logged (below log_min_duration_statement,
            # or nested statements): each is an execution of its own.
            self.out.extend(self._plan_query(plan) for plan in session.plans)
            session.plans = []

    def _plan_query(self, plan: _Plan) -> CapturedQuery:
        record = plan.record
        query = self._new_query(record, plan.sql, plan.ms, self.sessions.get(record.session))
        query.observed_plan = plan.plan
        return query

    def _fail(self, session: _Session) -> None:
        self._release(session)  # an execute that was held had completed
        if session.awaiting is not None:
            session.awaiting = None
            self.stats.skip(FAILED)
            session.failure = _COUNTED
        else:
            session.failure = _UNCOUNTED

    def _statement_echo(self, session: _Session) -> None:
        """``STATEMENT:`` repeats the statement a message was about."""
        if session.failure == _UNCOUNTED:
            self.stats.skip(FAILED)
        session.failure = _NO_FAILURE

    def _detail(self, session: _Session, message: str) -> None:
        """Give ``DETAIL: parameters: $1 = '...'`` to the execution it belongs to.

        PostgreSQL 17 writes ``Parameters:``, earlier versions ``parameters:``.

        Only the DETAIL of the record that started the query counts: a ``bind`` step has
        the same DETAIL, and an error's CONTEXT may list parameters too.
        """
        target = session.detail_target
        session.detail_target = None
        if target is None or target.parameters or message[:12] not in _PARAMETERS_DETAIL:
            return
        values, truncated = read_parameters(message[12:])
        target.parameters = values
        if truncated:
            target.replayable = False

    # -- queries ------------------------------------------------------------------------

    def _query(
        self, session: _Session, record: LogRecord, sql: str, ms: float | None
    ) -> CapturedQuery | None:
        text = clean_sql(sql)
        if not text:
            self.stats.skip(EMPTY)
            return None
        return self._new_query(record, text, ms, session)

    def _new_query(
        self, record: LogRecord, sql: str, ms: float | None, session: _Session | None
    ) -> CapturedQuery:
        return self._make_query(
            record.line,
            record.session,
            record.timestamp,
            record.user,
            record.database,
            record.application,
            record.transaction,
            sql,
            ms,
            session,
        )

    def _make_query(
        self,
        line: int,
        key: str,
        timestamp: str | None,
        user: str | None,
        database: str | None,
        application: str | None,
        transaction: str | None,
        sql: str,
        ms: float | None,
        session: _Session | None,
    ) -> CapturedQuery:
        """The query of a record's fields (both paths); follows the session's transaction."""
        if transaction is not None:
            transaction = f"{key}:{transaction}"
        if session is not None:
            if session.transaction is not None:
                transaction = session.transaction
                if sql[:2] in _TRANSACTION_END_HEADS and _TRANSACTION_END.match(sql):
                    session.transaction = None
            elif sql[:2] in _TRANSACTION_START_HEADS and _TRANSACTION_START.match(sql):
                self._transactions += 1
                transaction = session.transaction = f"{key}:{self._transactions}"
        # Positional: a third of the cost of keywords (tests/test_reader_fast_path.py
        # checks the order of CapturedQuery's fields).
        return CapturedQuery(
            sql,
            ms,
            self.source,
            line,
            key or None,
            timestamp,
            user,
            database,
            (),  # parameters
            True,  # replayable
            1,  # calls
            transaction,
            application,
        )


def clean_sql(sql: str) -> str:
    """The statement without surrounding whitespace and trailing semicolons."""
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def read_parameters(text: str) -> tuple[tuple[str | None, ...], bool]:
    """``$1 = 'a', $2 = NULL`` -> ``(('a', None), truncated)``.

    Values may hold commas, ``''`` quotes and newlines; they are read in sequence, so a
    ``$2 = `` inside a quoted value is never taken for the next parameter. A value cut by
    ``log_parameter_max_length`` ends with ``...`` (PostgreSQL writes it inside the quotes,
    ``'abcdef...'``; after them is accepted too): ``truncated`` is then True. A value that
    really ends with ``...`` is indistinguishable and counts as truncated too, the safe
    side for a value that would be replayed. Positions follow the ``$n`` numbers.
    """
    # The parameters run from the start to where the first that cannot be read would
    # start: findall then reads exactly those, one after another, in one call.
    run = _PARAMETERS.match(text)
    if run is None or not run.end():
        return (), False
    found = _ONE_PARAMETER.findall(text, 0, run.end())
    numbers, nulls, quoted, cut = zip(*found, strict=True)
    truncated = "..." in text and (
        any(cut)
        or any(value.endswith("...") for value, null in zip(quoted, nulls, strict=True) if not null)
    )
    values: tuple[str | None, ...] = quoted
    if "''" in text:
        values = tuple(value.replace("''", "'") for value in quoted)
    if any(nulls):
        values = tuple(None if null else value for value, null in zip(values, nulls, strict=True))
    if numbers == _NUMBERS[: len(numbers)]:
        return values, truncated  # $1, $2... in order, each once: the usual case
    if any(len(number) > 5 or int(number) > _MAX_PARAMETER for number in numbers):
        # No statement has more than 65535 parameters: such a $n is no parameter, and
        # range(1, n + 1) below would run for hours.
        return (), truncated
    placed = dict(zip(map(int, numbers), values, strict=True))  # given twice: the last counts
    return tuple(placed.get(n) for n in range(1, max(placed) + 1)), truncated


def parse_parameters(text: str) -> tuple[str | None, ...]:
    """``$1 = 'a', $2 = NULL`` -> ``('a', None)``; see :func:`read_parameters`."""
    return read_parameters(text)[0]
