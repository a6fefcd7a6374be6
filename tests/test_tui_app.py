"""The workbench app: load a log and watch the workload fill, open a query, cancel a long
statement on the server and keep working, the connection dialog against a server that
checks passwords, and a snapshot of the workload screen.

Driven with Textual's Pilot against a real PostgreSQL (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Coroutine, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, ParamSpec

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Static, TextArea

from explainer.advise.model import Evidence, IndexCandidate, IndexSuggestion
from explainer.config import Settings
from explainer.db.server import ThrowawayServer, find_binaries
from explainer.demo.data import create_demo_database
from explainer.pipeline import CANCELLED, AnalyzeOptions
from explainer.report import DatabaseInfo, QueryReport, Report
from explainer.rules import Finding, Severity
from explainer.tui.app import ExplainerApp, WorkbenchCommands
from explainer.tui.screens.connect import ConnectScreen
from explainer.tui.screens.export import ExportScreen
from explainer.tui.screens.help import HelpScreen
from explainer.tui.screens.paste import PasteScreen
from explainer.tui.screens.query import QueryScreen
from explainer.tui.screens.workload import WorkloadScreen
from explainer.tui.session import Workbench, load_history, strip_password

P = ParamSpec("P")
SIZE = (120, 40)
SHOP_LOG = str(resources.files("explainer.demo").joinpath("shop.log"))


def synchronously(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test with asyncio (the suite has no async plugin)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def until(pilot: Pilot[None], condition: Callable[[], bool], seconds: float = 60) -> None:
    """Let the app run until ``condition`` holds (the workers report through messages)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {seconds} s")
        await pilot.pause(0.05)


def text_of(widget: Static) -> str:
    return str(widget.content)


def cell(table: DataTable[Any], row: str, column: str) -> str:
    return str(table.get_cell(row, column))


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The connection history goes to a folder of the test's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture(scope="module")
def shop_dsn(db_dsn: str) -> str:
    """The demo shop, small: the shipped log's queries find their tables and indexes."""
    create_demo_database(db_dsn, scale=0.05)
    return db_dsn


# -- load a log, watch the workload fill, open a query ------------------------------------


@synchronously
async def test_a_log_fills_the_workload_and_a_query_shows_its_plan_and_fix(
    shop_dsn: str, tmp_path: Path
) -> None:
    workbench = Workbench(shop_dsn, options=AnalyzeOptions(verify="rollback"))
    app = ExplainerApp(workbench, logs=[SHOP_LOG])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: workbench.report is not None and not workbench.running)
        await pilot.pause()
        report = workbench.report
        assert report is not None and not report.failed
        assert isinstance(app.screen, WorkloadScreen)
        table = app.screen.query_one("#groups", DataTable)
        # One row per shape of the log, each with what its analysis found.
        assert table.row_count == len(report.queries) == 13
        for entry in report.queries:
            worst = cell(table, entry.id, "worst")
            assert worst and worst != "…"
            if entry.findings:
                assert worst.split()[1] in {f.rule for f in entry.findings}
        served = report.suggestions[0]
        query_id = next(iter(served.evidence))
        assert cell(table, query_id, "suggestions") != ""
        assert "indexes" in app.screen.status_text()

        # Keyboard only: filter down to the query, then open it.
        entry = workbench.entries[query_id]
        words = " ".join(entry.sql.split()[:4])
        await pilot.press("slash")
        await pilot.press(*words)
        await pilot.press("enter")  # leaves the filter for the table
        assert table.has_focus
        assert query_id in {table.coordinate_to_cell_key((i, 0)).row_key.value
                            for i in range(table.row_count)}
        while table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value != query_id:
            await pilot.press("down")
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        assert screen.entry is entry
        assert screen.query("#query-plan")  # the plan tree
        findings = screen.query_one("#query-findings", OptionList)
        prompts = [str(findings.get_option_at_index(i).prompt)
                   for i in range(findings.option_count)]
        assert any(f.rule in " ".join(prompts) for f in entry.findings)
        assert served in screen.suggestions
        await pilot.click("#--content-tab-tab-sql")
        await pilot.pause()
        assert served.candidate.table in (screen.visible_snippet or "")
        assert "CREATE INDEX" in (screen.visible_snippet or "")

        # Back, and the help screen lists the keys of the workload screen and the app.
        await pilot.press("escape")
        assert app.screen is app.workload_screen
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = {(does, where, binding_id) for _, does, where, binding_id in app.screen.rows()}
        assert {
            ("Filter", "this screen", "workload.filter"),
            ("Sort", "this screen", "workload.sort"),
            ("Paste", "everywhere", "paste"),
            ("Export", "everywhere", "export"),
            ("Help", "everywhere", "help"),
        } <= rows
        await pilot.press("escape")
        assert app.screen is app.workload_screen

        # And the export writes the migration, the script and the report.
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        folder = tmp_path / "fixes"
        app.screen.query_one("#folder", Input).value = str(folder)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        written = {path.name for path in folder.iterdir()}
        assert {"migration_add_indexes.py", "indexes.sql", "report.md", "report.json"} <= written
        assert served.candidate.name in (folder / "indexes.sql").read_text()


