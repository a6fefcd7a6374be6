"""Read the in-app capture's JSONL file (``explainer.capture.install``): format version 1.

The capture runs inside the application (SQLAlchemy engine and pool events), so each
statement arrives with what no server log has: the application line that ran it
(``site``), the request it served (``request``), and the pool's checkouts. One JSON
object per line, written by :mod:`explainer.capture.hook`; the contract in short:

Header
    ``{"explainer_capture": 1, "ts", "pid", "dialect", "driver", "paramstyle", "pool"}``,
    written first by each process that appends (so it may recur mid-file). Its ``pool``
    goes to :meth:`ConnectionActivity.pool_config`.

Statement
    ``{"type": "statement", "ts", "ms", "sql", "params", "many", "paramstyle",
    "redacted", "conn", "tx", "request", "site", "error"}``. The SQL is as sent to the
    driver (``%(name)s``, ``%s``, ``$1``); it is put in ``$n`` form and bound by
    :mod:`explainer.capture.sqlalchemy_placeholders`, the code that reads SQLAlchemy echo
    logs, so both readers give one statement one shape and the same values (which
    placeholder style a statement uses is read from its text and values, as there, so
    ``paramstyle`` is not needed). ``params``
    values are already PostgreSQL text (or null); ``many`` makes ``params`` a list of
    sets, one query each. ``redacted`` statements keep no values and are not replayable.
    A failed statement (``error``) did not complete: counted as skipped, as the server-log
    readers do.

Pool
    ``{"type": "pool", "ts", "event", "conn", "wait_ms", "checked_out", "overflow",
    "request"}``: handed to :meth:`ConnectionActivity.pool_event`.

Unknown keys and record types are ignored (a later capture may write more); a line that
is not a JSON object, or a statement without its SQL, is counted as skipped
(:data:`MALFORMED`) and the reading goes on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.pglog import read_lines
from explainer.capture.sqlalchemy_params import LoggedDict, LoggedSeq, ParameterSet
from explainer.capture.sqlalchemy_placeholders import (
    Placeholders,
    bind,
    to_dollar_placeholders,
)

__all__ = [
    "ALIASES",
    "EMPTY",
    "EMPTY_MANY",
    "EXTENSIONS",
    "FAILED",
    "FORMAT_NAME",
    "HEADER_KEY",
    "MALFORMED",
    "AppCaptureReader",
    "read_app_capture_file",
    "read_app_capture_stream",
    "sniff",
]

FORMAT_NAME = "explainer-capture"
ALIASES = ("explainer-capture", "capture", "app")
EXTENSIONS = (".jsonl",)
HEADER_KEY = "explainer_capture"
VERSION = 1
SNIFF_LINES = 20

_CACHE_SIZE = 4096

MALFORMED = "malformed capture line"
FAILED = "statement failed (error in the capture)"
EMPTY = "empty statement"
EMPTY_MANY = "executemany without parameter sets"


def sniff(head: Sequence[str]) -> bool:
    """A capture file: a header, or a statement record, among the first lines.

    Only lines that start an object are parsed, so other inputs cost a character test.
    """
    for line in head[:SNIFF_LINES]:
        text = line.lstrip()
        if not text.startswith("{"):
            continue
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if not isinstance(document, dict):
            continue
        if HEADER_KEY in document:
            return True
        if document.get("type") == "statement" and isinstance(document.get("sql"), str):
            return True
    return False


def read_app_capture_file(path: str) -> tuple[list[CapturedQuery], CaptureStats]:
    """The reader :func:`explainer.capture.read_input` calls with a path."""
    reader = AppCaptureReader(path)
    return list(reader), reader.stats


def read_app_capture_stream(
    lines: Iterable[str], source: str, log_prefix: str | None = None
) -> tuple[Iterable[CapturedQuery], CaptureStats]:
    """Read lines already open (stdin, a file whose head was sniffed), lazily.

    ``log_prefix`` is the server's ``log_line_prefix``: it has no meaning here. The stats
    returned are complete once the queries have been iterated.
    """
    del log_prefix
    reader = AppCaptureReader(lines, source)
    stats = CaptureStats()

    def queries() -> Iterator[CapturedQuery]:
        yield from reader
        stats.merge(reader.stats)

    return queries(), stats


@dataclass
class AppCaptureReader:
    """Iterate over the statements of a capture file; ``stats`` is complete after.

    ``path_or_lines`` is a path (compressed files and ``-`` read as for the other
    readers) or an iterable of lines. Memory holds one line at a time.
    """

    path_or_lines: str | os.PathLike[str] | Iterable[str]
    source: str | None = None
    stats: CaptureStats = field(default_factory=CaptureStats)

    _cache: dict[tuple[str, type | None], Placeholders] = field(default_factory=dict, repr=False)
    """Each statement text's ``$n`` form, by the kind of its values: an app runs few
    texts many times, and numbering placeholders costs more than the rest of a record."""

    def __post_init__(self) -> None:
        if self.source is None:
            if isinstance(self.path_or_lines, str | os.PathLike):
                self.source = os.fspath(self.path_or_lines)
            else:
                self.source = "<input>"

    def __iter__(self) -> Iterator[CapturedQuery]:
        self.stats = CaptureStats()
        if isinstance(self.path_or_lines, str | os.PathLike):
            lines: Iterable[str] = read_lines(self.path_or_lines)
        else:
            lines = self.path_or_lines
        stats = self.stats
        for number, line in enumerate(lines, 1):
            stats.lines_read += 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                stats.skip(MALFORMED)
                continue
            if not isinstance(record, dict):
                stats.skip(MALFORMED)
                continue
            kind = record.get("type")
            if kind == "statement":
                for query in self._statement(record, number):
                    stats.queries += 1
                    yield query
            elif kind == "pool":
                self._pool(record)
            elif HEADER_KEY in record:
                self._header(record)
            # Any other record type: a later version's, ignored.

    # -- records ----------------------------------------------------------------------

    def _placeholders(self, sql: str, values: ParameterSet | None) -> Placeholders:
        """:func:`to_dollar_placeholders`, which reads only the text and whether the
        values are named or positional (never their content, as the sets here hold plain
        values): cached on those two."""
        key = (sql, None if values is None else type(values))
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            found = self._cache[key] = to_dollar_placeholders(sql, values)
        return found

    def _header(self, record: dict[str, Any]) -> None:
        pool = record.get("pool")
        self.stats.activity.pool_config(
            pool if isinstance(pool, dict) else None, _text(record, "ts")
        )

    def _pool(self, record: dict[str, Any]) -> None:
        event = _text(record, "event")
        if event is None:
            self.stats.skip(MALFORMED)
            return
        self.stats.activity.pool_event(
            event,
            _text(record, "ts"),
            conn=_text(record, "conn"),
            wait_ms=_number(record.get("wait_ms")),
            checked_out=_integer(record.get("checked_out")),
            overflow=_integer(record.get("overflow")),
            request=_text(record, "request"),
        )

    def _statement(self, record: dict[str, Any], number: int) -> Iterator[CapturedQuery]:
        sql = record.get("sql")
        if not isinstance(sql, str):
            self.stats.skip(MALFORMED)
            return
        if record.get("error") is not None:
            self.stats.skip(FAILED)
            return
        params = record.get("params")
        try:
            if record.get("many") is True:
                if not isinstance(params, list):
                    raise ValueError("executemany parameters are not a list")
                sets = [_parameter_set(p) for p in params]
            else:
                sets = [_parameter_set(params)]
        except ValueError:
            self.stats.skip(MALFORMED)
            return
        if not sets:
            self.stats.skip(EMPTY_MANY)
            return
        placeholders = self._placeholders(sql, sets[0])
        text = _clean_sql(placeholders.sql)
        if not text:
            self.stats.skip(EMPTY)
            return
        redacted = record.get("redacted") is True
        source = self.source or "<input>"
        duration, timestamp = _number(record.get("ms")), _text(record, "ts")
        session, transaction = _text(record, "conn"), _text(record, "tx")
        request = _text(record, "request")
        location = _location(record.get("site"))
        for parameter_set in sets:
            if redacted or parameter_set is None:
                # No values: replayable only when the statement takes none.
                values: tuple[str | None, ...] = ()
                complete = not redacted and not placeholders.slots
            else:
                values, complete = bind(placeholders, parameter_set)
            yield CapturedQuery(
                text, duration, source, number, session, timestamp,
                parameters=values, replayable=complete, transaction=transaction,
                location=location, request=request,
            )  # fmt: skip


# -- fields ---------------------------------------------------------------------------


def _parameter_set(params: object) -> ParameterSet | None:
    """One set of values as the echo-log reader's structures: a dict is named, a list
    positional (an empty one still says the driver formatted the text: ``%%`` is ``%``);
    None is no parameters. Anything else is malformed: ValueError."""
    if params is None:
        return None
    if isinstance(params, dict):
        return LoggedDict({str(k): v for k, v in params.items()}, "")
    if isinstance(params, list):
        return LoggedSeq(list(params), "(", "")
    raise ValueError(f"parameters are a {type(params).__name__}")


def _location(site: object) -> str | None:
    """``path:line`` of the capture's call site; None without a usable one."""
    if not isinstance(site, dict):
        return None
    file, line = site.get("file"), site.get("line")
    if not isinstance(file, str) or not file or isinstance(line, bool):
        return None
    if not isinstance(line, int) or line <= 0:
        return None
    return f"{file}:{line}"


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _integer(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _clean_sql(sql: str) -> str:
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text
