"""The schema lint inside `explainer analyze` (explainer.lint.workload), against a real
PostgreSQL: only the tables the workload touches, the foreign keys into a table it deletes
from, nothing the removals or a suggestion already say, a failure as a note, every format
and the export; and `explainer rules` listing the lint rules."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pglast
import psycopg
import pytest

from explainer.cli import main
from explainer.lint import LINT_RULES

MakeDatabase = Callable[[], str]
Key = tuple[str, str, str | None]

#: The workload touches customers, orders and audit_log: an unindexed foreign key and
#: dates kept as text (orders), a table without a primary key (audit_log), two identical
#: indexes (customers: the index advisor's removals). imports and refunds are never
#: touched and have their own problems (no primary key, numbers as text; refunds'
#: unindexed key into customers).
SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    placed_on text,
    note text
);
CREATE TABLE audit_log (happened_at timestamptz NOT NULL, message text NOT NULL);
CREATE TABLE imports (batch text, amount text);
CREATE TABLE refunds (customer_id bigint REFERENCES customers (id), amount numeric);
CREATE INDEX customers_name_a ON customers (name);
CREATE INDEX customers_name_b ON customers (name);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 200) g;
INSERT INTO orders
SELECT g, 1 + g % 200, (date '2024-01-01' + g % 365)::text,
       (ARRAY['left at the door', 'call first', 'gift, no invoice', NULL])[1 + g % 4]
FROM generate_series(1, 3000) g;
INSERT INTO audit_log SELECT now(), 'order ' || g || ' shipped' FROM generate_series(1, 500) g;
INSERT INTO imports SELECT 'batch ' || g % 7, (g * 3)::text FROM generate_series(1, 400) g;
INSERT INTO refunds SELECT 1 + g % 200, g FROM generate_series(1, 300) g;
"""

READS = (
    "SELECT count(*) FROM orders WHERE placed_on >= '2024-06-01'",
    "SELECT name FROM customers WHERE id = 5",
    "SELECT count(*) FROM audit_log WHERE message LIKE 'order 1%'",
)

TOUCHED: set[Key] = {
    ("lint-fk-unindexed", "orders", "customer_id"),
    ("lint-text-typed-dates", "orders", "placed_on"),
    ("lint-no-primary-key", "audit_log", None),
}
UNTOUCHED: set[Key] = {
    ("lint-no-primary-key", "imports", None),
    ("lint-text-typed-numbers", "imports", "amount"),
    ("lint-no-primary-key", "refunds", None),
    ("lint-fk-unindexed", "refunds", "customer_id"),
}


def _setup(dsn: str, script: str = SCHEMA) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(script.encode())
        # The inserts' counters reach the statistics before ANALYZE, so that no table
        # looks changed since (stale-statistics findings in the queries).
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("ANALYZE")


@pytest.fixture(scope="module")
def shop(db_dsn: str) -> Iterator[str]:
    _setup(db_dsn)
    yield db_dsn


def _queries(*sql: str) -> list[str]:
    return [arg for text in sql for arg in ("--query", text)]