@synchronously
async def test_sorting_by_calls_and_filtering(shop_dsn: str) -> None:
    workbench = Workbench(shop_dsn)
    workbench.load_logs([SHOP_LOG])
    app = ExplainerApp(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.workload_screen
        table = screen.query_one("#groups", DataTable)
        calls = lambda: [  # noqa: E731
            int(cell(table, table.coordinate_to_cell_key((i, 0)).row_key.value or "", "calls"))
            for i in range(table.row_count)
        ]
        await pilot.press("s")  # total -> calls
        assert screen.sort_key == "calls"
        assert calls() == sorted(calls(), reverse=True)
        await pilot.press("S")
        assert calls() == sorted(calls())
        # A click on a header sorts by that column.
        await pilot.click("#groups", offset=(3, 0))
        assert screen.sort_key == "shape"
        await pilot.press("slash", *"reviews")
        assert table.row_count == sum(
            "reviews" in g.example.sql.lower() for g in workbench.groups
        ) == 2


@synchronously
async def test_a_pasted_log_excerpt_becomes_the_workload(shop_dsn: str) -> None:
    excerpt = "".join(Path(SHOP_LOG).read_text().splitlines(keepends=True)[:12])
    workbench = Workbench(shop_dsn)
    app = ExplainerApp(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        app.screen.query_one(TextArea).text = excerpt
        await pilot.press("ctrl+r")
        await until(pilot, lambda: workbench.report is not None and not workbench.running)
        await pilot.pause()
        assert app.screen is app.workload_screen
        assert workbench.summary.sources == ["<pasted log>"]
        # Customers by email, products by sku, orders by customer, products by id and the
        # category report (8 lines): the excerpt's 5 statements.
        table = app.workload_screen.query_one("#groups", DataTable)
        assert workbench.report is not None
        assert table.row_count == len(workbench.report.queries) == 5
        assert "<pasted log>: 5 statements, 5 shapes" in app.workload_screen.status_text()


# -- cancel a long statement and keep working ---------------------------------------------


def _sleeping(dsn: str) -> list[tuple[str, str]]:
    """Statements running pg_sleep in the test's database (but this query)."""
    dbname = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE datname = %s "
            "AND query LIKE '%%pg_sleep(30)%%' AND pid <> pg_backend_pid() AND state = 'active'",
            (dbname,),
        ).fetchall()
    return [(str(state), str(query)) for state, query in rows]


@synchronously
async def test_escape_cancels_a_long_statement_on_the_server_and_the_app_goes_on(
    db_dsn: str,
) -> None:
    workbench = Workbench(db_dsn)
    app = ExplainerApp(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        assert isinstance(app.screen, PasteScreen)
        app.screen.query_one(TextArea).text = (
            "SELECT count(*) FROM pg_class;\nSELECT pg_sleep(30);\nSELECT 1 + 1;"
        )
        await pilot.press("ctrl+r")
        await until(pilot, lambda: bool(_sleeping(db_dsn)), seconds=20)
        assert workbench.running
        assert app.screen is app.workload_screen
        table = app.workload_screen.query_one("#groups", DataTable)
        first, sleep, last = (g.fingerprint for g in workbench.groups)
        # The statement before the long one is shown while the long one runs.
        await until(pilot, lambda: cell(table, first, "worst") == "no finding", seconds=5)
        assert cell(table, sleep, "worst") == "…"
        assert "analyzing 1 of 3" in app.workload_screen.status_text()
        # The UI answers during the statement.
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert app.screen is app.workload_screen

        started = time.monotonic()
        await pilot.press("escape")
        await until(pilot, lambda: not workbench.running, seconds=10)
        assert time.monotonic() - started < 5
        assert _sleeping(db_dsn) == []
        await pilot.pause()
        report = workbench.report
        assert report is not None and workbench.cancelled
        assert [q.id for q in report.queries] == [first, sleep]  # the last never started
        assert report.queries[0].plan is not None and report.queries[0].error is None
        assert report.queries[1].error == CANCELLED
        assert cell(table, sleep, "worst").startswith("error: cancelled")
        assert cell(table, last, "worst") == ""
        assert "stopped after 2 of 3" in app.workload_screen.status_text()

        # Keep working: a new paste is analyzed and, one statement, opened.
        await pilot.press("p")
        app.screen.query_one(TextArea).text = "SELECT relname FROM pg_class WHERE relpages > 0"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, QueryScreen), seconds=20)
        assert isinstance(app.screen, QueryScreen)
        assert app.screen.entry.plan is not None
        assert not workbench.cancelled


