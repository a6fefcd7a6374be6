"""The export dialog: choose suggestions and removals, a folder, and write the artefacts.

It writes with :func:`explainer.export.export_report`, the code behind the CLI's
``--export``, on a copy of the report holding only the chosen items, so the revision, the
SQL script and the Markdown report hold exactly what the user ticked and nothing the
dialog computed itself. Writing (and reading the Alembic head) runs in a thread worker: a
slow disk or a large migrations folder never freezes the UI.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, SelectionList, Static, Switch
from textual.widgets.selection_list import Selection
from textual.worker import Worker, WorkerState

from explainer.advise.model import Evidence, IndexSuggestion
from explainer.advise.removals import IndexRemoval
from explainer.errors import ExplainerError
from explainer.export import Exported, ExportOptions, export_report
from explainer.render.phrases import format_ms
from explainer.report import Report
from explainer.units import format_size

#: The folder offered first, relative to where the app was started.
DEFAULT_FOLDER = "./explainer-export"

_SUGGESTION, _REMOVAL = "suggestion", "removal"


def suggestion_prompt(suggestion: IndexSuggestion) -> Content:
    """'create ix_orders_customer_id on orders (customer_id)  q1 80.0 ms -> 0.500 ms'"""
    candidate = suggestion.candidate
    detail = ""
    if suggestion.evidence:
        first = next(iter(suggestion.evidence.values()))
        more = f" +{len(suggestion.evidence) - 1}" if len(suggestion.evidence) > 1 else ""
        detail = f"  {suggestion.queries[0]}{more} {_figures(first)}"
    return Content.assemble(
        ("create ", "$success"),
        candidate.name,
        (f" on {candidate.qualified_table} ({', '.join(candidate.columns)})", "dim"),
        (detail, "$text-muted"),
    )


def _figures(evidence: Evidence) -> str:
    """Before -> after, measured when it was, else by planner cost (short, for one line)."""
    if evidence.before_ms is not None and evidence.after_ms is not None:
        at_least = ">= " if evidence.before_timed_out else ""
        return f"{at_least}{format_ms(evidence.before_ms)} -> {format_ms(evidence.after_ms)}"
    if evidence.after_cost is not None:
        return f"cost {evidence.before_cost:,.0f} -> {evidence.after_cost:,.0f}"
    return f"cost {evidence.before_cost:,.0f}"


def removal_prompt(removal: IndexRemoval) -> Content:
    """'drop old_idx on orders  unused, 8192 bytes'"""
    return Content.assemble(
        ("drop ", "$error"),
        removal.index,
        (f" on {removal.qualified_table}", "dim"),
        (f"  {removal.reason}, {format_size(removal.size_bytes)}", "$text-muted"),
    )


def chosen_report(report: Report, chosen: set[str]) -> Report:
    """A copy of ``report`` with only the chosen suggestions and removals (values of the
    selection list: ``suggestion:N``, ``removal:N``), in the report's order."""
    return dataclasses.replace(
        report,
        suggestions=[s for n, s in enumerate(report.suggestions) if f"{_SUGGESTION}:{n}" in chosen],
        removals=[r for n, r in enumerate(report.removals) if f"{_REMOVAL}:{n}" in chosen],
    )