def _analyze(
    capsys: pytest.CaptureFixture[str], dsn: str, *args: str, sql: tuple[str, ...] = READS
) -> tuple[int, dict[str, Any]]:
    code = main(["analyze", "--dsn", dsn, *_queries(*sql), "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def _keys(findings: list[dict[str, Any]]) -> set[Key]:
    return {(f["rule"], f["table"], f["column"]) for f in findings}


def _whole_lint(capsys: pytest.CaptureFixture[str], dsn: str) -> list[dict[str, Any]]:
    assert main(["lint", "--dsn", dsn, "--format", "json"]) == 0
    findings: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["findings"]
    return findings


def test_analyze_lints_the_touched_tables_and_nothing_else(
    shop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = _analyze(capsys, shop)
    whole = _whole_lint(capsys, shop)

    assert code == 0
    assert _keys(document["lint"]) == TOUCHED
    # The database has more to say, on tables the workload never touched.
    assert _keys(whole) >= TOUCHED | UNTOUCHED
    # The same objects `explainer lint --format json` writes, in its order.
    assert document["lint"] == [f for f in whole if (f["rule"], f["table"], f["column"]) in TOUCHED]
    assert [f["severity"] for f in document["lint"]] == ["medium", "low", "low"]
    # The duplicate index is listed once, in removals, never again in the lint (which,
    # run alone, reports it as lint-duplicate-index).
    assert ("customers_name_b", "duplicate") in {
        (r["index"], r["reason"]) for r in document["removals"]
    }
    assert ("lint-duplicate-index", "customers", None) in _keys(whole)
    assert not {f["rule"] for f in document["lint"]} & {"lint-duplicate-index", "lint-unused-index"}
    # Nothing else in the report is at least medium: --fail-on below is the lint's.
    assert [q["findings"] for q in document["queries"]] == [[], [], []]
    assert document["suggestions"] == []


def test_fail_on_reads_the_lint_and_no_lint_leaves_it_out(
    shop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _analyze(capsys, shop, "--fail-on", "medium")[0] == 1  # lint-no-primary-key
    assert _analyze(capsys, shop, "--fail-on", "high")[0] == 0

    code, document = _analyze(capsys, shop, "--no-lint", "--fail-on", "medium")

    assert code == 0
    assert document["lint"] == []
    assert len(document["queries"]) == 3


def test_markdown_and_terminal_show_the_schema_section(
    shop: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["analyze", "--dsn", shop, *_queries(*READS)]
    assert main([*args, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert main([*args, "--format", "markdown", "--no-lint"]) == 0
    without = capsys.readouterr().out
    assert main([*args, "-o", str(tmp_path / "report.txt")]) == 0
    terminal = (tmp_path / "report.txt").read_text()

    assert "## Schema" in markdown
    assert markdown.index("## Schema") < markdown.index("## Queries")
    assert "### 1. **medium** `lint-no-primary-key`: `audit_log`" in markdown
    assert "### 2. **low** `lint-fk-unindexed`: `orders.customer_id`" in markdown
    assert "### 3. **low** `lint-text-typed-dates`: `orders.placed_on`" in markdown
    assert (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id ON orders (customer_id);"
        in markdown
    )
    assert "placed_on: Mapped[date | None] = mapped_column(Date)" in markdown
    assert "## Schema" not in without and "lint-" not in without

    assert "3 schema findings" in terminal
    lines = terminal.splitlines()
    assert lines.index("Schema " + "─" * 103) < lines.index("Queries " + "─" * 102)
    assert "1. MEDIUM lint-no-primary-key  audit_log" in terminal
    assert "3. LOW lint-text-typed-dates  orders.placed_on" in terminal


def test_a_delete_brings_the_foreign_keys_into_its_table(
    shop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleting customers checks orders and refunds: their unindexed keys are reported,
    and nothing else of refunds, which no plan names."""
    code, document = _analyze(capsys, shop, sql=("DELETE FROM customers WHERE id = 7",))

    assert code == 0
    assert document["queries"][0]["error"] is None
    assert _keys(document["lint"]) == {
        ("lint-fk-unindexed", "orders", "customer_id"),
        ("lint-fk-unindexed", "refunds", "customer_id"),
    }


def test_a_lock_on_a_linted_table_becomes_a_note(
    shop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """refunds is linted only for the DELETE's sake and the plan never opens it: held
    under ACCESS EXCLUSIVE, the lint waits lock_timeout, gives up and says so; a lock on
    a table outside the scope holds nothing up."""
    with psycopg.connect(shop) as locker:
        locker.execute("LOCK TABLE refunds IN ACCESS EXCLUSIVE MODE")
        code, document = _analyze(
            capsys,
            shop,
            "--lock-timeout",
            "0.5",
            sql=("DELETE FROM customers WHERE id = 7",),
        )
        _, unrelated = _analyze(capsys, shop, "--lock-timeout", "0.5")
        locker.rollback()

    assert code == 0
    assert document["lint"] == []
    assert document["queries"][0]["error"] is None
    assert [n for n in document["notes"] if "lint" in n] == [
        "the schema lint did not run: canceling statement due to lock timeout "
        "(another session holds a lock: lock_timeout reached)"
    ]
    assert _keys(unrelated["lint"]) == TOUCHED


def test_redact_removes_the_column_values_the_lint_quotes(
    shop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, plain = _analyze(capsys, shop)
    _, redacted = _analyze(capsys, shop, "--redact")

    dates = next(f for f in plain["lint"] if f["rule"] == "lint-text-typed-dates")
    hidden = next(f for f in redacted["lint"] if f["rule"] == "lint-text-typed-dates")
    assert dates["details"]["examples"] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert "'2024-01-02'" in dates["message"]
    assert hidden["details"]["examples"] == ["?", "?", "?"]
    assert "2024-01" not in json.dumps(redacted["lint"])
    assert hidden["message"] == dates["message"].replace("2024-01-02", "?").replace(
        "2024-01-03", "?"
    ).replace("2024-01-04", "?")
    assert hidden["sql"] == dates["sql"] and hidden["model"] == dates["model"]


def test_a_suggestion_on_the_key_replaces_its_finding(
    make_database: MakeDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    """A verified index suggestion that starts with the key's column fixes the unindexed
    key: the report says it once, as the suggestion with its evidence."""
    dsn = make_database()
    _setup(
        dsn,
        """
        CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);
        CREATE TABLE orders (
            id bigint PRIMARY KEY,
            customer_id bigint NOT NULL REFERENCES customers (id),
            total numeric NOT NULL
        );
        INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 5000) g;
        INSERT INTO orders SELECT g, 1 + g % 5000, g % 97 FROM generate_series(1, 200000) g;
        """,
    )

    code, document = _analyze(
        capsys, dsn, sql=("SELECT sum(total) FROM orders WHERE customer_id = 42",)
    )
    whole = _whole_lint(capsys, dsn)

    assert code == 0
    assert [(s["name"], s["columns"]) for s in document["suggestions"]] == [
        ("ix_orders_customer_id", ["customer_id"])
    ]
    assert ("lint-fk-unindexed", "orders", "customer_id") in _keys(whole)
    assert document["lint"] == []


def test_export_writes_the_fixes_apart_and_they_fix_it(
    make_database: MakeDatabase, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dsn = make_database()
    _setup(dsn)
    out = tmp_path / "out"

    code, document = _analyze(capsys, dsn, "--export", str(out))
    capsys.readouterr()

    assert code == 0
    # The duplicate index goes to the removals' files, the lint's fixes to their own.
    assert sorted(p.name for p in out.iterdir()) == [
        "drop_indexes.sql",
        "migration_drop_indexes.py",
        "models_snippets.md",
        "report.json",
        "report.md",
        "schema.sql",
    ]
    script = (out / "schema.sql").read_text()
    statements = [s.strip() for s in pglast.split(script)]
    fixes = [s.strip() for f in document["lint"] for s in pglast.split(f["sql"])]
    assert statements == ["SET lock_timeout = '5s'", *fixes]
    assert len(fixes) == 3
    assert "-- lint-no-primary-key (medium): audit_log" in script
    snippets = (out / "models_snippets.md").read_text()
    assert "## Schema lint" in snippets
    for finding in document["lint"]:
        assert finding["model"] in snippets

    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())
        conn.execute("ANALYZE")
    code, again = _analyze(capsys, dsn)
    assert code == 0
    assert again["lint"] == []


def test_rules_lists_the_lint_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    text = capsys.readouterr().out
    assert main(["rules", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)

    lines = text.splitlines()
    for rule in LINT_RULES:
        assert any(line.startswith(rule + " ") for line in lines), rule
    assert "schema lint rules:" in lines
    assert f"{len(LINT_RULES)} schema lint rules" in lines[-1]
    assert [r["id"] for r in document["lint_rules"]] == list(LINT_RULES)
    assert all(r["title"] and r["trigger"] for r in document["lint_rules"])
    assert "lint-fk-unindexed" not in [r["id"] for r in document["rules"]]
    docs = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text()
    schema_lint = docs.split("## Schema lint", 1)[1]
    headings = [line for line in schema_lint.splitlines() if line.startswith("### ")]
    assert [r for r in LINT_RULES if not any(f"`{r}`" in h for h in headings)] == []
