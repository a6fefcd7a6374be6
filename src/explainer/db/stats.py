"""The planner's statistics of one table, as the index advisor judges candidates by them.

``pg_stats`` says how selective a predicate is (the share of rows a constant keeps, the
share of NULLs) and ``pg_class`` how large the table is and how much of it is all-visible
(whether an index-only scan can skip the heap). One query per table reads both, for the
columns a statement uses only, and the advisor decides with plain dataclasses that tests
can build by hand.

``most_common_vals`` is an ``anyarray``: it is read as ``text[]`` (``::text::text[]``), so
values compare with the query's constants as PostgreSQL prints them (``pending``, ``42``,
``2024-01-01``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class ColumnStats:
    """One column's ``pg_stats`` row (and its type, which is known even when never analyzed)."""

    name: str
    #: ``format_type`` of the column: ``text``, ``character varying(200)``, ``jsonb``...
    type: str = ""
    null_frac: float = 0.0
    #: As pg_stats: > 0 a count of distinct values, < 0 minus the share of rows that are
    #: distinct (-1: unique), 0 unknown.
    n_distinct: float = 0.0
    most_common_vals: tuple[str, ...] = ()
    most_common_freqs: tuple[float, ...] = ()
    correlation: float | None = None
    #: pg_stats ``avg_width`` in bytes (0 unknown). A value stored out of line (TOAST)
    #: counts as its 18-byte pointer here, so it understates the columns that matter most.
    avg_width: int = 0
    #: False when the column has no pg_stats row (never analyzed): the figures are defaults.
    analyzed: bool = True

    def distinct_count(self, rows: float) -> float:
        """The number of distinct non-NULL values in a table of ``rows`` rows (0: unknown)."""
        if self.n_distinct >= 0:
            return self.n_distinct
        return -self.n_distinct * max(rows, 0.0)

    def frequency(self, value: str) -> float | None:
        """The share of rows equal to ``value`` when it is a most common value, else None."""
        for v, f in zip(self.most_common_vals, self.most_common_freqs, strict=False):
            if v == value:
                return f
        return None

    def equality_selectivity(self, value: str | None, rows: float) -> float | None:
        """The share of rows ``column = value`` keeps, the planner's way (``var_eq_const``):
        a most common value's frequency, else the rest spread evenly over the other distinct
        values; the average over distinct values for an unknown value (a ``$n``). None when
        the column was never analyzed."""
        if not self.analyzed:
            return None
        if value is not None:
            frequency = self.frequency(value)
            if frequency is not None:
                return frequency
        distinct = self.distinct_count(rows)
        if distinct <= 0:
            return None
        rest = 1.0 - self.null_frac - sum(self.most_common_freqs)
        others = distinct - len(self.most_common_vals)
        if value is None or others <= 0:
            return (1.0 - self.null_frac) / distinct
        return max(rest, 0.0) / others


@dataclass(frozen=True, slots=True)
class TableStats:
    """A table's size and visibility (``pg_class``) with the statistics of some columns."""

    schema: str
    name: str
    #: pg_class.reltuples: -1 when never analyzed nor vacuumed (PostgreSQL 14+).
    reltuples: float
    relpages: int
    relallvisible: int
    columns: dict[str, ColumnStats] = field(default_factory=dict)

    @property
    def visible_share(self) -> float | None:
        """relallvisible / relpages: the share of pages an index-only scan need not visit."""
        if self.relpages <= 0:
            return None
        return min(self.relallvisible / self.relpages, 1.0)

    def column(self, name: str) -> ColumnStats | None:
        return self.columns.get(name)


#: A partitioned parent has no pages of its own: its size is its leaf partitions'.
_SIZE_SQL = """
CASE WHEN c.relkind = 'p' THEN
  (SELECT coalesce(sum(greatest(l.reltuples, 0)), 0) FROM pg_partition_tree(c.oid) t
   JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf)
ELSE c.reltuples END,
CASE WHEN c.relkind = 'p' THEN
  (SELECT coalesce(sum(l.relpages), 0) FROM pg_partition_tree(c.oid) t
   JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf)
ELSE c.relpages END,
CASE WHEN c.relkind = 'p' THEN
  (SELECT coalesce(sum(l.relallvisible), 0) FROM pg_partition_tree(c.oid) t
   JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf)
ELSE c.relallvisible END"""

_STATS_SQL = f"""
SELECT {_SIZE_SQL},
       a.attname, format_type(a.atttypid, a.atttypmod),
       s.null_frac, s.n_distinct, s.most_common_vals::text::text[], s.most_common_freqs,
       s.correlation, s.attname IS NOT NULL, s.avg_width
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     AND (%s::text[] IS NULL OR a.attname = ANY (%s::text[]))
LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
     AND s.attname = a.attname AND s.inherited = (c.relkind = 'p')
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'm')
ORDER BY a.attnum
"""


def table_stats(
    conn: psycopg.Connection[Any],
    schema: str,
    name: str,
    columns: Iterable[str] | None = None,
) -> TableStats | None:
    """Statistics of ``columns`` (all when None) of one table; None when there is no such table.

    A partitioned parent's pg_stats rows are its ``inherited`` ones (which only a manual
    ANALYZE of the parent writes: autovacuum never analyzes a partitioned table), and its
    size is the sum of its leaf partitions'; for a plain table the non-inherited row is
    the one the planner uses, so that is what is read.
    """
    wanted = sorted(set(columns)) if columns is not None else None
    rows = conn.execute(_STATS_SQL, (wanted, wanted, schema, name)).fetchall()
    if not rows:
        return None
    first = rows[0]
    stats: dict[str, ColumnStats] = {}
    for r in rows:
        if r[3] is None:
            continue
        analyzed = bool(r[10])
        stats[str(r[3])] = ColumnStats(
            name=str(r[3]),
            type=str(r[4]),
            null_frac=float(r[5]) if analyzed and r[5] is not None else 0.0,
            n_distinct=float(r[6]) if analyzed and r[6] is not None else 0.0,
            most_common_vals=tuple(str(v) for v in r[7] or ()),
            most_common_freqs=tuple(float(f) for f in r[8] or ()),
            correlation=float(r[9]) if r[9] is not None else None,
            avg_width=int(r[11]) if analyzed and r[11] is not None else 0,
            analyzed=analyzed,
        )
    return TableStats(
        schema=schema,
        name=name,
        reltuples=float(first[0]),
        relpages=int(first[1]),
        relallvisible=int(first[2]),
        columns=stats,
    )


def installed_extensions(conn: psycopg.Connection[Any]) -> frozenset[str]:
    """Names of the extensions installed in the current database (``pg_trgm``, ``hypopg``...)."""
    return frozenset(str(r[0]) for r in conn.execute("SELECT extname FROM pg_extension"))
