"""Secrets and privacy: no password in anything a run leaves behind, and ``--redact``.

Passwords: a throwaway server whose pg_hba.conf makes one role prove its password (the
suite's servers trust local connections and check none), analyzed through
``explainer.cli.main`` with the password in each DSN form users have (libpq URI, key=value,
SQLAlchemy URL, PGPASSWORD), in every output format, to stdout, to ``-o`` files and to an
``--export`` folder; ``workload`` and ``apply``; then the error paths (wrong database,
nothing listening, wrong password, a failing statement, invalid DSNs, config files holding
a password, mistyped command lines that argparse echoes) and the workbench (its screens as
rendered, its notifications, its connection history). Every artefact is searched for the
password, whole, URL-quoted and in part.

``--redact``: a log with distinctive literal and parameter values, analyzed against the
suite's real PostgreSQL with ``--export``: none of the values in any output or exported
file, the SQL still shows its shape, and the index DDL is the same as without it.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console

from explainer.advise.model import Evidence, IndexCandidate, IndexSuggestion
from explainer.capture.model import CapturedQuery
from explainer.cli import main
from explainer.db.connection import connect
from explainer.db.server import ThrowawayServer, find_binaries
from explainer.errors import ConnectionFailed
from explainer.pipeline import AnalyzeOptions
from explainer.plan.source import parse_plan
from explainer.redact import redact_expression, redact_report, redact_sql
from explainer.render.json import render_json
from explainer.report import DatabaseInfo, QueryReport, Report
from explainer.rules import Finding, Severity
from explainer.tui.app import ExplainerApp
from explainer.tui.screens.connect import ConnectScreen
from explainer.tui.screens.query import QueryScreen
from explainer.tui.session import Workbench

#: Characters a URI must quote, so every DSN form spells it differently.
PASSWORD = "Zq9x7-s3cr3t@pw:/x"
WRONG_PASSWORD = "Wr0ng-Kv4m2@pw:/y"
ROLE = "secret_pw"
DATABASE = "secretdb"
APPLY_DATABASE = "secretapply"
SIZE = (120, 40)

QUERIES = [
    "SELECT id, total FROM purchases WHERE customer_ref = 'customer-4242'",
    "SELECT count(*) FROM purchases WHERE account_no = 777",
]


def needles(password: str) -> list[str]:
    """The password as given, URL-quoted both ways, and its distinctive start."""
    return sorted({password, quote(password, safe=""), quote(password), password[:10]})


def leaks(artefacts: dict[str, str], password: str = PASSWORD) -> list[str]:
    return [
        f"{name} holds {needle!r}"
        for name, text in artefacts.items()
        for needle in needles(password)
        if needle in text
    ]


def files_under(folder: Path) -> dict[str, str]:
    return {
        str(path): path.read_text(encoding="utf-8", errors="replace")
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config file of the machine's, and the workbench's history in the test's folder."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("PGPASSWORD", raising=False)


@pytest.fixture(scope="module")
def secret_server() -> Iterator[tuple[str, int]]:
    """A throwaway server where ROLE must give its password over TCP (scram-sha-256),
    owning a database with a table worth an index and two duplicate indexes (so that an
    export has every artefact: additions and removals). Yields (host, port)."""
    with ThrowawayServer(find_binaries("auto")) as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        host, port = "127.0.0.1", server.port
        # Still trusted: the role creates (and so owns) its tables.
        with psycopg.connect(
            f"host={host} port={port} dbname={DATABASE} user={ROLE}", autocommit=True
        ) as conn:
            conn.execute(
                "CREATE TABLE purchases (id bigint PRIMARY KEY, customer_ref text NOT NULL,"
                " account_no integer NOT NULL, total numeric NOT NULL, note text)"
            )
            conn.execute(
                "INSERT INTO purchases SELECT i, 'customer-' || i, i * 7, i % 500, "
                "repeat('x', 40) FROM generate_series(1, 60000) i"
            )
            conn.execute("CREATE INDEX purchases_total ON purchases (total)")
            conn.execute("CREATE INDEX purchases_total_again ON purchases (total)")
            conn.execute("ANALYZE purchases")
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            # A copy for `explainer apply` to build indexes in.
            conn.execute(f"CREATE DATABASE {APPLY_DATABASE} TEMPLATE {DATABASE} OWNER {ROLE}")
            row = conn.execute("SHOW hba_file").fetchone()
            assert row is not None
            hba = Path(str(row[0]))
            hba.write_text(
                f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n"
                f"host all {ROLE} ::1/128 scram-sha-256\n" + hba.read_text()
            )
            conn.execute("SELECT pg_reload_conf()")
        # The server really checks: no password and a wrong one are both refused.
        for attempt in ("", f" password='{WRONG_PASSWORD}'"):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(f"host={host} port={port} dbname={DATABASE} user={ROLE}{attempt}")
        yield host, port


def dsn_forms(host: str, port: int) -> dict[str, str]:
    """The same target with the password, in each form --dsn accepts."""
    quoted = quote(PASSWORD, safe="")
    return {
        "uri": f"postgresql://{ROLE}:{quoted}@{host}:{port}/{DATABASE}",
        "keyword": f"host={host} port={port} dbname={DATABASE} user={ROLE} password='{PASSWORD}'",
        "sqlalchemy": f"postgresql+psycopg://{ROLE}:{quoted}@{host}:{port}/{DATABASE}",
        # No password in the DSN: PGPASSWORD gives it (set by the test).
        "pgpassword": f"postgresql://{ROLE}@{host}:{port}/{DATABASE}",
    }


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``explainer ARGS`` in-process: (exit code, stdout, stderr)."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def query_args() -> list[str]:
    return [arg for sql in QUERIES for arg in ("--query", sql)]


# -- the password, in every DSN form and every artefact --------------------------------------


@pytest.mark.parametrize("form", ["uri", "keyword", "sqlalchemy", "pgpassword"])
def test_no_artefact_of_an_analysis_holds_the_password(
    form: str,
    secret_server: tuple[str, int],
    run: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsn = dsn_forms(*secret_server)[form]
    if form == "pgpassword":
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
    artefacts: dict[str, str] = {}
    export = tmp_path / "export"
    code, out, err = run(
        "analyze", "--dsn", dsn, *query_args(), "--verify", "rollback", "--export", str(export)
    )
    assert code == 0, err
    artefacts |= {"text stdout": out, "text stderr": err}
    written = files_under(export)
    # Every artefact an export can write: revision and script for the additions and the
    # removals (the duplicate index), both reports, the model snippets.
    assert {Path(name).name for name in written} == {
        "migration_add_indexes.py",
        "migration_drop_indexes.py",
        "indexes.sql",
        "drop_indexes.sql",
        "report.md",
        "report.json",
        "models_snippets.md",
    }
    artefacts |= written
    for fmt in ("text", "json", "markdown"):
        code, out, err = run("analyze", "--dsn", dsn, *query_args(), "--format", fmt)
        assert code == 0, err
        artefacts |= {f"{fmt} stdout": out, f"{fmt} stderr": err}
        target = tmp_path / f"report.{fmt}"
        code, out, err = run(
            "analyze", "--dsn", dsn, *query_args(), "--format", fmt, "-o", str(target)
        )
        assert code == 0, err
        artefacts |= {f"-o {fmt} stdout": out, f"-o {fmt} stderr": err}
        artefacts[str(target)] = target.read_text()
    # It did connect as the role, and says where: the DSN is shown, without the password.
    document = json.loads(artefacts["json stdout"])
    assert document["database"]["database"] == DATABASE
    assert f"{ROLE}:***@" in document["database"]["dsn"] or form == "pgpassword"
    assert document["suggestions"] and document["removals"]
    assert leaks(artefacts) == []


def test_the_workload_command_never_shows_pgpassword(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    sql = tmp_path / "queries.sql"
    sql.write_text(";\n".join(QUERIES) + ";\n")
    artefacts = {}
    for fmt in ("text", "json"):
        code, out, err = run("workload", "--sql", str(sql), "--format", fmt)
        assert code == 0, err
        assert "purchases" in out
        artefacts |= {f"{fmt} stdout": out, f"{fmt} stderr": err}
    assert leaks(artefacts) == []


@pytest.mark.parametrize(
    "argv",
    [
        # workload has no --dsn: argparse lists the unrecognized arguments.
        [
            "workload",
            "--dsn",
            f"postgresql://app:{quote(PASSWORD, safe='')}@db/shop",
            "--query",
            "SELECT 1",
        ],
        # The DSN without --dsn, in each form, a PGPASSWORD value typed as an argument.
        ["analyze", f"host=db user=app password='{PASSWORD}'", "--query", "SELECT 1"],
        ["analyze", f"postgresql+psycopg://app:{PASSWORD}@db/shop", "--query", "SELECT 1"],
        [
            "analyze",
            f"postgresql://app@db/shop?password={quote(PASSWORD, safe='')}&sslmode=require",
        ],
        ["plan", "plan.json", f"password={PASSWORD}"],
    ],
)
def test_a_mistyped_command_line_never_echoes_the_password(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert "unrecognized arguments: " in captured.err and "***" in captured.err
    assert leaks({"stdout": captured.out, "stderr": captured.err}) == []


@pytest.mark.parametrize(
    "dsn",
    [
        f"host=db password='{PASSWORD}' bogus=1",
        f"host=db password='{PASSWORD}",  # unterminated
        f"postgresql://app:{quote(PASSWORD, safe='')}@db/shop?bogus=1",
        f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:notaport/shop",
        f"host=db password='{PASSWORD}' port",
    ],
)
def test_an_invalid_dsn_is_refused_without_its_password(dsn: str, run: Run) -> None:
    code, out, err = run("analyze", "--dsn", dsn, "--query", "SELECT 1", "--format", "json")
    assert code == 2 and err.startswith("explainer: error: "), err
    assert leaks({"stdout": out, "stderr": err}) == []


def _port_nobody_listens_on() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_failures_say_why_without_the_password(
    secret_server: tuple[str, int], run: Run, tmp_path: Path
) -> None:
    host, port = secret_server
    quoted, wrong = quote(PASSWORD, safe=""), quote(WRONG_PASSWORD, safe="")
    closed = _port_nobody_listens_on()
    cases = {
        "wrong database": (
            f"postgresql://{ROLE}:{quoted}@{host}:{port}/no_such_db",
            'database "no_such_db" does not exist',
        ),
        "nothing listening": (
            f"host={host} port={closed} dbname={DATABASE} user={ROLE} password='{PASSWORD}'",
            "refused",
        ),
        "wrong password": (
            f"postgresql+psycopg://{ROLE}:{wrong}@{host}:{port}/{DATABASE}",
            f'password authentication failed for user "{ROLE}"',
        ),
    }
    artefacts: dict[str, str] = {}
    for name, (dsn, reason) in cases.items():
        for fmt in ("text", "json"):
            target = tmp_path / f"{name}.{fmt}"
            code, out, err = run(
                "analyze", "--dsn", dsn, *query_args(), "--format", fmt, "-o", str(target),
                "--export", str(tmp_path / f"{name}-{fmt}"),
            )  # fmt: skip
            assert code == 2
            # One line, naming the target and the server's reason; no traceback.
            assert err.startswith("explainer: error: cannot connect to "), err
            assert reason in err and "Traceback" not in err
            artefacts |= {f"{name} {fmt} stdout": out, f"{name} {fmt} stderr": err}
        # The exception itself, with its whole chain, as a traceback would print it.
        with pytest.raises(ConnectionFailed) as raised:
            connect(dsn, connect_timeout=5)
        chain = "".join(traceback.format_exception(raised.value, chain=True))
        context = raised.value.__context__
        artefacts[f"{name} traceback"] = chain + repr(context) + str(context)
    artefacts |= files_under(tmp_path)  # nothing should be there, but if anything is
    assert leaks(artefacts) == []
    assert leaks(artefacts, WRONG_PASSWORD) == []

    # A failing statement among good ones: reported for that query, the rest analyzed.
    dsn = dsn_forms(host, port)["uri"]
    failing = "SELECT * FROM purchases WHERE account_no = 'not a number'"
    export = tmp_path / "failing"
    code, out, err = run(
        "analyze", "--dsn", dsn, *query_args(), "--query", failing, "--format", "json",
        "--export", str(export),
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    errors = [q["error"] for q in document["queries"] if q["error"]]
    assert len(errors) == 1 and "invalid input syntax for type integer" in errors[0]
    assert "invalid input syntax" in err
    assert leaks({"stdout": out, "stderr": err, **files_under(export)}) == []


def test_config_files_and_apply_never_show_the_password(
    secret_server: tuple[str, int], run: Run, tmp_path: Path
) -> None:
    host, port = secret_server
    artefacts: dict[str, str] = {}
    # A config file is no place for a password: refused, without repeating it.
    quoted = quote(PASSWORD, safe="")
    configs = {
        "password in a dsn": f'dsn = "postgresql://{ROLE}:{quoted}@{host}:{port}/{DATABASE}"',
        "password key": f'host = "{host}"\npassword = "{PASSWORD}"',
        "bad dsn": f'dsn = "postgresql://{ROLE}:{quoted}@{host}:port/{DATABASE}"',
        "unterminated": f'dsn = "host={host} password={PASSWORD}',
    }
    for name, body in configs.items():
        config = tmp_path / f"{name}.toml"
        config.write_text(f"[profiles.prod]\n{body}\n")
        code, out, err = run(
            "analyze", "--config", str(config), "--profile", "prod", *query_args()
        )  # fmt: skip
        assert code == 2 and err.startswith("explainer: error: "), err
        artefacts |= {f"{name} stdout": out, f"{name} stderr": err}

    # explainer apply: the exported script on another database, then the queries re-run.
    export = tmp_path / "export"
    dsn = dsn_forms(host, port)["sqlalchemy"]
    code, _, err = run("analyze", "--dsn", dsn, *query_args(), "--export", str(export))
    assert code == 0, err
    target = f"host={host} port={port} dbname={APPLY_DATABASE} user={ROLE} password='{PASSWORD}'"
    code, out, err = run("apply", str(export / "indexes.sql"), "--dsn", target, "--yes")
    assert code == 0, err
    assert f"statements to {ROLE}@{host}:{port}/{APPLY_DATABASE}" in err
    artefacts |= {"apply stdout": out, "apply stderr": err}
    assert leaks(artefacts) == []


# -- the workbench ---------------------------------------------------------------------------


async def _until(pilot: object, condition: Callable[[], bool], seconds: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"still waiting after {seconds} s")
        await pilot.pause(0.05)  # type: ignore[attr-defined]


def _screen_text(app: ExplainerApp) -> str:
    """What the terminal shows, as plain text (Textual's screenshot, before it becomes an
    SVG whose spans would split a word), every screen's title and subtitle, and every
    notification sent (a toast may sit under a dialog or be gone already)."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), record=True)
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    titles = [f"{s.title} {s.sub_title}" for s in app.screen_stack]
    notes = [f"{n.title} {n.message}" for n in app._notifications]  # toasts, even hidden
    return "\n".join([console.export_text(), str(app.title), str(app.sub_title), *titles, *notes])


