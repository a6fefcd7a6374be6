"""The TUI's Query, Compare and Paste screens and the plan tree, driven by a Pilot.

Each test pushes the screen under test on a tiny app of its own, so these screens are
tested without the rest of the workbench. The Query screen is checked once on a real
analysis (a selective filter on an unindexed table, analyzed by explainer.pipeline
against PostgreSQL) and otherwise, like the snapshots, on a report built from fixed plans
and figures that do not vary between runs.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, ParamSpec

import psycopg
import pytest
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import OptionList, Static, TextArea

from explainer.advise.model import (
    Evidence,
    IndexCandidate,
    IndexSuggestion,
    NoSuggestion,
    NoSuggestionReason,
)
from explainer.capture import CapturedQuery
from explainer.pipeline import AnalyzeOptions, analyze_workload
from explainer.plan.labels import node_label
from explainer.plan.source import parse_plan
from explainer.render.sql import index_sql
from explainer.report import DatabaseInfo, QueryReport, Report
from explainer.rules import RuleContext, run_rules
from explainer.tui.screens.compare import CompareScreen
from explainer.tui.screens.paste import PasteScreen, read_paste
from explainer.tui.screens.query import QueryScreen
from explainer.tui.widgets.plan_tree import PlanTree, PlanTreeView
from explainer.workload import build_workload

P = ParamSpec("P")


def synchronously(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test with asyncio (the suite has no async plugin); fixtures still
    reach it, since pytest reads the wrapped function's signature."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SIZE = (120, 40)

# -- fixed data ------------------------------------------------------------------------

BEFORE = """\
Limit  (cost=2100.00..2100.25 rows=100 width=40) (actual time=14.000..14.020 rows=100 loops=1)
  Buffers: shared hit=443
  ->  Sort  (cost=2100.00..2100.25 rows=98 width=40) (actual time=13.990..14.000 rows=100 loops=1)
        Sort Key: created_at DESC
        Sort Method: quicksort  Memory: 32kB
        Buffers: shared hit=443
        ->  Seq Scan on orders  (cost=0.00..1943.00 rows=98 width=40) \
(actual time=0.020..13.500 rows=100 loops=1)
              Filter: (customer_id = 42)
              Rows Removed by Filter: 99900
              Buffers: shared hit=443
Planning Time: 0.100 ms
Execution Time: 14.100 ms
"""
AFTER = """\
Limit  (cost=15.00..15.25 rows=100 width=40) (actual time=0.090..0.100 rows=100 loops=1)
  Buffers: shared hit=4
  ->  Sort  (cost=15.00..15.25 rows=98 width=40) (actual time=0.085..0.090 rows=100 loops=1)
        Sort Key: created_at DESC
        Sort Method: quicksort  Memory: 32kB
        Buffers: shared hit=4
        ->  Index Scan using ix_orders_customer_id on orders  \
(cost=0.29..12.00 rows=98 width=40) (actual time=0.010..0.050 rows=100 loops=1)
              Index Cond: (customer_id = 42)
              Buffers: shared hit=4
