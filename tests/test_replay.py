"""Statements with $n placeholders: replayed with logged values, or planned generically.

Values are always bound by the server (PREPARE/EXECUTE), never pasted into the text.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from explainer.db import explain as explain_module
from explainer.db.connection import connect
from explainer.db.explain import Execution, ExplainOptions, explain
from explainer.db.safety import check_statement
from explainer.errors import QueryFailed


@pytest.fixture(scope="module")
def notes_dsn(db_dsn: str) -> Iterator[str]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, author text, body text)")
        conn.execute(
            "INSERT INTO notes SELECT i, CASE WHEN i % 1000 = 0 THEN 'it''s, me' ELSE 'x' END, "
            "md5(i::text) FROM generate_series(1, 20000) AS i"
        )
        conn.execute("ANALYZE notes")
    yield db_dsn


def prepared_statements(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert row is not None
    return int(str(row[0]))


@pytest.fixture(params=["generic-plan-option", "prepare-force-generic"])
def generic_route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways to plan without values: EXPLAIN (GENERIC_PLAN) on 16+, PREPARE before."""
    if request.param == "prepare-force-generic":
        monkeypatch.setattr(explain_module, "GENERIC_PLAN_VERSION", 10**9)
    return str(request.param)


def test_logged_values_are_bound_and_executed(notes_dsn: str) -> None:
    statement = check_statement("SELECT * FROM notes WHERE author = $1 AND id > $2")
    assert statement.parameter_count == 2
    with connect(notes_dsn) as conn:
        outcome = explain(conn, Execution(statement, ("it's, me", "0")), ExplainOptions())
        assert outcome.analyzed
        # 20 rows match the value with a quote and a comma: it reached the server intact.
        assert outcome.plan.root.actual_rows == 20
        assert prepared_statements(conn) == 0


def test_a_value_is_never_spliced_into_the_text(notes_dsn: str) -> None:
    statement = check_statement("SELECT * FROM notes WHERE body = $1")
    hostile = "x'; DROP TABLE notes; --"
    with connect(notes_dsn) as conn:
        outcome = explain(conn, Execution(statement, (hostile,)), ExplainOptions())
        assert outcome.plan.root.actual_rows == 0
        row = conn.execute("SELECT to_regclass('notes')").fetchone()
        assert row == ("notes",)


def test_without_values_a_generic_plan_is_estimated(notes_dsn: str, generic_route: str) -> None:
    statement = check_statement("SELECT * FROM notes WHERE author = $1")
    with connect(notes_dsn) as conn:
        outcome = explain(conn, Execution(statement, None), ExplainOptions())
        assert not outcome.analyzed
        assert outcome.note is not None and "generic plan" in outcome.note
        assert outcome.plan.root.node_type == "Seq Scan"
        assert outcome.plan.execution_ms is None
        assert prepared_statements(conn) == 0


def test_truncated_values_count_as_none(notes_dsn: str) -> None:
    statement = check_statement("SELECT * FROM notes WHERE author = $1 AND id = $2")
    # Fewer values than placeholders: a generic plan rather than a guess.
    assert Execution(statement, ("x",)).mode == "generic"
    assert Execution(statement, ("x", "1")).mode == "replay"
    assert Execution(check_statement("SELECT 1"), None).mode == "text"


def test_a_failing_replay_leaves_no_prepared_statement(notes_dsn: str) -> None:
    statement = check_statement("SELECT * FROM notes WHERE id = $1")
    with connect(notes_dsn) as conn:
        with pytest.raises(QueryFailed, match="invalid input syntax for type integer"):
            explain(conn, Execution(statement, ("not a number",)), ExplainOptions())
        assert prepared_statements(conn) == 0
        # The connection is still usable.
        outcome = explain(conn, Execution(statement, ("7",)), ExplainOptions())
        assert outcome.plan.root.actual_rows == 1
