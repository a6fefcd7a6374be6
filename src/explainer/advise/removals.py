"""Existing indexes to remove: never used, duplicates, and prefixes of other indexes.

Every index slows every write to its table and takes space and cache; one that no query
needs is pure cost. Three kinds are reported, each with its size and the DROP statement:

* ``duplicate``: another index on the same table has the same method, the same keys (as
  ``pg_get_indexdef`` prints them: expressions, operator classes, collations, DESC and
  NULLS order included), the same predicate, and INCLUDE columns that cover this one's.
  Of two identical indexes the one kept is the one that enforces something, then the
  more used, then the first by name.
* ``prefix``: a btree whose keys are the leading keys of another btree on the same table
  (same predicate, INCLUDE columns covered): the longer index serves every lookup and
  ordered scan the shorter one does. Only btree: for hash, GIN, GiST or BRIN a leading
  key is not an index of its own. (A shorter index is smaller and a little faster to
  scan; the report gives both sizes so a user can judge.)
* ``unused``: ``pg_stat_user_indexes.idx_scan = 0`` since the statistics began
  (``stats_since``). On a standby, or on an application whose monthly job uses the index,
  "never used" means only "not used while counted": the report says since when.

An index that enforces something (primary key, unique, exclusion, any constraint) is never
suggested for removal, whatever its use: dropping it would drop the guarantee. Neither is
an invalid index compared with others (it serves nothing; a failed CREATE INDEX
CONCURRENTLY leaves one, and the fix is to rebuild or drop it, which is another report).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from explainer.advise.ddl import quote_ident
from explainer.db.catalog import IndexUsage, StatsSince

RemovalReason = Literal["unused", "duplicate", "prefix"]


@dataclass(frozen=True, slots=True)
class IndexRemoval:
    """An existing index the workload does not need."""

    index: str
    schema: str
    table: str
    reason: RemovalReason
    size_bytes: int
    idx_scan: int
    #: The index that serves everything this one does (duplicates and prefixes).
    covered_by: str | None
    detail: str
    definition: str

    @property
    def qualified_table(self) -> str:
        return self.table if self.schema == "public" else f"{self.schema}.{self.table}"

    @property
    def sql(self) -> str:
        name = quote_ident(self.index)
        if self.schema != "public":
            name = f"{quote_ident(self.schema)}.{name}"
        return f"DROP INDEX CONCURRENTLY IF EXISTS {name};"


def _covers_include(short: IndexUsage, long: IndexUsage) -> bool:
    """Every INCLUDE column of ``short`` is a key or an INCLUDE column of ``long``."""
    available = set(long.keys) | set(long.include)
    return set(short.include) <= available


def _comparable(a: IndexUsage, b: IndexUsage) -> bool:
    return (
        a.schema == b.schema
        and a.table == b.table
        and a.method == b.method
        and a.predicate == b.predicate
        and a.is_valid
        and b.is_valid
    )


def _keeps(a: IndexUsage, b: IndexUsage) -> bool:
    """Of two identical indexes, whether ``a`` is the one to keep."""
    return (not a.enforces, -a.idx_scan, a.name) < (not b.enforces, -b.idx_scan, b.name)


def find_removals(indexes: list[IndexUsage], since: StatsSince) -> list[IndexRemoval]:
    """Removal suggestions for the database's indexes, duplicates and prefixes first."""
    found: dict[str, tuple[IndexRemoval, int]] = {}
    for index in indexes:
        if index.enforces or not index.is_valid:
            continue
        for other in indexes:
            if other is index or not _comparable(index, other):
                continue
            if not _covers_include(index, other):
                continue
            if other.keys == index.keys:
                if _keeps(index, other):
                    continue
                reason: RemovalReason = "duplicate"
                detail = f"the same index as {other.name}"
                rank = 1_000_000  # a duplicate beats any prefix
            elif index.method == "btree" and other.keys[: len(index.keys)] == index.keys:
                reason = "prefix"
                detail = (
                    f"its keys ({', '.join(index.keys)}) lead {other.name} "
                    f"({', '.join(other.keys)}), which serves the same lookups"
                )
                # The longest covering index: it is not itself a prefix to remove.
                rank = len(other.keys)
            else:
                continue
            previous = found.get(index.name)
            if previous is None or rank > previous[1]:
                found[index.name] = (_removal(index, reason, other.name, detail), rank)
    removals = sorted((r for r, _ in found.values()), key=lambda r: (-r.size_bytes, r.index))
    unused = [
        _removal(index, "unused", None, f"never scanned {since_phrase(since)}")
        for index in indexes
        if not index.enforces and index.idx_scan == 0 and index.name not in found
    ]
    return removals + sorted(unused, key=lambda r: (-r.size_bytes, r.index))


def _removal(
    index: IndexUsage, reason: RemovalReason, covered_by: str | None, detail: str
) -> IndexRemoval:
    return IndexRemoval(
        index=index.name,
        schema=index.schema,
        table=index.table,
        reason=reason,
        size_bytes=index.size_bytes,
        idx_scan=index.idx_scan,
        covered_by=covered_by,
        detail=detail,
        definition=index.definition,
    )


def since_phrase(since: StatsSince) -> str:
    """'since the statistics were reset (2026-01-01 10:00 UTC)' or the server-start form."""
    when = _when(since.since)
    if since.source == "stats_reset":
        return f"since the statistics were reset ({when})"
    # From PostgreSQL 15 on the counters survive a clean restart: the start is a bound.
    return f"since the statistics began (never reset; the server started {when})"


def _when(value: datetime | None) -> str:
    return "unknown" if value is None else value.strftime("%Y-%m-%d %H:%M %Z").strip()
