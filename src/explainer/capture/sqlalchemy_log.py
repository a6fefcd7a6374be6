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
"""

from __future__ import annotations

import ast
import datetime
import decimal
import ipaddress
import itertools
import json
import math
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.pglog import read_lines

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

# -- placeholders ---------------------------------------------------------------------

_PERCENT = re.compile(r"%%|%\((?P<name>[^()]*)\)[sbt]|%[sbt]")
# PostgreSQL numbers parameters $1 to $65535 (a Bind message's count is 16 bits): a
# bigger number is no parameter, and no count of values can exceed it.
_MAX_PARAMETERS = 65535
_DOLLAR = re.compile(r"(?<![\w$])\$([1-9]\d{0,4})\b")

# -- truncation markers ---------------------------------------------------------------

_STATEMENT_CUT = re.compile(r" \.\.\. (\d{1,9}) characters truncated \.\.\. ")
_CUT_LEFT, _CUT_RIGHT = 250, 100  # sqlalchemy.sql.util._long_statement
# A batch has at most 65535 parameters of a few dozen characters each: a logged length
# beyond this is not a statement to rebuild (and would cost memory to try).
_MAX_RESTORED = 4_000_000
_VALUE_CUT = re.compile(r" \.\.\. \((\d{1,9}) characters truncated\) \.\.\. ")
_VALUE_HALF = 150  # sqlalchemy.sql.util._repr_base.trunc: max_chars (300) // 2
_PARAMS_CUT = re.compile(r" \.\.\. (\d{1,9}) parameters truncated \.\.\. ")
_SETS_CUT = re.compile(
    r"\s*\.\.\. displaying (\d{1,9}) of (\d{1,9}) total bound parameter sets \.\.\.\s*"
)
_VALUES_ROW = re.compile(r"\bVALUES\s*\(", re.IGNORECASE)
_NAMED_ROW_PARAM = re.compile(r"(%\([^()]*?__)0(\)[sbt])")

# Python reprs, token by token: quoted strings whole, brackets and separators alone.
_REPR_TOKEN = re.compile(
    r"""[bBrRuU]{0,2}'(?:[^'\\]|\\.)*'|[bBrRuU]{0,2}"(?:[^"\\]|\\.)*"|[()\[\]{},:]"""
    r"""|[^'"()\[\]{},:]+|['"]""",
    re.DOTALL,
)


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


# -- parameter reprs ------------------------------------------------------------------


