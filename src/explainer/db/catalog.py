"""What the catalog knows that a plan does not: existing indexes, table sizes, extensions.

The advisor needs these to avoid suggesting an index that already exists and to resolve
unqualified column names; the report needs the server's version. Every query here reads
``pg_catalog`` only, with names passed as parameters.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version: str  # "18.1", from server_version
    version_num: int  # 180001
    database: str
    has_hypopg: bool  # the extension is installed in this database
    hypopg_available: bool  # it could be installed (CREATE EXTENSION hypopg)


@dataclass(frozen=True, slots=True)
class ExistingIndex:
    name: str
    schema: str
    table: str
    #: Key columns in order; an expression key appears as its SQL (``lower(email)``).
    columns: tuple[str, ...]
    include: tuple[str, ...]
    method: str  # btree, hash, gin...
    is_unique: bool
    is_primary: bool
    is_valid: bool
    predicate: str | None  # partial index WHERE clause
    definition: str  # pg_get_indexdef


@dataclass(frozen=True, slots=True)
class TableInfo:
    schema: str
    name: str
    estimated_rows: float  # pg_class.reltuples (-1 when never analyzed, PG14+)
    total_bytes: int  # heap + indexes + toast
    columns: tuple[str, ...]
    indexes: tuple[ExistingIndex, ...] = field(default=())
    #: A partitioned table (declarative partitioning): its rows and bytes are its leaf
    #: partitions' sums, and an index on it is built on every partition.
    partitioned: bool = False
    #: For a partition, the (schema, name) of the partitioned table at the top of its
    #: tree: the table the query names, and the one an index suggestion belongs to.
    partition_root: tuple[str, str] | None = None

    @property
    def qualified(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class Partition:
    """One table under a partitioned table, with the table directly above it.

    The export needs the whole tree: CREATE INDEX CONCURRENTLY is refused on a
    partitioned table, so the index is created ON ONLY each partitioned level, built
    CONCURRENTLY on each leaf, and attached level by level.
    """

    schema: str
    name: str
    parent_schema: str
    parent_name: str
    #: A partitioned partition (sub-partitioning): it gets its own ON ONLY index.
    partitioned: bool
    #: 1 for the root's direct partitions, 2 below them...
    level: int

    @property
    def qualified(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"


def server_info(conn: psycopg.Connection[Any]) -> ServerInfo:
    row = conn.execute(
        """
        SELECT current_setting('server_version'), current_setting('server_version_num')::int,
               current_database(),
               EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg'),
               EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')
        """
    ).fetchone()
    assert row is not None
    version = str(row[0]).split()[0]
    return ServerInfo(version, int(row[1]), str(row[2]), bool(row[3]), bool(row[4]))


_INDEXES_SQL = """
SELECT i.relname, n.nspname, t.relname,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
             FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k),
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
             FROM generate_series(x.indnkeyatts + 1, x.indnatts) AS k ORDER BY k),
       am.amname, x.indisunique, x.indisprimary, x.indisvalid,
       pg_get_expr(x.indpred, x.indrelid, true), pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = i.relam
WHERE n.nspname = %s AND t.relname = %s
ORDER BY i.relname
"""

_TABLE_SQL = """
SELECT CASE WHEN c.relkind = 'p' THEN
         (SELECT coalesce(sum(greatest(l.reltuples, 0)), 0) FROM pg_partition_tree(c.oid) t
          JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf)
       ELSE c.reltuples END,
       CASE WHEN c.relkind = 'p' THEN
         (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
          FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
       ELSE pg_total_relation_size(c.oid) END,
       ARRAY(SELECT a.attname FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum),
       c.relkind = 'p',
       CASE WHEN c.relispartition THEN
         (SELECT ARRAY[rn.nspname::text, r.relname::text] FROM pg_class r
          JOIN pg_namespace rn ON rn.oid = r.relnamespace
          WHERE r.oid = pg_partition_root(c.oid))
       END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'm')
