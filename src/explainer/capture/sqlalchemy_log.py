"""Read queries from SQLAlchemy engine logs: ``echo=True`` output, or the
``sqlalchemy.engine`` logger written through any :mod:`logging` format.

What such a log holds, and what this reader makes of it (checked against the SQLAlchemy
2.1 source, the 1.4 and 2.0 logs of the generated corpus and published 1.3 logs):

Records
    A record is ``<prefix><logger><separator><message>``. The logger is
    ``sqlalchemy.engine.Engine`` (``sqlalchemy.engine.base.Engine`` before 1.4), with
    ``.<logging_name>`` appended when the engine has one. The prefix is whatever the
    format puts first (``%(asctime)s %(levelname)s`` for ``echo=True``, ``INFO:`` for
    ``basicConfig``); a timestamp in it becomes the query's timestamp. A line that starts
    no record continues the one before it: that is how multi-line SQL is logged. A line
    that starts like a record of another logger (a timestamp or a level name first) is a
    record of its own, and is ignored with its continuation lines.

Statements and their parameters
    Each statement is one record, followed by one record with its parameters; since 1.4
    the latter starts with a badge: ``[generated in 0.0001s]``, ``[cached since 1.2s
    ago]``, ``[no key 0.0001s]``, ``[raw sql]``, ``[caching disabled ...]``,
    ``[insertmanyvalues 2/3 (ordered)]``. The times in badges are SQL compilation and
    cache ages, not execution times: echo logs hold no durations, so ``duration_ms`` is
    always None. Parameters are the ``repr`` of what the driver got: a dict (named
    styles), a tuple (positional), or a list / tuple of those for ``executemany()``.

Transactions
    ``BEGIN (implicit)``, ``COMMIT`` and ``ROLLBACK`` are SQLAlchemy's notes of what it
    asked the DBAPI to do, not SQL it sent (psycopg sends ``BEGIN`` itself, asyncpg
    ``BEGIN ISOLATION LEVEL ...``, a commit is ``connection.commit()``), so they are not
    emitted as queries: they number the transactions of a session, and each statement
    gets ``transaction = "<session>:<n>"`` (None outside one, as for the statements a
    dialect runs on first connect). A bare ``COMMIT``/``ROLLBACK`` can also be SQL run
    with ``exec_driver_sql()``: it is a statement exactly when a parameters record
    follows it.

Sessions
    SQLAlchemy logs the engine, not the connection: records carry no connection id. The
    session is the engine's logger name (``Engine``, ``Engine.app`` with
    ``logging_name``), plus the connection's ``logging_token`` when one is set (SQLAlchemy
    then starts every message of that connection with ``[token]``): ``Engine[token]``.
    Without tokens, threads sharing one engine cannot be told apart, and their
    statement/parameters pairs are assumed not to interleave.

SQL and values for replay
    The replay binds values as parameters of a ``PREPARE``, never pasting them into the
    text, so the SQL is put in PostgreSQL's ``$n`` form: psycopg2 and psycopg 3
    ``%(name)s`` / ``%s`` placeholders are numbered (a repeated name keeps its number, as
    psycopg 3 does) and ``%%`` becomes ``%``; asyncpg already logs ``$1::INTEGER``. The
    result is the text psycopg 3 and asyncpg send, so shapes match the server's log.
    Values become PostgreSQL input text: ``None`` -> NULL, ``True`` -> ``true``,
    ``datetime.datetime(2026, 1, 2, 3, 4, 5)`` -> ``2026-01-02 03:04:05``,
    ``Decimal('1.5')`` -> ``1.5``, ``UUID('...')`` -> the uuid, bytes -> ``\\x`` hex,
    sequences -> array literals. Reprs are read by a small parser of our own over
    :func:`ast.parse` of single values, which evaluates only literals and an allow-list
    of constructors (``datetime``, ``Decimal``, ``UUID``...); nothing is ever ``eval``-ed.
    A value it cannot read (an unknown class's repr, a dict, which may be JSON or hstore)
    keeps its logged text and makes the query not replayable.

executemany()
    One query per displayed parameter set, each ``calls=1`` with its own values: that is
    one server execution each for psycopg 3 (pipeline) and psycopg2 (``executemany``);
    statements batched by ``insertmanyvalues`` are logged batch by batch and are one
    execution per batch. SQLAlchemy shows at most ten sets (``... displaying 10 of 29
    total bound parameter sets ...``); the sets not shown become one more query with
    ``calls`` = their number, no values and ``replayable=False``, so call counts stay
    right. With ``hide_parameters=True`` the number of sets is not logged: one call.

Truncation
    Values whose repr exceeds 300 characters are logged cut (``... (1234 characters
    truncated) ...``) and sets of more than 100 values lose their middle (``... 50
    parameters truncated ...``): the query is kept with ``replayable=False``.
    ``insertmanyvalues`` batch statements over 500 characters are logged as their first
    250 and last 100 characters around ``... N characters truncated ...``. The batch is
    the first row's ``VALUES (...)`` repeated with its parameter names or numbers
    advanced, so the statement is rebuilt from those, and accepted only if it has the
    logged length, begins and ends as logged, and its placeholders are exactly the
    logged parameters (with parameters hidden: if the generated rows reach into the
    logged end). One that cannot be rebuilt (the first row not within the first 250
    characters, a tail longer than the last 100) is counted as skipped: its text is not
    SQL.

Not in the log, so not known
    Failures: SQLAlchemy does not log a statement's error, so a statement that failed is
    read as run. Statements a dialect runs without logging (``show transaction isolation
    level`` on connect) are missing. psycopg2's ``execute_values`` and ``execute_batch``
    (SQLAlchemy 1.4's default for INSERT ``executemany()``, and its ``values_plus_batch``
    mode) send one statement or one batch where the log shows one statement per set.

The parts
    This module reads records, statements, transactions and sessions. The parameter
    reprs are read by :mod:`explainer.capture.sqlalchemy_params`, statements are put in
    ``$n`` form and bound by :mod:`explainer.capture.sqlalchemy_placeholders`, and cut
    ``insertmanyvalues`` statements are rebuilt by
    :mod:`explainer.capture.sqlalchemy_batches`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.pglog import read_lines
from explainer.capture.sqlalchemy_batches import is_cut_statement, restore_statement
from explainer.capture.sqlalchemy_params import parse_parameters
from explainer.capture.sqlalchemy_placeholders import (
    _confirms,
    bind,
    parameter_sets,
    to_dollar_placeholders,
)

__all__ = [
    "CUT_STATEMENT",
    "EMPTY",
    "FORMAT_NAME",
    "HIDDEN",
    "ORPHAN_CONTINUATION",
    "PARAMETERS_WITHOUT_STATEMENT",
    "SNIFF_LINES",
    "STRAY_CONTINUATION",
    "UNREADABLE_PARAMETERS",
    "SqlAlchemyLogReader",
    "is_cut_statement",
    "read_sqlalchemy_file",
    "read_sqlalchemy_log",
    "read_sqlalchemy_stream",
    "sniff",
]

FORMAT_NAME = "sqlalchemy"
SNIFF_LINES = 20

ORPHAN_CONTINUATION = "continuation line without a log record"
STRAY_CONTINUATION = "continuation line after a SQLAlchemy message that is not SQL"
PARAMETERS_WITHOUT_STATEMENT = "SQLAlchemy parameters without a statement"
UNREADABLE_PARAMETERS = "SQLAlchemy parameters not readable (query kept, not replayable)"
CUT_STATEMENT = "statement cut short in SQLAlchemy's log and not restorable"
EMPTY = "empty statement"

HIDDEN = "[SQL parameters hidden due to hide_parameters=True]"

# -- records --------------------------------------------------------------------------

_ENGINE_LOGGER = re.compile(
    r"(?<![\w.])sqlalchemy\.engine(?:\.base)?\.(?P<engine>(?:Option)?Engine)"
    r"(?:\.(?P<name>[^\s:\]\)>|]+))?"
    r"[\])>]?"
    r"(?:: ?| - | \| | |\Z)"
)
# A prefix is timestamps, levels, thread names: never a quote, and never long. A line
# whose "prefix" has one is SQL that mentions the logger, not a record.
_MAX_PREFIX = 200
# How a record of another logger starts (timestamp, syslog date or level name first):
# no SQL continuation line starts so.
_RECORD_START = re.compile(
    r"[\[(]?(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\d\d:\d\d:\d\d[.,]\d"
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
    r"|(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b)"
)
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d(?::?\d\d)?)?")

# -- messages -------------------------------------------------------------------------

_BADGE = re.compile(
    r"\[(?P<badge>(?:generated in|cached since|no key|raw sql|caching disabled"
    r"|dialect \S+ does not support caching|insertmanyvalues|unknown)[^\]]*)\]"
    r"(?: (?P<rest>.*))?\Z",
    re.DOTALL,
)
_TOKEN = re.compile(r"\[(?P<token>[^\[\]{}()'\"]+)\] (?P<rest>.+)\Z", re.DOTALL)
_BEGIN = re.compile(r"BEGIN (?:TWOPHASE )?\(implicit[;)]")
_END_NOTE = re.compile(r"(?:COMMIT|ROLLBACK) (?:using DBAPI|will be skipped)")
_COMMIT_OR_ROLLBACK = frozenset({"COMMIT", "ROLLBACK"})
_NOISE = re.compile(r"(?:Col|Row) [\[(]|Compiled cache size pruning ")


def sniff(head: Sequence[str]) -> bool:
    """Whether the first lines of an input hold a ``sqlalchemy.engine`` logger record."""
    return any(_engine_match(line) is not None for line in head[:SNIFF_LINES])


def read_sqlalchemy_log(
    path_or_lines: str | os.PathLike[str] | Iterable[str], source: str | None = None
) -> Iterator[CapturedQuery]:
    """Stream the queries of a log; use :class:`SqlAlchemyLogReader` for the stats too."""
    return iter(SqlAlchemyLogReader(path_or_lines, source))


def read_sqlalchemy_file(path: str) -> tuple[list[CapturedQuery], CaptureStats]:
    """The reader :func:`explainer.capture.read_input` calls for this format."""
    reader = SqlAlchemyLogReader(path)
    return list(reader), reader.stats


def read_sqlalchemy_stream(
    lines: Iterable[str], source: str, log_prefix: str | None = None
) -> tuple[list[CapturedQuery], CaptureStats]:
    """Read lines already open (stdin, a file whose head was sniffed).

    ``log_prefix`` is PostgreSQL's ``log_line_prefix``, which says nothing about a Python
    logging format: records are found by their logger name whatever precedes it.
    """
    reader = SqlAlchemyLogReader(lines, source)
    return list(reader), reader.stats


# -- the reader -----------------------------------------------------------------------


@dataclass(slots=True)
class _Record:
    """One log record: its first line's message plus the lines that continue it."""

    line: int
    timestamp: str | None
    engine: str | None
    """``Engine`` or ``Engine.<logging_name>``; None for a record of another logger."""
    message: str
    continuation: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Statement:
    """A statement logged by an engine, waiting for its parameters record."""

    text: str
    line: int
    timestamp: str | None
    transaction: str | None


