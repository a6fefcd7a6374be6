"""What explainer agrees to run: decided by PostgreSQL's parser, before anything is sent."""

from __future__ import annotations

import pytest

from explainer.db.safety import StatementKind, check_statement
from explainer.errors import InputError, UnsafeStatementError


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT * FROM orders WHERE id = 1", StatementKind.READ),
        ("select 1;", StatementKind.READ),
        ("WITH x AS (SELECT 1) SELECT * FROM x", StatementKind.READ),
        ("SELECT * FROM orders FOR UPDATE", StatementKind.LOCKING_READ),
        ("UPDATE orders SET total = 0 WHERE id = 1", StatementKind.WRITE),
        ("INSERT INTO orders (id) VALUES (1)", StatementKind.WRITE),
        ("DELETE FROM orders", StatementKind.WRITE),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", StatementKind.WRITE),
        # A write hidden in a CTE is still a write.
        ("WITH gone AS (DELETE FROM t RETURNING *) SELECT count(*) FROM gone", StatementKind.WRITE),
    ],
)
def test_statement_kinds(sql: str, kind: StatementKind) -> None:
    assert check_statement(sql).kind is kind


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE TABLE x (a int)", "CREATE statement refused"),
        ("DROP TABLE orders", "DROP statement refused"),
        ("BEGIN", "transaction control refused"),
        ("COMMIT", "transaction control refused"),
        ("SELECT 1; DELETE FROM orders", "2 statements in one item"),
        ("SELECT 1 /* ; */; -- x\n DROP TABLE t", "2 statements in one item"),
        ("SELECT * INTO copy FROM orders", "SELECT ... INTO creates a table"),
        ("COPY orders TO STDOUT", "COPY statement refused"),
        ("DO $$ BEGIN PERFORM 1; END $$", "DO statement refused"),
        ("SET ROLE admin", "SET refused"),
        ("EXPLAIN SELECT 1", "already an EXPLAIN"),
        ("VACUUM orders", "VACUUM statement refused"),
    ],
)
def test_refused_statements(sql: str, message: str) -> None:
    with pytest.raises(UnsafeStatementError, match=message):
        check_statement(sql)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty statement"),
        ("-- just a comment", "only comments"),
        ("SELEC * FROM orders", 'not valid SQL: syntax error at or near "SELEC" \\(line 1\\)'),
        ("SELECT *\nFROM orders\nWHERE id = = 1", "line 3"),
        ("SELECT *\nFROM orders\nWHERE", "syntax error at end of input"),
        ("Please make my database faster", "not valid SQL"),
        (
            "Seq Scan on orders  (cost=0.00..18334.00 rows=5000 width=8)",
            "looks like an EXPLAIN plan",
        ),
        ('[{"Plan": {"Node Type": "Seq Scan"}}]', "looks like an EXPLAIN plan"),
    ],
)
def test_bad_input_gets_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        check_statement(text)
    assert "\n" not in str(info.value)
