"""Read queries from PostgreSQL's stderr log (``log_destination = 'stderr'``).

Supported ``log_line_prefix`` shapes: Debian's default ``%m [%p] %q%u@%d `` and the
pgbadger-style ``%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h `` (either timestamp,
``[%p]`` or ``[%p-%l]``, an optional ``[%l-1]``, then anything up to the severity, with
user/database as ``u@d`` or ``user=,db=`` when present). Both may appear in one file, as
after a prefix change and reload.

Statements come from two independent settings, and a log may hold either or both:

- ``log_min_duration_statement``: one entry, ``duration: X ms  statement: SQL`` (or
  ``execute <name>: SQL`` for the extended protocol, preceded by ``parse`` and ``bind``
  entries, which are steps of the same execution and are not counted);
- ``log_statement = all`` (+ ``log_duration``): ``statement: SQL`` when it starts, and a
  bare ``duration: X ms`` from the same backend when it ends. Parse and bind steps log
  bare durations too, before their ``execute``; with no statement waiting they are
  dropped.

Entries of concurrent backends interleave, so the pairing state is kept per pid, and only
while a statement waits for its duration: memory grows with the number of backends busy
at one point of the log, never with the file. A query is emitted once complete (and
after its ``DETAIL: parameters``, always the very next entry), so queries come out in
the order they completed.

A statement whose backend then logs an ERROR (or FATAL/PANIC) did not complete: it is not
a query but is counted in the stats, as is the ``STATEMENT:`` echo of a failed statement
that was never logged itself. Other messages (connections, checkpoints, ``HINT``...) are
not queries and pass silently; lines that fit no entry shape are counted, never fatal.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Literal

from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.errors import InputError

UNRECOGNISED = "unrecognised line"
ORPHAN_CONTINUATION = "continuation line without a log entry"
FAILED = "statement failed (ERROR)"
EMPTY = "empty statement"
AUTO_EXPLAIN = "auto_explain plan (not read yet)"
UNKNOWN_DURATION = "unrecognised duration message"

_SEVERITIES = (
    "LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?"
    "|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION"
)
_HEADER = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?: [^\s\[]+)?)"
    r" \[(?P<pid>\d+)(?:-\d+)?\]:?"
    r"(?: \[\d+-\d+\])?"
    r" (?P<pre>.*?)"
    rf"(?<!\S)(?P<sev>{_SEVERITIES}):(?: +|$)"
    r"(?P<msg>.*)"
)
_USER_DB_KEYS = re.compile(r"user=(?P<user>[^,\s]*),db=(?P<db>[^,\s]*)")
_USER_AT_DB = re.compile(r"(?P<user>[^\s@]*)@(?P<db>\S*)")
_DURATION = re.compile(r"duration: (?P<ms>\d+(?:\.\d+)?) ms(?: +(?P<rest>.*))?\Z", re.DOTALL)
_STATEMENT = re.compile(
    r"(?P<kind>statement|execute|parse|bind)(?: fetch from)?(?: [^:\n]*)?: ?(?P<sql>.*)\Z",
    re.DOTALL,
)
_PARAMETER = re.compile(r"\$(?P<n>\d+) = (?:NULL|'(?P<value>(?:[^']|'')*)')")

_FAILURES = frozenset({"ERROR", "FATAL", "PANIC"})
# Messages that accompany the entry before them (an ERROR's HINT, CONTEXT...): they
# neither settle a failure nor start anything.
_ATTACHED = frozenset({"DETAIL", "HINT", "CONTEXT", "QUERY", "LOCATION"})

SNIFF_LINES = 20


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open a text input, ``.gz`` transparently; an unusable path is an :class:`InputError`.

    Bad bytes become U+FFFD instead of failing: one mangled line must not cost the rest of
    a log. Only ``\\n`` ends a line, so a stray ``\\r`` inside a logged string stays put.
    """
    name = os.fspath(path)
    try:
        if name.lower().endswith(".gz"):
            return gzip.open(name, "rt", encoding="utf-8", errors="replace", newline="\n")
        return open(name, encoding="utf-8", errors="replace", newline="\n")
    except OSError as exc:
        raise InputError(f"cannot read {name}: {_os_reason(exc)}") from exc


def read_lines(path: str | os.PathLike[str]) -> Generator[str, None, None]:
    """The lines of ``path``, read lazily; read errors (a truncated .gz) become InputError."""
    name = os.fspath(path)
    with open_text(name) as stream:
        try:
            yield from stream
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"cannot read {name}: {_os_reason(exc)}") from exc


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return "not a valid gzip file"
    if isinstance(exc, EOFError):
        return "compressed file ends early"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def sniff(head: Sequence[str]) -> bool:
    """Whether the first lines of an input look like a stderr log with a known prefix."""
    lines = [line.rstrip("\r\n") for line in head if line.strip()][:SNIFF_LINES]
    return any(_HEADER.match(line) for line in lines)