Planning Time: 0.100 ms
Execution Time: 0.120 ms
"""
SQL = "select * from orders where customer_id = 42 order by created_at desc limit 100"
QUERY_ID = "5e1d0c3b9a7f2468"


def fixed_report() -> tuple[QueryReport, Report]:
    """A report as the pipeline makes it, from fixed plans and figures."""
    before, after = parse_plan(BEFORE), parse_plan(AFTER)
    entry = QueryReport(
        id=QUERY_ID,
        sql=SQL,
        calls=120,
        total_ms=1692.0,
        source="app.log",
        line=42,
        plan=before,
        analyzed=True,
        findings=run_rules(before, RuleContext(sql=SQL)),
    )
    evidence = Evidence("rollback", 2100.25, 15.25, 14.1, 0.12, True, before, after)
    suggestion = IndexSuggestion(
        IndexCandidate.of("public", "orders", "customer_id"),
        {QUERY_ID: evidence},
        ["seq-scan-selective"],
    )
    database = DatabaseInfo("15.4", "shop", "postgresql://app@db/shop", "rollback")
    return entry, Report(database, [entry], [suggestion])


def corpus_report(name: str) -> tuple[QueryReport, Report]:
    """A report of one corpus plan: several findings on different nodes, no suggestion."""
    plan = parse_plan((CORPUS / "plans" / name).read_text())
    entry = QueryReport(
        id="c0ffee",
        sql="SELECT count(*) FROM user_data_read_access",
        plan=plan,
        analyzed=True,
        findings=run_rules(plan, RuleContext()),
        note="estimated only after the statement timeout",
        no_suggestion=[
            NoSuggestion(NoSuggestionReason.NO_GAIN, "the index would save under 50%", "vendor")
        ],
    )
    database = DatabaseInfo("15.4", "shop", "postgresql://app@db/shop", "rollback")
    return entry, Report(database, [entry])


class ScreenApp(App[None]):
    """Pushes one screen; records what the screens post to the app."""

    def __init__(self, make: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self.make = make
        self.submitted: list[PasteScreen.Submitted] = []
        self.written: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(self.make())

    def on_paste_screen_submitted(self, message: PasteScreen.Submitted) -> None:
        self.submitted.append(message)


def record_terminal_writes(app: ScreenApp) -> None:
    """Keep what the app writes to the terminal (the OSC 52 copy goes there)."""
    driver = app._driver
    assert driver is not None
    write = driver.write

    def recording(data: str) -> None:
        app.written.append(data)
        write(data)

    driver.write = recording  # type: ignore[method-assign]


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=200, record=True)
    console.print(widget.content)
    return console.export_text()


def options_of(option_list: OptionList) -> list[str]:
    return [str(option_list.get_option_at_index(i).prompt) for i in range(option_list.option_count)]


# -- the Query screen on a real analysis -----------------------------------------------

ROWS = 100_000


@pytest.fixture(scope="module")
def orders_dsn(db_dsn: str) -> Iterator[str]:
    """100,000 orders, 20 per customer, and no index on customer_id."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tui_orders (id bigint PRIMARY KEY, customer_id int NOT NULL, "
            "status text NOT NULL, total numeric NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO tui_orders SELECT i, i % 5000, "
            f"(ARRAY['new', 'paid', 'sent'])[1 + i % 3], i % 997 "
            f"FROM generate_series(1, {ROWS}) AS i"
        )
        conn.execute("VACUUM ANALYZE tui_orders")
    yield db_dsn


@synchronously
async def test_query_screen_shows_a_real_analysis(orders_dsn: str) -> None:
    sql = "SELECT * FROM tui_orders WHERE customer_id = 4242"
    workload = build_workload([CapturedQuery(sql)])
    report = analyze_workload(orders_dsn, workload, AnalyzeOptions())
    [entry] = report.queries
    assert entry.plan is not None
    app = ScreenApp(lambda: QueryScreen(entry, report))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        labels = [node_label(n) for n in screen.query_one(PlanTreeView).visible_nodes]
        assert any(label.endswith("Seq Scan on tui_orders") for label in labels)
        findings = options_of(screen.query_one("#query-findings", OptionList))
        assert any("seq-scan-selective" in f for f in findings)
        # The suggestion serving this query, as SQL, with its evidence.
        await pilot.click("#--content-tab-tab-sql")
        await pilot.pause()
        assert screen.visible_snippet == index_sql(report.suggestions[0].candidate)
        assert "ix_tui_orders_customer_id" in (screen.visible_snippet or "")
        evidence = text_of(screen.query_one("#query-evidence", Static))
        assert "index used" in evidence
        assert "Seq Scan on tui_orders" in evidence  # the plan change, before -> after


# -- the Query screen on fixed data ----------------------------------------------------


@synchronously
async def test_selecting_a_finding_selects_its_node() -> None:
    entry, report = corpus_report("41_pev2_initplan-lossy-bitmap_14M-rechecked.txt")
    paths = [f.node_path for f in entry.findings]
    assert len(set(paths)) == 2, paths  # two findings, on two different nodes
    app = ScreenApp(lambda: QueryScreen(entry, report))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tree = app.screen.query_one(PlanTree)
        tree.select_path("0")
        await pilot.press("f", "down")
        await pilot.pause()
        assert tree.cursor_node.path == paths[1]
        await pilot.press("up", "enter")
        await pilot.pause()
        assert tree.cursor_node.path == paths[0]
        assert tree.view.has_focus  # enter sends the reader to the node
        head = text_of(app.screen.query_one("#query-head", Static))
        assert "note: estimated only after the statement timeout" in head
        reasons = text_of(app.screen.query_one("#query-no-suggestion", Static))
        assert "no_gain: the index would save under 50%" in reasons


@synchronously
async def test_findings_are_ranked_by_time_saved() -> None:
    entry, report = corpus_report("41_pev2_initplan-lossy-bitmap_14M-rechecked.txt")
    entry.findings.reverse()  # whatever order the entry holds them in
    app = ScreenApp(lambda: QueryScreen(entry, report))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = options_of(app.screen.query_one("#query-findings", OptionList))
        saved = sorted(entry.findings, key=lambda f: -f.potential_ms)
        assert [f.rule for f in saved] == [s.split()[2] for s in shown]