def test_the_workbench_never_shows_or_stores_the_password(
    secret_server: tuple[str, int], tmp_path: Path
) -> None:
    host, port = secret_server
    forms = dsn_forms(host, port)
    log = tmp_path / "queries.sql"
    log.write_text(";\n".join(QUERIES) + ";\n")
    screens: dict[str, str] = {}

    async def analyzed_from_the_command_line() -> None:
        workbench = Workbench(forms["uri"], options=AnalyzeOptions(verify="rollback"))
        app = ExplainerApp(workbench, logs=[str(log)])
        async with app.run_test(size=SIZE) as pilot:
            await _until(pilot, lambda: workbench.report is not None and not workbench.running)
            await pilot.pause()
            assert workbench.report is not None and not workbench.report.failed
            assert f"{ROLE}:***@" in app.workload_screen.sub_title
            screens["workload screen"] = _screen_text(app)
            await pilot.press("enter")  # the first query, its plan and suggestion
            await pilot.pause()
            assert isinstance(app.screen, QueryScreen)
            screens["query screen"] = _screen_text(app)
            assert "purchases" in screens["query screen"]

    async def connected_in_the_dialog() -> None:
        workbench = Workbench()
        app = ExplainerApp(workbench, ask_connection=True)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ConnectScreen)
            screen.query_one("#dsn").value = forms["pgpassword"]  # type: ignore[attr-defined]
            screen.query_one("#password").value = WRONG_PASSWORD  # type: ignore[attr-defined]
            await pilot.press("ctrl+t")
            await _until(pilot, lambda: "authentication failed" in _screen_text(app), 15)
            screens["dialog, wrong password"] = _screen_text(app)
            screen.query_one("#password").value = PASSWORD  # type: ignore[attr-defined]
            await pilot.click("#connect")
            await _until(pilot, lambda: app.screen is app.workload_screen, seconds=15)
            assert workbench.dsn is not None and PASSWORD in workbench.dsn  # in memory only
            await pilot.pause()
            screens["after connecting"] = _screen_text(app)
            assert f"connected: postgresql://{ROLE}:***@" in screens["after connecting"]
        # A second start: the dialog offers the history, which holds the DSN without it.
        app = ExplainerApp(Workbench(), ask_connection=True)
        async with app.run_test(size=SIZE) as pilot:
            await _until(pilot, lambda: isinstance(app.screen, ConnectScreen), seconds=10)
            await pilot.pause()
            screens["dialog with history"] = _screen_text(app)
            assert f"user={ROLE} dbname={DATABASE}" in screens["dialog with history"]

    async def failing_analysis() -> None:
        wrong = forms["uri"].replace(quote(PASSWORD, safe=""), quote(WRONG_PASSWORD, safe=""))
        workbench = Workbench(wrong, options=AnalyzeOptions(verify="rollback"))
        app = ExplainerApp(workbench, logs=[str(log)])
        async with app.run_test(size=SIZE) as pilot:
            # The server's reason, and the dialog again, the DSN in it without the password.
            await _until(pilot, lambda: isinstance(app.screen, ConnectScreen), seconds=30)
            await pilot.pause()
            screens["failed analysis"] = _screen_text(app)
            assert "password authentication failed for user" in screens["failed analysis"]

    asyncio.run(analyzed_from_the_command_line())
    asyncio.run(connected_in_the_dialog())
    asyncio.run(failing_analysis())
    stored = files_under(tmp_path / "state")
    assert any(name.endswith("connections.json") for name in stored)
    artefacts = {**screens, **stored}
    assert leaks(artefacts) == []
    assert leaks(artefacts, WRONG_PASSWORD) == []


