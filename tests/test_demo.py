"""The demo shop: right sizes, skewed statuses, intact keys, missing indexes, same data twice."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from explainer.demo import record_log
from explainer.demo.data import DemoSummary, create_demo_database
from explainer.demo.schema import BASE_ROWS, INDEXED_COLUMNS, UNINDEXED_COLUMNS, row_counts
from explainer.errors import ExplainerError, InputError

SCALE = 0.05
EXPECTED_ROWS = {
    "customers": 2_500,
    "products": 250,
    "orders": 20_000,
    "order_items": 40_000,
    "reviews": 5_000,
}


@pytest.fixture(scope="module")
def demo(db_dsn: str) -> tuple[str, DemoSummary]:
    return db_dsn, create_demo_database(db_dsn, scale=SCALE)


def _fetch_one(dsn: str, query: sql.Composed | str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row


def _checksums(dsn: str) -> dict[str, str]:
    """md5 of every row's text, in id order, per table."""
    sums = {}
    for table in BASE_ROWS:
        query = sql.SQL("SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.id)) FROM {} t").format(
            sql.Identifier(table)
        )
        sums[table] = str(_fetch_one(dsn, query)[0])
    return sums


def test_full_scale_has_over_a_million_rows() -> None:
    assert sum(row_counts(1.0).values()) >= 1_000_000
    assert row_counts(SCALE) == EXPECTED_ROWS


def test_tables_have_the_expected_row_counts(demo: tuple[str, DemoSummary]) -> None:
    dsn, summary = demo
    assert dict(summary.row_counts) == EXPECTED_ROWS
    assert summary.total_rows == sum(EXPECTED_ROWS.values())
    for table, expected in EXPECTED_ROWS.items():
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        assert _fetch_one(dsn, query)[0] == expected, table


def test_order_statuses_are_skewed(demo: tuple[str, DemoSummary]) -> None:
    dsn, _ = demo
    pending, delivered = _fetch_one(
        dsn,
        "SELECT avg((status = 'pending')::int), avg((status = 'delivered')::int) FROM orders",
    )
    assert isinstance(pending, Decimal) and isinstance(delivered, Decimal)
    assert 0.01 <= pending <= 0.03
    assert 0.85 <= delivered <= 0.95


def test_foreign_keys_are_declared_and_hold(demo: tuple[str, DemoSummary]) -> None:
    dsn, _ = demo
    (validated,) = _fetch_one(
        dsn,
        "SELECT count(*) FROM pg_constraint "
        "WHERE contype = 'f' AND convalidated AND connamespace = 'public'::regnamespace",
    )
    assert validated == 5
    (orphans,) = _fetch_one(
        dsn,
        """SELECT (SELECT count(*) FROM orders o
                   WHERE NOT EXISTS (SELECT FROM customers c WHERE c.id = o.customer_id))
                + (SELECT count(*) FROM order_items i
                   WHERE NOT EXISTS (SELECT FROM orders o WHERE o.id = i.order_id)
                      OR NOT EXISTS (SELECT FROM products p WHERE p.id = i.product_id))
                + (SELECT count(*) FROM reviews r
                   WHERE NOT EXISTS (SELECT FROM products p WHERE p.id = r.product_id)
                      OR NOT EXISTS (SELECT FROM customers c WHERE c.id = r.customer_id))""",
    )
    assert orphans == 0


def test_only_keys_and_sku_are_indexed(demo: tuple[str, DemoSummary]) -> None:
    """The demo's point: the columns the shop filters on have no index to use."""
    dsn, _ = demo
    with psycopg.connect(dsn) as conn:
        leading = set(
            conn.execute(
                """SELECT t.relname, a.attname
                   FROM pg_index i
                   JOIN pg_class t ON t.oid = i.indrelid
                   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
                   WHERE t.relnamespace = 'public'::regnamespace"""
            ).fetchall()
        )
    assert leading == set(INDEXED_COLUMNS)
    assert not leading & set(UNINDEXED_COLUMNS)


