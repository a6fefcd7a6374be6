"""Rules that need the database, on a real PostgreSQL: stale statistics and foreign key
triggers, through the catalog queries that feed them and through ``explainer analyze``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from explainer.cli import main
from explainer.db.catalog import foreign_keys, table_statistics

#: Rows loaded before ANALYZE, then rows added after it (ten times as many).
ANALYZED_ROWS = 2_000
ADDED_ROWS = 20_000


def _wait_for_counters(dsn: str, table: str, live: int) -> None:
    """The statistics system publishes a session's counters when it ends or goes idle, up
    to a second later: wait until n_live_tup shows what the setup wrote."""
    deadline = time.monotonic() + 10
    while True:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = %s", (table,)
            ).fetchone()
        if row is not None and row[0] == live:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"n_live_tup of {table} is {row}, expected {live}")
        time.sleep(0.2)


def _flush_counters(conn: psycopg.Connection[Any]) -> None:
    """Publish this session's counters now (PostgreSQL 15+), so that ANALYZE, which resets
    n_live_tup, comes after the inserts before it and not before (the figures stay exact)."""
    conn.execute("SELECT pg_stat_force_next_flush()")


@pytest.fixture(scope="module")
def stats_dsn(db_dsn: str) -> Iterator[str]:
    """``grown``: analyzed at 2,000 rows, then 20,000 more rows and no ANALYZE (autovacuum
    off for it). ``fresh``: the same load, analyzed at the end. ``unanalyzed``: 5,000 rows,
    never analyzed. ``parents`` / ``children``: a foreign key without an index on the
    referencing column, and ``pairs`` / ``pair_items``: a two-column one with an index whose
    columns come in the other order."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for name in ("grown", "fresh", "unanalyzed"):
            conn.execute(f"CREATE TABLE {name} (id int, v int) WITH (autovacuum_enabled = off)")
        for name in ("grown", "fresh"):
            conn.execute(
                f"INSERT INTO {name} SELECT i, i % 7 FROM generate_series(1, {ANALYZED_ROWS}) i"
            )
            _flush_counters(conn)
            conn.execute(f"ANALYZE {name}")
            conn.execute(
                f"INSERT INTO {name} SELECT i, i % 7 FROM generate_series("
                f"{ANALYZED_ROWS + 1}, {ANALYZED_ROWS + ADDED_ROWS}) i"
            )
        _flush_counters(conn)
        conn.execute("ANALYZE fresh")
        conn.execute("INSERT INTO unanalyzed SELECT i, i FROM generate_series(1, 5000) i")

        conn.execute("CREATE TABLE parents (id int PRIMARY KEY)")
        conn.execute("INSERT INTO parents SELECT generate_series(1, 2000)")
        conn.execute("CREATE TABLE children (id int PRIMARY KEY, parent_id int REFERENCES parents)")
        # Nothing references parents 1..20, so deleting them succeeds after the checks.
        conn.execute(
            "INSERT INTO children SELECT i, 21 + i % 1980 FROM generate_series(1, 200000) i"
        )
        conn.execute("CREATE TABLE pairs (a int, b int, PRIMARY KEY (a, b))")
        conn.execute(
            "CREATE TABLE pair_items (id int, a int, b int,"
            " CONSTRAINT pair_items_pair FOREIGN KEY (a, b) REFERENCES pairs)"
        )
        conn.execute("CREATE INDEX pair_items_ba ON pair_items (b, a, id)")
        _flush_counters(conn)
        conn.execute("VACUUM ANALYZE parents, children, pairs, pair_items")
    _wait_for_counters(db_dsn, "grown", ANALYZED_ROWS + ADDED_ROWS)
    _wait_for_counters(db_dsn, "unanalyzed", 5000)
    yield db_dsn


def test_table_statistics_reads_the_counters(stats_dsn: str) -> None:
    with psycopg.connect(stats_dsn) as conn:
        stats = table_statistics(
            conn,
            [
                ("public", "grown"),
                ("public", "fresh"),
                ("public", "unanalyzed"),
                ("public", "no_such_table"),
            ],
        )
    assert set(stats) == {("public", "grown"), ("public", "fresh"), ("public", "unanalyzed")}
    grown = stats[("public", "grown")]
    assert grown.reltuples == ANALYZED_ROWS
    assert grown.live_rows == ANALYZED_ROWS + ADDED_ROWS
    assert grown.mod_since_analyze == ADDED_ROWS
    assert grown.last_analyzed is not None
    assert grown.has_column_stats is True
    fresh = stats[("public", "fresh")]
    assert (fresh.reltuples, fresh.mod_since_analyze) == (ANALYZED_ROWS + ADDED_ROWS, 0)
    unanalyzed = stats[("public", "unanalyzed")]
    assert unanalyzed.has_column_stats is False
    assert unanalyzed.last_analyzed is None