# -- --redact ----------------------------------------------------------------------------------

SECRET_TEXT = "secret-customer-7781"
SECRET_NUMBER = "99887766"
SECRETS = (SECRET_TEXT, SECRET_NUMBER)


def _log(path: Path) -> Path:
    """A stderr log: a literal in one statement, a logged parameter in another (extended
    protocol), and a statement that fails and would quote its value."""
    prefix = "2026-11-22 10:00:0{second}.000 UTC [4711] app@shop "
    lines = []
    for second in range(3):
        lines += [
            prefix.format(second=second) + "LOG:  duration: 31.5 ms  statement: "
            f"SELECT id, total FROM ledger WHERE customer_ref = '{SECRET_TEXT}'",
            prefix.format(second=second) + "LOG:  duration: 27.0 ms  execute <unnamed>: "
            "SELECT id, customer_ref FROM ledger WHERE account_no = $1",
            prefix.format(second=second) + f"DETAIL:  parameters: $1 = '{SECRET_NUMBER}'",
        ]
    lines.append(
        prefix.format(second=4) + "LOG:  duration: 1.0 ms  statement: "
        f"SELECT id FROM ledger WHERE account_no = '{SECRET_TEXT}'"
    )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def ledger_dsn(db_dsn: str) -> str:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE ledger (id bigint PRIMARY KEY, customer_ref text NOT NULL,"
            " account_no bigint NOT NULL, total numeric NOT NULL, note text)"
        )
        conn.execute(
            "INSERT INTO ledger SELECT i, CASE WHEN i = 777 THEN %s ELSE 'customer-' || i END,"
            " CASE WHEN i = 778 THEN %s::bigint ELSE i * 11 END, i %% 300, repeat('y', 60)"
            " FROM generate_series(1, 120000) i",
            (SECRET_TEXT, SECRET_NUMBER),
        )
        conn.execute("ANALYZE ledger")
    return db_dsn