def read_pg_log(
    path_or_lines: str | os.PathLike[str] | Iterable[str], source: str | None = None
) -> Iterator[CapturedQuery]:
    """Stream the queries of a log; use :class:`PgLogReader` to get the stats as well."""
    return iter(PgLogReader(path_or_lines, source))


@dataclass(slots=True)
class _Entry:
    """One log message: a prefixed line plus its tab-indented continuation lines."""

    line: int
    timestamp: str
    pid: str
    user: str | None
    database: str | None
    severity: str
    message: str


@dataclass(slots=True)
class _Session:
    """What one backend has in flight between log entries."""

    awaiting: CapturedQuery | None = None
    """Logged when it started (log_statement); waits for its ``duration:``."""
    failure: Literal["none", "counted", "uncounted"] = "none"
    """After an ERROR: whether the failed statement was already counted as skipped."""

    def idle(self) -> bool:
        return self.awaiting is None and self.failure == "none"


@dataclass
class PgLogReader:
    """Iterate over the queries of a stderr log; ``stats`` is complete after iteration.

    ``path_or_lines`` is a path (``.gz`` read transparently) or an iterable of lines,
    with or without their newlines. ``source`` names the input in the records; it
    defaults to the path, or ``<input>`` for lines.
    """

    path_or_lines: str | os.PathLike[str] | Iterable[str]
    source: str | None = None
    stats: CaptureStats = field(default_factory=CaptureStats)
    _sessions: dict[str, _Session] = field(default_factory=dict, repr=False)
    # A complete query is held for one more entry: its ``DETAIL: parameters`` may follow.
    # PostgreSQL writes a message's DETAIL in the same write as the message, so it is
    # always the very next entry, and one held query is enough whatever the concurrency.
    _held: CapturedQuery | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.source is None:
            if isinstance(self.path_or_lines, str | os.PathLike):
                self.source = os.fspath(self.path_or_lines)
            else:
                self.source = "<input>"

    def __iter__(self) -> Iterator[CapturedQuery]:
        self.stats, self._sessions, self._held = CaptureStats(), {}, None
        for query in self._queries():
            self.stats.queries += 1
            yield query

    def _queries(self) -> Iterator[CapturedQuery]:
        if isinstance(self.path_or_lines, str | os.PathLike):
            lines: Iterable[str] = read_lines(self.path_or_lines)
        else:
            lines = self.path_or_lines
        for entry in self._entries(lines):
            yield from self._handle(entry)
        yield from self._release()
        for session in self._sessions.values():
            # The log ended before its duration: the statement ran, for an unknown time.
            if session.awaiting is not None:
                yield session.awaiting
        self._sessions.clear()

    # -- lines -> entries -------------------------------------------------------------

    def _entries(self, lines: Iterable[str]) -> Iterator[_Entry]:
        current: _Entry | None = None
        continuation: list[str] = []
        for number, raw in enumerate(lines, 1):
            self.stats.lines_read += 1
            line = raw.rstrip("\n").removesuffix("\r")
            if not line or line[0] in " \t":
                # Continuation lines start with a tab; spaces and empty lines are what is
                # left of one after an editor or copy-paste expanded or trimmed it.
                if current is not None:
                    continuation.append(line.removeprefix("\t"))
                elif line:
                    self.stats.skip(ORPHAN_CONTINUATION)
                continue
            entry = _parse_header(line, number)
            if current is not None:
                yield _with_continuation(current, continuation)
                current, continuation = None, []
            if entry is None:
                self.stats.skip(UNRECOGNISED)
            current = entry
        if current is not None:
            yield _with_continuation(current, continuation)

    # -- entries -> queries -----------------------------------------------------------

    def _release(self) -> Iterator[CapturedQuery]:
        if self._held is not None:
            yield self._held
            self._held = None

    def _handle(self, entry: _Entry) -> Iterator[CapturedQuery]:
        severity = entry.severity
        held = self._held
        if held is not None and (severity != "DETAIL" or held.session != entry.pid):
            yield from self._release()
        session = self._sessions.setdefault(entry.pid, _Session())
        if severity == "DETAIL":
            _attach_parameters(self._held or session.awaiting, entry.message)
        elif severity in _ATTACHED:
            pass
        elif severity in _FAILURES:
            self._fail(session)
        elif severity == "STATEMENT":
            if session.failure == "uncounted":
                self.stats.skip(FAILED)
            session.failure = "none"
        else:
            session.failure = "none"
            if severity == "LOG":
                yield from self._log(session, entry)
        if session.idle():
            del self._sessions[entry.pid]

    def _fail(self, session: _Session) -> None:
        if session.awaiting is not None:
            session.awaiting = None
            self.stats.skip(FAILED)
            session.failure = "counted"
        else:
            session.failure = "uncounted"

    def _log(self, session: _Session, entry: _Entry) -> Iterator[CapturedQuery]:
        duration = _DURATION.match(entry.message)
        if duration is not None:
            yield from self._timed(session, entry, float(duration["ms"]), duration["rest"])
            return
        if entry.message.startswith("disconnection:") and session.awaiting is not None:
            yield session.awaiting  # the session ended: no duration will come
            session.awaiting = None
            return
        statement = _STATEMENT.match(entry.message)
        if statement is None or statement["kind"] in ("parse", "bind"):
            return  # a server message (connection, checkpoint...), not a query
        query = self._query(entry, statement["sql"], None)
        if query is not None:
            if session.awaiting is not None:  # no duration came: log_duration is off
                yield session.awaiting
            session.awaiting = query

    def _timed(
        self, session: _Session, entry: _Entry, ms: float, rest: str | None
    ) -> Iterator[CapturedQuery]:
        if rest is None:  # log_duration: the end of the statement logged earlier
            if session.awaiting is not None:
                session.awaiting.duration_ms = ms
                yield session.awaiting
                session.awaiting = None
            return  # otherwise a parse/bind step, or its statement predates the log
        statement = _STATEMENT.match(rest)
        if statement is None:
            self.stats.skip(AUTO_EXPLAIN if rest.startswith("plan:") else UNKNOWN_DURATION)
            return
        if statement["kind"] in ("parse", "bind"):
            return
        query = self._query(entry, statement["sql"], ms)
        if query is None:
            return
        waiting = session.awaiting
        if waiting is not None and waiting.sql == query.sql:
            # log_statement and log_min_duration_statement both on: one execution, two
            # entries. Keep the first (its line is where the statement started).
            waiting.duration_ms = ms
            query = waiting
        elif waiting is not None:
            yield waiting
        session.awaiting = None
        self._held = query

    def _query(self, entry: _Entry, sql: str, ms: float | None) -> CapturedQuery | None:
        text = _clean_sql(sql)
        if not text:
            self.stats.skip(EMPTY)
            return None
        return CapturedQuery(
            sql=text,
            duration_ms=ms,
            source=self.source or "<input>",
            line=entry.line,
            session=entry.pid,
            timestamp=entry.timestamp,
            user=entry.user,
            database=entry.database,
        )


