"""The server's connections right now: pg_stat_activity, pg_locks and the limits.

Pooling advice weighs what the application did (the log, the in-app capture) against what
the server allows (``max_connections`` less the reserved slots) and what is holding it up
at this moment: a session ``idle in transaction`` keeps its locks and its snapshot (so
VACUUM cannot remove rows any later transaction deleted) until the application comes back
to it. Only client backends are counted, and never explainer's own session.

The reads are catalog views only, on the analysis connection whose ``statement_timeout``
and ``lock_timeout`` :func:`explainer.db.explain.bound_session` already set, so they cannot
wait for ever. A role without ``pg_read_all_stats`` sees other roles' sessions without a
state: they are counted as ``unknown``, and :attr:`ServerActivity.hidden` says how many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

#: Longest statement text kept of an idle transaction's last query.
QUERY_CHARS = 200
#: Idle transactions read, oldest first.
MAX_IDLE = 20


@dataclass(frozen=True, slots=True)
class IdleTransaction:
    """A session ``idle in transaction``: open, holding what it locked, doing nothing."""

    pid: int
    user: str | None
    database: str | None
    application: str | None
    client: str | None
    """Client address (``host:port``), or None for a Unix socket."""
    idle_seconds: float
    """Since its last statement ended (``now() - state_change``)."""
    transaction_seconds: float
    """Since its transaction began (``now() - xact_start``)."""
    locks: int
    """Locks it holds (granted rows of pg_locks: relations, its transaction id...). Row
    locks of ``SELECT ... FOR UPDATE`` and ``UPDATE`` live in the rows, not here: they show
    as its transaction id lock, which whoever waits for the rows waits for."""
    relations: tuple[str, ...]
    """Relations it holds locks on (in this database), by name."""
    blocking: int
    """Sessions waiting for a lock it holds right now."""
    aborted: bool
    """``idle in transaction (aborted)``: a statement failed and nobody rolled back."""
    query: str
    """Its last statement, on one line and cut at :data:`QUERY_CHARS`."""


@dataclass(frozen=True, slots=True)
class ServerActivity:
    """One snapshot of the server's client connections and their limits."""

    max_connections: int
    superuser_reserved: int
    reserved: int
    """``reserved_connections`` (PostgreSQL 16+, for roles with pg_use_reserved_connections);
    0 before."""
    idle_in_transaction_timeout_ms: int
    """``idle_in_transaction_session_timeout`` for explainer's session (0: disabled). Set
    per role or database it may differ for the application's role."""
    idle_session_timeout_ms: int
    """``idle_session_timeout`` (PostgreSQL 14+; 0: disabled or unknown)."""
    by_state: dict[str, int] = field(default_factory=dict)
    """Client backends by state (``active``, ``idle``, ``idle in transaction``...,
    ``unknown`` when the role may not see it)."""
    by_application: dict[str, int] = field(default_factory=dict)
    """Client backends by ``application_name`` (``""`` when unset)."""
    by_user: dict[str, int] = field(default_factory=dict)
    idle_transactions: tuple[IdleTransaction, ...] = ()
    """Oldest first, at most :data:`MAX_IDLE`."""
    hidden: int = 0
    """Sessions whose state explainer's role may not see."""

    @property
    def usable(self) -> int:
        """Connections ordinary roles may open: ``max_connections`` less the reserved slots."""
        return max(0, self.max_connections - self.superuser_reserved - self.reserved)

    @property
    def total(self) -> int:
        """Client connections open besides explainer's."""
        return sum(self.by_state.values())


_SETTINGS = """
SELECT current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int,
       (SELECT setting::bigint FROM pg_settings
         WHERE name = 'idle_in_transaction_session_timeout'),
       coalesce((SELECT setting::bigint FROM pg_settings WHERE name = 'idle_session_timeout'), 0)
"""

_SESSIONS = """
SELECT coalesce(state, 'unknown'), coalesce(application_name, ''), coalesce(usename, ''),
       count(*)
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
 GROUP BY 1, 2, 3
"""

_IDLE = """
SELECT a.pid, a.usename, a.datname, a.application_name,
       CASE WHEN a.client_addr IS NOT NULL THEN host(a.client_addr) || ':' || a.client_port END,
       extract(epoch FROM clock_timestamp() - a.state_change)::float8,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
       (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.granted),
       ARRAY(SELECT DISTINCT l.relation::regclass::text FROM pg_locks l
              WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
                AND l.database = (SELECT oid FROM pg_database
                                   WHERE datname = current_database())
              ORDER BY 1),
       (SELECT count(*) FROM pg_stat_activity w WHERE a.pid = ANY(pg_blocking_pids(w.pid))),
       a.state = 'idle in transaction (aborted)',
       coalesce(a.query, '')
  FROM pg_stat_activity a
 WHERE a.state IN ('idle in transaction', 'idle in transaction (aborted)')
   AND a.pid <> pg_backend_pid()
 ORDER BY a.state_change
 LIMIT %s
"""


def server_activity(conn: psycopg.Connection[Any]) -> ServerActivity:
    """Read the snapshot (three catalog queries; psycopg errors propagate to the caller,
    which turns them into a report note)."""
    settings = conn.execute(_SETTINGS).fetchone()
    assert settings is not None
    max_connections, superuser, reserved, idle_tx, idle_session = settings
    by_state: dict[str, int] = {}
    by_application: dict[str, int] = {}
    by_user: dict[str, int] = {}
    for state, application, user, count in conn.execute(_SESSIONS).fetchall():
        by_state[state] = by_state.get(state, 0) + count
        by_application[application] = by_application.get(application, 0) + count
        if user:
            by_user[user] = by_user.get(user, 0) + count
    idle = tuple(
        IdleTransaction(
            pid=row[0],
            user=row[1],
            database=row[2],
            application=row[3] or None,
            client=row[4],
            idle_seconds=max(0.0, float(row[5] or 0.0)),
            transaction_seconds=max(0.0, float(row[6] or 0.0)),
            locks=int(row[7]),
            relations=tuple(row[8] or ()),
            blocking=int(row[9]),
            aborted=bool(row[10]),
            query=_one_line(row[11]),
        )
        for row in conn.execute(_IDLE, (MAX_IDLE,)).fetchall()
    )
    return ServerActivity(
        max_connections=int(max_connections),
        superuser_reserved=int(superuser),
        reserved=int(reserved),
        idle_in_transaction_timeout_ms=int(idle_tx or 0),
        idle_session_timeout_ms=int(idle_session or 0),
        by_state=by_state,
        by_application=by_application,
        by_user=by_user,
        idle_transactions=idle,
        hidden=by_state.get("unknown", 0),
    )


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUERY_CHARS else flat[: QUERY_CHARS - 3] + "..."