"""

_PARTITIONS_SQL = """
SELECT n.nspname, c.relname, pn.nspname, p.relname, c.relkind = 'p', t.level
FROM pg_partition_tree(%s::regclass) t
JOIN pg_class c ON c.oid = t.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class p ON p.oid = t.parentrelid
JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE t.level > 0
ORDER BY t.level, n.nspname, c.relname
"""


def table_info(conn: psycopg.Connection[Any], schema: str, name: str) -> TableInfo | None:
    """The table's size, columns and indexes; None when there is no such table."""
    row = conn.execute(_TABLE_SQL, (schema, name)).fetchone()
    if row is None:
        return None
    indexes = tuple(
        ExistingIndex(
            name=r[0],
            schema=r[1],
            table=r[2],
            columns=tuple(r[3]),
            include=tuple(r[4]),
            method=r[5],
            is_unique=r[6],
            is_primary=r[7],
            is_valid=r[8],
            predicate=r[9],
            definition=r[10],
        )
        for r in conn.execute(_INDEXES_SQL, (schema, name)).fetchall()
    )
    return TableInfo(
        schema=schema,
        name=name,
        estimated_rows=float(row[0]),
        total_bytes=int(row[1]),
        columns=tuple(row[2]),
        indexes=indexes,
        partitioned=bool(row[3]),
        partition_root=(str(row[4][0]), str(row[4][1])) if row[4] else None,
    )


def partition_tree(conn: psycopg.Connection[Any], schema: str, name: str) -> tuple[Partition, ...]:
    """Every partition under a partitioned table, level by level (empty for a plain table)."""
    regclass = sql.Identifier(schema, name).as_string(conn)
    return tuple(
        Partition(str(r[0]), str(r[1]), str(r[2]), str(r[3]), bool(r[4]), int(r[5]))
        for r in conn.execute(_PARTITIONS_SQL, (regclass,)).fetchall()
    )


def resolve_table(
    conn: psycopg.Connection[Any], name: str, schema: str | None = None
) -> TableInfo | None:
    """Find a table the way the query's search_path would, when the plan gave no schema."""
    if schema:
        return table_info(conn, schema, name)
    row = conn.execute(
        """
        SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname = %s AND c.relkind IN ('r', 'p', 'm')
          AND n.nspname = ANY (current_schemas(false))
        ORDER BY array_position(current_schemas(false), n.nspname::text)
        LIMIT 1
        """,
        (name,),
    ).fetchone()
    return table_info(conn, str(row[0]), name) if row else None


@dataclass(frozen=True, slots=True)
class TableStatistics:
    """How current the planner's statistics of a table are (``pg_stat_all_tables``)."""

    schema: str
    name: str
    reltuples: float  # -1 when never analyzed nor vacuumed (PostgreSQL 14+)
    live_rows: float  # n_live_tup
    mod_since_analyze: float  # n_mod_since_analyze
    last_analyzed: datetime | None  # the later of last_analyze and last_autoanalyze
    has_column_stats: bool  # pg_stats has rows for it: it was analyzed at least once
    #: ``pg_stats.n_distinct`` per column, as stored: a count, or minus a share of the rows
    #: (``-0.25``: a quarter of the rows are distinct) when ANALYZE judged that it grows
    #: with the table. What the planner reads to estimate GROUP BY and DISTINCT groups.
    distinct: dict[str, float] = field(default_factory=dict)


_STATISTICS_SQL = """
SELECT t.schema, t.name, c.reltuples, s.n_live_tup, s.n_mod_since_analyze,
       GREATEST(s.last_analyze, s.last_autoanalyze),
       EXISTS (SELECT 1 FROM pg_stats p WHERE p.schemaname = t.schema AND p.tablename = t.name),
       (SELECT json_object_agg(p.attname, p.n_distinct) FROM pg_stats p
        WHERE p.schemaname = t.schema AND p.tablename = t.name AND NOT p.inherited)
FROM unnest(%s::text[], %s::text[]) AS t(schema, name)
JOIN pg_namespace n ON n.nspname = t.schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
JOIN pg_stat_all_tables s ON s.relid = c.oid
"""