@dataclass(slots=True)
class _Session:
    """What one engine (or one logging token) has going between records."""

    name: str
    pending: _Statement | None = None
    transactions: int = 0
    transaction: str | None = None
    badged: bool = False
    """Parameters came with badges (1.4+): an unbadged message is then never parameters."""


@dataclass
class SqlAlchemyLogReader:
    """Iterate over the queries of a SQLAlchemy engine log; ``stats`` is complete after.

    ``path_or_lines`` is a path (``.gz`` read transparently) or an iterable of lines,
    with or without their newlines. ``source`` names the input in the records; it
    defaults to the path, or ``<input>`` for lines. Memory holds one waiting statement
    per session, never the file.
    """

    path_or_lines: str | os.PathLike[str] | Iterable[str]
    source: str | None = None
    stats: CaptureStats = field(default_factory=CaptureStats)
    _sessions: dict[str, _Session] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.source is None:
            if isinstance(self.path_or_lines, str | os.PathLike):
                self.source = os.fspath(self.path_or_lines)
            else:
                self.source = "<input>"

    def __iter__(self) -> Iterator[CapturedQuery]:
        self.stats, self._sessions = CaptureStats(), {}
        for query in self._queries():
            self.stats.queries += 1
            yield query

    def _queries(self) -> Iterator[CapturedQuery]:
        if isinstance(self.path_or_lines, str | os.PathLike):
            lines: Iterable[str] = read_lines(self.path_or_lines)
        else:
            lines = self.path_or_lines
        for record in self._records(lines):
            if record.engine is not None:
                yield from self._handle(record)
        for session in self._sessions.values():
            # The log ended before the parameters: the statement ran with unknown values.
            yield from self._settle(session)

    # -- lines -> records -------------------------------------------------------------

    def _records(self, lines: Iterable[str]) -> Iterator[_Record]:
        current: _Record | None = None
        for number, raw in enumerate(lines, 1):
            self.stats.lines_read += 1
            line = raw.rstrip("\n").removesuffix("\r")
            record = _parse_record(line, number)
            if record is None:
                if current is None:
                    if line.strip():
                        self.stats.skip(ORPHAN_CONTINUATION)
                elif current.engine is not None:
                    current.continuation.append(line)
                continue
            if current is not None:
                yield current
            current = record
        if current is not None:
            yield current

    # -- records -> queries -----------------------------------------------------------

    def _handle(self, record: _Record) -> Iterator[CapturedQuery]:
        token, badge, body = _split_message(record.message)
        assert record.engine is not None
        name = record.engine if token is None else f"{record.engine}[{token}]"
        session = self._sessions.get(name)
        if session is None:
            session = self._sessions[name] = _Session(name)
        if badge is not None:
            session.badged = True
            yield from self._parameters(session, record, body)
            return
        if session.pending is not None and not session.badged and _unbadged_parameters(body):
            yield from self._parameters(session, record, body)  # SQLAlchemy < 1.4
            return
        yield from self._settle(session)
        if _BEGIN.match(body):
            session.transactions += 1
            session.transaction = f"{session.name}:{session.transactions}"
        elif _END_NOTE.match(body):
            session.transaction = None
        elif not _NOISE.match(body):
            text = "\n".join([body, *record.continuation])
            session.pending = _Statement(text, record.line, record.timestamp, session.transaction)
            return
        self._stray(record)

    def _stray(self, record: _Record) -> None:
        """Count the continuation lines of a message that has none (parameters, BEGIN...)."""
        stray = sum(1 for line in record.continuation if line.strip())
        if stray:
            self.stats.skip(STRAY_CONTINUATION, stray)

    def _parameters(
        self, session: _Session, record: _Record, parameters: str
    ) -> Iterator[CapturedQuery]:
        self._stray(record)
        statement = session.pending
        if statement is None:
            self.stats.skip(PARAMETERS_WITHOUT_STATEMENT)
            return
        session.pending = None
        yield from self._emit(session, statement, parameters)

    def _settle(self, session: _Session) -> Iterator[CapturedQuery]:
        """End the wait of a statement no parameters record followed."""
        statement = session.pending
        if statement is None:
            return
        session.pending = None
        if statement.text.strip() in _COMMIT_OR_ROLLBACK:
            session.transaction = None  # SQLAlchemy's note, not SQL: it has no parameters
            return
        yield from self._emit(session, statement, None)

    def _emit(
        self, session: _Session, statement: _Statement, parameters: str | None
    ) -> Iterator[CapturedQuery]:
        known = parameters is not None and parameters.strip() != HIDDEN
        parsed = parse_parameters(parameters) if known and parameters is not None else None
        if known and parsed is None:
            self.stats.skip(UNREADABLE_PARAMETERS)
        text = statement.text
        if is_cut_statement(text):
            restored = restore_statement(text, lambda sql: _confirms(sql, parsed))
            if restored is None:
                self.stats.skip(CUT_STATEMENT)
                return
            text = restored
        placeholders = to_dollar_placeholders(text, parsed)
        sql = _clean_sql(placeholders.sql)
        if not sql:
            self.stats.skip(EMPTY)
            return

        def query(values: tuple[str | None, ...], replayable: bool, calls: int) -> CapturedQuery:
            return CapturedQuery(
                sql=sql,
                source=self.source or "<input>",
                line=statement.line,
                session=session.name,
                timestamp=statement.timestamp,
                parameters=values,
                replayable=replayable,
                calls=calls,
                transaction=statement.transaction,
            )

        if parsed is None:  # no parameters record, hidden, or not readable
            yield query((), not placeholders.slots, 1)
            return
        sets, hidden_sets = parameter_sets(parsed, placeholders)
        for parameter_set in sets:
            values, complete = bind(placeholders, parameter_set)
            yield query(values, complete, 1)
        if hidden_sets:
            yield query((), not placeholders.slots, hidden_sets)


