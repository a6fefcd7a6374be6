"""The command line as a user meets it: one clear line and exit 2 for every bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from explainer.db.server import ThrowawayServer, find_binaries

PASSWORD = "Tr0ub4dor&3-secret"


@pytest.fixture(scope="module")
def password_server() -> Iterator[ThrowawayServer]:
    """A server that checks passwords (scram-sha-256), unlike the suite's trust server."""
    with ThrowawayServer(find_binaries(os.environ.get("EXPLAINER_TEST_SERVER", "auto"))) as server:  # type: ignore[arg-type]
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{PASSWORD}'")
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 20000) i")
            conn.execute("GRANT SELECT ON t TO app")
            conn.execute("ANALYZE t")
            hba = server.data_dir / "pg_hba.conf"
            hba.write_text(
                "local all postgres trust\n"
                "host all postgres 127.0.0.1/32 trust\n"
                "host all all 127.0.0.1/32 scram-sha-256\n"
            )
            conn.execute("SELECT pg_reload_conf()")
        yield server


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(
        [sys.executable, "-m", "explainer", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=120,
    )


def app_dsn(server: ThrowawayServer, password: str) -> str:
    return f"postgresql://app:{password}@127.0.0.1:{server.port}/postgres"


def assert_one_clear_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in lines[0], lines[0]


def test_wrong_password(password_server: ThrowawayServer) -> None:
    result = run_cli(
        "analyze", "--dsn", app_dsn(password_server, "wrong-pw"), "--query", "SELECT 1"
    )
    assert_one_clear_line(
        result, f"cannot connect to app@127.0.0.1:{password_server.port}/postgres"
    )
    assert 'password authentication failed for user "app"' in result.stderr
    assert "wrong-pw" not in result.stderr + result.stdout


def test_unreachable_host() -> None:
    result = run_cli(
        "analyze", "--dsn", "postgresql://app:pw@127.0.0.1:1/db", "--query", "SELECT 1"
    )
    assert_one_clear_line(result, "cannot connect to app@127.0.0.1:1/db")
    assert "refused" in result.stderr.lower()


def test_syntax_error(password_server: ThrowawayServer) -> None:
    result = run_cli(
        "analyze",
        "--dsn",
        app_dsn(password_server, PASSWORD),
        "--query",
        "SELECT * FRM t WHERE id = 1",
    )
    assert_one_clear_line(result, 'not valid SQL: syntax error at or near "FRM"')


def test_pasted_non_sql_text(password_server: ThrowawayServer) -> None:
    result = run_cli(
        "analyze",
        "--dsn",
        app_dsn(password_server, PASSWORD),
        "--sql",
        "-",
        stdin="Hi! Our checkout page is slow since Tuesday, can you look?\n",
    )
    assert_one_clear_line(result, "not valid SQL")


def test_pasted_plan_is_recognised(password_server: ThrowawayServer) -> None:
    plan = (
        "Seq Scan on t  (cost=0.00..358.00 rows=1 width=37) (actual time=0.01..2.1 rows=1 loops=1)"
    )
    result = run_cli("analyze", "--dsn", app_dsn(password_server, PASSWORD), "--query", plan)
    assert_one_clear_line(result, "looks like an EXPLAIN plan")


def test_missing_file() -> None:
    result = run_cli("analyze", "--dsn", "postgresql://x@127.0.0.1:1/db", "--sql", "nope.sql")
    assert_one_clear_line(result, "cannot read nope.sql: no such file")


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_password_never_printed(password_server: ThrowawayServer, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run_cli(
        "analyze",
        "--dsn",
        app_dsn(password_server, PASSWORD),
        "--format",
        fmt,
        "--query",
        "SELECT * FROM t WHERE v = 'x'",
        "--output",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "app:***@127.0.0.1" in text
    assert PASSWORD not in text + result.stdout + result.stderr


def test_sqlalchemy_url_is_accepted(password_server: ThrowawayServer) -> None:
    url = app_dsn(password_server, PASSWORD).replace("postgresql://", "postgresql+psycopg://")
    result = run_cli("analyze", "--dsn", url, "--format", "json", "--query", "SELECT 1")
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout


def test_libpq_environment_is_used_without_dsn(password_server: ThrowawayServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST="127.0.0.1",
        PGPORT=str(password_server.port),
        PGUSER="app",
        PGPASSWORD=PASSWORD,
        PGDATABASE="postgres",
    )
    result = subprocess.run(
        [sys.executable, "-m", "explainer", "analyze", "--format", "json", "--query", "SELECT 1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