def table_statistics(
    conn: psycopg.Connection[Any], tables: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], TableStatistics]:
    """Statistics freshness of (schema, name) tables, in one query; absent tables are left out.

    The running counters come from the statistics system and lag the last transactions by
    up to a second (they are flushed when a session goes idle).
    """
    pairs = sorted(set(tables))
    if not pairs:
        return {}
    rows = conn.execute(_STATISTICS_SQL, ([p[0] for p in pairs], [p[1] for p in pairs])).fetchall()
    return {
        (str(r[0]), str(r[1])): TableStatistics(
            schema=str(r[0]),
            name=str(r[1]),
            reltuples=float(r[2]),
            live_rows=float(r[3] or 0),
            mod_since_analyze=float(r[4] or 0),
            last_analyzed=r[5],
            has_column_stats=bool(r[6]),
            distinct={str(k): float(v) for k, v in (r[7] or {}).items() if v is not None},
        )
        for r in rows
    }


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """A foreign key and whether an index serves the lookups its triggers make."""

    name: str
    schema: str  # of the referencing table
    table: str  # the referencing table
    columns: tuple[str, ...]
    referenced_schema: str
    referenced_table: str
    referenced_columns: tuple[str, ...]
    #: A valid, non-partial index on the referencing table whose first key columns are
    #: exactly ``columns`` (in any order): what a delete on the referenced table needs.
    index: str | None

    @property
    def qualified(self) -> str:
        return self.table if self.schema == "public" else f"{self.schema}.{self.table}"

    @property
    def referenced_qualified(self) -> str:
        if self.referenced_schema == "public":
            return self.referenced_table
        return f"{self.referenced_schema}.{self.referenced_table}"


_FOREIGN_KEYS_SQL = """
SELECT con.conname, rn.nspname, r.relname,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       fn.nspname, f.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       (SELECT i.relname
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = con.conrelid AND x.indisvalid AND x.indpred IS NULL
          AND x.indnkeyatts >= cardinality(con.conkey)
          AND ARRAY(SELECT k FROM unnest(x.indkey) WITH ORDINALITY AS u(k, ord)
                    WHERE u.ord <= cardinality(con.conkey) ORDER BY k)
              = ARRAY(SELECT k FROM unnest(con.conkey) AS k ORDER BY k)
        ORDER BY x.indisprimary DESC, x.indisunique DESC, i.relname
        LIMIT 1)
FROM unnest(%s::text[], %s::text[]) AS t(conname, relname)
JOIN pg_constraint con ON con.contype = 'f' AND con.conname = t.conname
JOIN pg_class r ON r.oid = con.conrelid
JOIN pg_namespace rn ON rn.oid = r.relnamespace
JOIN pg_class f ON f.oid = con.confrelid
JOIN pg_namespace fn ON fn.oid = f.relnamespace
WHERE t.relname = '' OR t.relname IN (r.relname, f.relname)
ORDER BY con.conname, array_position(current_schemas(false), fn.nspname::text)
"""


def foreign_keys(
    conn: psycopg.Connection[Any], constraints: Iterable[tuple[str, str | None]]
) -> dict[str, ForeignKey]:
    """Foreign keys by constraint name, from (constraint, relation) pairs as a plan's
    triggers name them (the relation is either side; None when the plan does not say).

    A constraint name is unique per table only: the relation narrows it, and among equal
    names the first referenced table on the search_path wins.
    """
    pairs = sorted({(name, relation or "") for name, relation in constraints})
    if not pairs:
        return {}
    rows = conn.execute(
        _FOREIGN_KEYS_SQL, ([p[0] for p in pairs], [p[1] for p in pairs])
    ).fetchall()
    found: dict[str, ForeignKey] = {}
    for r in rows:
        found.setdefault(
            str(r[0]),
            ForeignKey(
                name=str(r[0]),
                schema=str(r[1]),
                table=str(r[2]),
                columns=tuple(r[3]),
                referenced_schema=str(r[4]),
                referenced_table=str(r[5]),
                referenced_columns=tuple(r[6]),
                index=r[7],
            ),
        )
    return found


# --- Index usage, sizes and write statistics (workload consolidation and removals) -------


