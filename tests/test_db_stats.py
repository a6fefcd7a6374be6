"""db/stats.py against a real server: pg_stats and pg_class figures of a purpose-built table."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from explainer.db.stats import ColumnStats, installed_extensions, table_stats


@pytest.fixture(scope="module")
def conn(db_dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        # 20,000 rows: status 'pending' on exactly 1% (every 100th row), 'cancelled' on 25%,
        # 'shipped' on the rest; note is NULL on 90%; id unique.
        conn.execute(
            """
            CREATE TABLE stats_orders (
                id int PRIMARY KEY, status text NOT NULL, note varchar(50), payload jsonb);
            INSERT INTO stats_orders
            SELECT g,
                   CASE WHEN g % 100 = 0 THEN 'pending' WHEN g % 4 = 1 THEN 'cancelled'
                        ELSE 'shipped' END,
                   CASE WHEN g % 10 = 0 THEN 'n' || g END,
                   jsonb_build_object('kind', g % 3)
            FROM generate_series(1, 20000) AS g;
            CREATE TABLE stats_never (a int);
            """
        )
        conn.execute("VACUUM (FREEZE, ANALYZE) stats_orders")
        yield conn


def test_most_common_values_are_the_rows_shares(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    stats = table_stats(conn, "public", "stats_orders", ["status", "note", "id"])
    assert stats is not None
    assert stats.reltuples == 20000
    assert stats.relpages > 0
    # VACUUM just ran: on PostgreSQL 15 every page is all-visible; the embedded 18 leaves
    # relallvisible at 0 after this VACUUM, so only the share's range is asserted here.
    assert stats.visible_share is not None and 0.0 <= stats.visible_share <= 1.0
    assert set(stats.columns) == {"status", "note", "id"}
    status = stats.columns["status"]
    assert status.type == "text"
    # 20,000 rows fit in the default sample of 30,000: the shares are exact.
    assert status.frequency("pending") == pytest.approx(0.01)
    assert status.frequency("cancelled") == pytest.approx(0.25, abs=0.001)
    assert status.frequency("shipped") == pytest.approx(0.74, abs=0.001)
    assert status.n_distinct == 3
    assert status.equality_selectivity("pending", stats.reltuples) == pytest.approx(0.01)
    note = stats.columns["note"]
    assert note.type == "character varying(50)"
    assert note.null_frac == pytest.approx(0.9)
    # id is unique: pg_stats says -1 (every row distinct), one row in 20,000 per value.
    ident = stats.columns["id"]
    assert ident.n_distinct == -1
    assert ident.equality_selectivity("17", stats.reltuples) == pytest.approx(1 / 20000)


def test_all_columns_when_none_are_named(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    stats = table_stats(conn, "public", "stats_orders")
    assert stats is not None
    assert list(stats.columns) == ["id", "status", "note", "payload"]
    assert stats.columns["payload"].type == "jsonb"


def test_a_never_analyzed_table_says_so(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    stats = table_stats(conn, "public", "stats_never", ["a", "missing"])
    assert stats is not None
    assert stats.columns == {"a": ColumnStats("a", "integer", analyzed=False)}
    assert stats.columns["a"].equality_selectivity("1", 100) is None
    assert table_stats(conn, "public", "no_such_table") is None


def test_installed_extensions(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    assert "plpgsql" in installed_extensions(conn)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        # A most common value: its own frequency.
        (
            ColumnStats(
                "s", n_distinct=3, most_common_vals=("a", "b"), most_common_freqs=(0.6, 0.3)
            ),
            "a",
            0.6,
        ),
        # Not a most common value: the remaining 10% spread over the one other value.
        (
            ColumnStats(
                "s", n_distinct=3, most_common_vals=("a", "b"), most_common_freqs=(0.6, 0.3)
            ),
            "z",
            0.1,
        ),
        # Unknown value ($n): non-NULL rows over distinct values.
        (ColumnStats("s", null_frac=0.5, n_distinct=5), None, 0.1),
        # n_distinct < 0 is a share of the rows: -0.5 of 1000 rows is 500 values.
        (ColumnStats("s", n_distinct=-0.5), "x", 1 / 500),
    ],
)
def test_equality_selectivity(column: ColumnStats, value: str | None, expected: float) -> None:
    assert column.equality_selectivity(value, 1000) == pytest.approx(expected)


def test_a_partitioned_table_has_its_partitions_rows_and_inherited_statistics(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    """The planner estimates a query on the parent from the parent's inherited pg_stats
    rows and its partitions' sizes: the advisor must read the same."""
    conn.execute(
        """
        CREATE TABLE stats_events (id int, kind text) PARTITION BY RANGE (id);
        CREATE TABLE stats_events_1 PARTITION OF stats_events FOR VALUES FROM (0) TO (5000);
        CREATE TABLE stats_events_2 PARTITION OF stats_events FOR VALUES FROM (5000) TO (MAXVALUE);
        INSERT INTO stats_events SELECT g, CASE WHEN g % 50 = 0 THEN 'rare' ELSE 'common' END
        FROM generate_series(0, 11999) g;
        """
    )
    conn.execute("VACUUM ANALYZE stats_events_1, stats_events_2")
    conn.execute("ANALYZE stats_events")
    stats = table_stats(conn, "public", "stats_events", ["kind"])
    assert stats is not None
    assert stats.reltuples == 12000
    assert stats.relpages > 0  # the leaves' pages (the parent has none of its own)
    kind = stats.column("kind")
    assert kind is not None and kind.analyzed
    assert dict(zip(kind.most_common_vals, kind.most_common_freqs, strict=True)) == {
        "common": pytest.approx(0.98),
        "rare": pytest.approx(0.02),
    }