class ExportScreen(ModalScreen[None]):
    """Choose what to export and where; the files written (or why not) show below."""

    CSS_PATH = "export.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="export.close"),
        # Priority: it must work while the folder Input has the focus.
        Binding("ctrl+s", "export", "Export", id="export.write", priority=True),
        Binding("a", "toggle_all", "All/none", id="export.toggle_all"),
    ]

    def __init__(self, report: Report, *, folder: str = DEFAULT_FOLDER) -> None:
        super().__init__()
        self.report = report
        self.folder = folder
        self.writing = False

    def compose(self) -> ComposeResult:
        selections: list[Selection[str]] = [
            Selection(suggestion_prompt(s), f"{_SUGGESTION}:{n}", True)
            for n, s in enumerate(self.report.suggestions)
        ]
        selections += [
            Selection(removal_prompt(r), f"{_REMOVAL}:{n}", True)
            for n, r in enumerate(self.report.removals)
        ]
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "Export"
            yield Label(self._summary(), id="summary")
            yield SelectionList[str](*selections, id="items")
            with Horizontal(classes="field"):
                yield Label("Folder", classes="name")
                yield Input(self.folder, placeholder=DEFAULT_FOLDER, id="folder")
            with Horizontal(classes="field"):
                yield Label("Alembic", classes="name")
                yield Input(
                    placeholder="optional: migrations folder or alembic.ini; the revision "
                    "follows its head",
                    id="alembic",
                )
            with Horizontal(classes="field"):
                yield Label("Overwrite", classes="name")
                yield Switch(False, id="force")
                yield Label("files already in the folder (--force)", classes="hint")
            with Horizontal(id="buttons"):
                yield Button("Export", variant="primary", id="export")
                yield Button("Close", id="close")
            yield Static("", id="status")
        yield Footer()

    def _summary(self) -> str:
        count = len(self.report.suggestions) + len(self.report.removals)
        if not count:
            return "No index to create or drop: only the report (Markdown, JSON) is written."
        return (
            f"{len(self.report.suggestions)} to create, {len(self.report.removals)} to drop: "
            "space toggles one, a all or none. Every file covers only what is ticked."
        )

    def on_mount(self) -> None:
        items = self.query_one("#items", SelectionList)
        items.display = bool(items.option_count)
        if items.option_count:
            items.focus()
        else:
            self.query_one("#folder", Input).focus()

    # -- actions ---------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def action_toggle_all(self) -> None:
        items: SelectionList[str] = self.query_one("#items", SelectionList)
        if len(items.selected) == items.option_count:
            items.deselect_all()
        else:
            items.select_all()

    @on(Button.Pressed, "#close")
    def _close_pressed(self) -> None:
        self.action_close()

    @on(Button.Pressed, "#export")
    @on(Input.Submitted)
    def _export_pressed(self) -> None:
        self.action_export()

    def action_export(self) -> None:
        if self.writing:
            return
        folder = self.query_one("#folder", Input).value.strip()
        if not folder:
            self._show_error("give a folder to export to")
            return
        alembic = self.query_one("#alembic", Input).value.strip()
        options = ExportOptions(
            Path(folder).expanduser(),
            alembic_dir=Path(alembic).expanduser() if alembic else None,
            force=self.query_one("#force", Switch).value,
        )
        items: SelectionList[str] = self.query_one("#items", SelectionList)
        report = chosen_report(self.report, set(items.selected))
        self.writing = True
        self.query_one("#export", Button).disabled = True
        self._set_status(f"writing to {folder}...", "")
        self._write(report, options)

    @work(thread=True, group="export", exit_on_error=False)
    def _write(self, report: Report, options: ExportOptions) -> Exported:
        return export_report(report, options)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "export" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        self.writing = False
        self.query_one("#export", Button).disabled = False
        if event.state == WorkerState.SUCCESS and isinstance(worker.result, Exported):
            self._show_files(worker.result)
        elif event.state == WorkerState.ERROR:
            self._show_error(_one_line(worker.error))
        else:
            self._show_error("the export was cancelled")

    # -- what the user sees ------------------------------------------------------------------

    def _set_status(self, text: str, kind: str) -> None:
        status = self.query_one("#status", Static)
        status.set_classes(kind)
        status.update(Content(text))  # plain text: a path may hold [brackets]

    def _show_error(self, message: str) -> None:
        self._set_status(message, "error")

    def _show_files(self, exported: Exported) -> None:
        folder = exported.files[0].parent if exported.files else Path(self.folder)
        lines = [f"wrote {len(exported.files)} files to {folder}:"]
        lines += [f"  {path.name}" for path in exported.files]
        if exported.down_revision:
            lines.append(f"the revision follows {exported.down_revision}")
        self._set_status("\n".join(lines), "done")
        self.notify(f"exported {len(exported.files)} files to {folder}", title="Export")


def _one_line(error: BaseException | None) -> str:
    """What went wrong in one line: an explainer error's own message, an OS error's reason
    with the path, anything else with its type (a bug, but shown rather than crashing)."""
    if isinstance(error, ExplainerError):
        return str(error)
    if isinstance(error, OSError):
        reason = error.strerror.lower() if error.strerror else str(error)
        where = f"{error.filename}: " if error.filename else ""
        return f"cannot export: {where}{reason}"
    text = str(error).strip().splitlines()
    return f"export failed: {type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