@dataclass(frozen=True, slots=True)
class IndexUsage:
    """An existing index with what the statistics system counted for it."""

    name: str
    schema: str
    table: str
    #: Key columns in order as pg_get_indexdef prints each (``created_at DESC``,
    #: ``lower(email)``, ``name gin_trgm_ops``): equal texts mean equal keys.
    keys: tuple[str, ...]
    include: tuple[str, ...]
    method: str
    predicate: str | None
    is_unique: bool
    is_primary: bool
    is_exclusion: bool
    #: The name of the constraint (primary key, unique, exclusion) the index enforces.
    constraint: str | None
    is_valid: bool
    idx_scan: int
    size_bytes: int
    definition: str

    @property
    def qualified_table(self) -> str:
        return self.table if self.schema == "public" else f"{self.schema}.{self.table}"

    @property
    def enforces(self) -> bool:
        """Dropping it would drop a guarantee (uniqueness, a key, an exclusion)."""
        return self.is_unique or self.is_primary or self.is_exclusion or self.constraint is not None


_INDEX_USAGE_SQL = """
SELECT i.relname, n.nspname, t.relname,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
             FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k),
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
             FROM generate_series(x.indnkeyatts + 1, x.indnatts) AS k ORDER BY k),
       am.amname, pg_get_expr(x.indpred, x.indrelid, true),
       x.indisunique, x.indisprimary, x.indisexclusion,
       (SELECT c.conname FROM pg_constraint c
        WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x') LIMIT 1),
       x.indisvalid, COALESCE(s.idx_scan, 0), pg_relation_size(x.indexrelid),
       pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = i.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = x.indexrelid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
  AND t.relkind IN ('r', 'm', 'p')
ORDER BY n.nspname, t.relname, i.relname
"""


def index_usage(conn: psycopg.Connection[Any]) -> list[IndexUsage]:
    """Every index on the database's user tables, with its scans and its size."""
    return [
        IndexUsage(
            name=str(r[0]),
            schema=str(r[1]),
            table=str(r[2]),
            keys=tuple(r[3]),
            include=tuple(r[4]),
            method=str(r[5]),
            predicate=r[6],
            is_unique=bool(r[7]),
            is_primary=bool(r[8]),
            is_exclusion=bool(r[9]),
            constraint=r[10],
            is_valid=bool(r[11]),
            idx_scan=int(r[12]),
            size_bytes=int(r[13]),
            definition=str(r[14]),
        )
        for r in conn.execute(_INDEX_USAGE_SQL).fetchall()
    ]


@dataclass(frozen=True, slots=True)
class StatsSince:
    """Since when the usage counters count."""

    #: ``pg_stat_database.stats_reset`` when the statistics were reset, else the server's
    #: start (before PostgreSQL 15 the counters start over at every start; from 15 on they
    #: survive a clean restart, so the start time is then a lower bound).
    since: datetime | None
    #: ``stats_reset`` or ``server_start``.
    source: str


def stats_since(conn: psycopg.Connection[Any]) -> StatsSince:
    row = conn.execute(
        """
        SELECT d.stats_reset, pg_postmaster_start_time()
        FROM pg_stat_database d WHERE d.datname = current_database()
        """
    ).fetchone()
    if row is not None and row[0] is not None:
        return StatsSince(row[0], "stats_reset")
    if row is not None:
        return StatsSince(row[1], "server_start")
    return StatsSince(None, "server_start")


@dataclass(frozen=True, slots=True)
class TableWrites:
    """A table's write counters (``pg_stat_user_tables``) and average widths (``pg_stats``)."""

    schema: str
    name: str
    reltuples: float
    inserts: int  # n_tup_ins
    updates: int  # n_tup_upd
    hot_updates: int  # n_tup_hot_upd
    deletes: int  # n_tup_del
    heap_bytes: int  # pg_relation_size
    #: ``pg_stats.avg_width`` per column (absent before the first ANALYZE).
    column_widths: dict[str, int]
    #: The table's fillfactor reloption, percent (100 when not set).
    fillfactor: int = 100

    @property
    def row_bytes(self) -> float:
        """Bytes a new row version writes to the heap: the columns' average widths plus the
        23-byte tuple header (aligned to 24) and the 4-byte line pointer; without column
        statistics, the heap's size per row."""
        if self.column_widths:
            return sum(self.column_widths.values()) + 24 + 4
        if self.reltuples > 0:
            return self.heap_bytes / self.reltuples
        return 0.0