def test_statistics_are_fresh(demo: tuple[str, DemoSummary]) -> None:
    dsn, _ = demo
    (unanalyzed,) = _fetch_one(
        dsn,
        "SELECT count(*) FROM pg_stat_user_tables "
        "WHERE last_analyze IS NULL AND last_autoanalyze IS NULL",
    )
    assert unanalyzed == 0


def test_the_data_is_deterministic(
    demo: tuple[str, DemoSummary], make_database: Callable[[], str]
) -> None:
    dsn, _ = demo
    again = make_database()
    create_demo_database(again, scale=SCALE)
    assert _checksums(again) == _checksums(dsn)


def test_loading_into_a_database_that_has_the_tables_is_refused(
    demo: tuple[str, DemoSummary],
) -> None:
    dsn, _ = demo
    with pytest.raises(ExplainerError, match="already has a demo table"):
        create_demo_database(dsn, scale=SCALE)
    query = "SELECT count(*) FROM orders"
    assert _fetch_one(dsn, query)[0] == EXPECTED_ROWS["orders"]


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf")])
def test_a_nonsense_scale_is_refused(scale: float) -> None:
    with pytest.raises(InputError):
        create_demo_database("postgresql://nowhere.invalid/db", scale=scale)


_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\] postgres@shop "
    r"LOG:  duration: \d+\.\d{3} ms  statement: (?P<sql>.+)$"
)


def _statements(log_text: str) -> list[str]:
    """Statements of a stock stderr log, continuation lines (TAB-led) joined back."""
    statements: list[str] = []
    for line in log_text.splitlines():
        if line.startswith("\t"):
            statements[-1] += "\n" + line[1:]
            continue
        match = _RECORD.match(line)
        assert match, f"not a stock log record: {line!r}"
        statements.append(match["sql"])
    return statements


def _shape(statement: str) -> str:
    return re.sub(r"'[^']*'|\b\d+\b", "?", statement)


def test_shipped_shop_log_is_a_stock_postgresql_log() -> None:
    text = (Path(record_log.__file__).with_name("shop.log")).read_text(encoding="utf-8")
    assert len(text.encode()) < 100_000
    statements = _statements(text)
    shapes = {_shape(s) for s in statements if not s.startswith(("BEGIN", "COMMIT"))}
    assert 8 <= len({s for s in shapes if s.startswith("SELECT")}) <= 12
    assert statements.count("BEGIN") >= 2 and statements.count("COMMIT") >= 2
    assert any("\n" in s for s in statements), "expected multi-line statements"
    assert "customer_id = " in text and "email = '" in text


def test_workload_records_keep_sessions_on_the_database_only() -> None:
    log = (
        "2026-01-01 00:00:00.000 UTC [10] LOG:  checkpoint starting: wal\n"
        "2026-01-01 00:00:00.001 UTC [11] postgres@shop LOG:  duration: 1.000 ms  "
        "statement: SELECT 1\n"
        "\tFROM t\n"
        "2026-01-01 00:00:00.002 UTC [12] postgres@postgres LOG:  duration: 1.000 ms  "
        "statement: SELECT 2\n"
        "\tFROM u\n"
    )
    assert record_log.workload_records(log, "shop") == (
        "2026-01-01 00:00:00.001 UTC [11] postgres@shop LOG:  duration: 1.000 ms  "
        "statement: SELECT 1\n\tFROM t\n"
    )


def test_record_log_produces_the_workload(tmp_path: Path) -> None:
    output = tmp_path / "shop.log"
    assert record_log.main(["--scale", "0.01", "--output", str(output)]) == 0
    statements = _statements(output.read_text(encoding="utf-8"))
    expected = sum(shape.runs for shape in record_log.SHAPES) + 2 * 6
    assert len(statements) == expected
