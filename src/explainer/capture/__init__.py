"""Capture: turn inputs (SQL files, pasted text, server logs) into :class:`CapturedQuery`.

Each input format is a reader plus a ``sniff`` test on the first lines of a file;
:func:`read_input` asks them in turn and falls back to plain SQL, so a new format (csvlog,
jsonlog, driver echo logs, pg_stat_statements...) is one more entry in ``FORMATS``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass

from explainer.capture import pgss
from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.pglog import PgLogReader, read_lines, read_pg_log
from explainer.capture.pglog import sniff as sniff_pg_log
from explainer.capture.sqltext import split_statements, split_statements_with_stats
from explainer.errors import InputError

__all__ = [
    "FORMATS",
    "CaptureStats",
    "CapturedQuery",
    "InputFormat",
    "PgLogReader",
    "read_input",
    "read_pg_log",
    "read_sql_text",
    "split_statements",
]

Reader = Callable[[str], tuple[list[CapturedQuery], CaptureStats]]

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


def _read_pg_log(path: str) -> tuple[list[CapturedQuery], CaptureStats]:
    reader = PgLogReader(path)
    return list(reader), reader.stats


FORMATS: tuple[InputFormat, ...] = (
    InputFormat("PostgreSQL stderr log", sniff_pg_log, _read_pg_log),
    InputFormat("pg_stat_statements CSV export", pgss.sniff, pgss.read_pgss_file),
)


def read_input(path: str) -> tuple[list[CapturedQuery], CaptureStats]:
    """Read the queries of the file at ``path`` (``.gz`` too), whatever its format."""
    with closing(read_lines(path)) as lines:
        head = list(itertools.islice(lines, SNIFF_LINES))
    for input_format in FORMATS:
        if input_format.sniff(head):
            return input_format.read(path)
    if _looks_like_a_log(head):
        # Read as SQL, a log would come out as a few huge nonsense "statements".
        raise InputError(
            f"cannot read {path}: a log format explainer does not read yet "
            "(it reads PostgreSQL stderr logs and SQL)"
        )
    return read_sql_text("".join(read_lines(path)), source=path)


def _looks_like_a_log(head: Sequence[str]) -> bool:
    first = next((line for line in head if line.strip()), "")
    return _LOG_RECORD.match(first) is not None


def read_sql_text(text: str, source: str = "<input>") -> tuple[list[CapturedQuery], CaptureStats]:
    """Split SQL text (a file's content, a paste, stdin) into statements."""
    return split_statements_with_stats(text, source)
