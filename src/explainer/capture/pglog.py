"""Read queries from PostgreSQL server logs, in any of the formats the server writes.

A reader is two stages. A *record source* turns one log format into a stream of
:class:`~explainer.capture.records.LogRecord` (pid, time, user, database, application,
severity, message, detail...):

- ``stderr``: any ``log_line_prefix`` (given, or detected from the first lines), TAB
  continuation lines (``stderr.py``, ``prefix.py``);
- ``syslog`` and Heroku ``logplex``: the same lines inside an envelope, numbered parts
  joined per backend (``syslog.py``);
- ``csvlog`` (``csvlog.py``), ``jsonlog`` and the Cloud SQL and CloudNativePG JSON
  envelopes (``jsonlog.py``).

Then one assembler (``records.py``) turns records into queries, whatever the format:
``duration ... statement``, ``log_statement`` + ``log_duration`` pairs, the extended
protocol, parameters, errors and auto_explain plans are handled once, for all of them.

Both stages stream: memory grows with the number of backends busy at one point of the
log, never with the file.
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
import os
import sys
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from explainer.capture import csvlog, jsonlog, syslog
from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.prefix import DETECT_LINES
from explainer.capture.records import (
    EMPTY,
    FAILED,
    PLAN_ENTRY,
    UNKNOWN_DURATION,
    LogRecord,
    StatementAssembler,
    parse_parameters,
    read_parameters,
)
from explainer.capture.stderr import (
    ORPHAN_CONTINUATION,
    UNRECOGNISED,
    sniff,
    stderr_parser,
    stderr_queries,
    stderr_records,
)
from explainer.errors import InputError

__all__ = [
    "EMPTY",
    "FAILED",
    "LOG_FORMATS",
    "ORPHAN_CONTINUATION",
    "UNKNOWN_DURATION",
    "UNRECOGNISED",
    "PgLogReader",
    "detect_log_format",
    "log_format_name",
    "log_records",
    "open_text",
    "parse_parameters",
    "read_lines",
    "read_parameters",
    "read_pg_log",
    "sniff",
]

STDIN = "-"

LOG_FORMATS: dict[str, str] = {
    "stderr": "stderr",
    "syslog": "syslog",
    "logplex": "logplex",
    "heroku": "logplex",
    "csvlog": "csvlog",
    "csv": "csvlog",
    "jsonlog": "jsonlog",
    "json": "jsonlog",
    "cloudsql": "jsonlog",
    "cnpg": "jsonlog",
}
"""Names a log format may be given by (``log_format=``, ``--log-format``) -> format."""

_COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".lzma": "xz"}
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_DECOMPRESSORS: dict[str, Callable[[Any], gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile]] = {
    "gzip": lambda file: (
        gzip.GzipFile(file, "rb")
        if isinstance(file, str)
        else gzip.GzipFile(fileobj=file, mode="rb")
    ),
    "bz2": bz2.BZ2File,
    "xz": lzma.LZMAFile,
}


# -- input -------------------------------------------------------------------------------


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open a text input: a file, ``-`` for stdin, gzip/bz2/xz transparently.

    Compression is known by the extension, else by the first bytes (so ``zcat``-less
    pipes and renamed files work). Bad bytes become U+FFFD instead of failing: one
    mangled line must not cost the rest of a log. Only ``\\n`` ends a line, so a stray
    ``\\r`` inside a logged string stays put. An unusable path is an :class:`InputError`.
    """
    name = os.fspath(path)
    try:
        stream: IO[bytes] | gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile
        if name == STDIN:
            # The decompressors leave a stream they are given open; read_lines detaches
            # the text wrapper from plain stdin instead of closing it.
            stdin = sys.stdin.buffer
            kind = _magic(stdin.peek(6)[:6] if hasattr(stdin, "peek") else b"")
            stream = stdin if kind is None else _DECOMPRESSORS[kind](stdin)
        else:
            kind = _COMPRESSED.get(os.path.splitext(name)[1].lower())
            if kind is None:
                with open(name, "rb") as probe:
                    kind = _magic(probe.read(6))
            stream = open(name, "rb") if kind is None else _DECOMPRESSORS[kind](name)  # noqa: SIM115
        return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="\n")
    except OSError as exc:
        raise InputError(f"cannot read {name}: {_os_reason(exc, name)}") from exc


