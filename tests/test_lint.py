"""Schema lint (`explainer lint`) against a real PostgreSQL: each rule's findings, the
SQL fixes they carry (run, then linted again), and the cases that must stay silent."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pytest

from explainer.cli import main
from explainer.lint import LintReport, lint_database
from explainer.lint.values import classify

MakeDatabase = Callable[[], str]

#: The acceptance schema: an unindexed foreign key, dates kept as text, a table without a
#: primary key, and nothing else wrong (every table analyzed, no index but the keys').
SHOP = """
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    placed_on text,
    note text
);
CREATE TABLE audit_log (happened_at timestamptz NOT NULL, message text NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 200) g;
INSERT INTO orders
SELECT g, 1 + g % 200, (date '2024-01-01' + g % 365)::text,
       (ARRAY['left at the door', 'call first', 'gift, no invoice', NULL])[1 + g % 4]
FROM generate_series(1, 3000) g;
INSERT INTO audit_log SELECT now(), 'order ' || g || ' shipped' FROM generate_series(1, 500) g;
ANALYZE customers;
ANALYZE orders;
ANALYZE audit_log;
"""


def _setup(dsn: str, script: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(script.encode())


def _keys(report: LintReport) -> set[tuple[str, str, str | None]]:
    return {(f.rule, f.qualified_table, f.column) for f in report.findings}


def test_the_shop_gets_exactly_its_three_findings(make_database: MakeDatabase) -> None:
    dsn = make_database()
    _setup(dsn, SHOP)

    report = lint_database(dsn)

    assert _keys(report) == {
        ("lint-fk-unindexed", "orders", "customer_id"),
        ("lint-text-typed-dates", "orders", "placed_on"),
        ("lint-no-primary-key", "audit_log", None),
    }
    by_rule = {f.rule: f for f in report.findings}
    fk = by_rule["lint-fk-unindexed"]
    assert fk.sql == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id ON orders (customer_id);"
    )
    assert fk.model is not None
    assert 'Index("ix_orders_customer_id", Order.customer_id)' in fk.model
    dates = by_rule["lint-text-typed-dates"]
    assert "TYPE date USING NULLIF(btrim(placed_on), '')::date" in dates.sql
    assert dates.model is not None
    assert "placed_on: Mapped[date | None] = mapped_column(Date)" in dates.model
    assert dates.details["source"] == "pg_stats"
    assert "PRIMARY KEY" in by_rule["lint-no-primary-key"].sql


def test_the_fixes_it_gives_fix_it(make_database: MakeDatabase) -> None:
    """Each finding's SQL, run as given, leaves nothing to find (and the data intact)."""
    dsn = make_database()
    _setup(dsn, SHOP)
    report = lint_database(dsn)
    assert report.findings

    with psycopg.connect(dsn, autocommit=True) as conn:
        for finding in report.findings:
            conn.execute(finding.sql.encode())
        placed = conn.execute("SELECT placed_on FROM orders WHERE id = 1").fetchone()
        kind = conn.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'orders' AND column_name = 'placed_on'"
        ).fetchone()

    assert kind == ("date",)
    assert placed is not None and str(placed[0]) == "2024-01-02"
    assert lint_database(dsn).findings == ()


