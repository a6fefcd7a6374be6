"""Export: the Alembic revisions, the SQL script, ``--export DIR`` and ``explainer apply``.

The acceptance test runs the exported revision with real Alembic (a subprocess, as a user
runs it) on a real PostgreSQL, in a small SQLAlchemy project written for it
(tests/fixtures/alembic_project: models, alembic.ini, env.py, an initial revision).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from explainer.advise.ddl import create_index_sql
from explainer.advise.model import Evidence, IndexCandidate, IndexKey, IndexSuggestion
from explainer.advise.removals import IndexRemoval
from explainer.apply import script_statements
from explainer.cli import main
from explainer.errors import InputError
from explainer.export import ExportOptions, export_report
from explainer.render.alembic import create_index_code, current_head
from explainer.report import DatabaseInfo, QueryReport, Report

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "alembic_project"

QUERIES = {
    # A plain column.
    "customer": "SELECT id, total FROM orders WHERE customer_id = 42",
    # An expression key.
    "email": "SELECT id FROM customers WHERE lower(email) = 'user42@example.com'",
    # A partial index with a DESC key (1% of the orders are pending).
    "pending": "SELECT id FROM orders WHERE status = 'pending' ORDER BY created_at DESC LIMIT 20",
}


def _offline_sql(code: str) -> str:
    """What Alembic itself emits for ``op.create_index(...)`` code, in offline mode."""
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer}
    )
    exec(code, {"op": Operations(context), "sa": sa})
    return buffer.getvalue().strip()


@pytest.mark.parametrize(
    "candidate",
    [
        IndexCandidate.of("public", "orders", "customer_id"),
        IndexCandidate.of("public", "orders", "status", "created_at DESC", where="status = 'p'"),
        IndexCandidate.of("public", "customers", "lower(email)"),
        IndexCandidate.of("shop", "docs", "title gin_trgm_ops", using="gin"),
        IndexCandidate.of("public", "t", "a NULLS FIRST", "(payload ->> 'kind') DESC"),
        IndexCandidate("public", "Order", (IndexKey("User Id"),), include=("id", "total")),
    ],
    ids=["column", "partial-desc", "expression", "gin-opclass-schema", "nulls-json", "quoted"],
)
def test_alembic_emits_the_suggested_statement(candidate: IndexCandidate) -> None:
    """The op.create_index code compiles, through Alembic and SQLAlchemy, to exactly the
    CREATE INDEX the report suggests: no key, option or quoting lost on the way."""
    expected = create_index_sql(candidate, concurrently=True, if_not_exists=True) + ";"
    assert _offline_sql(create_index_code(candidate)) == expected


# -- a report without a database, for the file layout ------------------------------------


def _report(*, suggestions: int = 1, removals: int = 0) -> Report:
    report = Report(DatabaseInfo("17.0", "shop", "postgresql://app:***@db/shop", "rollback"))
    report.queries.append(QueryReport(id="q1", sql="SELECT * FROM orders\nWHERE customer_id = 4"))
    for number in range(suggestions):
        candidate = IndexCandidate.of("public", "orders", f"c{number}")
        evidence = Evidence("rollback", 1000.0, 10.0, before_ms=80.0, after_ms=0.5, index_used=True)
        report.suggestions.append(IndexSuggestion(candidate, {"q1": evidence}, ["seq-scan"]))
    for number in range(removals):
        report.removals.append(
            IndexRemoval(
                f"old_{number}", "public", "orders", "unused", 8192, 0, None, "never scanned",
                f"CREATE INDEX old_{number} ON public.orders USING btree (status)",
            )
        )  # fmt: skip
    return report


@pytest.mark.parametrize(
    ("suggestions", "removals", "expected"),
    [
        (
            1,
            0,
            {"migration_add_indexes.py", "indexes.sql", "report.md", "report.json",
             "models_snippets.md"},
        ),
        (
            1,
            1,
            {"migration_add_indexes.py", "migration_drop_indexes.py", "indexes.sql",
             "drop_indexes.sql", "report.md", "report.json", "models_snippets.md"},
        ),
        (0, 1, {"migration_drop_indexes.py", "drop_indexes.sql", "report.md", "report.json"}),
        (0, 0, {"report.md", "report.json"}),
    ],
)  # fmt: skip
def test_export_writes_one_file_per_artefact(
    tmp_path: Path, suggestions: int, removals: int, expected: set[str]
) -> None:
    exported = export_report(
        _report(suggestions=suggestions, removals=removals), ExportOptions(tmp_path / "out")
    )
    names = {p.name for p in exported.files}
    # models.patch replaces the snippets once render/patch.py builds a diff.
    if "models.patch" in names:
        expected = (expected - {"models_snippets.md"}) | {"models.patch"}
    assert names == expected
    assert {p.name for p in (tmp_path / "out").iterdir()} == expected


def test_markdown_report_carries_the_migration(tmp_path: Path) -> None:
    """The pull request's report shows the revision's upgrade, the same calls as the
    revision file written beside it."""
    export_report(_report(suggestions=2), ExportOptions(tmp_path))
    report = (tmp_path / "report.md").read_text()
    revision = (tmp_path / "migration_add_indexes.py").read_text()
    migration = report[report.index("### Migration") :]
    assert "with op.get_context().autocommit_block():" in migration
    for name in ("ix_orders_c0", "ix_orders_c1"):
        call = f"op.create_index(\n        '{name}',"
        assert call in migration
        assert call.replace("\n        ", "\n            ") in revision


def test_removals_get_their_own_revision_after_the_additions(tmp_path: Path) -> None:
    exported = export_report(_report(suggestions=1, removals=1), ExportOptions(tmp_path))
    add = (tmp_path / "migration_add_indexes.py").read_text()
    drop = (tmp_path / "migration_drop_indexes.py").read_text()
    assert "old_0" not in add
    assert "ix_orders_c0" not in drop
    assert f"down_revision: str | None = {exported.add_revision!r}" in drop
    assert "down_revision: str | None = None" in add  # standalone without --alembic-dir
    # The downgrade rebuilds the dropped index from its definition, concurrently.
    assert (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS old_0 ON public.orders USING btree (status)"
        in drop.split("def downgrade")[1]
    )
    assert script_statements(tmp_path / "drop_indexes.sql") == [
        "SET lock_timeout = '5s'",
        "DROP INDEX CONCURRENTLY IF EXISTS old_0",
    ]
    assert not any("old_0" in s for s in script_statements(tmp_path / "indexes.sql"))


def test_sql_script_comments_the_evidence_and_sets_lock_timeout(tmp_path: Path) -> None:
    export_report(_report(), ExportOptions(tmp_path))
    script = (tmp_path / "indexes.sql").read_text()
    statements = script_statements(tmp_path / "indexes.sql")
    assert statements == [
        "SET lock_timeout = '5s'",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_c0 ON orders (c0)",
    ]
    # The query it serves, on one comment line, and before/after times.
    assert "--   SELECT * FROM orders WHERE customer_id = 4" in script
    assert "-- serves q1: 80.0 ms -> 0.500 ms (160x faster), index used" in script


def test_export_never_overwrites_without_force(tmp_path: Path) -> None:
    export_report(_report(), ExportOptions(tmp_path))
    with pytest.raises(InputError, match="already there; use --force"):
        export_report(_report(), ExportOptions(tmp_path))
    again = export_report(_report(), ExportOptions(tmp_path, force=True))
    assert again.files


def test_head_is_read_with_alembic(tmp_path: Path) -> None:
    project = shutil.copytree(FIXTURE, tmp_path / "project")
    assert current_head(project / "migrations") == "0001"
    assert current_head(project / "alembic.ini") == "0001"
    (project / "migrations" / "versions" / "0002_branch.py").write_text(
        (project / "migrations" / "versions" / "0001_initial.py")
        .read_text()
        .replace('revision: str = "0001"', 'revision: str = "0002"')
    )
    with pytest.raises(InputError, match="2 heads"):
        current_head(project / "migrations")


# -- the acceptance test: real Alembic, real PostgreSQL ----------------------------------


def _alembic(project: Path, dsn: str, *args: str) -> None:
    env = {**os.environ, "EXPLAINER_ALEMBIC_DSN": dsn}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(project / "alembic.ini"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def _indexdefs(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename IN ('orders', 'customers') AND indexname NOT LIKE '%_pkey'"
        ).fetchall()
    return {name: definition for name, definition in rows}


def _definition_of(dsn: str, sql: str, name: str) -> str:
    """pg_get_indexdef of the statement the report suggests, built in a rolled-back
    transaction: PostgreSQL's own normal form, to compare with what Alembic built."""
    plain = re.sub(r"CONCURRENTLY IF NOT EXISTS ", "", sql).rstrip(";")
    plain = plain.replace(f"INDEX {name} ", "INDEX explainer_probe ", 1)
    with psycopg.connect(dsn) as conn:
        conn.execute(plain)
        (definition,) = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'explainer_probe'"
        ).fetchone() or ("",)
        conn.rollback()
    return str(definition).replace("explainer_probe", name)