# -- the connection dialog --------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_server() -> Iterator[tuple[str, str]]:
    """A throwaway server whose pg_hba.conf asks one role for its password (the suite's
    servers trust every local connection, which checks no password at all). Returns a
    DSN of that role without password, and the password."""
    with ThrowawayServer(find_binaries("auto")) as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute("CREATE ROLE tui_pw LOGIN PASSWORD 'right-one'")
            row = conn.execute("SHOW hba_file").fetchone()
            assert row is not None
            hba = Path(str(row[0]))
            rules = hba.read_text()
            hba.write_text(
                "host all tui_pw 127.0.0.1/32 scram-sha-256\n"
                "host all tui_pw ::1/128 scram-sha-256\n" + rules
            )
            conn.execute("SELECT pg_reload_conf()")
            checked = conn.execute(
                "SELECT auth_method FROM pg_hba_file_rules WHERE 'tui_pw' = ANY(user_name)"
            ).fetchall()
            assert ("scram-sha-256",) in checked
        params = conninfo_to_dict(server.dsn)
        dsn = f"postgresql://tui_pw@{params['host']}:{params['port']}/postgres"
        yield dsn, "right-one"


@synchronously
async def test_a_wrong_password_shows_the_servers_reason_and_the_right_one_connects(
    password_server: tuple[str, str], private_state: Path
) -> None:
    dsn, password = password_server
    workbench = Workbench()
    app = ExplainerApp(workbench, ask_connection=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConnectScreen)
        screen.query_one("#dsn", Input).value = dsn
        screen.query_one("#password", Input).value = "wrong-one"
        await pilot.press("ctrl+t")
        result = screen.query_one("#result", Static)
        await until(pilot, lambda: text_of(result) not in ("", "connecting..."), seconds=15)
        assert 'password authentication failed for user "tui_pw"' in text_of(result)
        assert "wrong-one" not in text_of(result)
        assert app.screen is screen

        screen.query_one("#password", Input).value = password
        await pilot.click("#connect")
        await until(pilot, lambda: app.screen is app.workload_screen, seconds=15)
        # In memory with its password, shown and remembered without it.
        assert workbench.dsn is not None and password in workbench.dsn
        assert password not in app.workload_screen.sub_title
        assert password not in workbench.display_dsn
        history = json.loads((private_state / "explainer" / "connections.json").read_text())
        assert history == [strip_password(workbench.dsn)]
        assert password not in history[0] and "tui_pw" in history[0]
        assert load_history() == history