_TABLE_WRITES_SQL = """
SELECT t.schema, t.name, c.reltuples,
       COALESCE(s.n_tup_ins, 0), COALESCE(s.n_tup_upd, 0), COALESCE(s.n_tup_hot_upd, 0),
       COALESCE(s.n_tup_del, 0), pg_relation_size(c.oid),
       COALESCE((SELECT json_object_agg(p.attname, p.avg_width) FROM pg_stats p
                 WHERE p.schemaname = t.schema AND p.tablename = t.name
                   AND NOT p.inherited), '{}'::json),
       COALESCE((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) AS o
                 WHERE o LIKE 'fillfactor=%%'), 100)
FROM unnest(%s::text[], %s::text[]) AS t(schema, name)
JOIN pg_namespace n ON n.nspname = t.schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
"""


def table_writes(
    conn: psycopg.Connection[Any], tables: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], TableWrites]:
    """Write counters and column widths of (schema, name) tables, in one query."""
    pairs = sorted(set(tables))
    if not pairs:
        return {}
    rows = conn.execute(
        _TABLE_WRITES_SQL, ([p[0] for p in pairs], [p[1] for p in pairs])
    ).fetchall()
    return {
        (str(r[0]), str(r[1])): TableWrites(
            schema=str(r[0]),
            name=str(r[1]),
            reltuples=float(r[2]),
            inserts=int(r[3]),
            updates=int(r[4]),
            hot_updates=int(r[5]),
            deletes=int(r[6]),
            heap_bytes=int(r[7]),
            column_widths={str(k): int(v) for k, v in dict(r[8]).items()},
            fillfactor=int(r[9]),
        )
        for r in rows
    }


@dataclass(frozen=True, slots=True)
class TableActivity:
    """A table's read and write counters (``pg_stat_user_tables``, since the last reset):
    whether a cached result of a query on it would stay true for long."""

    schema: str
    name: str
    seq_scans: int  # seq_scan
    seq_rows_read: int  # seq_tup_read
    index_scans: int  # idx_scan
    index_rows_fetched: int  # idx_tup_fetch
    inserts: int  # n_tup_ins
    updates: int  # n_tup_upd
    deletes: int  # n_tup_del
    live_rows: int  # n_live_tup

    @property
    def rows_read(self) -> int:
        return self.seq_rows_read + self.index_rows_fetched

    @property
    def rows_written(self) -> int:
        return self.inserts + self.updates + self.deletes


_TABLE_ACTIVITY_SQL = """
SELECT t.schema, t.name,
       COALESCE(s.seq_scan, 0), COALESCE(s.seq_tup_read, 0),
       COALESCE(s.idx_scan, 0), COALESCE(s.idx_tup_fetch, 0),
       COALESCE(s.n_tup_ins, 0), COALESCE(s.n_tup_upd, 0), COALESCE(s.n_tup_del, 0),
       COALESCE(s.n_live_tup, 0)
FROM unnest(%s::text[], %s::text[]) AS t(schema, name)
JOIN pg_stat_user_tables s ON s.schemaname = t.schema AND s.relname = t.name
"""


def table_activity(
    conn: psycopg.Connection[Any], tables: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], TableActivity]:
    """Read and write counters of (schema, name) tables, in one query (tables the
    statistics do not know, views for instance, are absent)."""
    pairs = sorted(set(tables))
    if not pairs:
        return {}
    rows = conn.execute(
        _TABLE_ACTIVITY_SQL, ([p[0] for p in pairs], [p[1] for p in pairs])
    ).fetchall()
    return {
        (str(r[0]), str(r[1])): TableActivity(str(r[0]), str(r[1]), *(int(v) for v in r[2:]))
        for r in rows
    }