def _analyze(dsn: str, out: Path, *extra: str) -> dict[str, Any]:
    args = ["analyze", "--dsn", dsn, "--format", "json", "-o", str(out.parent / "r.json")]
    for sql in QUERIES.values():
        args += ["--query", sql]
    assert main([*args, "--export", str(out), *extra]) == 0
    document: dict[str, Any] = json.loads((out / "report.json").read_text())
    return document


@pytest.fixture(scope="module")
def shop(db_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    project = shutil.copytree(FIXTURE, tmp_path_factory.mktemp("export") / "project")
    _alembic(project, db_dsn, "upgrade", "head")
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers SELECT g, 'user' || g || '@example.com', now() "
            "FROM generate_series(1, 50000) g"
        )
        conn.execute(
            "INSERT INTO orders SELECT g, 1 + g % 50000, "
            "CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'shipped' END, "
            "now() - g * interval '1 minute', g % 1000 FROM generate_series(1, 200000) g"
        )
        conn.execute("ANALYZE")
    return db_dsn, project


def test_exported_revision_runs_with_alembic(shop: tuple[str, Path], tmp_path: Path) -> None:
    dsn, project = shop
    document = _analyze(dsn, tmp_path / "out", "--alembic-dir", str(project / "migrations"))
    suggested = {s["name"]: s["sql"] for s in document["suggestions"]}
    # One index per query: a column, an expression, and for the pending orders a DESC
    # key (partial or (status, created_at DESC): which one wins depends on timings).
    assert len(suggested) == 3
    assert {"ix_orders_customer_id", "ix_customers_lower_email"} <= set(suggested)
    assert any("created_at DESC" in sql for sql in suggested.values())
    revision = (tmp_path / "out" / "migration_add_indexes.py").read_text()
    assert "down_revision: str | None = '0001'" in revision

    shutil.copy(tmp_path / "out" / "migration_add_indexes.py", project / "migrations" / "versions")
    try:
        _alembic(project, dsn, "upgrade", "head")
        built = _indexdefs(dsn)
        assert set(built) == set(suggested)
        for name, sql in suggested.items():
            assert built[name] == _definition_of(dsn, sql, name)

        # With the indexes in place, the same queries raise no suggestion and no finding
        # that led to one.
        after = _analyze(dsn, tmp_path / "again")
        assert after["suggestions"] == []
        rules = {r for s in document["suggestions"] for r in s["rules"]}
        assert not [f for q in after["queries"] for f in q["findings"] if f["rule"] in rules]

        _alembic(project, dsn, "downgrade", "-1")
        assert _indexdefs(dsn) == {}
    finally:
        _alembic(project, dsn, "downgrade", "0001")
        (project / "migrations" / "versions" / "migration_add_indexes.py").unlink()

    # The SQL script builds the same indexes, and a second run changes nothing.
    script = tmp_path / "out" / "indexes.sql"
    try:
        for _ in range(2):
            assert main(["apply", "--dsn", dsn, "--yes", str(script)]) == 0
            assert _indexdefs(dsn) == built
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in suggested:
                conn.execute(f"DROP INDEX IF EXISTS {name}")


