"""Records of a stderr log (``log_destination = 'stderr'``, the usual ``postgresql.log``).

Each record is a line that starts with the ``log_line_prefix``, plus the lines after it
that start with a TAB: the server writes a TAB after every newline of a message, so a
multi-line statement or parameter value continues that way. Lines starting with spaces,
and empty lines, are what is left of a TAB after an editor or a copy-paste: they continue
the record too. The first character decides, so continuation lines cost no regex.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from explainer.capture.model import CaptureStats
from explainer.capture.prefix import (
    DETECT_LINES,
    TOLERANT,
    LineParser,
    count_matches,
    detect_parser,
    header_lines,
    parser_for,
    with_fallback,
)
from explainer.capture.records import LogRecord
from explainer.errors import InputError

UNRECOGNISED = "unrecognised line"
ORPHAN_CONTINUATION = "continuation line without a log entry"


def sniff(head: Sequence[str]) -> bool:
    """Whether the first lines of an input look like a stderr log."""
    lines = header_lines(head)
    return any(detect_parser(lines)(line, 0) is not None for line in lines)


def stderr_parser(head: Sequence[str], log_prefix: str | None, source: str) -> LineParser:
    """The line parser for a log whose first lines are ``head``.

    A prefix the user gave that reads none of the first records is a mistake worth
    stopping for: read with the wrong prefix every line would be skipped.
    """
    lines = header_lines(head)
    if log_prefix is None:
        return detect_parser(lines)
    parser = parser_for(log_prefix)
    if lines and not count_matches(parser, lines[:DETECT_LINES]):
        raise InputError(
            f"cannot read {source}: log_line_prefix {log_prefix!r} matches none of its first lines"
        )
    return with_fallback(parser, TOLERANT)


def stderr_records(
    numbered_lines: Iterable[tuple[int, str]], parse: LineParser, stats: CaptureStats
) -> Iterator[LogRecord]:
    """Join prefixed lines and their continuation lines into records.

    Takes ``(line number, line)`` pairs so envelopes (Cloud Logging) can feed the lines
    they unwrap and keep the file's numbering. Sets ``stats.lines_read`` at the end.
    """
    record: LogRecord | None = None
    parts: list[str] = []
    number = 0
    for number, raw in numbered_lines:
        line = raw.rstrip("\n").removesuffix("\r")
        if not line or line[0] in " \t":
            if record is not None:
                parts.append(line[1:] if line[0:1] == "\t" else line)
            elif line:
                stats.skip(ORPHAN_CONTINUATION)
            continue
        new = parse(line, number)
        if record is not None:
            if parts:
                record.message = "\n".join((record.message, *parts))
                parts = []
            yield record
        if new is None:
            stats.skip(UNRECOGNISED)
        record = new
    stats.lines_read = max(stats.lines_read, number)
    if record is not None:
        if parts:
            record.message = "\n".join((record.message, *parts))
        yield record