def test_strip_password_keeps_the_form_given() -> None:
    assert strip_password("postgresql://u:s3cret@db.example:5433/shop?sslmode=require") == (
        "postgresql://u@db.example:5433/shop?sslmode=require"
    )
    stripped = strip_password("host=db user=u password=s3cret dbname=shop")
    assert conninfo_to_dict(stripped) == {"host": "db", "user": "u", "dbname": "shop"}
    assert strip_password("postgresql://u@db/shop") == "postgresql://u@db/shop"


def test_a_failed_connection_in_the_dialog_survives_a_bad_dsn() -> None:
    @synchronously
    async def run() -> None:
        app = ExplainerApp(Workbench(), ask_connection=True)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ConnectScreen)
            screen.query_one("#dsn", Input).value = "host=127.0.0.1 port=1 connect_timeout=2"
            await pilot.press("ctrl+t")
            result = screen.query_one("#result", Static)
            await until(pilot, lambda: text_of(result) not in ("", "connecting..."), seconds=15)
            assert "cannot connect to" in text_of(result)
            assert "refused" in text_of(result).lower()

    run()


# -- errors are notifications ------------------------------------------------------------------


@synchronously
async def test_an_unreadable_log_and_a_lost_server_are_notifications(db_dsn: str) -> None:
    workbench = Workbench("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    app = ExplainerApp(workbench, logs=["/nonexistent/postgresql.log"])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app._notifications), seconds=10)
        [note] = list(app._notifications)
        assert note.severity == "error" and "/nonexistent/postgresql.log" in note.message
        # A log that reads, against a server that is not there: the dialog opens.
        app.load_logs([SHOP_LOG])
        await until(pilot, lambda: isinstance(app.screen, ConnectScreen), seconds=20)
        await until(pilot, lambda: len(app._notifications) > 1, seconds=5)
        messages = [n.message for n in app._notifications]
        refused = "cannot connect to nobody@127.0.0.1:1/none"
        assert any(m.startswith(refused) for m in messages), messages
    assert app.return_code in (None, 0)


# -- snapshot ----------------------------------------------------------------------------------


def fixed_workbench() -> Workbench:
    """The shipped log's workload with a made-up report: no timings that vary."""
    workbench = Workbench("postgresql://shop:s3cret@db.example:5432/shop")
    workbench.load_logs([SHOP_LOG])
    groups = workbench.groups
    entries = [
        QueryReport(id=g.fingerprint, sql=g.example.sql, calls=g.calls, total_ms=g.total_ms)
        for g in groups
    ]
    entries[0].findings = [
        Finding("seq-scan-selective", Severity.HIGH, "a seq scan kept 0.1% of rows", "0"),
        Finding("row-estimate", Severity.LOW, "estimated 10 rows, got 900", "0.0"),
    ]
    entries[1].findings = [Finding("sort-spill", Severity.MEDIUM, "sort spilled 4 MB", "0")]
    entries[2].error = "relation \"orders\" does not exist [42P01]"
    suggestion = IndexSuggestion(
        IndexCandidate.of("public", "order_items", "order_id"),
        {entries[0].id: Evidence("hypopg", 1200.0, 40.0)},
    )
    workbench.set_report(
        Report(
            database=DatabaseInfo("15.8", "shop", workbench.display_dsn, "hypopg"),
            queries=entries,
            suggestions=[suggestion],
            inputs=workbench.summary,
        )
    )
    return workbench


def test_workload_screen_snapshot(snap_compare: Any) -> None:
    assert snap_compare(ExplainerApp(fixed_workbench()), terminal_size=SIZE)


def test_the_snapshot_dsn_is_shown_without_its_password() -> None:
    assert fixed_workbench().display_dsn == "postgresql://shop:***@db.example:5432/shop"


@synchronously
async def test_a_server_that_goes_away_mid_statement_is_a_notification(db_dsn: str) -> None:
    workbench = Workbench(db_dsn)
    workbench.load_text("SELECT pg_sleep(30);\nSELECT 1 + 1;", "sql")
    app = ExplainerApp(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await until(pilot, lambda: bool(_sleeping(db_dsn)), seconds=20)
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE '%%pg_sleep(30)%%' AND pid <> pg_backend_pid()"
            )
        await until(pilot, lambda: not workbench.running, seconds=20)
        await until(pilot, lambda: bool(app._notifications), seconds=5)
        # The pipeline reconnects and goes on (explainer.pipeline.analyze_workload,
        # "Faults"): the lost statement's row says so, the next shape is analyzed, and
        # the notification counts the failure.
        assert any("1 failed" in str(n.message) for n in app._notifications)
        table = app.workload_screen.query_one("#groups", DataTable)
        sleep, other = (g.fingerprint for g in workbench.groups)
        assert cell(table, sleep, "worst").startswith("error: connection lost")
        assert "reconnected" in cell(table, sleep, "worst")
        assert cell(table, other, "worst") == "no finding"
        # Still working: the help screen opens.
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
    assert app.return_code in (None, 0)


# -- command palette and settings ------------------------------------------------------------


@synchronously
async def test_the_command_palette_runs_every_action_by_name() -> None:
    app = ExplainerApp(Workbench())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        provider = WorkbenchCommands(app.workload_screen)
        titles = {title for title, _, _ in provider._commands()}
        assert {"Help", "Paste", "Export", "Connect", "Quit", "Filter", "Sort", "Analyze",
                "Open log"} <= titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"connect")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConnectScreen), seconds=5)