def volatile_functions(conn: psycopg.Connection[Any], names: Iterable[str]) -> frozenset[str]:
    """Which of these function names have a VOLATILE variant (``pg_proc.provolatile``): a
    query calling one may answer differently with the same values, so it is not cached."""
    wanted = sorted({n.lower() for n in names})
    if not wanted:
        return frozenset()
    rows = conn.execute(
        "SELECT DISTINCT proname::text FROM pg_proc WHERE proname = ANY(%s) AND provolatile = 'v'",
        (wanted,),
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


def hypothetical_index_size(conn: psycopg.Connection[Any], ddl: str) -> int | None:
    """HypoPG's estimate of an index's size (``hypopg_relation_size``), or None when HypoPG
    cannot create that index (GIN, GiST, an expression it rejects).

    Hypothetical indexes live in the session outside any transaction: all of them are
    dropped again (``hypopg_reset``), as verification does.
    """
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT hypopg_relation_size(indexrelid) FROM hypopg_create_index(%s)", (ddl,)
            ).fetchone()
    except psycopg.Error:
        return None
    finally:
        with suppress(psycopg.Error):
            conn.execute("SELECT hypopg_reset()")
    return int(row[0]) if row is not None and row[0] is not None else None


def estimated_rows(conn: psycopg.Connection[Any], schema: str, table: str, where: str) -> float:
    """The planner's row estimate for ``SELECT FROM table WHERE where`` (plain EXPLAIN:
    nothing runs): how many rows a partial index would hold."""
    statement = (
        sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {}.{} WHERE ")
        .format(sql.Identifier(schema), sql.Identifier(table))
        .as_string(conn)
        + where
    )
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        row = conn.execute(statement.encode()).fetchone()
    assert row is not None
    document = row[0][0] if isinstance(row[0], list) else row[0]
    return float(document["Plan"]["Plan Rows"])