def _ddl(text: str) -> list[str]:
    """A script's or revision's statements and code, without comments and revision ids."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("--", "#")):
            continue
        if re.match(r"(Revision ID|Revises|Create Date):|(down_)?revision: str", stripped):
            continue
        kept.append(line)
    return kept


def test_redact_leaves_no_captured_value_in_any_report_or_export(
    ledger_dsn: str, run: Run, tmp_path: Path
) -> None:
    log = _log(tmp_path / "app.log")
    base = ["analyze", "--dsn", ledger_dsn, "--log", str(log), "--verify", "rollback"]

    # Without --redact the values are there: the check below can fail.
    code, plain_out, err = run(*base, "--format", "json", "--export", str(tmp_path / "plain"))
    assert code == 0, err
    plain = files_under(tmp_path / "plain")
    assert all(value in plain_out for value in SECRETS)

    artefacts: dict[str, str] = {}
    code, out, err = run(*base, "--redact", "--export", str(tmp_path / "redacted"))
    assert code == 0, err
    artefacts |= {"text stdout": out, "text stderr": err}
    for fmt in ("json", "markdown"):
        code, out, err = run(*base, "--redact", "--format", fmt)
        artefacts |= {f"{fmt} stdout": out, f"{fmt} stderr": err}
        target = tmp_path / f"report-{fmt}"
        code, out, err = run(*base, "--redact", "--format", fmt, "-o", str(target))
        artefacts |= {f"-o {fmt} stdout": out, f"-o {fmt} stderr": err}
        artefacts[str(target)] = target.read_text()
    redacted = files_under(tmp_path / "redacted")
    artefacts |= redacted
    found = [(name, v) for name, text in artefacts.items() for v in SECRETS if v in text]
    assert found == []

    # The same analysis: its shapes, placeholders where the values were, the error kept.
    document = json.loads(artefacts["json stdout"])
    sqls = {q["sql"] for q in document["queries"]}
    assert "SELECT id, total FROM ledger WHERE customer_ref = $1" in sqls
    assert "SELECT id, customer_ref FROM ledger WHERE account_no = $1" in sqls
    assert "SELECT id FROM ledger WHERE account_no = $1" in sqls
    errors = [q["error"] for q in document["queries"] if q["error"]]
    assert len(errors) == 1 and "invalid input syntax for type bigint" in errors[0]
    filters = [
        f["details"]["filter"]
        for q in document["queries"]
        for f in q["findings"]
        if f["details"].get("filter")
    ]
    assert filters and all("'?'" in f or "?" in f for f in filters)

    # Same indexes, same DDL: only the comments (the queries they serve) differ.
    assert {Path(n).name for n in redacted} == {Path(n).name for n in plain}
    assert "indexes.sql" in {Path(n).name for n in redacted}
    for name in ("indexes.sql", "migration_add_indexes.py"):
        before = (tmp_path / "plain" / name).read_text()
        after = (tmp_path / "redacted" / name).read_text()
        # Sorted: the order follows the measured savings, which vary from run to run.
        assert sorted(_ddl(after)) == sorted(_ddl(before))
        assert SECRET_TEXT in before and SECRET_TEXT not in after
        assert "customer_ref = $1" in after
    plain_json = json.loads((tmp_path / "plain" / "report.json").read_text())
    assert sorted(s["sql"] for s in document["suggestions"]) == sorted(
        s["sql"] for s in plain_json["suggestions"]
    )
    assert len(document["suggestions"]) == 2


def test_redact_in_the_workload_command(run: Run, tmp_path: Path) -> None:
    log = _log(tmp_path / "app.log")
    code, out, _ = run("workload", "--log", str(log), "--format", "json")
    assert code == 0 and all(value in out for value in SECRETS)
    outputs = {}
    for fmt in ("json", "text"):
        code, out, err = run("workload", "--log", str(log), "--format", fmt, "--redact")
        assert code == 0, err
        outputs[fmt] = out + err
    assert [v for v in SECRETS for text in outputs.values() if v in text] == []
    groups = json.loads(outputs["json"])["groups"]
    by_sql = {g["sql"]: g for g in groups}
    parameterized = by_sql["SELECT id, customer_ref FROM ledger WHERE account_no = $1"]
    assert parameterized["parameters"] == ["?"] and parameterized["calls"] == 3
    assert all(s["parameters"] == ["?"] for s in parameterized["samples"])
    assert "SELECT id, total FROM ledger WHERE customer_ref = $1" in by_sql


# -- the redaction functions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT * FROM t WHERE a = 'x''y' AND b = -5 AND c IN (1, 2.5) AND d = $1 LIMIT 10",
            "SELECT * FROM t WHERE a = $2 AND b = $3 AND c IN ($4, $5) AND d = $1 LIMIT $6",
        ),
        # Type modifiers stay (they are the type, not a value), typed literals and E''
        # strings go, a comment's quoted values too; offsets count characters, not bytes.
        (
            "SELECT 'é', x::varchar(20) FROM t /* route='/users/42' */ "
            "WHERE d = DATE '2024-01-01' AND e = E'\\x41' AND f = $$dollar$$",
            "SELECT $1, x::varchar(20) FROM t /* route='?' */ "
            "WHERE d = DATE $2 AND e = $3 AND f = $4",
        ),
        # Text the parser rejects (cut by track_activity_query_size): ? for each literal.
        (
            'SELECT * FROM t WHERE "col1" = 42 AND name = \'cut sho',
            'SELECT * FROM t WHERE "col1" = ? AND name = ?',
        ),
    ],
)
def test_redact_sql(sql: str, expected: str) -> None:
    assert redact_sql(sql) == expected


def test_redact_expression_keeps_names() -> None:
    condition = (
        "(((email)::text = 'ann@example.com'::text) AND (id = ANY ('{1,2}'::integer[])) "
        "AND (t2.col3 > 99887766.5) AND (t2.a = $1) AND (NOT (hashed SubPlan 1)) "
        'AND ("*SELECT* 1".x < 10))'
    )
    assert redact_expression(condition) == (
        "(((email)::text = '?'::text) AND (id = ANY ('?'::integer[])) "
        "AND (t2.col3 > ?) AND (t2.a = $1) AND (NOT (hashed SubPlan 1)) "
        'AND ("*SELECT* 1".x < ?))'
    )


def test_the_password_server_dsn_is_parsed_as_given() -> None:
    """The DSN forms above really carry the password (else the greps prove nothing)."""
    forms = dsn_forms("127.0.0.1", 5432)
    from explainer.db.connection import normalize_dsn

    for form in ("uri", "keyword", "sqlalchemy"):
        assert conninfo_to_dict(normalize_dsn(forms[form]))["password"] == PASSWORD


def test_redact_report_replaces_values_in_plans_findings_and_errors_of_a_copy() -> None:
    """What the JSON does not print but the report holds (every plan node, the evidence's
    plans) is redacted too, and the original report is left as it was."""
    plan = parse_plan(
        json.dumps(
            [
                {
                    "Plan": {
                        "Node Type": "Index Scan",
                        "Index Name": "ledger_2024_idx",
                        "Relation Name": "ledger",
                        "Alias": "l1",
                        "Index Cond": f"(account_no = '{SECRET_NUMBER}'::bigint)",
                        "Filter": f"((customer_ref)::text = '{SECRET_TEXT}'::text)",
                        "Output": ["l1.id", f"'{SECRET_TEXT}'::text"],
                        "Total Cost": 8.3,
                        "Plan Rows": 1,
                        "Plan Width": 8,
                    },
                    "Query Text": f"SELECT id FROM ledger l1 WHERE customer_ref = '{SECRET_TEXT}'",
                }
            ]
        )
    )
    candidate = IndexCandidate.of("public", "ledger", "customer_ref", where="kind = 'archived'")
    finding = Finding(
        "seq-scan-selective",
        Severity.HIGH,
        f"{SECRET_TEXT} in a message",
        "0",
        details={"filter": plan.root.filter, "rows_read": 99887766.0},
    )
    query = QueryReport(
        id="q",
        sql=f"SELECT id FROM ledger l1 WHERE customer_ref = '{SECRET_TEXT}' AND account_no = $1",
        plan=plan,
        error=f'invalid input syntax for type bigint: "{SECRET_NUMBER}"',
        findings=[finding],
    )
    report = Report(
        DatabaseInfo("15", "shop", "postgresql://app:***@db/shop", "rollback"),
        queries=[query],
        suggestions=[
            IndexSuggestion(candidate, {"q": Evidence("rollback", 10, 1, 5, 1, True, plan)})
        ],
    )
    redacted = redact_report(report, values=[SECRET_NUMBER])
    node = redacted.queries[0].plan.root  # type: ignore[union-attr]
    assert node.index_cond == "(account_no = '?'::bigint)"
    assert node.filter == "((customer_ref)::text = '?'::text)"
    assert node.raw["Output"] == ["l1.id", "'?'::text"]
    assert (node.index_name, node.relation, node.alias) == ("ledger_2024_idx", "ledger", "l1")
    assert redacted.queries[0].plan.raw["Query Text"].endswith("customer_ref = $1")  # type: ignore[union-attr]
    assert redacted.queries[0].sql.endswith("customer_ref = $2 AND account_no = $1")
    assert redacted.queries[0].error == 'invalid input syntax for type bigint: "?"'
    redacted_finding = redacted.queries[0].findings[0]
    assert redacted_finding.message == "? in a message"
    assert redacted_finding.details == {
        "filter": "((customer_ref)::text = '?'::text)",
        "rows_read": 99887766.0,  # a figure, not text
    }
    evidence_plan = redacted.suggestions[0].evidence["q"].before_plan
    assert evidence_plan is not None and evidence_plan.root.filter == node.filter
    # The index is the same index: a partial predicate's constant is its definition.
    assert redacted.suggestions[0].candidate == candidate
    assert "'archived'" in render_json(redacted)
    # The original is untouched.
    assert SECRET_TEXT in (plan.root.filter or "") and SECRET_TEXT in report.queries[0].sql
    assert SECRET_NUMBER in (report.queries[0].error or "")


def test_the_progress_lines_are_redacted_too() -> None:
    """On a terminal, analyze prints each statement as it starts: redacted as well."""
    from explainer.cli import _progress
    from explainer.workload import build_workload

    query = CapturedQuery(
        f"SELECT id FROM ledger WHERE customer_ref = '{SECRET_TEXT}'", parameters=()
    )
    (group,) = build_workload([query]).groups
    for redact, expected in ((False, SECRET_TEXT), (True, "customer_ref = $1")):
        console = Console(file=io.StringIO(), width=200)
        _progress(console, redact=redact)(1, 1, group)
        assert expected in console.file.getvalue()  # type: ignore[attr-defined]
