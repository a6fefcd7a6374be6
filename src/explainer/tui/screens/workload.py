"""The workload screen: every query shape of the workload, filled in as it is analyzed.

One row per shape (the groups :func:`explainer.pipeline.analyzed_groups` gives, in the
order the analysis takes them): its SQL on one line, calls, total and mean time from the
log, the worst finding once the shape is explained, and how many index suggestions serve
it once the advice is in. Sortable (``s``, or a click on a column header) and filterable
(``/``). While an analysis runs: shape n of m, the time since it started, Esc to cancel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, ProgressBar, Static

from explainer.tui.session import Progress, Workbench
from explainer.units import one_line

if TYPE_CHECKING:
    # Types only: the first screen paints before the analysis stack is imported.
    from explainer.report import QueryReport
    from explainer.rules import Finding
    from explainer.workload import QueryGroup

#: By Severity's value (explainer.rules is not imported until a finding exists).
SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int | None
    #: The sort key of a row; rows sort by it, then by their analysis order.
    sort: Callable[[Row], tuple[float | str, ...]]
    #: Largest first when this column is chosen (times and counts); A-Z for text.
    descending: bool = True


@dataclass(slots=True)
class Row:
    """One shape and what is known about it so far."""

    order: int
    group: QueryGroup
    entry: QueryReport | None = None
    suggestions: int = 0

    @property
    def mean_ms(self) -> float | None:
        group = self.group
        return group.total_ms / group.timed_calls if group.total_ms and group.timed_calls else None

    @property
    def worst(self) -> Finding | None:
        if self.entry is None or not self.entry.findings:
            return None
        return max(self.entry.findings, key=lambda f: (f.severity.rank, f.potential_ms))


def _number(value: float | None) -> float:
    return -1.0 if value is None else value


COLUMNS: tuple[Column, ...] = (
    Column("shape", "shape", 42, lambda r: (one_line(r.group.example.sql, 200).lower(),), False),
    Column("calls", "calls", 7, lambda r: (r.group.calls,)),
    Column("total", "total ms", 10, lambda r: (_number(r.group.total_ms),)),
    Column("mean", "mean ms", 9, lambda r: (_number(r.mean_ms),)),
    Column(
        "worst",
        "worst finding",
        28,
        lambda r: (w.severity.rank, w.potential_ms) if (w := r.worst) else (-1.0, 0.0),
    ),
    Column("suggestions", "indexes", 7, lambda r: (r.suggestions,)),
)
#: The order ``s`` goes through the columns: the heaviest first, as the analysis runs.
SORT_CYCLE = ("total", "calls", "mean", "worst", "suggestions", "shape")


def _ms(value: float | None) -> Text:
    if value is None:
        return Text("-", justify="right", style="dim")
    return Text(f"{value:,.1f}" if value < 1000 else f"{value:,.0f}", justify="right")


class WorkloadScreen(Screen[None]):
    """The workbench's first screen: the workload's shapes and what the analysis found."""

    CSS_PATH = "workload.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open query", id="workload.open"),
        Binding("slash", "filter", "Filter", id="workload.filter"),
        Binding("s", "sort", "Sort", id="workload.sort"),
        Binding("S", "reverse", "Reverse sort", id="workload.reverse", show=False),
        Binding("a", "app.analyze", "Analyze", id="workload.analyze"),
        Binding("o", "app.open_log", "Open log", id="workload.open_log"),
    ]

    class OpenQuery(Message):
        """The user chose a shape to look at (the app opens the query screen)."""

        def __init__(self, query_id: str) -> None:
            super().__init__()
            self.query_id = query_id

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench
        self.rows: dict[str, Row] = {}
        self.sort_key = "total"
        self.reverse = False
        self._started: float | None = None
        #: Shapes analyzed so far in the running analysis.
        self._done = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="toolbar"):
            yield Input(placeholder="filter: SQL text or rule id (/)", id="filter")
            yield Static("", id="status")
        yield ProgressBar(id="progress", show_eta=False)
        yield DataTable(id="groups", cursor_type="row", zebra_stripes=True)
        yield Static("", id="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.workbench.display_dsn
        table = self.query_one("#groups", DataTable)
        for column in COLUMNS:
            table.add_column(column.label, key=column.key, width=column.width)
        self.query_one("#progress", ProgressBar).display = False
        self.set_interval(0.5, self._tick)
        self.reload()
        table.focus()

    # -- what the app tells it ---------------------------------------------------------

    def reload(self) -> None:
        """The workload changed (loaded, pasted) or an analysis ended: rebuild the rows."""
        workbench = self.workbench
        self.rows = {}
        for order, group in enumerate(workbench.groups):
            entry = workbench.entries.get(group.fingerprint)
            self.rows[group.fingerprint] = Row(
                order, group, entry, workbench.suggestion_count(group.fingerprint)
            )
        self._fill()
        self._show_status()

    def analysis_started(self) -> None:
        self._started = time.monotonic()
        self._done = 0
        for row in self.rows.values():
            row.entry, row.suggestions = None, 0
        self._fill()
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=max(len(self.rows), 1), progress=0)
        bar.display = True
        self._show_status()

    def analysis_progress(self, progress: Progress) -> None:
        self.query_one("#progress", ProgressBar).update(
            total=max(progress.total, 1), progress=progress.done
        )
        self._show_status()

    def query_analyzed(self, entry: QueryReport) -> None:
        row = self.rows.get(entry.id)
        if row is None:
            return
        if row.entry is None:
            self._done += 1
        row.entry = entry
        table = self.query_one("#groups", DataTable)
        if entry.id in table.rows:
            table.update_cell(entry.id, "worst", self._worst_cell(row))
        self.query_one("#progress", ProgressBar).update(progress=self._done)
        self._show_status()

    def analysis_finished(self) -> None:
        self._started = None
        self.query_one("#progress", ProgressBar).display = False
        self.reload()

    # -- actions -----------------------------------------------------------------------

    def action_open(self) -> None:
        table = self.query_one("#groups", DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is not None:
            self._open(key)

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_sort(self) -> None:
        index = SORT_CYCLE.index(self.sort_key)
        self.sort_key = SORT_CYCLE[(index + 1) % len(SORT_CYCLE)]
        self.reverse = False
        self._fill()
        self.notify(f"sorted by {self._column(self.sort_key).label}", timeout=1.5)

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._fill()

    @on(DataTable.RowSelected, "#groups")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self._open(event.row_key.value)

    @on(DataTable.HeaderSelected, "#groups")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key is None:
            return
        if key == self.sort_key:
            self.reverse = not self.reverse
        else:
            self.sort_key, self.reverse = key, False
        self._fill()

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._fill()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one("#groups", DataTable).focus()

    def _open(self, query_id: str) -> None:
        row = self.rows.get(query_id)
        if row is None or row.entry is None:
            self.notify("not analyzed yet: press a to analyze the workload", severity="warning")
            return
        self.post_message(self.OpenQuery(query_id))

    # -- drawing -----------------------------------------------------------------------

    @staticmethod
    def _column(key: str) -> Column:
        return next(c for c in COLUMNS if c.key == key)

    def visible_rows(self) -> list[Row]:
        """The rows the filter lets through, in the chosen order."""
        needle = self.query_one("#filter", Input).value.strip().lower()
        rows = [r for r in self.rows.values() if not needle or needle in self._haystack(r)]
        column = self._column(self.sort_key)
        rows.sort(key=lambda r: r.order)
        rows.sort(key=column.sort, reverse=column.descending != self.reverse)
        return rows

    @staticmethod
    def _haystack(row: Row) -> str:
        parts = [row.group.example.sql.lower()]
        if row.entry is not None:
            parts += [f.rule for f in row.entry.findings]
        return "\n".join(parts)

    def _fill(self) -> None:
        table = self.query_one("#groups", DataTable)
        selected = None
        if table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        for row in self.visible_rows():
            table.add_row(*self._cells(row), key=row.group.fingerprint)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))
        for column in COLUMNS:
            label = column.label
            if column.key == self.sort_key:
                down = column.descending != self.reverse
                label = f"{label} {'▼' if down else '▲'}"
            table.columns[column.key].label = Text(label)  # type: ignore[index]
        table.refresh()
        empty = self.query_one("#empty", Static)
        empty.display = not self.rows
        empty.update(
            "No workload yet.\n\n"
            "  o  open a log (PostgreSQL, pg_stat_statements, SQLAlchemy) or a .sql file\n"
            "  p  paste SQL, a log excerpt or an EXPLAIN plan\n"
            "  c  connect to a database\n"
            "  ?  every key"
        )

    def _cells(self, row: Row) -> tuple[Text | str, ...]:
        group = row.group
        return (
            one_line(group.example.sql, 42),
            Text(f"{group.calls:,}", justify="right"),
            _ms(group.total_ms),
            _ms(row.mean_ms),
            self._worst_cell(row),
            Text(str(row.suggestions) if row.suggestions else "", justify="right"),
        )

    def _worst_cell(self, row: Row) -> Text:
        entry = row.entry
        if entry is None:
            return Text("…" if self._started is not None else "", style="dim")
        if entry.error is not None:
            return Text(f"error: {entry.error}", style="red")
        worst = row.worst
        if worst is None:
            return Text("no finding", style="green")
        severity = worst.severity.value
        return Text(f"{severity} {worst.rule}", style=SEVERITY_STYLE[severity])

    def _tick(self) -> None:
        if self._started is not None:
            self._show_status()

    def _show_status(self) -> None:
        self.query_one("#status", Static).update(Text(self.status_text()))

    def status_text(self) -> str:
        """One line: the inputs, and the analysis (running, stopped or done)."""
        workbench = self.workbench
        if workbench.workload is None:
            return "no workload"
        sources = ", ".join(Path(s).name for s in workbench.summary.sources) or "workload"
        statements = workbench.summary.statements
        shapes = f"{sources}: {statements:,} statements, {len(self.rows):,} shapes"
        if self._started is not None:
            done = self._done
            elapsed = time.monotonic() - self._started
            if done and done == len(self.rows):
                return f"all {done} analyzed; advising (indexes) · {elapsed:.1f} s · Esc cancels"
            return f"analyzing {done} of {len(self.rows)} · {elapsed:.1f} s · Esc cancels"
        report = workbench.report
        if report is None:
            return f"{shapes} · not analyzed (a)"
        if workbench.cancelled:
            return (
                f"stopped after {len(report.queries)} of {len(self.rows)} shapes: "
                "no index advice (a analyzes again)"
            )
        failed = len(report.failed)
        return (
            f"{shapes} · {_count(len(report.findings), 'finding')}, "
            f"{_count(len(report.suggestions), 'index', 'indexes')}"
            + (f", {failed} failed" if failed else "")
        )


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number:,} {one if number == 1 else many or one + 's'}"


class OpenLogScreen(ModalScreen[str | None]):
    """Ask for the logs (or .sql files) to read; dismisses with the paths as typed."""

    DEFAULT_CSS = """
    OpenLogScreen { align: center middle; }
    OpenLogScreen > Vertical {
        width: 90; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="open_log.close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Open a log[/b]")
            yield Label(
                "paths or globs, separated by spaces: PostgreSQL logs (any format, .gz too), "
                "pg_stat_statements CSV, SQLAlchemy engine logs, .sql files"
            )
            yield Input(placeholder="/var/log/postgresql/postgresql-*.log", id="paths")

    def on_mount(self) -> None:
        self.query_one("#paths", Input).focus()

    @on(Input.Submitted, "#paths")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_close(self) -> None:
        self.dismiss(None)