class _Unreadable(Exception):
    """A repr (or part of one) this module does not read."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """A value the log does not show whole, or shows in a repr this module cannot read."""

    text: str


@dataclass(frozen=True, slots=True)
class _Missing:
    """Values SQLAlchemy left out of a long parameter set (``... N parameters truncated``)."""

    count: int


@dataclass(frozen=True, slots=True)
class _HiddenSets:
    """``executemany()`` sets SQLAlchemy left out of the display."""

    count: int


@dataclass(slots=True)
class LoggedSeq:
    """A logged tuple or list: a positional parameter set, several sets, or an array value."""

    items: list[object]
    bracket: str
    raw: str


@dataclass(slots=True)
class LoggedDict:
    """A logged dict: a named parameter set (or a dict value, which is not replayable)."""

    items: dict[str, object]
    raw: str
    missing: int = 0


ParameterSet = LoggedSeq | LoggedDict


@dataclass(frozen=True, slots=True)
class Placeholders:
    """A statement in ``$n`` form and what each ``$n`` is bound to."""

    sql: str
    slots: tuple[str | int, ...]
    """For ``$1``, ``$2``...: a name in a dict set, or an index in a positional set."""


_MISSING_VALUE = _Missing(1)
_MAX_DEPTH = 32  # sets in a list, values in a set, arrays of arrays: a few levels


def parse_parameters(text: str) -> ParameterSet | None:
    """Read a logged parameters repr; None when its structure cannot be read.

    Truncation markers are first replaced by names the item parser knows (a cut value's
    repr spans exactly 150 characters each side of its marker, so it is cut out whole),
    then the structure is split on top-level commas and each value read on its own, so
    one odd value costs only itself.
    """
    try:
        marked, gaps = _mark_gaps(text.strip())
        top = _parse_value(marked, gaps, strict=True)
    except (_Unreadable, RecursionError, MemoryError):
        return None
    if isinstance(top, LoggedSeq | LoggedDict):
        return top
    return None


def _mark_gaps(text: str) -> tuple[str, dict[str, object]]:
    """Replace SQLAlchemy's truncation markers by names standing for what they hide.

    The markers break the repr's syntax (a cut value may end mid-escape or mid-string),
    so they go before the structure is split; each name maps to what the item parser
    returns in its place.
    """
    gaps: dict[str, object] = {}
    cuts = list(_VALUE_CUT.finditer(text))
    for index, match in reversed(list(enumerate(cuts))):
        start, end = match.start() - _VALUE_HALF, match.end() + _VALUE_HALF
        if start < 0 or end > len(text):
            raise _Unreadable
        before, after = text[:start], text[end:]
        if not before.endswith(("(", "[", "{", ", ", ": ")) or after[:1] not in ("", *",)]}"):
            raise _Unreadable
        name = f"__explainer_cut_{index}__"
        gaps[name] = Unknown(text[start:end])
        text = before + name + after
    sets = _SETS_CUT.search(text)
    if sets is not None:
        gaps["__explainer_sets__"] = _HiddenSets(max(int(sets[2]) - int(sets[1]), 0))
        text = text[: sets.start()] + ", __explainer_sets__, " + text[sets.end() :]

    def missing(match: re.Match[str]) -> str:
        count = int(match[1])
        if count > _MAX_PARAMETERS:
            raise _Unreadable
        name = f"__explainer_missing_{len(gaps)}__"
        gaps[name] = _Missing(count)
        return f", {name}, "

    return _PARAMS_CUT.sub(missing, text), gaps


def _parse_value(
    text: str, gaps: dict[str, object], *, strict: bool = False, depth: int = 0
) -> object:
    item = text.strip()
    if item in gaps:
        return gaps[item]
    try:
        if depth > _MAX_DEPTH:
            raise _Unreadable  # each level rescans its text: keep the cost linear
        if item[:1] == "{" and item[-1:] == "}":
            return _parse_mapping(item, gaps, depth + 1)
        if (item[:1], item[-1:]) in (("(", ")"), ("[", "]")):
            return _parse_seq(item, gaps, depth + 1)
    except _Unreadable:
        if strict:
            raise
        return Unknown(item)
    if strict:
        raise _Unreadable
    return _atom(item)


def _parse_seq(text: str, gaps: dict[str, object], depth: int) -> LoggedSeq:
    items: list[object] = []
    for piece in _split_top_level(text[1:-1], ","):
        value = _parse_value(piece, gaps, depth=depth)
        if isinstance(value, _Missing):
            items.extend([_MISSING_VALUE] * value.count)
        else:
            items.append(value)
    return LoggedSeq(items, text[0], text)


def _parse_mapping(text: str, gaps: dict[str, object], depth: int) -> LoggedDict:
    mapping = LoggedDict({}, text)
    for piece in _split_top_level(text[1:-1], ","):
        gap = gaps.get(piece.strip())
        if isinstance(gap, _Missing):
            mapping.missing += gap.count
            continue
        colon = _split_top_level(piece, ":", limit=1)
        if len(colon) != 2:
            raise _Unreadable
        key = _atom(colon[0].strip())
        if not isinstance(key, str):
            raise _Unreadable
        mapping.items[key] = _parse_value(colon[1], gaps, depth=depth)
    return mapping


def _split_top_level(text: str, separator: str, limit: int | None = None) -> list[str]:
    """Split at ``separator`` outside brackets and quotes; a trailing empty piece goes."""
    pieces: list[str] = []
    depth = 0
    start = 0
    for match in _REPR_TOKEN.finditer(text):
        token = match.group()
        if token in ("'", '"'):
            raise _Unreadable  # an unterminated string
        if token in ("(", "[", "{"):
            depth += 1
        elif token in (")", "]", "}"):
            depth -= 1
            if depth < 0:
                raise _Unreadable
        elif token == separator and depth == 0 and (limit is None or len(pieces) < limit):
            pieces.append(text[start : match.start()])
            start = match.end()
    if depth:
        raise _Unreadable
    last = text[start:]
    if last.strip() or (pieces and separator != ","):
        pieces.append(last)
    return [piece.strip() for piece in pieces] if separator == "," else pieces


# -- single values --------------------------------------------------------------------


class _Zone(datetime.tzinfo):
    """``zoneinfo.ZoneInfo(key=...)`` as logged: PostgreSQL reads the zone name itself, so
    no time zone database is consulted here."""

    def __init__(self, key: str) -> None:
        if not isinstance(key, str):
            raise _Unreadable
        self.key = key

    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta | None:
        return None

    def dst(self, dt: datetime.datetime | None) -> datetime.timedelta | None:
        return None

    def tzname(self, dt: datetime.datetime | None) -> str | None:
        return self.key


@dataclass(frozen=True, slots=True)
class _Json:
    """psycopg 3's ``Json(...)`` / ``Jsonb(...)`` wrappers."""

    value: object