def index_tree_names(conn: psycopg.Connection[Any], schema: str, name: str) -> tuple[str, ...]:
    """An index's name and, for an index of a partitioned table, the names of the indexes
    attached under it (``events_2024_user_id_idx``...): the ones a plan scans. Empty when
    there is no such index."""
    regclass = sql.Identifier(schema, name).as_string(conn)
    rows = conn.execute(
        "SELECT c.relname FROM pg_partition_tree(to_regclass(%s)) t "
        "JOIN pg_class c ON c.oid = t.relid ORDER BY t.level, c.relname",
        (regclass,),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


# --- Schema-wide facts for `explainer lint` (read once per run) --------------------------

#: Relations of the user's schemas: not the system's, not temporary, not an extension's.
_USER_RELATION = """
n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s::text)
AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                AND d.objid = c.oid AND d.deptype = 'e')
"""

#: Only the (schema, name) pairs given, when given: an analysis lints the tables its
#: workload touches, and must not wait behind a lock on another table (pg_relation_size).
_ONLY_RELATIONS = """
AND (%(only_schemas)s::text[] IS NULL
     OR (n.nspname::text, c.relname::text) IN (
         SELECT * FROM unnest(%(only_schemas)s::text[], %(only_names)s::text[])))
"""


def _only(only: Collection[tuple[str, str]] | None) -> dict[str, list[str] | None]:
    pairs = sorted(only) if only is not None else None
    return {
        "only_schemas": [s for s, _ in pairs] if pairs is not None else None,
        "only_names": [t for _, t in pairs] if pairs is not None else None,
    }


@dataclass(frozen=True, slots=True)
class SchemaTable:
    """A table of the user's schemas with the facts the schema lint judges it by."""

    schema: str
    name: str
    kind: str  # pg_class.relkind: r (table), p (partitioned), m (materialized view)
    is_partition: bool
    has_primary_key: bool
    reltuples: float  # -1 when never analyzed nor vacuumed (PostgreSQL 14+)
    live_rows: float  # pg_stat_user_tables.n_live_tup (0 when unknown)
    heap_bytes: int  # pg_relation_size: 0 for a table no row was ever written to
    #: The later of last_analyze and last_autoanalyze; None when never analyzed.
    last_analyzed: datetime | None
    #: A valid, non-partial unique btree index on plain NOT NULL columns: the one
    #: ``ADD PRIMARY KEY USING INDEX`` can promote. None when there is none.
    unique_index: str | None
    unique_columns: tuple[str, ...]
    columns: tuple[str, ...] = ()

    @property
    def qualified(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"


_SCHEMA_TABLES_SQL = f"""
SELECT n.nspname, c.relname, c.relkind::text, c.relispartition,
       EXISTS (SELECT 1 FROM pg_constraint p WHERE p.conrelid = c.oid AND p.contype = 'p'),
       c.reltuples, COALESCE(s.n_live_tup, 0),
       CASE WHEN c.relkind = 'p' THEN 0 ELSE pg_relation_size(c.oid) END,
       GREATEST(s.last_analyze, s.last_autoanalyze),
       u.relname, COALESCE(u.columns, ARRAY[]::text[]),
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
LEFT JOIN LATERAL (
    SELECT i.relname,
           ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                 ORDER BY k.ord) AS columns
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_am am ON am.oid = i.relam
    WHERE x.indrelid = c.oid AND x.indisunique AND x.indisvalid AND x.indpred IS NULL
      AND x.indexprs IS NULL AND am.amname = 'btree' AND x.indnatts = x.indnkeyatts
      AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey) AS k(attnum)
                      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                      WHERE NOT a.attnotnull)
    ORDER BY x.indnkeyatts, i.relname
    LIMIT 1
) u ON true
WHERE c.relkind IN ('r', 'p', 'm') AND {_USER_RELATION} {_ONLY_RELATIONS}
ORDER BY n.nspname, c.relname
"""


def schema_tables(
    conn: psycopg.Connection[Any],
    schema: str | None = None,
    only: Collection[tuple[str, str]] | None = None,
) -> list[SchemaTable]:
    """Every table (and materialized view) of ``schema``, or of all user schemas when None;
    with ``only``, just those (schema, name)."""
    return [
        SchemaTable(
            schema=str(r[0]),
            name=str(r[1]),
            kind=str(r[2]),
            is_partition=bool(r[3]),
            has_primary_key=bool(r[4]),
            reltuples=float(r[5]),
            live_rows=float(r[6]),
            heap_bytes=int(r[7]),
            last_analyzed=r[8],
            unique_index=r[9],
            unique_columns=tuple(r[10]),
            columns=tuple(r[11]),
        )
        for r in conn.execute(_SCHEMA_TABLES_SQL, {"schema": schema, **_only(only)}).fetchall()
    ]


_SCHEMA_FOREIGN_KEYS_SQL = f"""
SELECT con.conname, n.nspname, c.relname,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       fn.nspname, f.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       (SELECT i.relname
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_am am ON am.oid = i.relam
        WHERE x.indrelid = con.conrelid AND x.indisvalid AND x.indpred IS NULL
          AND am.amname = 'btree'
          AND x.indnkeyatts >= cardinality(con.conkey)
          AND ARRAY(SELECT k FROM unnest(x.indkey) WITH ORDINALITY AS u(k, ord)
                    WHERE u.ord <= cardinality(con.conkey) ORDER BY k)
              = ARRAY(SELECT k FROM unnest(con.conkey) AS k ORDER BY k)
        ORDER BY x.indisprimary DESC, x.indisunique DESC, i.relname
        LIMIT 1)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class f ON f.oid = con.confrelid
JOIN pg_namespace fn ON fn.oid = f.relnamespace
WHERE con.contype = 'f' AND (con.conparentid <> 0) = %(clones)s AND {_USER_RELATION}
ORDER BY n.nspname, c.relname, con.conname
"""


def schema_foreign_keys(
    conn: psycopg.Connection[Any], schema: str | None = None, *, clones: bool = False
) -> list[ForeignKey]:
    """Every foreign key whose referencing table is in ``schema`` (all user schemas when
    None), with the btree index that serves its lookups, if any.

    A partition's copies of its partitioned table's foreign key (``conparentid``) are left
    out: the key is the parent's, and so is the index that serves it. With ``clones``,
    only those copies: each names the partition's own index that serves it.
    """
    return [
        ForeignKey(
            name=str(r[0]),
            schema=str(r[1]),
            table=str(r[2]),
            columns=tuple(r[3]),
            referenced_schema=str(r[4]),
            referenced_table=str(r[5]),
            referenced_columns=tuple(r[6]),
            index=r[7],
        )
        for r in conn.execute(
            _SCHEMA_FOREIGN_KEYS_SQL, {"schema": schema, "clones": clones}
        ).fetchall()
    ]


@dataclass(frozen=True, slots=True)
class TextColumn:
    """A ``text`` or ``varchar`` column with what ``pg_stats`` holds of its values."""

    schema: str
    table: str
    name: str
    type: str  # format_type: text, character varying(20)
    not_null: bool
    #: Whether pg_stats has a row for the column (its table was analyzed).
    analyzed: bool
    null_frac: float
    #: ``most_common_vals`` and ``histogram_bounds`` together: up to a few hundred of the
    #: column's values, the most frequent and the spread of the rest (min and max included).
    values: tuple[str, ...]

    @property
    def qualified_table(self) -> str:
        return self.table if self.schema == "public" else f"{self.schema}.{self.table}"


_TEXT_COLUMNS_SQL = f"""
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       s.attname IS NOT NULL, COALESCE(s.null_frac, 0),
       COALESCE(s.most_common_vals::text::text[], ARRAY[]::text[])
         || COALESCE(s.histogram_bounds::text::text[], ARRAY[]::text[])
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
     AND s.attname = a.attname AND s.inherited = (c.relkind = 'p')
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)
  AND {_USER_RELATION} {_ONLY_RELATIONS}
ORDER BY n.nspname, c.relname, a.attnum
"""


def text_columns(
    conn: psycopg.Connection[Any],
    schema: str | None = None,
    only: Collection[tuple[str, str]] | None = None,
) -> list[TextColumn]:
    """The text and varchar columns of the user's tables (partitions are read through
    their partitioned table), each with its pg_stats values; with ``only``, of just
    those (schema, name)."""
    return [
        TextColumn(
            schema=str(r[0]),
            table=str(r[1]),
            name=str(r[2]),
            type=str(r[3]),
            not_null=bool(r[4]),
            analyzed=bool(r[5]),
            null_frac=float(r[6]),
            values=tuple(str(v) for v in r[7] if v is not None),
        )
        for r in conn.execute(_TEXT_COLUMNS_SQL, {"schema": schema, **_only(only)}).fetchall()
    ]


#: Pages a sample reads at most: TABLESAMPLE SYSTEM picks whole pages at random.
SAMPLE_PAGES = 64


def sample_values(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    columns: Iterable[str],
    *,
    limit: int = 1000,
    timeout_ms: int = 5000,
) -> dict[str, list[str]]:
    """Up to ``limit`` rows' non-NULL values of ``columns``, as text, from a random sample
    of about SAMPLE_PAGES pages (``TABLESAMPLE SYSTEM``): for columns pg_stats knows
    nothing of. Read-only, bounded by ``timeout_ms``; a sample that fails (timeout, lock,
    permission) is empty rather than an error.
    """
    names = list(dict.fromkeys(columns))
    if not names:
        return {}
    row = conn.execute(
        # A partitioned table's pages are its partitions'.
        "SELECT GREATEST((SELECT coalesce(sum(pg_relation_size(t.relid)), 0)"
        " FROM pg_partition_tree(c.oid) t) / current_setting('block_size')::int, 1)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    pages = int(row[0]) if row is not None else 1
    percent = min(100.0, 100.0 * SAMPLE_PAGES / pages)
    statement = sql.SQL("SELECT {} FROM {} TABLESAMPLE SYSTEM ({}) WHERE {} LIMIT {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in names),
        sql.Identifier(schema, table),
        sql.Literal(percent),
        sql.SQL(" OR ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in names),
        sql.Literal(limit),
    )
    found: dict[str, list[str]] = {c: [] for c in names}
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(
                sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(timeout_ms))
            )
            rows = conn.execute(statement).fetchall()
    except psycopg.Error:
        return found
    for r in rows:
        for name, value in zip(names, r, strict=True):
            if value is not None:
                found[name].append(str(value))
    return found