def _parse_header(line: str, number: int) -> _Entry | None:
    match = _HEADER.match(line)
    if match is None:
        return None
    user, database = _user_and_database(match["pre"])
    return _Entry(
        line=number,
        timestamp=match["ts"],
        pid=match["pid"],
        user=user,
        database=database,
        severity=match["sev"],
        message=match["msg"],
    )


def _user_and_database(prefix_rest: str) -> tuple[str | None, str | None]:
    """User and database from the part of the prefix after the pid, when it has them."""
    match = _USER_DB_KEYS.search(prefix_rest) or _USER_AT_DB.search(prefix_rest)
    if match is None:
        return None, None
    return match["user"] or None, match["db"] or None


def _with_continuation(entry: _Entry, continuation: list[str]) -> _Entry:
    if continuation:
        entry.message = "\n".join([entry.message, *continuation])
    return entry


def _clean_sql(sql: str) -> str:
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _attach_parameters(target: CapturedQuery | None, message: str) -> None:
    """Give ``DETAIL: parameters: $1 = '...'`` to the execution it belongs to."""
    if not message.startswith("parameters: "):
        return
    if target is not None and not target.parameters:
        target.parameters = parse_parameters(message.removeprefix("parameters: "))


def parse_parameters(text: str) -> tuple[str | None, ...]:
    """``$1 = 'a', $2 = NULL`` -> ``('a', None)``; positions follow the ``$n`` numbers."""
    values: dict[int, str | None] = {}
    for match in _PARAMETER.finditer(text):
        value = match["value"]
        values[int(match["n"])] = None if value is None else value.replace("''", "'")
    if not values:
        return ()
    return tuple(values.get(n) for n in range(1, max(values) + 1))