def test_cli_json_and_fail_on(
    make_database: MakeDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = make_database()
    _setup(dsn, SHOP)

    assert main(["lint", "--dsn", dsn, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["format"] == "explainer-lint"
    assert document["version"] == 1
    assert document["tables"] == 3
    assert {(f["rule"], f["table"], f["column"]) for f in document["findings"]} == {
        ("lint-fk-unindexed", "orders", "customer_id"),
        ("lint-text-typed-dates", "orders", "placed_on"),
        ("lint-no-primary-key", "audit_log", None),
    }
    assert all(f["sql"] and f["message"] for f in document["findings"])

    # The no-PK finding is medium: --fail-on medium is met, high is not.
    assert main(["lint", "--dsn", dsn, "--fail-on", "medium", "--format", "json"]) == 1
    assert main(["lint", "--dsn", dsn, "--fail-on", "high", "--format", "json"]) == 0
    capsys.readouterr()

    assert main(["lint", "--dsn", dsn]) == 0
    text = capsys.readouterr().out
    assert "lint-fk-unindexed" in text and "ix_orders_customer_id" in text


def test_cli_connection_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--dsn", "host=/nonexistent dbname=x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("explainer: error: cannot connect")
    assert len(err.strip().splitlines()) == 1


def test_schema_option_keeps_to_that_schema(make_database: MakeDatabase) -> None:
    dsn = make_database()
    _setup(
        dsn,
        """
        CREATE SCHEMA staging;
        CREATE TABLE staging.dump (line text);
        CREATE TABLE public.kept (id int PRIMARY KEY);
        INSERT INTO staging.dump VALUES ('a'), ('b');
        INSERT INTO public.kept VALUES (1);
        ANALYZE staging.dump; ANALYZE public.kept;
        """,
    )

    assert _keys(lint_database(dsn, "public")) == set()
    assert _keys(lint_database(dsn, "staging")) == {("lint-no-primary-key", "staging.dump", None)}
    assert _keys(lint_database(dsn)) == {("lint-no-primary-key", "staging.dump", None)}


# Each case: the schema (every table analyzed unless the case is about that), and the
# complete set of findings. The silent cases sit beside one that is found, so a rule
# that found nothing at all would fail.
CASES = {
    "fk: an index leading with it serves it; one with it second does not": (
        """
        CREATE TABLE parents (id int PRIMARY KEY);
        CREATE TABLE served (id int PRIMARY KEY, parent_id int REFERENCES parents,
                             at timestamptz);
        CREATE INDEX served_parent_at ON served (parent_id, at);
        CREATE TABLE unserved (id int PRIMARY KEY, parent_id int REFERENCES parents,
                               at timestamptz);
        CREATE INDEX unserved_at_parent ON unserved (at, parent_id);
        INSERT INTO parents SELECT generate_series(1, 10);
        ANALYZE parents; ANALYZE served; ANALYZE unserved;
        """,
        {
            ("lint-fk-unindexed", "unserved", "parent_id"),
            # Serves no foreign key, and nothing scanned it.
            ("lint-unused-index", "unserved", None),
        },
    ),
    "fk: a two-column key led by its columns in another order is served": (
        """
        CREATE TABLE pairs (a int, b int, PRIMARY KEY (a, b));
        CREATE TABLE refs (id int PRIMARY KEY, a int, b int,
                           FOREIGN KEY (a, b) REFERENCES pairs);
        CREATE INDEX refs_b_a ON refs (b, a);
        CREATE TABLE loose (id int PRIMARY KEY, a int, b int,
                            FOREIGN KEY (a, b) REFERENCES pairs);
        ANALYZE pairs; ANALYZE refs; ANALYZE loose;
        """,
        {("lint-fk-unindexed", "loose", "a, b")},
    ),
    "text: free text, codes with leading zeros and mixed values stay text": (
        """
        CREATE TABLE notes (id int PRIMARY KEY, body text, zip varchar(5), due text,
                            paid text, qty text);
        INSERT INTO notes
        SELECT g, 'note number ' || g || ' about things', lpad((g * 7)::text, 5, '0'),
               CASE WHEN g % 10 = 0 THEN 'soon' ELSE (date '2024-01-01' + g)::text END,
               CASE WHEN g % 2 = 0 THEN 'yes' ELSE 'no' END, (g * 3)::text
        FROM generate_series(1, 1000) g;
        ANALYZE notes;
        """,
        {
            ("lint-text-typed-booleans", "notes", "paid"),
            ("lint-text-typed-numbers", "notes", "qty"),
        },
    ),
    "analyze: an analyzed table and an empty one are fine; one with rows never is not": (
        """
        CREATE TABLE analyzed (id int PRIMARY KEY);
        CREATE TABLE empty (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
        CREATE TABLE fresh (id int PRIMARY KEY, day text)
            WITH (autovacuum_enabled = false);
        INSERT INTO analyzed SELECT generate_series(1, 100);
        INSERT INTO fresh SELECT g, (date '2024-01-01' + g)::text FROM generate_series(1, 100) g;
        ANALYZE analyzed;
        """,
        {
            ("lint-never-analyzed", "fresh", None),
            # pg_stats has nothing on fresh.day: a sample finds the dates.
            ("lint-text-typed-dates", "fresh", "day"),
        },
    ),
    "primary key: present is fine; a unique NOT NULL index is offered to become it": (
        """
        CREATE TABLE keyed (id int PRIMARY KEY);
        CREATE TABLE tagged (code int NOT NULL, label text);
        CREATE UNIQUE INDEX tagged_code ON tagged (code);
        ANALYZE keyed; ANALYZE tagged;
        """,
        {("lint-no-primary-key", "tagged", None)},
    ),
    "indexes: a duplicate, and what enforces a constraint is never suggested": (
        """
        CREATE TABLE items (id int PRIMARY KEY, sku text UNIQUE, name text);
        CREATE INDEX items_name ON items (name);
        CREATE INDEX items_name_again ON items (name);
        ANALYZE items;
        """,
        {("lint-duplicate-index", "items", None), ("lint-unused-index", "items", None)},
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_rule_fires_only_where_it_should(case: str, make_database: MakeDatabase) -> None:
    schema, expected = CASES[case]
    dsn = make_database()
    _setup(dsn, schema)

    report = lint_database(dsn)

    assert _keys(report) == expected


PK_CASE = "primary key: present is fine; a unique NOT NULL index is offered to become it"
INDEX_CASE = "indexes: a duplicate, and what enforces a constraint is never suggested"


def test_details_name_what_the_fix_uses(make_database: MakeDatabase) -> None:
    dsn = make_database()
    _setup(dsn, CASES[PK_CASE][0])
    (finding,) = lint_database(dsn).findings
    assert finding.sql == (
        "ALTER TABLE tagged ADD CONSTRAINT tagged_pkey PRIMARY KEY USING INDEX tagged_code;"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(finding.sql.encode())
    assert lint_database(dsn).findings == ()

    dsn = make_database()
    _setup(dsn, CASES[INDEX_CASE][0])
    removals = {f.rule: f.details for f in lint_database(dsn).findings}
    assert removals["lint-duplicate-index"]["index"] == "items_name_again"
    assert removals["lint-duplicate-index"]["covered_by"] == "items_name"
    assert removals["lint-unused-index"]["index"] == "items_name"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["2024-01-01", "2023-12-31"], "date"),
        (["2024-01-01 10:00:00", "2024-01-02"], "timestamp"),
        (["2024-01-01T10:00:00+02:00", "2024-01-01 09:00Z"], "timestamptz"),
        (["2024-02-30"], None),  # not a date
        (["03/04/2024"], None),  # DateStyle reads it two ways
        (["yes", "no", "Y"], "boolean"),
        (["true", "false", "1", "0"], "boolean"),
        (["1", "0"], "integer"),
        (["10", "-9", "+3"], "integer"),
        (["2147483648", "1"], "bigint"),
        (["1.5", "2", "-0.25"], "numeric"),
        (["02139", "10001"], None),  # codes keep their zeros
        (["1e5"], None),
        (["12", "twelve"], None),
        (["", "  "], None),
        ([], None),
    ],
)
def test_classify(values: list[str], expected: str | None) -> None:
    typed = classify(values)
    assert (typed.type if typed else None) == expected


def test_partitioned_tables_are_judged_as_one(make_database: MakeDatabase) -> None:
    """A partitioned table's foreign key and text columns are the parent's (the partitions'
    copies are not reported again); its index is the per-partition recipe, which runs."""
    dsn = make_database()
    _setup(
        dsn,
        """
        CREATE TABLE sensors (id int PRIMARY KEY);
        INSERT INTO sensors SELECT generate_series(1, 10);
        CREATE TABLE readings (sensor_id int REFERENCES sensors, day text, at date NOT NULL,
                               PRIMARY KEY (at, sensor_id)) PARTITION BY RANGE (at);
        CREATE TABLE readings_2024 PARTITION OF readings
            FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE readings_2025 PARTITION OF readings
            FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        INSERT INTO readings SELECT 1 + g % 10, (date '2024-01-01' + g / 10 * 3)::text,
                                    date '2024-01-01' + g / 10 * 3
        FROM generate_series(1, 2000) g;
        ANALYZE sensors; ANALYZE readings_2024; ANALYZE readings_2025;
        """,
    )

    report = lint_database(dsn)

    # The primary key (at, sensor_id) does not start with sensor_id: it does not serve.
    assert _keys(report) == {
        ("lint-fk-unindexed", "readings", "sensor_id"),
        # Autovacuum never analyzes a partitioned table: its text column is sampled.
        ("lint-text-typed-dates", "readings", "day"),
    }
    fk = next(f for f in report.findings if f.rule == "lint-fk-unindexed")
    assert fk.sql.splitlines()[0] == (
        "CREATE INDEX IF NOT EXISTS ix_readings_sensor_id ON ONLY readings (sensor_id);"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in fk.sql.splitlines():
            conn.execute(statement.encode())
    assert _keys(lint_database(dsn)) == {("lint-text-typed-dates", "readings", "day")}