def test_foreign_keys_resolve_tables_columns_and_index(stats_dsn: str) -> None:
    with psycopg.connect(stats_dsn) as conn:
        found = foreign_keys(
            conn,
            [
                ("children_parent_id_fkey", "parents"),
                ("pair_items_pair", None),
                ("no_such_constraint", "parents"),
            ],
        )
    assert set(found) == {"children_parent_id_fkey", "pair_items_pair"}
    fk = found["children_parent_id_fkey"]
    assert (fk.qualified, fk.columns, fk.referenced_qualified, fk.referenced_columns) == (
        "children",
        ("parent_id",),
        "parents",
        ("id",),
    )
    assert fk.index is None  # only the primary key on children.id
    pair = found["pair_items_pair"]
    assert pair.columns == ("a", "b")
    assert pair.index == "pair_items_ba"  # leading (b, a) serves a lookup on (a, b)


def _analyze(capsys: pytest.CaptureFixture[str], dsn: str, *args: str) -> dict[str, Any]:
    code = main(["analyze", "--dsn", dsn, "--verify", "none", "--format", "json", *args])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 0, report
    [query] = report["queries"]
    assert query.get("error") is None, query
    return query  # type: ignore[no-any-return]


def _findings(query: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [f for f in query["findings"] if f["rule"] == rule]


def test_grown_table_gets_analyze_advice(
    stats_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    query = _analyze(capsys, stats_dsn, "--query", "SELECT count(*) FROM grown")
    [finding] = _findings(query, "stale-statistics")
    assert finding["table"] == "grown"
    assert finding["severity"] == "high"
    assert finding["node"] == "0.0"  # the Seq Scan under the Aggregate
    details = finding["details"]
    assert details["reltuples"] == ANALYZED_ROWS
    assert details["rows_seen"] == ANALYZED_ROWS + ADDED_ROWS  # the scan read every row
    assert details["factor"] == pytest.approx(11.0)
    assert details["mod_since_analyze"] == ADDED_ROWS
    assert details["mod_share"] == pytest.approx(ADDED_ROWS / (ANALYZED_ROWS + ADDED_ROWS))
    assert "ANALYZE grown" in finding["message"]
    assert "2,000 rows but the plan read 22,000 (11x)" in finding["message"]


def test_fresh_table_has_no_finding(stats_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    query = _analyze(capsys, stats_dsn, "--query", "SELECT count(*) FROM fresh")
    assert _findings(query, "stale-statistics") == []


def test_never_analyzed_table(stats_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    query = _analyze(capsys, stats_dsn, "--query", "SELECT * FROM unanalyzed WHERE v = 3")
    [finding] = _findings(query, "stale-statistics")
    assert finding["table"] == "unanalyzed"
    assert finding["details"]["reasons"] == ["it was never analyzed (no column statistics)"]


def test_unindexed_foreign_key_trigger(stats_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "DELETE FROM parents WHERE id <= 20"
    query = _analyze(capsys, stats_dsn, "--analyze-writes", "--query", sql)
    [finding] = _findings(query, "slow-fk-trigger")
    details = finding["details"]
    assert details["constraint"] == "children_parent_id_fkey"
    assert details["relation"] == "parents"
    assert details["side"] == "referenced"
    assert details["calls"] == 20  # one check per deleted row
    assert details["referencing_table"] == "children"
    assert details["referencing_columns"] == ["parent_id"]
    assert details["existing_index"] is None
    assert details["index_ddl"] == "CREATE INDEX ON children (parent_id)"
    assert finding["table"] == "children"
    assert finding["node"] == "0"  # the Delete on parents
    assert "CREATE INDEX ON children (parent_id)" in finding["message"]
    # Its tables' statistics are current: the only finding on them is the trigger's.
    assert _findings(query, "stale-statistics") == []
    # The statement was rolled back: the rows are still there.
    with psycopg.connect(stats_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM parents").fetchone() == (2000,)

    with psycopg.connect(stats_dsn, autocommit=True) as conn:
        conn.execute("CREATE INDEX children_parent ON children (parent_id)")
    try:
        query = _analyze(capsys, stats_dsn, "--analyze-writes", "--query", sql)
    finally:
        with psycopg.connect(stats_dsn, autocommit=True) as conn:
            conn.execute("DROP INDEX children_parent")
    # With the index each check is a lookup: far under 10 ms for 20 calls.
    assert _findings(query, "slow-fk-trigger") == []
