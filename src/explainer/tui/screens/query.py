"""The Query screen: one query shape, its plan, what is wrong with it, and the fix.

Left: the SQL (formatted by pglast when it parses) and the plan tree with the selected
node's details. Right: the findings, the ones that could save the most time first (the
order of :func:`explainer.rules.run_rules` and of every report), each selecting its node
in the tree; then the index suggestions serving this query, as SQLAlchemy, SQL and
Alembic code (the same renderers the reports and the export use) with their evidence.
``s`` switches the language, ``y`` copies the code on show, ``Y`` the SQL, ``c`` compares
the plans before and after the suggested index, ``z`` gives the plan the whole width.

Nothing here analyzes: everything shown is in the :class:`~explainer.report.Report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pglast
from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from explainer.advise.model import Evidence, IndexSuggestion
from explainer.render.alembic import create_index_code
from explainer.render.phrases import METHOD_WORDS, evidence_phrase, format_ms, model_suggestion
from explainer.render.plan import comparison_headline
from explainer.render.sql import index_sql
from explainer.render.sqlalchemy import imports, index_declaration, table_args_declaration
from explainer.report import QueryReport, Report
from explainer.rules import ranked
from explainer.tui.screens.compare import CompareScreen
from explainer.tui.widgets.copy import copy_text
from explainer.tui.widgets.plan_tree import SEVERITY_STYLE, PlanTree

#: The suggestion tabs, in order: (pane id, title, language of the code).
TABS: tuple[tuple[str, str, str], ...] = (
    ("sqlalchemy", "SQLAlchemy", "python"),
    ("sql", "SQL", "sql"),
    ("alembic", "Alembic", "python"),
)


def formatted_sql(sql: str) -> str:
    """The statement laid out by pglast (PostgreSQL's own parser), or as it was when it
    does not parse (a statement cut short in the log, another dialect)."""
    try:
        return str(pglast.prettify(sql, preserve_comments=True))
    except Exception:
        # pglast raises its own ParseError, and may fail to deparse exotic syntax: the
        # statement as logged is still worth showing.
        return sql


@dataclass(frozen=True, slots=True)
class Snippets:
    """One suggestion's code, per tab: what is shown is what ``y`` copies."""

    sqlalchemy: str
    sql: str
    alembic: str
    #: Where to put the SQLAlchemy code when the user's models are known.
    where: str | None = None

    def of(self, tab: str) -> str:
        return {"sqlalchemy": self.sqlalchemy, "sql": self.sql, "alembic": self.alembic}[tab]


def snippets(suggestion: IndexSuggestion, report: Report) -> Snippets:
    """The suggestion as code, from the renderers the reports use: the index in the
    user's model class when ``--models`` named one, else an ``Index(...)`` declaration."""
    candidate = suggestion.candidate
    model = model_suggestion(candidate, report.orm.user_models)
    if model is None:
        python = (
            f"{imports(candidate)}\n\n{index_declaration(candidate)}\n\n"
            f"# or, inside the class:\n# {table_args_declaration(candidate)}"
        )
        where = None
    else:
        python = f"{model.imports}\n\n{model.code}"
        place = f"{model.file}:{model.line}" if model.file else model.class_name
        where = f"in {place}, class {model.class_name}"
    alembic = (
        "# in upgrade(): CONCURRENTLY cannot run inside the migration's transaction\n"
        "with op.get_context().autocommit_block():\n"
        + "\n".join("    " + line for line in create_index_code(candidate).splitlines())
    )
    return Snippets(python, index_sql(candidate), alembic, where)


def evidence_text(evidence: Evidence) -> Text:
    """Before/after figures, how they were measured, and what changed in the plan."""
    text = Text()
    text.append("Evidence: ", style="bold")
    text.append(evidence_phrase(evidence), style="green" if evidence.index_used else "yellow")
    text.append(f"\n{METHOD_WORDS[evidence.method]}", style="dim")
    comparison = evidence.comparison
    if comparison is not None:
        for line in comparison_headline(comparison):
            text.append(f"\n{line}")
        text.append("\npress c to see both plans", style="dim italic")
    return text


class QueryScreen(Screen[None]):
    """One query of a report: SQL, plan, findings and the suggestions serving it."""

    CSS_PATH = "query.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="query.close"),
        Binding("y", "copy_snippet", "Copy code", id="query.copy_snippet"),
        Binding("s", "next_tab", "Next tab", id="query.next_tab"),
        Binding("Y", "copy_sql", "Copy SQL", id="query.copy_sql"),
        Binding("c", "compare", "Compare plans", id="query.compare"),
        Binding("t", "focus_tree", "Tree", id="query.focus_tree"),
        Binding("f", "focus_findings", "Findings", id="query.focus_findings"),
        Binding("z", "zoom_plan", "Wide plan", id="query.zoom_plan"),
    ]

    def __init__(self, entry: QueryReport, report: Report) -> None:
        super().__init__()
        self.entry = entry
        self.report = report
        self.findings = ranked(entry.findings)
        self.suggestions = [s for s in report.suggestions if entry.id in s.evidence]
        self._snippets = [snippets(s, report) for s in self.suggestions]
        self.suggestion_index = 0
        self.sql = formatted_sql(entry.sql)

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._head(), id="query-head")
        with Horizontal(id="query-body"):
            with Vertical(id="query-left"):
                with VerticalScroll(id="query-sql"):
                    yield Static(
                        Syntax(self.sql, "sql", word_wrap=True, background_color="default"),
                        id="query-sql-code",
                    )
                if self.entry.plan is not None:
                    yield PlanTree(self.entry.plan, self.findings, id="query-plan")
                else:
                    yield Static(
                        Text("no plan: " + (self.entry.error or "not explained"), style="red"),
                        id="query-no-plan",
                    )
            with Vertical(id="query-right"):
                yield Static(self._findings_title(), classes="section-title")
                yield OptionList(*self._finding_options(), id="query-findings")
                yield Static(self._suggestions_title(), classes="section-title")
                if len(self.suggestions) > 1:
                    yield OptionList(
                        *(
                            Option(f"{s.candidate.name} on {s.candidate.qualified_table}")
                            for s in self.suggestions
                        ),
                        id="query-suggestion-list",
                    )
                if self.suggestions:
                    with TabbedContent(id="query-tabs"):
                        for pane_id, title, _ in TABS:
                            with TabPane(title, id=f"tab-{pane_id}"):
                                yield Static(id=f"code-{pane_id}", classes="code")
                    yield Static(id="query-evidence")
                yield Static(self._no_suggestion_text(), id="query-no-suggestion")
        yield Footer()

    def on_mount(self) -> None:
        self._show_suggestion(0)
        if self.entry.plan is not None:
            self.query_one(PlanTree).focus_tree()

    def _head(self) -> Text:
        entry = self.entry
        text = Text()
        text.append(entry.id, style="bold")
        facts = [f"{entry.calls:,} call{'s' if entry.calls != 1 else ''}"]
        if entry.total_ms is not None:
            facts.append(f"{format_ms(entry.total_ms)} total in the log")
        if entry.execution_ms is not None:
            facts.append(f"{format_ms(entry.execution_ms)} per run")
        elif entry.plan is not None and not entry.analyzed:
            facts.append(f"estimated only, cost {entry.plan.root.total_cost:,.0f}")
        if entry.planning_ms is not None:
            facts.append(f"planning {format_ms(entry.planning_ms)}")
        text.append("  " + " · ".join(facts))
        text.append(f"  {entry.source}:{entry.line}", style="dim")
        if entry.error:
            text.append(f"\nnot analyzed: {entry.error}", style="bold red")
        if entry.note:
            text.append(f"\nnote: {entry.note}", style="yellow")
        return text

    def _findings_title(self) -> Text:
        count = len(self.findings)
        title = Text(f"Findings ({count})" if count else "Findings", style="bold")
        if count:
            title.append("  most time saved first", style="dim")
        return title

    def _finding_options(self) -> list[Option]:
        options: list[Option] = []
        for number, finding in enumerate(self.findings):
            prompt = Text()
            style = SEVERITY_STYLE[finding.severity]
            prompt.append(f"● {finding.severity.value.upper()} ", style=style)
            prompt.append(finding.rule, style="bold")
            if finding.potential_ms:
                prompt.append(f"  saves up to {format_ms(finding.potential_ms)}", style="dim")
            if finding.node_path is not None:
                prompt.append(f"  node {finding.node_path}", style="dim")
            prompt.append(f"\n{finding.message}")
            options.append(Option(prompt, id=f"finding-{number}"))
        if not options:
            message = "no findings" if self.entry.plan is not None else "no plan, no findings"
            options.append(Option(Text(message, style="green"), disabled=True))
        return options

    def _suggestions_title(self) -> Text:
        count = len(self.suggestions)
        if not count:
            return Text("No index suggested", style="bold")
        return Text(f"Index suggestion{'s' if count > 1 else ''} ({count})", style="bold")

    def _no_suggestion_text(self) -> Text:
        text = Text()
        for item in self.entry.no_suggestion:
            if text:
                text.append("\n")
            text.append(f"{item.reason.value}: ", style="bold")
            text.append(item.detail, style="dim")
        return text

    # -- suggestions ---------------------------------------------------------------------

    @property
    def suggestion(self) -> IndexSuggestion | None:
        """The suggestion on show (None when no suggestion serves this query)."""
        return self.suggestions[self.suggestion_index] if self.suggestions else None

    @property
    def active_tab(self) -> str:
        """``sqlalchemy``, ``sql`` or ``alembic``: the tab on show."""
        if not self.suggestions:
            return "sql"
        return self.query_one(TabbedContent).active.removeprefix("tab-") or "sqlalchemy"

    @property
    def visible_snippet(self) -> str | None:
        """The code on show (what ``y`` copies); None without a suggestion."""
        if not self.suggestions:
            return None
        return self._snippets[self.suggestion_index].of(self.active_tab)

    def _show_suggestion(self, index: int) -> None:
        if not self.suggestions:
            return
        self.suggestion_index = index
        code = self._snippets[index]
        for pane_id, _, language in TABS:
            parts: list[RenderableType] = []
            if pane_id == "sqlalchemy" and code.where:
                parts.append(Text(code.where, style="bold"))
            parts.append(
                Syntax(code.of(pane_id), language, word_wrap=True, background_color="default")
            )
            self.query_one(f"#code-{pane_id}", Static).update(Group(*parts))
        evidence = self.suggestions[index].evidence[self.entry.id]
        self.query_one("#query-evidence", Static).update(evidence_text(evidence))

    @on(OptionList.OptionHighlighted, "#query-suggestion-list")
    def _suggestion_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_suggestion(event.option_index)

    # -- findings and the tree -----------------------------------------------------------

    def select_finding(self, index: int) -> None:
        """Put the tree's cursor on the node the finding points at."""
        finding = self.findings[index]
        if finding.node_path is not None and self.entry.plan is not None:
            self.query_one(PlanTree).select_path(finding.node_path)

    @on(OptionList.OptionHighlighted, "#query-findings")
    def _finding_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self.findings:
            self.select_finding(event.option_index)

    @on(OptionList.OptionSelected, "#query-findings")
    def _finding_selected(self, event: OptionList.OptionSelected) -> None:
        if self.findings:
            self.select_finding(event.option_index)
            if self.entry.plan is not None:
                self.query_one(PlanTree).focus_tree()

    # -- actions -------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def action_copy_snippet(self) -> None:
        snippet = self.visible_snippet
        if snippet is None:
            copy_text(self.app, self.entry.sql, "the SQL")
            return
        title = dict((pane, title) for pane, title, _ in TABS)[self.active_tab]
        copy_text(self.app, snippet, f"the {title} code")

    def action_next_tab(self) -> None:
        """Show the suggestion's code in the next language (SQLAlchemy, SQL, Alembic)."""
        if not self.suggestions:
            return
        panes = [pane for pane, _, _ in TABS]
        following = panes[(panes.index(self.active_tab) + 1) % len(panes)]
        self.query_one(TabbedContent).active = f"tab-{following}"

    def action_copy_sql(self) -> None:
        copy_text(self.app, self.entry.sql, "the SQL")

    def action_compare(self) -> None:
        suggestion = self.suggestion
        if suggestion is None:
            self.notify("no index suggestion to compare for this query", severity="warning")
            return
        evidence = suggestion.evidence[self.entry.id]
        if evidence.before_plan is None or evidence.after_plan is None:
            self.notify("this suggestion has no before/after plans", severity="warning")
            return
        title = f"{suggestion.candidate.name} on {suggestion.candidate.qualified_table}"
        self.app.push_screen(CompareScreen(evidence.before_plan, evidence.after_plan, title))

    def action_focus_tree(self) -> None:
        if self.entry.plan is not None:
            self.query_one(PlanTree).focus_tree()

    def action_zoom_plan(self) -> None:
        """Hide or show the findings and suggestions, to give the plan the whole width."""
        right = self.query_one("#query-right")
        right.display = not right.display

    def action_focus_findings(self) -> None:
        self.query_one("#query-findings", OptionList).focus()


__all__ = ["TABS", "QueryScreen", "Snippets", "evidence_text", "formatted_sql", "snippets"]
