"""What the catalog knows that a plan does not: existing indexes, table sizes, extensions.

The advisor needs these to avoid suggesting an index that already exists and to resolve
unqualified column names; the report needs the server's version. Every query here reads
``pg_catalog`` only, with names passed as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg


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
SELECT c.reltuples, pg_total_relation_size(c.oid),
       ARRAY(SELECT a.attname FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'm')
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