def _magic(start: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if start.startswith(magic):
            return kind
    return None


def read_lines(path: str | os.PathLike[str]) -> Generator[str, None, None]:
    """The lines of ``path``, read lazily; read errors (a truncated .gz) become InputError."""
    name = os.fspath(path)
    stream = open_text(name)
    try:
        yield from stream
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise InputError(f"cannot read {name}: {_os_reason(exc, name)}") from exc
    finally:
        if name == STDIN and isinstance(stream, io.TextIOWrapper):
            stream.detach()  # stdin is not ours to close
        else:
            stream.close()


def _os_reason(exc: BaseException, name: str = "") -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return "not a valid gzip file"
    if isinstance(exc, lzma.LZMAError):
        return "not a valid xz file"
    if isinstance(exc, EOFError):
        return "compressed file ends early"
    if name.lower().endswith(".bz2") and "stream" in str(exc).lower():
        return "not a valid bz2 file"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


# -- formats -----------------------------------------------------------------------------


def log_format_name(name: str) -> str:
    """The format ``name`` stands for; an unknown name is an :class:`InputError`."""
    found = LOG_FORMATS.get(name.strip().lower())
    if found is None:
        raise InputError(
            f"unknown log format {name!r} (choose from: {', '.join(sorted(LOG_FORMATS))})"
        )
    return found


def detect_log_format(head: Sequence[str]) -> str:
    """Which server-log format the first lines ``head`` are in; stderr when unsure."""
    if csvlog.sniff(head):
        return "csvlog"
    if jsonlog.sniff(head):
        return "jsonlog"
    if syslog.sniff_logplex(head):
        return "logplex"
    if syslog.sniff_syslog(head):
        return "syslog"
    return "stderr"


def log_records(
    lines: Iterable[str],
    stats: CaptureStats,
    log_format: str | None = None,
    log_prefix: str | None = None,
    source: str = "<input>",
) -> Iterator[LogRecord]:
    """The records of a server log, its format and prefix detected unless given.

    ``log_prefix`` is the server's ``log_line_prefix`` (stderr, and inside syslog and
    logplex envelopes); the other formats do not need it and ignore it.
    """
    kind, head, everything = _format_of(lines, log_format)
    if kind == "stderr":
        parse = stderr_parser(head, log_prefix, source)
        return stderr_records(enumerate(everything, 1), parse, stats)
    return _envelope_records(kind, head, everything, stats, log_prefix)


def _format_of(
    lines: Iterable[str], log_format: str | None
) -> tuple[str, list[str], Iterator[str]]:
    """The format of ``lines`` (given or detected), their first lines, and all of them."""
    rest = iter(lines)
    head = list(itertools.islice(rest, DETECT_LINES))
    kind = detect_log_format(head) if log_format is None else log_format_name(log_format)
    return kind, head, itertools.chain(head, rest)


def _envelope_records(
    kind: str,
    head: list[str],
    everything: Iterator[str],
    stats: CaptureStats,
    log_prefix: str | None,
) -> Iterator[LogRecord]:
    """The records of the formats other than stderr."""
    if kind == "csvlog":
        return csvlog.csvlog_records(everything, stats)
    if kind == "jsonlog":
        return jsonlog.json_records(everything, jsonlog.flavour(head), stats)
    if kind in ("syslog", "logplex"):
        logplex = kind == "logplex"
        parse = syslog.envelope_parser(head, log_prefix, logplex)
        return syslog.syslog_records(everything, parse, stats, logplex)
    raise ValueError(f"not a log format: {kind!r}")


# -- the reader --------------------------------------------------------------------------


def read_pg_log(
    path_or_lines: str | os.PathLike[str] | Iterable[str],
    source: str | None = None,
    log_prefix: str | None = None,
    log_format: str | None = None,
) -> Iterator[CapturedQuery]:
    """Stream the queries of a log; use :class:`PgLogReader` to get the stats as well."""
    return iter(PgLogReader(path_or_lines, source, log_prefix=log_prefix, log_format=log_format))


@dataclass
class PgLogReader:
    """Iterate over the queries of a server log; ``stats`` is complete after iteration.

    ``path_or_lines`` is a path (``-`` for stdin; gzip, bz2 and xz read transparently)
    or an iterable of lines, with or without their newlines. ``source`` names the input
    in the records; it defaults to the path, ``<stdin>``, or ``<input>`` for lines.
    ``log_format`` (a name of :data:`LOG_FORMATS`) and ``log_prefix`` (the server's
    ``log_line_prefix``) override what is detected from the first lines.
    """

    path_or_lines: str | os.PathLike[str] | Iterable[str]
    source: str | None = None
    stats: CaptureStats = field(default_factory=CaptureStats)
    log_prefix: str | None = None
    log_format: str | None = None
    _assembler: StatementAssembler | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.source is None:
            if isinstance(self.path_or_lines, str | os.PathLike):
                path = os.fspath(self.path_or_lines)
                self.source = "<stdin>" if path == STDIN else path
            else:
                self.source = "<input>"
        if self.log_format is not None:
            log_format_name(self.log_format)  # an unknown name fails now, not mid-read

    def __iter__(self) -> Iterator[CapturedQuery]:
        self.stats = stats = CaptureStats()
        source = self.source or "<input>"
        if isinstance(self.path_or_lines, str | os.PathLike):
            lines: Iterable[str] = read_lines(self.path_or_lines)
        else:
            lines = self.path_or_lines
        rest = iter(lines)
        head = list(itertools.islice(rest, DETECT_LINES))
        plans = any(PLAN_ENTRY.search(line) for line in head)
        kind, head, everything = _format_of(itertools.chain(head, rest), self.log_format)
        self._assembler = assembler = StatementAssembler(source, stats, plans)
        if kind == "stderr":
            # The stderr reader feeds the assembler itself, with a fast path for the
            # common records of a known prefix.
            parse = stderr_parser(head, self.log_prefix, source)
            yield from stderr_queries(enumerate(everything, 1), parse, assembler, stats, True)
            return
        records = _envelope_records(kind, head, everything, stats, self.log_prefix)
        for query in assembler.run(records):
            stats.queries += 1
            yield query