def _engine_match(line: str) -> re.Match[str] | None:
    match = _ENGINE_LOGGER.search(line)
    if match is None:
        return None
    prefix = line[: match.start()]
    if len(prefix) > _MAX_PREFIX or "'" in prefix or '"' in prefix:
        return None
    return match


def _parse_record(line: str, number: int) -> _Record | None:
    match = _engine_match(line)
    if match is not None:
        stamp = _TIMESTAMP.search(line, 0, match.start())
        engine = match["engine"] if match["name"] is None else f"{match['engine']}.{match['name']}"
        return _Record(number, stamp.group() if stamp else None, engine, line[match.end() :])
    if _RECORD_START.match(line):
        return _Record(number, None, None, "")
    return None


def _split_message(message: str) -> tuple[str | None, str | None, str]:
    """``[token] [badge] rest`` -> (token, badge, rest); the token and badge are optional."""
    token = None
    badge = _BADGE.match(message)
    if badge is None:
        tokened = _TOKEN.match(message)
        if tokened is not None:
            token, message = tokened["token"], tokened["rest"]
            badge = _BADGE.match(message)
    if badge is not None:
        return token, badge["badge"], badge["rest"] or ""
    return token, None, message


def _unbadged_parameters(message: str) -> bool:
    """SQLAlchemy < 1.4 logs parameters bare: a repr right after the statement."""
    text = message.strip()
    if text == HIDDEN:
        return True
    return text[:1] in "{([" and parse_parameters(text) is not None


def _clean_sql(sql: str) -> str:
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text
