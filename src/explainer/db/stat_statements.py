"""The workload pg_stat_statements has recorded, read live from the connected database.

The rows become captured queries (see :mod:`explainer.capture.pgss`): one per shape,
standing for its calls and total time. explainer's own statements (EXPLAIN, its catalog
reads) are left out so that a second analysis does not analyze the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.pgss import read_pgss_rows
from explainer.errors import InputError

#: pg_stat_statements 1.8 (PostgreSQL 13) renamed total_time to total_exec_time.
EXEC_TIME_VERSION = 130000


@dataclass(frozen=True, slots=True)
class StatStatementsFilter:
    min_calls: int = 1
    min_total_ms: float = 0.0
    #: The N shapes with the most total time; None for all.
    top: int | None = None


def _installed(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('pg_stat_statements') IS NOT NULL").fetchone()
    return bool(row and row[0])


def read_stat_statements(
    conn: psycopg.Connection[Any], selection: StatStatementsFilter
) -> tuple[list[CapturedQuery], CaptureStats]:
    """The current database's rows, heaviest first, as captured queries."""
    if not _installed(conn):
        raise InputError(
            "pg_stat_statements is not installed in this database: add it to "
            "shared_preload_libraries, restart, then CREATE EXTENSION pg_stat_statements"
        )
    total = "total_exec_time" if conn.info.server_version >= EXEC_TIME_VERSION else "total_time"
    query = f"""
        SELECT s.query, s.calls, s.{total} AS total_exec_time, r.rolname AS user,
               d.datname
        FROM pg_stat_statements s
        JOIN pg_database d ON d.oid = s.dbid
        LEFT JOIN pg_roles r ON r.oid = s.userid
        WHERE d.datname = current_database()
          AND s.calls >= %(min_calls)s AND s.{total} >= %(min_total_ms)s
          AND s.query !~* '^\\s*explain\\b'
          AND s.query !~* 'pg_stat_statements'
        ORDER BY s.{total} DESC
        LIMIT %(top)s
    """
    try:
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            rows = cursor.execute(
                query.encode(),
                {
                    "min_calls": selection.min_calls,
                    "min_total_ms": selection.min_total_ms,
                    "top": selection.top,
                },
            ).fetchall()
    except psycopg.errors.ObjectNotInPrerequisiteState:
        # CREATE EXTENSION succeeds without the library preloaded; reading it does not.
        raise InputError(
            "pg_stat_statements is installed in this database but not loaded by the server: "
            "add it to shared_preload_libraries and restart"
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise InputError(
            f"cannot read pg_stat_statements: {exc.diag.message_primary} "
            "(grant the role pg_read_all_stats)"
        ) from None
    return read_pgss_rows(rows, source="pg_stat_statements", first_line=1)