@synchronously
async def test_copy_puts_the_visible_snippet_on_the_clipboard() -> None:
    entry, report = fixed_report()
    app = ScreenApp(lambda: QueryScreen(entry, report))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        record_terminal_writes(app)
        await pilot.click("#--content-tab-tab-sql")
        await pilot.press("y")
        await pilot.pause()
        expected = index_sql(report.suggestions[0].candidate)
        assert expected.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id")
        assert app.clipboard == expected
        osc52 = f"\x1b]52;c;{base64.b64encode(expected.encode()).decode()}\a"
        assert osc52 in app.written
        assert any("copied the SQL code" in str(n.message) for n in app._notifications)
        await pilot.press("s")  # SQL -> Alembic, from the keyboard
        await pilot.pause()
        await pilot.press("y")
        assert "op.create_index(" in app.clipboard
        assert "autocommit_block()" in app.clipboard
        await pilot.press("Y")
        assert app.clipboard == SQL


@synchronously
async def test_compare_shows_both_plans_and_what_explains_the_gain() -> None:
    entry, report = fixed_report()
    app = ScreenApp(lambda: QueryScreen(entry, report))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        before = screen.query_one("#before", PlanTree)
        after = screen.query_one("#after", PlanTree)
        assert [node_label(n) for n in after.view.visible_nodes][-1] == (
            "Index Scan using ix_orders_customer_id on orders"
        )
        assert [node_label(n) for n in before.view.visible_nodes][-1] == "Seq Scan on orders"
        summary = text_of(screen.query_one("#compare-summary", Static))
        assert "time: 14.1 ms → 0.120 ms (118x faster)" in summary
        assert "explained by: Seq Scan on orders → Index Scan using ix_orders_customer_id" in (
            summary.replace("\n", " ")
        )
        # Both cursors start on the node that explains the gain, and move together.
        assert before.cursor_node.path == after.cursor_node.path == "0.0.0"
        await pilot.press("home")
        await pilot.pause()
        assert after.cursor_node.path == "0"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, QueryScreen)


