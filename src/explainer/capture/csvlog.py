"""Records of a csvlog (``log_destination = 'csvlog'``, ``postgresql.csv``).

One CSV row per message, read with the ``csv`` module because a quoted field (the
message, a parameter value) may hold newlines and doubled quotes. The columns grew over
the versions, always at the end, so the first 22 are read by position in every one:

====================  ========================================================
PostgreSQL            columns
====================  ========================================================
9.0 - 12              23: ... ``location``, ``application_name``
13                    24: + ``backend_type``
14 and later          26: + ``leader_pid``, ``query_id``
====================  ========================================================

Unlike stderr, a row carries its DETAIL and the failed statement (``query``) as fields.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterable, Iterator, Sequence

from explainer.capture.model import CaptureStats
from explainer.capture.records import SEVERITIES, LogRecord, transaction_of

NOT_CSVLOG = "CSV row that is not a csvlog record"
UNREADABLE = "unreadable CSV row"

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_SEVERITIES = frozenset(
    SEVERITIES.replace("DEBUG[1-5]?", "DEBUG|DEBUG1|DEBUG2|DEBUG3|DEBUG4|DEBUG5").split("|")
)
# A statement (a bulk INSERT) can be far longer than the csv module's default field
# limit of 128 kB, which would lose the row.
_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)

# Column positions, the same in every version that has them.
_LOG_TIME, _USER, _DATABASE, _PID = 0, 1, 2, 3
_SESSION_ID, _VXID, _XID, _SEVERITY, _MESSAGE, _DETAIL = 5, 9, 10, 11, 13, 14
_CONTEXT, _QUERY, _APPLICATION = 18, 19, 22


def is_record(row: Sequence[str]) -> bool:
    return (
        len(row) > _MESSAGE
        and _TIMESTAMP.match(row[_LOG_TIME]) is not None
        and row[_SEVERITY] in _SEVERITIES
    )


def sniff(head: Sequence[str]) -> bool:
    """Whether the first row of ``head`` is a csvlog record (by its shape, not its name)."""
    lines = [line for line in head if line.strip()]
    if not lines:
        return False
    try:
        row = next(csv.reader(lines))
    except (csv.Error, StopIteration):
        return False
    return is_record(row)


def csvlog_records(lines: Iterable[str], stats: CaptureStats) -> Iterator[LogRecord]:
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)
    reader = csv.reader(lines)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            stats.skip(UNREADABLE)
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not row:
            continue
        if not is_record(row):
            stats.skip(NOT_CSVLOG)
            continue
        size = len(row)
        yield LogRecord(
            line=line,
            session=row[_PID] or row[_SESSION_ID],
            severity=row[_SEVERITY],
            message=row[_MESSAGE],
            timestamp=row[_LOG_TIME],
            user=row[_USER] or None,
            database=row[_DATABASE] or None,
            application=(row[_APPLICATION] or None) if size > _APPLICATION else None,
            transaction=transaction_of(row[_VXID], row[_XID]),
            detail=(row[_DETAIL] or None) if size > _DETAIL else None,
            context=(row[_CONTEXT] or None) if size > _CONTEXT else None,
            statement=(row[_QUERY] or None) if size > _QUERY else None,
        )
    stats.lines_read = max(stats.lines_read, reader.line_num)
