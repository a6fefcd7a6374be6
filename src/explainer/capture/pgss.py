"""pg_stat_statements rows as captured queries: from a CSV export, or live (db layer).

pg_stat_statements has already aggregated the workload: one row per normalized shape,
with ``$n`` in place of constants, a call count and a total time. Each row becomes one
:class:`CapturedQuery` standing for ``calls`` executions with ``duration_ms`` their total,
so the workload ranks it like the same queries read one by one from a log. The rows
carry no parameter values: explaining them needs a generic plan, unless a log of the
same workload supplies real values for the same shape (the workload prefers those).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence

from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.pglog import read_lines

SOURCE = "pg_stat_statements"

#: PostgreSQL 13 renamed total_time to total_exec_time; exports of either are read.
TOTAL_COLUMNS = ("total_exec_time", "total_time")
REQUIRED_COLUMNS = ("query", "calls")

BAD_ROW = "pg_stat_statements row without a query or a call count"


def sniff(lines: Sequence[str]) -> bool:
    """A CSV export: its header names at least ``query`` and ``calls``."""
    if not lines:
        return False
    try:
        header = next(csv.reader([lines[0].strip("\r\n")]), [])
    except csv.Error:
        return False
    names = {name.strip().lower() for name in header}
    return all(column in names for column in REQUIRED_COLUMNS)


def row_to_query(row: Mapping[str, object], *, source: str, line: int) -> CapturedQuery | None:
    """One row (a mapping of column names) as a captured query; None when unusable."""
    text = str(row.get("query") or "").strip().rstrip(";").strip()
    try:
        calls = int(float(str(row.get("calls") or "")))
    except (ValueError, OverflowError):  # OverflowError: "inf"
        return None
    if not text or calls <= 0:
        return None
    total = next((row[c] for c in TOTAL_COLUMNS if row.get(c) not in (None, "")), None)
    try:
        total_ms = float(str(total)) if total is not None else None
    except ValueError:
        total_ms = None
    return CapturedQuery(
        sql=text,
        duration_ms=total_ms,
        source=source,
        line=line,
        calls=calls,
        user=_text(row.get("user") or row.get("usename")),
        database=_text(row.get("datname") or row.get("database")),
    )


def _text(value: object) -> str | None:
    return None if value in (None, "") else str(value)


def read_pgss_rows(
    rows: Iterable[Mapping[str, object]], *, source: str = SOURCE, first_line: int = 2
) -> tuple[list[CapturedQuery], CaptureStats]:
    """Rows (from a CSV export or a live query) as captured queries, with what was skipped."""
    stats = CaptureStats()
    queries = []
    for number, row in enumerate(rows, start=first_line):
        stats.lines_read += 1
        query = row_to_query(
            {k.strip().lower(): v for k, v in row.items() if k}, source=source, line=number
        )
        if query is None:
            stats.skip(BAD_ROW)
            continue
        queries.append(query)
        stats.queries += 1
    return queries, stats


def read_pgss_csv(lines: Iterable[str], source: str) -> tuple[list[CapturedQuery], CaptureStats]:
    """A CSV export (``\\copy (SELECT ... FROM pg_stat_statements) TO 'f.csv' CSV HEADER``).

    Line numbers are the record's number plus one (the header): a query spanning lines
    makes them approximate. A CSV error (a NUL byte, a huge field) ends the reading and
    is counted, never raised.
    """
    failure: list[str] = []

    def records() -> Iterator[dict[str, str]]:
        try:
            yield from csv.DictReader(lines)
        except csv.Error as exc:
            failure.append(str(exc))

    queries, stats = read_pgss_rows(records(), source=source)
    if failure:
        stats.skip(f"unreadable CSV, reading stopped: {failure[0]}")
    return queries, stats


def read_pgss_stream(
    lines: Iterable[str], source: str, log_prefix: str | None = None
) -> tuple[list[CapturedQuery], CaptureStats]:
    """Lines already open (stdin): ``log_prefix`` means nothing for a CSV export."""
    return read_pgss_csv(lines, source=source)


def read_pgss_file(path: str) -> tuple[list[CapturedQuery], CaptureStats]:
    """A CSV export file (``.gz``... too), for :data:`explainer.capture.FORMATS`."""
    return read_pgss_csv(read_lines(path), source=path)
