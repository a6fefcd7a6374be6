"""pg_stat_statements as a workload: live from the database, and from a CSV export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from explainer.capture import read_input
from explainer.cli import main
from explainer.db.server import ThrowawayServer
from explainer.workload import build_workload

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "logs" / "generated"


def test_csv_export_rows_carry_calls_and_total_time() -> None:
    queries, stats = read_input(str(CORPUS / "pg15_pg_stat_statements.csv"))
    # 40 data rows (41 lines of CSV records, the header first); their calls add up to
    # 64 (python: sum(int(r["calls"]) for r in csv.DictReader(f))).
    assert len(queries) == 40
    assert sum(q.calls for q in queries) == 64
    assert stats.skipped == 0
    lookup = next(q for q in queries if q.sql.startswith("SELECT id FROM orders WHERE customer_id"))
    assert lookup.calls == 2
    assert lookup.duration_ms == pytest.approx(59.41679, rel=1e-4)
    workload = build_workload(queries)
    group = next(g for g in workload.groups if g.example is lookup)
    assert group.calls == 2 and group.mean_ms == pytest.approx(59.41679 / 2, rel=1e-4)


@pytest.fixture(scope="module")
def pgss_dsn() -> Iterator[str]:
    settings = {"shared_preload_libraries": "pg_stat_statements"}
    with ThrowawayServer(settings=settings) as server:
        dsn = server.create_database("app")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("CREATE TABLE people (id int PRIMARY KEY, city text, age int)")
            conn.execute(
                "INSERT INTO people SELECT i, 'city ' || (i % 5000), i % 90 "
                "FROM generate_series(1, 200000) AS i"
            )
            conn.execute("ANALYZE people")
            conn.execute("SELECT pg_stat_statements_reset()")
            for n in range(6):
                conn.execute("SELECT * FROM people WHERE city = %s", (f"city {n}",))
            conn.execute("SELECT count(*) FROM people WHERE age = 3")
        yield dsn


def test_live_rows_are_analyzed_with_generic_plans(
    pgss_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["analyze", "--dsn", pgss_dsn, "--from-pg-stat-statements", "--min-calls", "5",
                 "--verify", "rollback", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    [query] = report["queries"]  # --min-calls 5 keeps the lookup only
    assert query["sql"] == "SELECT * FROM people WHERE city = $1"
    assert query["calls"] == 6
    assert query["total_ms"] > 0
    assert query["analyzed"] is False
    assert "generic plan" in query["note"]
    # The generic plan still shows the scan, and the index is verified by cost.
    [suggestion] = report["suggestions"]
    assert suggestion["columns"] == ["city"]
    assert suggestion["evidence"]["after_cost"] * 10 <= suggestion["evidence"]["before_cost"]


def test_a_log_with_values_is_preferred_to_the_normalized_row(
    pgss_dsn: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        "2026-11-22 01:02:03.456 UTC [77] app@app LOG:  duration: 31.5 ms  "
        "statement: SELECT * FROM people WHERE city = 'city 42'\n"
    )
    code = main(["analyze", "--dsn", pgss_dsn, "--from-pg-stat-statements", "--log", str(log),
                 "--min-calls", "5", "--verify", "none", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    [query] = report["queries"]
    assert query["calls"] == 7  # six from pg_stat_statements, one from the log
    assert query["sql"] == "SELECT * FROM people WHERE city = 'city 42'"
    assert query["analyzed"] is True


def test_without_the_extension_the_error_says_what_to_do(
    db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["analyze", "--dsn", db_dsn, "--from-pg-stat-statements"])
    assert code == 2
    assert "pg_stat_statements is not installed" in capsys.readouterr().err