def test_export_refuses_an_occupied_folder_before_analyzing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "report.md").write_text("mine")
    # The DSN is never used: the folder is checked first.
    code = main(["analyze", "--dsn", "host=/nonexistent", "--query", "SELECT 1",
                 "--export", str(tmp_path)])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "report.md already there; use --force" in error
    assert (tmp_path / "report.md").read_text() == "mine"


def test_apply_needs_confirmation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "indexes.sql"
    script.write_text("SET lock_timeout = '5s';\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["apply", "--dsn", "host=/nonexistent", str(script)]) == 2
    assert "pass --yes" in capsys.readouterr().err


def test_apply_runs_only_sql_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    revision = tmp_path / "migration_add_indexes.py"
    revision.write_text("")
    assert main(["apply", "--dsn", "host=/nonexistent", "--yes", str(revision)]) == 2
    assert "alembic upgrade head" in capsys.readouterr().err


# -- partitioned tables: the ON ONLY / CONCURRENTLY / ATTACH recipe ------------------------

EVENTS = """
CREATE TABLE events (id bigint, created date NOT NULL, user_id int, kind text)
    PARTITION BY RANGE (created);
CREATE TABLE events_2024 PARTITION OF events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY HASH (id);
CREATE TABLE events_2025_h0 PARTITION OF events_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO events
    SELECT g, date '2024-01-01' + (g % 700), g % 5000, 'k' || (g % 10)
    FROM generate_series(1, 200000) g;
"""


def _event_indexes(dsn: str) -> dict[str, tuple[bool, str | None]]:
    """Every index on the events tree: valid?, and the index it is attached to."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname, x.indisvalid, p.relname FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "LEFT JOIN pg_inherits h ON h.inhrelid = c.oid "
            "LEFT JOIN pg_class p ON p.oid = h.inhparent "
            "WHERE t.relname LIKE 'events%'"
        ).fetchall()
    return {str(name): (bool(valid), parent) for name, valid, parent in rows}


def test_partitioned_table_gets_the_recipe(
    make_database: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = make_database()
    project = shutil.copytree(FIXTURE, tmp_path / "project")
    _alembic(project, dsn, "upgrade", "head")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(EVENTS)
        conn.execute("ANALYZE events")
    out = tmp_path / "out"
    query = "SELECT * FROM events WHERE user_id = 42"
    args = ["analyze", "--dsn", dsn, "--query", query, "--format", "json"]
    args += ["-o", str(tmp_path / "r.json"), "--export", str(out)]
    assert main([*args, "--alembic-dir", str(project / "migrations")]) == 0
    document = json.loads((out / "report.json").read_text())
    # The scans of the three leaf partitions become one index on the partitioned table.
    [suggestion] = document["suggestions"]
    assert suggestion["table"] == "events" and suggestion["columns"] == ["user_id"]
    assert suggestion["evidence"]["index_used"]
    assert sorted(suggestion["partitions"]) == [
        "events_2024", "events_2025", "events_2025_h0", "events_2025_h1"
    ]  # fmt: skip
    name = suggestion["name"]
    expected = {
        name: (True, None),
        "ix_events_2025_user_id": (True, name),
        "ix_events_2024_user_id": (True, name),
        "ix_events_2025_h0_user_id": (True, "ix_events_2025_user_id"),
        "ix_events_2025_h1_user_id": (True, "ix_events_2025_user_id"),
    }

    # Alembic: upgrade builds the whole tree valid and attached; downgrade leaves nothing.
    shutil.copy(out / "migration_add_indexes.py", project / "migrations" / "versions")
    _alembic(project, dsn, "upgrade", "head")
    assert _event_indexes(dsn) == expected
    _alembic(project, dsn, "downgrade", "-1")
    assert _event_indexes(dsn) == {}

    # The SQL script, twice; then the query is measured before and after and uses it.
    capsys.readouterr()
    for _ in range(2):
        assert main(["apply", "--dsn", dsn, "--yes", str(out / "indexes.sql")]) == 0
        assert _event_indexes(dsn) == expected
    printed = capsys.readouterr().out
    assert printed.count("index used") == 2 and "NOT used" not in printed
    first = re.search(r"([\d.,]+) ms -> ([\d.,]+) ms", printed)
    assert first is not None
    before, after = (float(x.replace(",", "")) for x in first.groups())
    assert after < before


def test_apply_without_a_report_says_the_queries_were_not_rerun(
    db_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "indexes.sql"
    script.write_text("SET lock_timeout = '5s';\n")
    assert main(["apply", "--dsn", db_dsn, "--yes", str(script)]) == 0
    assert "the queries were not re-run" in capsys.readouterr().out