@synchronously
async def test_theme_and_keys_come_from_the_settings() -> None:
    settings = Settings(theme="nord", keys={"paste": "ctrl+y", "workload.sort": "t"})
    app = ExplainerApp(Workbench(), settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "nord"
        await pilot.press("p")
        assert app.screen is app.workload_screen
        await pilot.press("ctrl+y")
        assert isinstance(app.screen, PasteScreen)
        await pilot.press("escape")
        await pilot.press("s")
        assert app.workload_screen.sort_key == "total"
        await pilot.press("t")
        assert app.workload_screen.sort_key == "calls"
        keys = {(key, does) for key, does, _, _ in HelpScreen().rows_for(app.workload_screen)}
        assert ("t", "Sort") in keys and ("^y", "Paste") in keys


@synchronously
async def test_an_unknown_theme_is_a_warning_not_a_crash() -> None:
    app = ExplainerApp(Workbench(), settings=Settings(theme="no-such-theme"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app._notifications), seconds=5)
        [note] = list(app._notifications)
        assert note.severity == "warning" and "no-such-theme" in note.message


# -- dialogs: q and e ------------------------------------------------------------------------


@synchronously
async def test_q_quits_only_from_the_main_screens_never_from_a_dialog() -> None:
    from explainer.tui.screens.export import ExportScreen

    app = ExplainerApp(fixed_workbench())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # Paste: q is typed into the text area, and ignored once it has lost the focus.
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PasteScreen)
        await pilot.press("q")
        assert app.screen.query_one(TextArea).text == "q"
        app.screen.set_focus(None)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, PasteScreen) and app.return_code is None
        await pilot.press("escape")
        # Connect: typed into the DSN input.
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConnectScreen)
        dsn = app.screen.query_one("#dsn", Input)
        dsn.value = ""
        await pilot.press("q")
        assert dsn.value == "q" and app.return_code is None
        await pilot.press("escape")
        # Export: neither on the suggestions nor in the folder input.
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        app.screen.set_focus(None)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen) and app.return_code is None
        await pilot.press("escape")
        await pilot.pause()
        # Help: q closes the help, as Esc does, and only that.
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
        assert app.screen is app.workload_screen and app.return_code is None
        # The footer offers Quit on the workload screen, not on a dialog.
        assert "q" in app.screen.active_bindings
        await pilot.press("p")
        await pilot.pause()
        assert "q" not in app.screen.active_bindings
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0