@dataclass(frozen=True, slots=True)
class _Range:
    """A range: SQLAlchemy's ``Range(lower=, upper=, bounds=, empty=)`` and psycopg 3's."""

    lower: object = None
    upper: object = None
    bounds: str = "[)"
    empty: bool = False


def _bytearray(value: object) -> bytearray:
    if not isinstance(value, bytes):  # bytearray(10**12) would allocate, not parse
        raise _Unreadable
    return bytearray(value)


_CONSTRUCTORS: dict[str, Callable[..., object]] = {
    "datetime.datetime": datetime.datetime,
    "datetime.date": datetime.date,
    "datetime.time": datetime.time,
    "datetime.timedelta": datetime.timedelta,
    "datetime.timezone": datetime.timezone,
    "Decimal": decimal.Decimal,
    "decimal.Decimal": decimal.Decimal,
    "UUID": uuid.UUID,
    "uuid.UUID": uuid.UUID,
    "IPv4Address": ipaddress.IPv4Address,
    "IPv6Address": ipaddress.IPv6Address,
    "IPv4Network": ipaddress.IPv4Network,
    "IPv6Network": ipaddress.IPv6Network,
    "IPv4Interface": ipaddress.IPv4Interface,
    "IPv6Interface": ipaddress.IPv6Interface,
    "bytearray": _bytearray,
    "zoneinfo.ZoneInfo": _Zone,
    "ZoneInfo": _Zone,
    "Json": _Json,
    "Jsonb": _Json,
    "Range": _Range,
}
_CONSTANTS: dict[str, object] = {
    "datetime.timezone.utc": datetime.UTC,
    "inf": math.inf,
    "nan": math.nan,
}


def _atom(text: str) -> object:
    """One scalar repr as a value, or :class:`Unknown` keeping the text as logged."""
    try:
        value = _evaluate(ast.parse(text, mode="eval").body)
        pg_text(value)  # only values that convert are values
    except (
        _Unreadable,
        SyntaxError,
        ValueError,
        TypeError,
        ArithmeticError,
        RecursionError,
        MemoryError,
    ):
        return Unknown(text)
    return value


def _evaluate(node: ast.expr) -> object:
    """Literals and allow-listed constructors only: this is not ``eval``."""
    if isinstance(node, ast.Constant):
        if node.value is None or isinstance(node.value, str | bytes | int | float):
            return node.value
        raise _Unreadable
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _evaluate(node.operand)
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            raise _Unreadable
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Tuple | ast.List):
        return [_evaluate(element) for element in node.elts]
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise _Unreadable
        return {
            _evaluate(key): _evaluate(value)  # type: ignore[arg-type]
            for key, value in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.Name | ast.Attribute):
        name = _dotted(node)
        if name not in _CONSTANTS:
            raise _Unreadable
        return _CONSTANTS[name]
    if isinstance(node, ast.Call):
        constructor = _CONSTRUCTORS.get(_dotted(node.func))
        if constructor is None or any(k.arg is None for k in node.keywords):
            raise _Unreadable
        args = [_evaluate(arg) for arg in node.args]
        kwargs = {str(k.arg): _evaluate(k.value) for k in node.keywords}
        return constructor(*args, **kwargs)
    raise _Unreadable


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise _Unreadable


