"""``distinct-underestimate`` on a real PostgreSQL: an aggregate that finds far more groups
than ``pg_stats.n_distinct`` says gets the ``ALTER TABLE ... SET (n_distinct = ...)`` that
fixes it, and once that SQL has run the finding is gone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from explainer.cli import main
from explainer.plan import PlanNode
from explainer.rules.distinct import _column, fix_sql, setting

#: 150,000 order lines, three per order: 50,000 distinct keys.
LINES = 150_000
ORDERS = 50_000
#: What someone once stored by hand, when the table was small.
STALE = 1000

GROUPED = (
    'SELECT "OrderKey", sum(qty) FROM distinct_probe_lines '
    'GROUP BY "OrderKey" HAVING sum(qty) > 140'
)


@pytest.fixture(scope="module")
def lines_dsn(db_dsn: str) -> Iterator[str]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            'CREATE TABLE distinct_probe_lines ("OrderKey" int NOT NULL, qty int NOT NULL)'
            " WITH (autovacuum_enabled = off)"
        )
        conn.execute(
            "INSERT INTO distinct_probe_lines "
            f"SELECT i / 3, i % 50 FROM generate_series(3, {LINES + 2}) i"
        )
        conn.execute(
            f'ALTER TABLE distinct_probe_lines ALTER COLUMN "OrderKey" SET (n_distinct = {STALE})'
        )
        conn.execute("ANALYZE distinct_probe_lines")
    yield db_dsn
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE distinct_probe_lines")


def _findings(capsys: pytest.CaptureFixture[str], dsn: str, sql: str) -> list[dict[str, Any]]:
    code = main(["analyze", "--dsn", dsn, "--verify", "none", "--no-lint", "--format", "json",
                 "--query", sql])  # fmt: skip
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 0, report
    [query] = report["queries"]
    assert query["error"] is None, query
    return [f for f in query["findings"] if f["rule"] == "distinct-underestimate"]


def test_too_few_distinct_values_get_the_true_figure_and_the_fix_works(
    lines_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [finding] = _findings(capsys, lines_dsn, GROUPED)
    assert finding["table"] == "distinct_probe_lines"
    details = finding["details"]
    assert details["groups"] == ORDERS
    assert details["planned_distinct"] == STALE
    assert details["factor"] == pytest.approx(ORDERS / STALE)
    assert details["n_distinct"] == -0.33  # a third of the rows: grows with the table
    fix = (
        'ALTER TABLE distinct_probe_lines ALTER COLUMN "OrderKey" SET (n_distinct = '
        "-0.33); ANALYZE distinct_probe_lines;"
    )
    assert details["sql"] == fix
    assert "found 50,000 distinct OrderKey" in finding["message"]
    assert "the planner expected 1,000" in finding["message"]

    with psycopg.connect(lines_dsn, autocommit=True) as conn:
        conn.execute(fix)
        [stored] = conn.execute(
            "SELECT n_distinct FROM pg_stats WHERE tablename = 'distinct_probe_lines'"
            " AND attname = 'OrderKey'"
        ).fetchone() or [None]
    assert stored == pytest.approx(-0.33)
    assert _findings(capsys, lines_dsn, GROUPED) == []
    with psycopg.connect(lines_dsn, autocommit=True) as conn:  # back as the other tests expect
        conn.execute(
            'ALTER TABLE distinct_probe_lines ALTER COLUMN "OrderKey" '
            f"SET (n_distinct = {STALE}); ANALYZE distinct_probe_lines"
        )


@pytest.mark.parametrize(
    "sql",
    [
        # A filter: the groups are those of the rows kept, not the column's distinct count.
        'SELECT "OrderKey", count(*) FROM distinct_probe_lines WHERE qty > 25'
        ' GROUP BY "OrderKey"',
        # An expression, not the column.
        'SELECT "OrderKey" % 7, count(*) FROM distinct_probe_lines GROUP BY 1',
        # Two keys: their combination, not one column's figure.
        'SELECT "OrderKey", qty, count(*) FROM distinct_probe_lines GROUP BY 1, 2',
    ],
)
def test_groups_that_are_not_the_columns_distinct_count_are_not_judged(
    lines_dsn: str, capsys: pytest.CaptureFixture[str], sql: str
) -> None:
    assert _findings(capsys, lines_dsn, sql) == []


@pytest.mark.parametrize(
    ("groups", "rows", "expected"),
    [
        (1_500_000, 6_001_215, -0.25),  # TPC-H lineitem.l_orderkey at scale factor 1
        (50_000, 150_000, -0.33),
        (100_001, 1_000_000, -0.1),  # just above 10%: a share
        (99_999, 1_000_000, 100_000.0),  # at or below 10%: a count
        (12_345, 1_000_000, 12_300.0),
    ],
)
def test_the_setting_is_a_share_above_ten_percent_else_a_count(
    groups: float, rows: float, expected: float
) -> None:
    assert setting(groups, rows) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("l_orderkey", "l_orderkey"),
        ("lineitem_1.l_orderkey", "l_orderkey"),
        ("lineitem.l_orderkey", "l_orderkey"),
        ('"Order"."Key"', None),  # another relation's alias
        ('lineitem_1."OrderKey"', "OrderKey"),
        ("(l_orderkey % 7)", None),
        ("lower(l_comment)", None),
        ("(l_orderkey)::text", None),
        ("a.b.c", None),
    ],
)
def test_group_keys_name_one_column_of_the_scan(key: str, expected: str | None) -> None:
    scan = PlanNode("Seq Scan", "0.0", relation="lineitem", alias="lineitem_1")
    assert _column(key, scan) == expected


def test_fix_sql_quotes_what_needs_quotes() -> None:
    assert fix_sql("lineitem", "l_orderkey", -0.25) == (
        "ALTER TABLE lineitem ALTER COLUMN l_orderkey SET (n_distinct = -0.25); ANALYZE lineitem;"
    )
    assert fix_sql('"Sales".lines', "Order Key", 12300.0) == (
        'ALTER TABLE "Sales".lines ALTER COLUMN "Order Key" SET (n_distinct = 12300); '
        'ANALYZE "Sales".lines;'
    )