@synchronously
async def test_export_opens_once_however_often_it_is_asked_for() -> None:
    from explainer.tui.screens.export import ExportScreen

    app = ExplainerApp(fixed_workbench())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        # From the command palette or another screen's binding: app.export again.
        await app.run_action("app.export")
        await app.run_action("export")
        await pilot.pause()
        assert sum(isinstance(s, ExportScreen) for s in app.screen_stack) == 1
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.workload_screen


# -- start -----------------------------------------------------------------------------------


def test_the_first_screen_does_not_load_the_analysis_stack(tmp_path: Path) -> None:
    """`explainer tui` paints before the pipeline, the advisor and the renderers (with
    SQLAlchemy, sqlglot and pglast) are imported: they are most of a second of start
    (benchmarks/tui.py measures it). The command's module and the app, as main() loads
    them, and the first screen painted."""
    import os
    import subprocess
    import sys

    script = """
import asyncio, sys
from explainer.cli import build_parser
from explainer.config import parse_with_config
from explainer.tui.app import ExplainerApp

parse_with_config(build_parser(), ["tui", "--dsn", "postgresql://nobody@127.0.0.1:1/none"])

async def main() -> None:
    app = ExplainerApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "WorkloadScreen"

asyncio.run(main())
heavy = ("explainer.pipeline", "explainer.advise", "explainer.render", "explainer.plan",
         "explainer.rules", "explainer.report", "sqlalchemy", "sqlglot", "pglast")
print(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy
             or any(m.startswith(h + ".") for h in heavy)))
"""
    environment = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}  # no user config file
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=environment,
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_the_commands_light_copies_match_their_sources() -> None:
    """cli.py copies three parser values so that `explainer tui` need not import the
    analysis stack; a change at the source must reach the copy."""
    from explainer import cli
    from explainer.advise import verify

    assert tuple(s.value for s in Severity) == cli.SEVERITIES
    assert cli.DEFAULT_MIN_COST == verify.DEFAULT_MIN_COST
    assert cli.DEFAULT_MAX_VERIFY_TABLE_BYTES == verify.DEFAULT_MAX_VERIFY_TABLE_BYTES


@synchronously
async def test_ctrl_q_still_quits_from_a_dialog() -> None:
    app = ExplainerApp(Workbench())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PasteScreen)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.return_code == 0


def test_docs_list_every_binding_id_of_the_workbench() -> None:
    """docs/config.md's table is what a user rebinds from: every binding has an id (or it
    could not be rebound) and every id is listed with its default keys."""
    import importlib
    import inspect
    import pkgutil

    from textual.binding import Binding
    from textual.dom import DOMNode

    import explainer.tui

    found: dict[str, str] = {}
    for module_info in pkgutil.walk_packages(explainer.tui.__path__, "explainer.tui."):
        module = importlib.import_module(module_info.name)
        for node in vars(module).values():
            if not (inspect.isclass(node) and issubclass(node, DOMNode)):
                continue
            if node.__module__ != module.__name__:
                continue
            for binding in node.__dict__.get("BINDINGS", []):
                assert isinstance(binding, Binding)
                assert binding.id, f"{node.__name__}: {binding.action} has no id"
                found[binding.id] = binding.key
    assert {"quit", "query.copy_snippet", "paste.submit", "compare.close"} <= set(found)
    docs = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    listed = {line.split("`")[1] for line in docs.splitlines() if line.startswith("| `")}
    missing = sorted(set(found) - listed)
    assert not missing, f"not in docs/config.md: {missing}"
