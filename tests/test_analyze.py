"""explainer analyze end to end on a real PostgreSQL: findings, verified indexes, safety."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from explainer.cli import main

ROWS = 1_000_000


@pytest.fixture(scope="module")
def events_dsn(db_dsn: str) -> Iterator[str]:
    """A 1M-row table with a selective, unindexed column (50 rows per account)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE events (
                id bigint PRIMARY KEY,
                account_id integer NOT NULL,
                kind text NOT NULL,
                created_at timestamptz NOT NULL,
                payload text
            )
            """
        )
        conn.execute(
            f"""
            INSERT INTO events
            SELECT i, i % 20000, (ARRAY['view', 'click', 'buy', 'share'])[1 + i % 4],
                   timestamptz '2026-01-01' + i * interval '1 second', md5(i::text)
            FROM generate_series(1, {ROWS}) AS i
            """
        )
        conn.execute("VACUUM ANALYZE events")
    yield db_dsn


def analyze_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["analyze", *args, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def index_names(dsn: str, table: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY 1", (table,)
        ).fetchall()
    return [r[0] for r in rows]


def test_selective_filter_gets_a_measured_index(
    events_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = analyze_json(
        capsys,
        "--dsn",
        events_dsn,
        "--verify",
        "rollback",
        "--query",
        "SELECT * FROM events WHERE account_id = 4242",
    )
    assert code == 0
    assert report["version"] == 1
    [query] = report["queries"]
    assert [f["rule"] for f in query["findings"]] == ["seq-scan-selective"]
    assert query["findings"][0]["table"] == "events"
    [suggestion] = report["suggestions"]
    assert suggestion["kind"] == "index"
    assert suggestion["table"] == "events"
    assert suggestion["columns"] == ["account_id"]
    assert suggestion["queries"] == [query["id"]]
    evidence = suggestion["evidence"]
    assert evidence["method"] == "rollback"
    assert evidence["index_used"] is True
    assert evidence["after_ms"] * 10 <= evidence["before_ms"], evidence
    # The node that explains the gain, matched as `explainer plan --compare` matches it.
    change = evidence["per_query"][0]["plan_change"]
    assert "Seq Scan on events" in change["before"]
    assert change["after"] in (
        "Index Scan using ix_events_account_id on events",
        "Bitmap Heap Scan on events",  # over a Bitmap Index Scan on the new index
    )
    assert change["exclusive_after_ms"] < change["exclusive_before_ms"]
    assert suggestion["sql"] == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_events_account_id ON events (account_id);"
    )
    assert suggestion["sqlalchemy"] == 'Index("ix_events_account_id", Event.account_id)'
    # Verification left nothing behind.
    assert index_names(events_dsn, "events") == ["events_pkey"]


def test_no_suggestion_once_the_index_exists(
    events_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(events_dsn, autocommit=True) as conn:
        conn.execute("CREATE INDEX events_account ON events (account_id)")
    try:
        code, report = analyze_json(
            capsys,
            "--dsn",
            events_dsn,
            "--verify",
            "rollback",
            "--query",
            "SELECT * FROM events WHERE account_id = 4242",
        )
    finally:
        with psycopg.connect(events_dsn, autocommit=True) as conn:
            conn.execute("DROP INDEX events_account")
    assert code == 0
    assert report["suggestions"] == []
    assert report["queries"][0]["findings"] == []


def test_equality_then_range_makes_a_composite_index(
    events_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, report = analyze_json(
        capsys,
        "--dsn",
        events_dsn,
        "--verify",
        "rollback",
        "--query",
        "SELECT id FROM events e WHERE e.created_at >= '2026-01-05' AND e.account_id = 77",
    )
    [suggestion] = report["suggestions"]
    assert suggestion["columns"] == ["account_id", "created_at"]


def test_unselective_filter_gets_no_index(
    events_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # kind = 'buy' keeps 25% of the rows: a sequential scan is the right plan.
    code, report = analyze_json(
        capsys,
        "--dsn",
        events_dsn,
        "--query",
        "SELECT count(*) FROM events WHERE kind = 'buy'",
    )
    assert code == 0
    assert report["suggestions"] == []
    assert report["queries"][0]["findings"] == []


def test_pasted_sql_file_is_split_and_each_statement_reported(
    events_dsn: str, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    script = (
        "-- two lookups and a mistake\n"
        "SELECT * FROM events WHERE account_id = 1;\n"
        "SELECT * FROM events WHERE account_id = 2;\n"
        "SELECT * FROM no_such_table;\n"
        "DROP TABLE events;\n"
    )
    path = tmp_path / "q.sql"  # type: ignore[operator]
    path.write_text(script)
    code, report = analyze_json(capsys, "--dsn", events_dsn, "--sql", str(path), "--verify", "none")
    assert code == 0
    # The two lookups are one shape, called twice.
    by_sql = {q["sql"].split(" WHERE")[0]: q for q in report["queries"]}
    assert by_sql["SELECT * FROM events"]["calls"] == 2
    errors = sorted(q["error"] for q in report["queries"] if q["error"])
    assert errors[0].startswith("DROP statement refused")
    assert 'relation "no_such_table" does not exist' in errors[1]
    with psycopg.connect(events_dsn) as conn:  # the DROP never ran
        assert conn.execute("SELECT to_regclass('events')").fetchone() == ("events",)


def table_checksum(dsn: str, table: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} AS t"
        ).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture()
def accounts_dsn(db_dsn: str) -> Iterator[str]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS accounts")
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance numeric, tier text)")
        conn.execute(
            "INSERT INTO accounts SELECT i, i * 1.5, CASE WHEN i % 1000 = 0 THEN 'gold' "
            "ELSE 'basic' END FROM generate_series(1, 200000) AS i"
        )
        conn.execute("VACUUM ANALYZE accounts")
    yield db_dsn


def test_analyzing_a_write_leaves_the_table_unchanged(
    accounts_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = table_checksum(accounts_dsn, "accounts")
    code, report = analyze_json(
        capsys,
        "--dsn",
        accounts_dsn,
        "--analyze-writes",
        "--verify",
        "rollback",
        "--query",
        "UPDATE accounts SET balance = balance * 2 WHERE tier = 'gold'",
    )
    assert code == 0
    [query] = report["queries"]
    assert query["analyzed"] is True
    assert query["execution_ms"] is not None  # it really ran
    # The write was measured again around a real index, built and rolled back.
    [suggestion] = report["suggestions"]
    assert suggestion["columns"] == ["tier"]
    assert suggestion["evidence"]["index_used"] is True
    assert suggestion["evidence"]["after_ms"] < suggestion["evidence"]["before_ms"]
    assert table_checksum(accounts_dsn, "accounts") == before
    assert index_names(accounts_dsn, "accounts") == ["accounts_pkey"]


def test_a_write_is_only_estimated_unless_asked(
    accounts_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = table_checksum(accounts_dsn, "accounts")
    code, report = analyze_json(
        capsys,
        "--dsn",
        accounts_dsn,
        "--query",
        "DELETE FROM accounts WHERE tier = 'gold'",
    )
    assert code == 0
    [query] = report["queries"]
    assert query["analyzed"] is False
    assert query["execution_ms"] is None
    assert "--analyze-writes" in query["note"]
    assert table_checksum(accounts_dsn, "accounts") == before


def test_a_statement_that_times_out_is_judged_on_its_estimated_plan(
    accounts_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The statement_timeout cancels EXPLAIN ANALYZE; the query is then explained without
    # running it, so a slow query still gets findings and candidates (TPC-H Q17 and Q20
    # time out without indexes), and the note says why it was not measured.
    code, report = analyze_json(
        capsys,
        "--dsn",
        accounts_dsn,
        "--timeout",
        "0.2",
        "--query",
        "SELECT pg_sleep(5)",
    )
    assert code == 0
    [query] = report["queries"]
    assert query["error"] is None
    assert query["analyzed"] is False
    assert query["note"] == "timed out after 0.2 s; judged on the estimated plan"


def test_fail_on_severity_sets_exit_code_1(
    events_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = analyze_json(
        capsys,
        "--dsn",
        events_dsn,
        "--verify",
        "none",
        "--fail-on",
        "medium",
        "--query",
        "SELECT * FROM events WHERE account_id = 4242",
    )
    assert code == 1


def test_hypopg_verification_compares_planner_costs(
    events_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(events_dsn, autocommit=True) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'"
        ).fetchone()
        if available is None:
            pytest.skip("HypoPG is not installed on this PostgreSQL server")
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
    try:
        code, report = analyze_json(
            capsys,
            "--dsn",
            events_dsn,
            "--query",
            "SELECT * FROM events WHERE account_id = 9",
        )
    finally:
        with psycopg.connect(events_dsn, autocommit=True) as conn:
            conn.execute("DROP EXTENSION hypopg")
    assert code == 0
    assert report["database"]["verify_method"] == "hypopg"
    [suggestion] = report["suggestions"]
    evidence = suggestion["evidence"]
    assert evidence["method"] == "hypopg"
    assert evidence["index_used"] is True
    assert evidence["after_cost"] * 10 <= evidence["before_cost"]
    assert evidence["before_ms"] is None  # HypoPG cannot measure time
    assert index_names(events_dsn, "events") == ["events_pkey"]


def test_no_analyze_executes_nothing_and_judges_by_estimates(
    events_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = analyze_json(
        capsys,
        "--dsn",
        events_dsn,
        "--no-analyze",
        "--verify",
        "rollback",
        "--query",
        "SELECT * FROM events WHERE account_id = 4242",
    )
    assert code == 0
    [query] = report["queries"]
    assert query["analyzed"] is False
    assert query["execution_ms"] is None
    [finding] = query["findings"]
    assert finding["rule"] == "seq-scan-selective"
    assert finding["details"]["estimated"] is True
    [suggestion] = report["suggestions"]
    evidence = suggestion["evidence"]
    assert evidence["method"] == "rollback"
    assert evidence["before_ms"] is None and evidence["after_ms"] is None
    assert evidence["after_cost"] * 10 <= evidence["before_cost"]