@synchronously
async def test_plan_tree_folds_and_moves() -> None:
    plan = parse_plan((CORPUS / "plans" / "57_qg_tpch2_25-nodes_subplan.json").read_text())
    nodes = list(plan.walk())
    app = ScreenApp(lambda: QueryScreen(_entry_of(plan), _report_of(plan)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.screen.query_one(PlanTreeView)
        view.focus()
        await pilot.press("home")
        assert len(view.visible_nodes) == len(nodes)
        await pilot.press("left")  # folds the root: only it is left
        assert [n.path for n in view.visible_nodes] == ["0"]
        await pilot.press("right", "end")
        assert view.cursor_node is nodes[-1]
        await pilot.press("left")  # a leaf: to its parent
        assert view.cursor_node.path == nodes[-1].path.rsplit(".", 1)[0]
        # Long labels scroll sideways, and the column titles with them.
        header = app.screen.query_one(".plan-tree--header", Static)
        assert text_of(header).startswith("exclusive")
        await pilot.press("shift+right", "shift+right")
        await pilot.pause()
        assert view.scroll_offset.x > 0
        assert text_of(header).rstrip("\n") == view.header[view.scroll_offset.x :].rstrip()


def _entry_of(plan: Any) -> QueryReport:
    return QueryReport(id="q", sql="SELECT 1", plan=plan, analyzed=True)


def _report_of(plan: Any) -> Report:
    return Report(DatabaseInfo("15", "db", "postgresql://db", "none"), [_entry_of(plan)])


@synchronously
async def test_a_query_that_failed_shows_why() -> None:
    entry = QueryReport(id="bad", sql="SELECT pg_sleep(60)", error="canceled: statement timeout")
    report = Report(DatabaseInfo("15", "db", "postgresql://db", "none"), [entry])
    app = ScreenApp(lambda: QueryScreen(entry, report))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        head = text_of(app.screen.query_one("#query-head", Static))
        assert "not analyzed: canceled: statement timeout" in head
        assert not app.screen.query(PlanTree)
        await pilot.press("c")  # nothing to compare: a notice, not a crash
        await pilot.pause()
        assert isinstance(app.screen, QueryScreen)


# -- the Paste screen ------------------------------------------------------------------


async def paste(pilot: Pilot[None], text: str) -> PasteScreen:
    screen = pilot.app.screen
    assert isinstance(screen, PasteScreen)
    screen.query_one(TextArea).load_text(text)
    await pilot.press("ctrl+r")  # the text area has the focus: a priority binding
    await pilot.pause()
    return screen


@synchronously
async def test_a_pasted_text_plan_is_shown_without_a_database() -> None:
    text = (CORPUS / "plans" / "41_pev2_initplan-lossy-bitmap_14M-rechecked.txt").read_text()
    app = ScreenApp(PasteScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.query_one(TextArea).has_focus
        screen = await paste(pilot, text)
        tree = screen.query_one(PlanTree)
        assert len(tree.view.visible_nodes) == 5
        assert screen.message.startswith("a plan: 5 nodes, 1.94 s, 2 findings")
        findings = options_of(screen.query_one("#paste-findings", OptionList))
        assert any("bitmap-lossy" in f for f in findings)
        assert app.submitted == []  # nothing for the app to analyze


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello world, how are you", "not an EXPLAIN plan: the input starts with 'hello world"),
        ('{"query_block": {"select_id": 1}}', "not a PostgreSQL JSON plan"),
        ("SELECT * FROM orders WHERE", "the SQL does not parse: syntax error at end of input"),
        ("   \n", "nothing to read"),
        ("\x00\x01\x02abc", "not an EXPLAIN plan: the input is binary data"),
        (
            "<?xml version='1.0'?>\n<ShowPlanXML><BatchSequence/></ShowPlanXML>",
            "not a PostgreSQL plan: the XML root is <ShowPlanXML>",
        ),
    ],
)
@synchronously
async def test_a_bad_paste_gets_one_line(text: str, message: str) -> None:
    app = ScreenApp(PasteScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = await paste(pilot, text)
        assert screen.message.startswith(message), screen.message
        assert "\n" not in screen.message
        assert not screen.query(PlanTree)
        assert app.submitted == []


@synchronously
async def test_sql_and_logs_are_handed_to_the_app() -> None:
    log = (CORPUS / "logs" / "dexter__queries.log").read_text()
    app = ScreenApp(PasteScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await paste(pilot, "SELECT * FROM orders WHERE customer_id = 42;")
        await paste(pilot, log)
        assert [(m.kind, m.text[:20]) for m in app.submitted] == [
            ("sql", "SELECT * FROM orders"),
            ("log", log[:20]),
        ]
        await pilot.press("escape")  # leaves even with the text area focused
        await pilot.pause()
        assert not isinstance(app.screen, PasteScreen)


def test_read_paste_kinds() -> None:
    framed = (CORPUS / "plans" / "11_pev2_json-in-psql-frame.txt").read_text()
    assert read_paste(framed).kind == "plan"
    assert read_paste("select 1; select 2").kind == "sql"
    csv = (CORPUS / "logs" / "beats__postgresql-11-parse-bind.csv.log").read_text()
    reading = read_paste(csv)
    assert (reading.kind, reading.log_format) == ("log", "PostgreSQL csvlog")


# -- snapshots -------------------------------------------------------------------------


def test_query_screen_snapshot(snap_compare: Any) -> None:
    entry, report = fixed_report()
    assert snap_compare(ScreenApp(lambda: QueryScreen(entry, report)), terminal_size=SIZE)


def test_compare_screen_snapshot(snap_compare: Any) -> None:
    before, after = parse_plan(BEFORE), parse_plan(AFTER)
    app = ScreenApp(lambda: CompareScreen(before, after, "ix_orders_customer_id on orders"))
    assert snap_compare(app, terminal_size=SIZE)


# -- through the workbench -------------------------------------------------------------


@synchronously
async def test_the_workbench_opens_the_query_and_compare_screens() -> None:
    from explainer.tui.app import ExplainerApp
    from explainer.tui.session import Workbench

    _, report = fixed_report()
    workbench = Workbench()
    app = ExplainerApp(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        workbench.set_report(report)
        app.open_query(QUERY_ID)
        await pilot.pause()
        assert isinstance(app.screen, QueryScreen)
        await pilot.press("c")  # the screen's compare, not the app's connect
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert not isinstance(app.screen, QueryScreen | CompareScreen)


@synchronously
async def test_a_query_binding_is_rebound_by_its_id_in_the_config_file(tmp_path: Path) -> None:
    from explainer.config import load_settings
    from explainer.tui.app import ExplainerApp
    from explainer.tui.screens.help import HelpScreen
    from explainer.tui.session import Workbench

    config = tmp_path / "config.toml"
    # Dotted ids are quoted in TOML (docs/config.md), or they would be nested tables.
    config.write_text('[tui.keys]\n"query.compare" = "v"\n"query.focus_findings" = "g"\n')
    settings = load_settings(config)
    _, report = fixed_report()
    workbench = Workbench()
    app = ExplainerApp(workbench, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        workbench.set_report(report)
        app.open_query(QUERY_ID)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        findings = screen.query_one("#query-findings", OptionList)
        await pilot.press("f")  # no longer bound here
        assert not findings.has_focus
        await pilot.press("g")
        assert findings.has_focus
        rows = {(key, binding_id) for key, _, _, binding_id in HelpScreen().rows_for(screen)}
        assert ("v", "query.compare") in rows and ("g", "query.focus_findings") in rows
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