def pg_text(value: object) -> str | None:
    """A value as PostgreSQL input text (None is NULL); :class:`_Unreadable` if no form fits."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return "\\x" + value.hex()
    if isinstance(value, datetime.datetime):
        return _with_zone(value.replace(tzinfo=None).isoformat(sep=" "), value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return _with_zone(value.replace(tzinfo=None).isoformat(), value)
    if isinstance(value, datetime.timedelta):
        return f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(value)
    if isinstance(value, LoggedSeq):
        return _array_text(value.items)
    if isinstance(value, list | tuple):
        return _array_text(list(value))
    if isinstance(value, _Json):
        return json.dumps(_jsonable(value.value))
    if isinstance(value, _Range):
        return _range_text(value)
    raise _Unreadable  # Unknown, gaps, dicts (JSON or hstore?), anything else


def _with_zone(text: str, value: datetime.datetime | datetime.time) -> str:
    zone = value.tzinfo
    if zone is None:
        return text
    if isinstance(zone, _Zone):
        return f"{text} {zone.key}"
    offset = value.utcoffset() if isinstance(value, datetime.datetime) else zone.utcoffset(None)
    if offset is None:
        raise _Unreadable
    sign = "-" if offset < datetime.timedelta(0) else "+"
    seconds = int(abs(offset).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def _array_text(items: list[object]) -> str:
    parts: list[str] = []
    for item in items:
        if isinstance(item, LoggedSeq | list | tuple):
            parts.append(pg_text(item) or "NULL")
            continue
        text = pg_text(item)
        if text is None:
            parts.append("NULL")
        else:
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def _range_text(value: _Range) -> str:
    if value.empty:
        return "empty"
    if not isinstance(value.bounds, str) or len(value.bounds) != 2:
        raise _Unreadable

    def bound(item: object) -> str:
        text = pg_text(item)
        if text is None:
            return ""
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return f"{value.bounds[0]}{bound(value.lower)},{bound(value.upper)}{value.bounds[1]}"


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    raise _Unreadable


# -- statements -----------------------------------------------------------------------


def to_dollar_placeholders(sql: str, parameters: ParameterSet | None) -> Placeholders:
    """The statement in PostgreSQL ``$n`` form, and what each ``$n`` takes.

    psycopg2 and psycopg 3 substitute ``%(name)s``, ``%s`` and ``%%`` wherever they are,
    quotes included (SQLAlchemy doubles a literal ``%``), so the whole text is scanned.
    Which style a statement uses is read from the text and the logged values: a dict
    means named placeholders (and ``%%`` escapes even with no placeholder, as with
    ``{}``); a tuple with ``$n`` in the text means asyncpg's numeric style.
    """
    named_values = isinstance(parameters, LoggedDict) or (
        isinstance(parameters, LoggedSeq)
        and any(isinstance(i, LoggedDict) for i in parameters.items)
    )
    dollar = [n for n in map(int, _DOLLAR.findall(sql)) if n <= _MAX_PARAMETERS]
    percent = any(m.group() != "%%" for m in _PERCENT.finditer(sql))
    if named_values or (percent and not (dollar and isinstance(parameters, LoggedSeq))):
        return _from_percent(sql)
    return Placeholders(sql, tuple(range(max(dollar, default=0))))


def _from_percent(sql: str) -> Placeholders:
    parts: list[str] = []
    slots: list[str | int] = []
    numbers: dict[str, int] = {}
    positional = 0
    position = 0
    for match in _PERCENT.finditer(sql):
        parts.append(sql[position : match.start()])
        position = match.end()
        if match.group() == "%%":
            parts.append("%")
            continue
        name = match["name"]
        if name is None:
            slots.append(positional)
            positional += 1
            parts.append(f"${len(slots)}")
            continue
        number = numbers.get(name)
        if number is None:
            slots.append(name)
            number = numbers[name] = len(slots)
        parts.append(f"${number}")
    parts.append(sql[position:])
    return Placeholders("".join(parts), tuple(slots))


def parameter_sets(
    parameters: ParameterSet, placeholders: Placeholders
) -> tuple[list[ParameterSet], int]:
    """The sets of one execution each, and how many more SQLAlchemy did not display.

    A list or tuple of dicts is ``executemany()``. A sequence of sequences is too when
    it is a list (a single positional set is logged as a tuple) or when its members, not
    itself, have one value per placeholder; a tuple of arrays for a one-placeholder
    statement stays one set.
    """
    if isinstance(parameters, LoggedDict):
        return [parameters], 0
    items = parameters.items
    hidden = sum(item.count for item in items if isinstance(item, _HiddenSets))
    shown = [item for item in items if not isinstance(item, _HiddenSets)]
    sets = [item for item in shown if isinstance(item, LoggedSeq | LoggedDict)]
    if hidden or (shown and all(isinstance(item, LoggedDict) for item in shown)):
        return sets, hidden
    if shown and len(sets) == len(shown) and all(isinstance(item, LoggedSeq) for item in shown):
        count = len(placeholders.slots)
        if parameters.bracket == "[" or (
            count != len(shown) and all(len(item.items) == count for item in sets)
        ):
            return sets, 0
    return [parameters], 0


def bind(
    placeholders: Placeholders, parameters: ParameterSet
) -> tuple[tuple[str | None, ...], bool]:
    """The text of ``$1``, ``$2``... from one set, and whether all of it is as executed."""
    values: list[str | None] = []
    complete = True
    for slot in placeholders.slots:
        value: object = _MISSING_VALUE
        if isinstance(slot, str) and isinstance(parameters, LoggedDict):
            value = parameters.items.get(slot, _MISSING_VALUE)
        elif (
            isinstance(slot, int)
            and isinstance(parameters, LoggedSeq)
            and slot < len(parameters.items)
        ):
            value = parameters.items[slot]
        text, known = _value_text(value)
        values.append(text)
        complete = complete and known
    if isinstance(parameters, LoggedSeq) and len(parameters.items) != len(placeholders.slots):
        complete = False
    return tuple(values), complete


def _value_text(value: object) -> tuple[str | None, bool]:
    if isinstance(value, _Missing):
        return None, False
    try:
        return pg_text(value), True
    except (_Unreadable, RecursionError):
        if isinstance(value, Unknown):
            return value.text, False
        if isinstance(value, LoggedSeq | LoggedDict):
            return value.raw, False
        return repr(value), False


def _confirms(sql: str, parameters: ParameterSet | None) -> bool | None:
    """Whether a rebuilt statement's placeholders are exactly the logged parameters."""
    if parameters is None:
        return None
    placeholders = to_dollar_placeholders(sql, parameters)
    sets, hidden = parameter_sets(parameters, placeholders)
    if hidden or len(sets) != 1:
        return None
    values = sets[0]
    if isinstance(values, LoggedDict):
        if values.missing:
            return None
        return set(placeholders.slots) == set(values.items)
    if any(isinstance(item, _Missing) for item in values.items):
        return None
    return placeholders.slots == tuple(range(len(values.items)))


