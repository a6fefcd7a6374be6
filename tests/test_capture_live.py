"""A log written by a real PostgreSQL during the test: the workload counts what was sent.

The server logs every statement (log_min_duration_statement = 0); the test sends a known
mix through psycopg 3's extended protocol (server-side binding, auto-prepared after five
runs), its executemany, and its client-side binding (the simple query protocol), then
reads the server's own log back.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from explainer.capture import read_input
from explainer.db.server import ThrowawayServer
from explainer.workload import build_workload, fingerprint

LOGGING = {
    "log_min_duration_statement": "0",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_timezone": "UTC",
}


@pytest.fixture(scope="module")
def logging_server() -> Iterator[ThrowawayServer]:
    with ThrowawayServer(settings=LOGGING) as server:
        yield server


def send_known_mix(dsn: str) -> dict[str, int]:
    """Run the mix; return the number of executions sent per shape (as SQL with $n)."""
    sent: dict[str, int] = {}

    def count(shape: str, times: int = 1) -> None:
        sent[shape] = sent.get(shape, 0) + times

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric)")
        conn.execute(
            "INSERT INTO items SELECT i, 'item ' || i, i FROM generate_series(1, 100) AS i"
        )
        count("INSERT INTO items SELECT i, 'item ' || i, i FROM generate_series(1, 100) AS i")
        # Extended protocol; psycopg prepares the statement server-side after 5 runs.
        for i in range(12):
            conn.execute("SELECT name, price FROM items WHERE id = %s", (i,))
        count("SELECT name, price FROM items WHERE id = $1", 12)
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO items (id, name, price) VALUES (%s, %s, %s)",
                [(1000 + i, f"new {i}", i) for i in range(7)],
            )
            count("INSERT INTO items (id, name, price) VALUES ($1, $2, $3)", 7)
            conn.execute("UPDATE items SET price = price + 1 WHERE id = %s", (1000,))
            count("UPDATE items SET price = price + 1 WHERE id = $1")
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM no_such_table WHERE id = %s", (1,))
    # Client-side binding: literals in the text, sent with the simple query protocol.
    with psycopg.connect(dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        for name in ("item 1", "item 2", "it's quoted", "item 4"):
            conn.execute("SELECT count(*) FROM items WHERE name = %s", (name,))
        count("SELECT count(*) FROM items WHERE name = 'x'", 4)
        for ids in ([1], [1, 2, 3], list(range(40))):
            conn.execute("SELECT * FROM items WHERE id IN ({})".format(", ".join(map(str, ids))))
        count("SELECT * FROM items WHERE id IN (1)", 3)
        conn.execute("SELECT name\nFROM items\nWHERE price > %s\nORDER BY price", (50,))
        count("SELECT name FROM items WHERE price > 50 ORDER BY price")
    return sent


def test_workload_counts_equal_the_statements_sent(logging_server: ThrowawayServer) -> None:
    dsn = logging_server.create_database("live")
    sent = send_known_mix(dsn)
    queries, stats = read_input(str(logging_server.log_path))
    mine = [q for q in queries if q.database == "live"]
    workload = build_workload(mine)
    counted = {group.fingerprint: group.calls for group in workload.groups}
    expected = {fingerprint(sql): calls for sql, calls in sent.items()}
    assert counted == expected
    # The failed statement is not a query, but the reader says it saw it.
    assert stats.skip_reasons.get("statement failed (ERROR)", 0) >= 1
    # Extended-protocol executions carry their values, ready to be replayed.
    lookup = next(g for g in workload.groups if "WHERE id = $1" in g.example.sql and
                  "SELECT name" in g.example.sql)
    assert lookup.example.parameters and lookup.example.replayable
