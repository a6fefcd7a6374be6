"""The export dialog, driven as a user drives it (Pilot), on a report from a real analysis.

The dialog must write with the CLI's export code exactly what the user ticked: the SQL
script and the Alembic revision hold the chosen index and not the other, and a folder
that refuses the export shows why, inline, without writing a byte.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pglast
import psycopg
import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, SelectionList, Static, Switch

from explainer.advise.model import Evidence, IndexCandidate, IndexSuggestion
from explainer.advise.removals import IndexRemoval
from explainer.capture import read_sql_text
from explainer.pipeline import AnalyzeOptions, analyze_workload
from explainer.report import DatabaseInfo, QueryReport, Report
from explainer.tui.screens.export import ExportScreen
from explainer.workload import build_workload

ALEMBIC_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "alembic_project" / "migrations"

QUERIES = (
    "SELECT id, total FROM orders WHERE customer_id = 42;\n"
    "SELECT id FROM customers WHERE lower(email) = 'user42@example.com';\n"
)
KEPT, UNTICKED = "ix_orders_customer_id", "ix_customers_lower_email"


class ExportApp(App[None]):
    """Nothing but the dialog, over an empty screen."""

    def __init__(self, report: Report, folder: str | None = None) -> None:
        super().__init__()
        self.report = report
        self.folder = folder

    def on_mount(self) -> None:
        if self.folder is None:
            self.push_screen(ExportScreen(self.report))
        else:
            self.push_screen(ExportScreen(self.report, folder=self.folder))


@pytest.fixture(scope="module")
def analyzed(db_dsn: str) -> Report:
    """A real analysis: two queries, each served by its own verified index."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL)")
        conn.execute(
            "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, total numeric)"
        )
        conn.execute(
            "INSERT INTO customers SELECT g, 'user' || g || '@example.com' "
            "FROM generate_series(1, 40000) g"
        )
        conn.execute(
            "INSERT INTO orders SELECT g, 1 + g % 40000, g % 1000 FROM generate_series(1, 120000) g"
        )
        conn.execute("ANALYZE")
    queries, _ = read_sql_text(QUERIES)
    report = analyze_workload(
        db_dsn, build_workload(queries), AnalyzeOptions(verify="rollback", include_utility=True)
    )
    assert {s.candidate.name for s in report.suggestions} == {KEPT, UNTICKED}
    return report


async def _toggle(pilot: Pilot[None], index_name: str) -> None:
    """Highlight the suggestion creating ``index_name`` with the arrow keys, press space."""
    screen = pilot.app.screen
    assert isinstance(screen, ExportScreen)
    items: SelectionList[str] = screen.query_one("#items", SelectionList)
    items.focus()
    position = next(
        n for n, s in enumerate(screen.report.suggestions) if s.candidate.name == index_name
    )
    await pilot.press("home", *["down"] * position, "space")
    await pilot.pause()


async def _export(pilot: Pilot[None]) -> str:
    """Press the Export button, wait for the worker, return the status line's text."""
    await pilot.click("#export")
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return str(pilot.app.screen.query_one("#status", Static).render())


def test_export_writes_only_the_chosen_index(analyzed: Report, tmp_path: Path) -> None:
    asyncio.run(_export_chosen(analyzed, tmp_path / "out"))


