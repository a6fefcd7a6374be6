"""Records of a stderr log (``log_destination = 'stderr'``, the usual ``postgresql.log``).

Each record is a line that starts with the ``log_line_prefix``, plus the lines after it
that start with a TAB: the server writes a TAB after every newline of a message, so a
multi-line statement or parameter value continues that way. Lines starting with spaces,
and empty lines, are what is left of a TAB after an editor or a copy-paste: they continue
the record too. The first character decides, so continuation lines cost no regex.

:func:`stderr_records` makes the records; :func:`stderr_queries` reads a whole log into
queries, with a fast path for the commonest records of a known prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.prefix import (
    DETECT_LINES,
    TOLERANT,
    FastEntry,
    LineParser,
    PrefixParser,
    count_matches,
    detect_parser,
    header_lines,
    parser_for,
    with_fallback,
)
from explainer.capture.records import LogRecord, StatementAssembler, transaction_of
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


def stderr_queries(
    numbered_lines: Iterable[tuple[int, str]],
    parse: LineParser,
    assembler: StatementAssembler,
    stats: CaptureStats,
    count: bool = False,
) -> Iterator[CapturedQuery]:
    """``assembler.run(stderr_records(numbered_lines, parse, stats))``, faster.

    The same queries in the same order, and the same stats, but for a known prefix (a
    :class:`~explainer.capture.prefix.PrefixParser`) the common records take a fast path:
    one regex match per line reads the prefix's fields and the start of the message
    (:func:`~explainer.capture.prefix.compile_fast`), and ``duration: X ms  statement:``,
    ``execute``, ``parse``, ``bind`` and ``DETAIL`` records go to the assembler's
    ``feed_timed`` and ``feed_detail`` without a :class:`LogRecord`. Anything else, and
    any record those decline, becomes the LogRecord :func:`stderr_records` would make,
    for ``feed``.
    """
    if not isinstance(parse, PrefixParser) or parse.fast_pattern() is None:
        for query in assembler.run(stderr_records(numbered_lines, parse, stats)):
            if count:
                stats.queries += 1
            yield query
        return
    # One FastEntry holds the fields of the entry being read (its first line): the
    # prefix's program or, when that is unsure, the fast regex fills it.
    entry = FastEntry(parse.prefix)
    fallback = parse.fallback
    out = assembler.out
    # feed_timed and feed_detail are called as methods: mypyc makes those native calls.
    # The general path is rare; it goes through the bound method, which is what a test
    # (or a subclass) that replaces ``feed`` sees.
    feed = assembler.feed

    def settle(number: int, parts: list[str]) -> None:
        """Hand on the entry the prefix read (``parts``: its continuation lines)."""
        key = entry.pid or entry.session_id
        vxid, xid = entry.vxid, entry.xid
        transaction = transaction_of(vxid, xid) if vxid or xid else None
        severity, kind, sql = entry.severity, entry.kind, entry.sql
        if kind is not None and severity == "LOG":
            ms = entry.ms
            assert ms is not None  # read with kind
            if parts and (kind == "statement" or kind == "execute"):
                sql = "\n".join((sql, *parts))
            if assembler.feed_timed(
                number,
                key or "",
                kind,
                ms,
                sql,
                entry.timestamp or None,
                entry.user or None,
                entry.database or None,
                entry.application or None,
                transaction,
            ):
                return
        elif severity == "DETAIL":  # kind is None: sql is the message
            if parts:
                sql = "\n".join((sql, *parts))
                parts = []
            if assembler.feed_detail(key or "", sql):
                return
        # The general path, with the record PrefixParser would have made.
        message = entry.message()
        if parts:
            message = "\n".join((message, *parts))
        feed(
            LogRecord(
                number,
                key or "",
                severity,
                message,
                entry.timestamp or None,
                entry.user or None,
                entry.database or None,
                entry.application or None,
                transaction,
            )
        )

    def settle_record(record: LogRecord, parts: list[str]) -> None:
        """Hand on an entry the fallback parser read."""
        if parts:
            record.message = "\n".join((record.message, *parts))
        feed(record)

    # The entry being read: what the prefix read of its first line (``entry``, when
    # ``read``), or else the record the fallback parser made of it (record); as in
    # stderr_records.
    read = False
    record: LogRecord | None = None
    start = 0  # the line where it starts
    parts: list[str] = []  # its continuation lines
    number = 0
    for number, raw in numbered_lines:
        line = raw.rstrip("\n").removesuffix("\r")
        if not line or line[0] in " \t":
            if read or record is not None:
                parts.append(line[1:] if line[0:1] == "\t" else line)
            elif line:
                stats.skip(ORPHAN_CONTINUATION)
            continue
        if read:
            # settle(start, parts), its two commonest cases inlined to save a call per
            # record; what they decline goes to settle, which starts again from the entry.
            severity, kind = entry.severity, entry.kind
            if kind is not None and severity == "LOG":
                ms, sql = entry.ms, entry.sql
                assert ms is not None  # read with kind
                if parts:  # only statement and execute read it
                    sql = "\n".join((sql, *parts))
                vxid, xid = entry.vxid, entry.xid
                done = assembler.feed_timed(
                    start,
                    entry.pid or entry.session_id or "",
                    kind,
                    ms,
                    sql,
                    entry.timestamp or None,
                    entry.user or None,
                    entry.database or None,
                    entry.application or None,
                    transaction_of(vxid, xid) if vxid or xid else None,
                )
            elif severity == "DETAIL":
                sql = entry.sql
                done = assembler.feed_detail(
                    entry.pid or entry.session_id or "",
                    "\n".join((sql, *parts)) if parts else sql,
                )
            else:
                done = False
            if not done:
                settle(start, parts)
            if out:
                if count:
                    stats.queries += len(out)
                yield from out
                out.clear()
        elif record is not None:
            settle_record(record, parts)
            record = None
            if out:
                if count:
                    stats.queries += len(out)
                yield from out
                out.clear()
        if parts:
            parts = []
        read = entry.read(line)
        if not read:
            if fallback is not None:
                record = fallback(line, number)
            if record is None:
                stats.skip(UNRECOGNISED)
        start = number
    stats.lines_read = max(stats.lines_read, number)
    if read:
        settle(start, parts)
    elif record is not None:
        settle_record(record, parts)
    assembler.finish()
    if count:
        stats.queries += len(out)
    yield from out
    out.clear()