def is_cut_statement(text: str) -> bool:
    """SQLAlchemy's ``_long_statement``: 250 characters, the marker, the last 100."""
    marker = _STATEMENT_CUT.match(text, _CUT_LEFT)
    return marker is not None and len(text) - marker.end() == _CUT_RIGHT


def restore_statement(text: str, confirms: Callable[[str], bool | None]) -> str | None:
    """Rebuild an ``insertmanyvalues`` batch statement SQLAlchemy logged cut; None if unsure.

    The batch is ``<head> VALUES <row 0>, <row 1>, ... <tail>``: each row is row 0 with
    its parameter names (``%(x__0)s`` -> ``%(x__1)s``) or numbers (``$1, $2`` -> ``$3,
    $4``) advanced and, in the ordered form, its trailing counter (``, 0)``) counted up.
    Rows are added until the text reaches the logged tail; the result must then have
    exactly the logged length and begin and end as logged. ``confirms`` checks its
    placeholders against the logged values; when it cannot tell (parameters hidden),
    the generated rows must also overlap the logged tail.
    """
    marker = _STATEMENT_CUT.match(text, _CUT_LEFT)
    if marker is None or len(text) - marker.end() != _CUT_RIGHT:
        return None
    left, right = text[:_CUT_LEFT], text[marker.end() :]
    total = _CUT_LEFT + int(marker[1]) + _CUT_RIGHT
    if total > _MAX_RESTORED:
        return None
    row_start = _VALUES_ROW.search(left)
    if row_start is None:
        return None
    start = row_start.end() - 1
    end = _closing_paren(left, start)
    if end is None:
        return None
    head, row0 = left[:start], left[start:end]
    boundary = total - _CUT_RIGHT
    for row in _row_variants(row0):
        known = [head]
        length = len(head)
        for index in itertools.count():
            piece = row(index) if index == 0 else ", " + row(index)
            known.append(piece)
            length += len(piece)
            if length < boundary:
                continue
            built = "".join(known)
            overlap = built[boundary:]
            if not built.startswith(left) or not right.startswith(overlap):
                break
            candidate = built[:boundary] + right
            verdict = confirms(candidate)
            if verdict or (verdict is None and overlap):
                return candidate
            break
    return None


def _closing_paren(text: str, start: int) -> int | None:
    """The index after the ``)`` closing the ``(`` at ``start``, quotes skipped."""
    depth = 0
    quoted = False
    for index in range(start, len(text)):
        char = text[index]
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _row_variants(row0: str) -> list[Callable[[int], str]]:
    """How row ``i`` is made from row 0: with the ordered form's counter, and without."""
    if _NAMED_ROW_PARAM.search(row0):

        def base(index: int) -> str:
            return _NAMED_ROW_PARAM.sub(rf"\g<1>{index}\g<2>", row0)

    elif _DOLLAR.search(row0):
        width = len(_DOLLAR.findall(row0))

        def base(index: int) -> str:
            return _DOLLAR.sub(lambda m: f"${int(m[1]) + width * index}", row0)

    else:

        def base(index: int) -> str:
            return row0

    variants: list[Callable[[int], str]] = [base]
    if row0.endswith(", 0)"):

        def counted(index: int) -> str:
            return base(index)[: -len("0)")] + f"{index})"

        variants.insert(0, counted)
    return variants