async def _export_chosen(analyzed: Report, out: Path) -> None:
    app = ExportApp(analyzed, folder=str(out))
    async with app.run_test(size=(120, 40)) as pilot:
        await _toggle(pilot, UNTICKED)
        screen = app.screen
        screen.query_one("#alembic", Input).value = str(ALEMBIC_FIXTURE)
        status = await _export(pilot)

        written = sorted(p.name for p in out.iterdir())
        assert written == sorted(
            ["migration_add_indexes.py", "indexes.sql", "report.md", "report.json",
             "models_snippets.md"]
        )  # fmt: skip
        # The dialog lists what it wrote, file by file, and where.
        assert f"wrote {len(written)} files to {out}" in status
        for name in written:
            assert name in status

        assert _created(out) == [
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {KEPT} ON orders (customer_id)"
        ]
        revision = (out / "migration_add_indexes.py").read_text()
        assert KEPT in revision and UNTICKED not in revision
        # Given the Alembic folder, the revision follows its head.
        assert "down_revision: str | None = '0001'" in revision
        assert "the revision follows 0001" in status
        assert UNTICKED not in (out / "report.md").read_text()

        # Another choice, exported again without "overwrite": refused inline, in one
        # line, and nothing is touched.
        await _toggle(pilot, KEPT)
        await _toggle(pilot, UNTICKED)
        before = {p.name: p.read_text() for p in out.iterdir()}
        status = await _export(pilot)
        assert "already there" in status and "\n" not in status.strip()
        assert screen.query_one("#status", Static).has_class("error")
        assert {p.name: p.read_text() for p in out.iterdir()} == before

        # With the switch on, the new choice replaces the old one.
        await pilot.click("#force")
        assert screen.query_one("#force", Switch).value
        status = await _export(pilot)
        assert status.startswith("wrote")
        assert len(_created(out)) == 1 and UNTICKED in _created(out)[0]
        revision = (out / "migration_add_indexes.py").read_text()
        assert UNTICKED in revision and KEPT not in revision


def _created(out: Path) -> list[str]:
    """The CREATE statements of the exported script (PostgreSQL's parser splits it)."""
    statements = pglast.split((out / "indexes.sql").read_text())
    return [str(s) for s in statements if str(s).startswith("CREATE")]


def test_a_file_in_place_of_the_folder_is_refused_inline(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("mine")
    asyncio.run(_refused(blocker))
    assert blocker.read_text() == "mine"


async def _refused(blocker: Path) -> None:
    app = ExportApp(_fixed_report(), folder=str(blocker))
    async with app.run_test(size=(120, 40)) as pilot:
        status = await _export(pilot)
        assert status.strip() == f"--export {blocker}: not a folder"
        assert app.screen.query_one("#status", Static).has_class("error")


def test_export_keys_work_from_the_folder_input(tmp_path: Path) -> None:
    """Keyboard only: 'a' in the list unticks everything, ctrl+s exports from the Input."""
    out = tmp_path / "keys"
    asyncio.run(_keys(out))
    # Nothing ticked: no revision, no script, only the report.
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]


async def _keys(out: Path) -> None:
    app = ExportApp(_fixed_report(), folder=str(out))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")  # the list has the focus first: all ticked -> none
        app.screen.query_one("#folder", Input).focus()
        await pilot.press("ctrl+s")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()


def _fixed_report() -> Report:
    """A report built from fixed figures: the same dialog on every run."""
    report = Report(DatabaseInfo("17.0", "shop", "postgresql://app:***@db/shop", "rollback"))
    report.queries.append(QueryReport(id="q1", sql="SELECT * FROM orders WHERE customer_id = 4"))
    report.queries.append(
        QueryReport(id="q2", sql="SELECT id FROM customers WHERE lower(email) = 'a'")
    )
    for query_id, candidate, before in (
        ("q1", IndexCandidate.of("public", "orders", "customer_id"), 80.0),
        ("q2", IndexCandidate.of("public", "customers", "lower(email)"), 31.5),
    ):
        evidence = Evidence(
            "rollback", 1000.0, 10.0, before_ms=before, after_ms=0.5, index_used=True
        )
        report.suggestions.append(IndexSuggestion(candidate, {query_id: evidence}, ["seq-scan"]))
    report.removals.append(
        IndexRemoval("orders_status_old", "public", "orders", "unused", 8 * 1024 * 1024, 0, None,
                     "never scanned", "CREATE INDEX orders_status_old ON public.orders (status)")
    )  # fmt: skip
    return report


def test_export_dialog_snapshot(snap_compare: object) -> None:
    app = ExportApp(_fixed_report())
    assert snap_compare(app, terminal_size=(110, 34))  # type: ignore[operator]
