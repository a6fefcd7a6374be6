"""Capture: turn inputs (SQL files, pasted text, server logs) into :class:`CapturedQuery`.

Each input format is a reader plus a ``sniff`` test on the first lines of a file;
:func:`read_input` asks them in turn and falls back to plain SQL, so a new format (csvlog,
jsonlog, driver echo logs, pg_stat_statements...) is one more entry in ``FORMATS``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from explainer.capture import app_jsonl, csvlog, jsonlog, pgss, sqlalchemy_log, syslog
from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.pglog import PgLogReader, read_lines, read_pg_log
from explainer.capture.pglog import sniff as sniff_pg_log
from explainer.capture.sqltext import split_statements, split_statements_with_stats
from explainer.capture.stderr import stderr_parser
from explainer.errors import InputError

__all__ = [
    "FORMATS",
    "CaptureStats",
    "CapturedQuery",
    "InputFormat",
    "PgLogReader",
    "capturing",
    "install",
    "open_input",
    "read_input",
    "read_pg_log",
    "read_sql_text",
    "request",
    "request_id",
    "split_statements",
]

# The in-app capture (explainer.capture.hook) is imported on first use: see __getattr__.
if TYPE_CHECKING:
    from explainer.capture.hook import capturing, install, request, request_id

_HOOK_NAMES = frozenset({"capturing", "install", "request", "request_id"})


def __getattr__(name: str) -> object:
    """The in-app capture's entry points, imported when first asked for: reading logs
    never needs them, and an application that installs the hook imports only it."""
    if name in _HOOK_NAMES:
        from explainer.capture import hook

        return getattr(hook, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

Reader = Callable[[str], tuple[list[CapturedQuery], CaptureStats]]
StreamReader = Callable[
    [Iterable[str], str, str | None], tuple[Iterable[CapturedQuery], CaptureStats]
]
"""``(lines, source, log_prefix)``: reads lines already open (stdin, or a file whose
first lines were read to sniff it), so an input is opened once. The queries may come
lazily (server logs): the stats are complete once they have been iterated."""

SNIFF_LINES = 20

# How a log record starts: a timestamp (bare or quoted, as in csvlog), a JSON object
# (jsonlog), a syslog date. No SQL statement starts so.
_LOG_RECORD = re.compile(
    r'"?\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\{"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d '
)


@dataclass(frozen=True, slots=True)
class InputFormat:
    """A kind of input :func:`read_input` recognises by its first lines."""

    name: str
    sniff: Callable[[Sequence[str]], bool]
    read: Reader
    aliases: tuple[str, ...] = ()
    """Names ``read_input(log_format=...)`` (the CLI's ``--log-format``) accepts for it."""
    read_stream: StreamReader | None = None
    """Reads open lines; without it the file is reopened by path (and stdin is refused)."""
    extensions: tuple[str, ...] = ()
    """File name endings that choose it when no format's ``sniff`` recognised the file."""


def _server_log(
    name: str,
    log_format: str,
    sniff: Callable[[Sequence[str]], bool],
    aliases: tuple[str, ...],
    extensions: tuple[str, ...] = (),
) -> InputFormat:
    """A PostgreSQL server-log format: all are read by :class:`PgLogReader`."""

    def read(path: str) -> tuple[list[CapturedQuery], CaptureStats]:
        reader = PgLogReader(path, log_format=log_format)
        return list(reader), reader.stats

    def read_stream(
        lines: Iterable[str], source: str, log_prefix: str | None
    ) -> tuple[Iterable[CapturedQuery], CaptureStats]:
        # Lazy: the queries come out as the caller iterates; the reader makes its stats
        # when iteration starts, so they are copied into the ones returned at the end.
        reader = PgLogReader(lines, source, log_prefix=log_prefix, log_format=log_format)
        stats = CaptureStats()

        def queries() -> Iterator[CapturedQuery]:
            yield from reader
            stats.merge(reader.stats)

        return queries(), stats

    return InputFormat(name, sniff, read, aliases, read_stream, extensions)


_STDERR = _server_log("PostgreSQL stderr log", "stderr", sniff_pg_log, ("stderr",))

FORMATS: tuple[InputFormat, ...] = (
    # First: its records are JSON objects, which the jsonlog sniff must not be asked about.
    InputFormat(
        app_jsonl.FORMAT_NAME,
        app_jsonl.sniff,
        app_jsonl.read_app_capture_file,
        aliases=app_jsonl.ALIASES,
        read_stream=app_jsonl.read_app_capture_stream,
        extensions=app_jsonl.EXTENSIONS,
    ),
    _server_log("PostgreSQL csvlog", "csvlog", csvlog.sniff, ("csvlog", "csv"), (".csv",)),
    _server_log(
        "PostgreSQL jsonlog", "jsonlog", jsonlog.sniff, ("jsonlog", "json", "cloudsql", "cnpg")
    ),
    _server_log(
        "Heroku Postgres log (logplex)", "logplex", syslog.sniff_logplex, ("logplex", "heroku")
    ),
    _server_log("PostgreSQL syslog", "syslog", syslog.sniff_syslog, ("syslog",)),
    _STDERR,
    InputFormat(
        "pg_stat_statements CSV export",
        pgss.sniff,
        pgss.read_pgss_file,
        aliases=("pg_stat_statements", "pgss"),
        read_stream=pgss.read_pgss_stream,
    ),
    InputFormat(
        sqlalchemy_log.FORMAT_NAME,
        sqlalchemy_log.sniff,
        sqlalchemy_log.read_sqlalchemy_file,
        aliases=("sqlalchemy",),
        read_stream=sqlalchemy_log.read_sqlalchemy_stream,
    ),
)


@contextmanager
def open_input(
    path: str, log_format: str | None = None, log_prefix: str | None = None
) -> Iterator[tuple[Iterable[CapturedQuery], CaptureStats]]:
    """Open the input at ``path`` and stream its queries, whatever its format.

    ``path`` may be ``-`` for stdin, and gzip, bz2 or xz compressed. The format is
    detected from the first lines unless ``log_format`` names it (a name or alias of a
    :data:`FORMATS` entry, or ``sql``). ``log_prefix`` is the server's
    ``log_line_prefix``, for stderr and syslog logs written with an unusual one.
    Server logs are read lazily while the caller iterates inside the ``with``, so a log
    of any size is never held in memory; the stats are complete after the iteration.
    """
    source = "<stdin>" if path == "-" else path
    chosen = _format_named(log_format) if log_format is not None else _AUTO
    with closing(read_lines(path)) as lines:
        head = list(itertools.islice(lines, SNIFF_LINES))
        if chosen is _AUTO:
            chosen = _detect(source, path, head, log_prefix)
        if chosen is None:
            yield read_sql_text("".join(itertools.chain(head, lines)), source=source)
            return
        if chosen.read_stream is not None:
            yield chosen.read_stream(itertools.chain(head, lines), source, log_prefix)
            return
    if path == "-":
        raise InputError(f"cannot read {chosen.name} from stdin: pass the file instead")
    yield chosen.read(path)


def read_input(
    path: str, log_format: str | None = None, log_prefix: str | None = None
) -> tuple[list[CapturedQuery], CaptureStats]:
    """All the queries of an input as a list (see :func:`open_input`, which streams)."""
    with open_input(path, log_format, log_prefix) as (queries, stats):
        return list(queries), stats


_AUTO = InputFormat("detect", lambda head: False, lambda path: ([], CaptureStats()))

# The first lines of a MySQL or MariaDB slow query log.
_MYSQL = re.compile(r"# Time: |# User@Host: |\S*mysqld(?:\.exe)?, Version: |Tcp port: \d+ ")


def _format_named(name: str) -> InputFormat | None:
    """The format ``log_format`` names; None for SQL. An unknown name is an InputError."""
    wanted = name.strip().lower()
    if wanted == "sql":
        return None
    for input_format in FORMATS:
        if wanted == input_format.name.lower() or wanted in input_format.aliases:
            return input_format
    names = sorted({"sql", *(alias for f in FORMATS for alias in f.aliases)})
    raise InputError(f"unknown log format {name!r} (choose from: {', '.join(names)})")


def _detect(
    source: str, path: str, head: Sequence[str], log_prefix: str | None
) -> InputFormat | None:
    """The format of an input from its first lines (None: SQL); refuses what it cannot read."""
    for input_format in FORMATS:
        if input_format.sniff(head):
            return input_format
    if log_prefix is not None:
        stderr_parser(head, log_prefix, source)  # raises when the prefix reads no line
        return _STDERR
    if any(_MYSQL.match(line) for line in head):
        raise InputError(
            f"cannot read {source}: a MySQL/MariaDB slow query log "
            "(explainer reads PostgreSQL logs and SQL)"
        )
    name = re.sub(r"\.(?:gz|bz2|xz|lzma)$", "", path.lower())
    for input_format in FORMATS:
        if input_format.extensions and name.endswith(input_format.extensions):
            return input_format
    if _looks_like_a_log(head):
        # Read as SQL, a log would come out as a few huge nonsense "statements".
        raise InputError(
            f"cannot read {source}: a log format explainer does not read yet "
            "(it reads PostgreSQL stderr, syslog, csvlog and jsonlog logs, "
            "pg_stat_statements exports, SQLAlchemy engine logs, explainer's in-app "
            "capture and SQL)"
        )
    return None


def _looks_like_a_log(head: Sequence[str]) -> bool:
    first = next((line for line in head if line.strip()), "")
    return _LOG_RECORD.match(first) is not None


def read_sql_text(text: str, source: str = "<input>") -> tuple[list[CapturedQuery], CaptureStats]:
    """Split SQL text (a file's content, a paste, stdin) into statements."""
    return split_statements_with_stats(text, source)
