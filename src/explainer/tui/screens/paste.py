"""The Paste screen: SQL, a log excerpt or an EXPLAIN plan, pasted and read.

What was pasted is recognised in this order: a server or driver log (the sniffers of
:data:`explainer.capture.FORMATS`, the same that detect a ``--log`` file), an EXPLAIN
plan in any format (:func:`explainer.plan.source.parse_plan`), then SQL (parsed by
pglast, PostgreSQL's own parser). A plan needs no database: it is shown right here as a
tree with the findings of :func:`explainer.rules.run_rules`. SQL and logs need the
database, so the screen posts :class:`PasteScreen.Submitted` and the app analyzes them.
Anything else gets one line saying what was expected, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import pglast
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from explainer.capture import FORMATS, SNIFF_LINES
from explainer.errors import InputError, PlanParseError
from explainer.plan import Plan
from explainer.plan.source import parse_plan
from explainer.render.phrases import format_ms
from explainer.rules import Finding, RuleContext, run_rules
from explainer.tui.widgets.plan_tree import SEVERITY_STYLE, PlanTree

PasteKind = Literal["plan", "sql", "log"]

_HINT = (
    "Paste SQL, a PostgreSQL log excerpt, or an EXPLAIN plan (text as psql prints it, "
    "JSON, YAML or XML), then ctrl+r. A plan needs no database."
)


@dataclass(frozen=True, slots=True)
class PasteReading:
    """What a paste is; ``plan`` is set for a plan (already parsed)."""

    kind: PasteKind
    plan: Plan | None = None
    #: The log format's name, for a log.
    log_format: str | None = None


def read_paste(text: str) -> PasteReading:
    """Recognise a paste (see the module docstring); :class:`InputError` with one line
    when it is none of SQL, a log or a plan."""
    if not text.strip():
        raise InputError("nothing to read: paste SQL, a log excerpt or an EXPLAIN plan")
    head = text.lstrip("\ufeff").splitlines(keepends=True)[:SNIFF_LINES]
    for input_format in FORMATS:
        if input_format.sniff(head):
            return PasteReading("log", log_format=input_format.name)
    try:
        return PasteReading("plan", plan=parse_plan(text))
    except PlanParseError as exc:
        plan_error = str(exc)
        if "binary data" in plan_error:
            raise InputError(plan_error) from None
    try:
        statements = pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        if "looks like SQL" in plan_error:
            raise InputError(f"the SQL does not parse: {exc}") from None
        raise InputError(plan_error) from None
    if not statements:
        raise InputError("the SQL holds only comments: paste a statement")
    return PasteReading("sql")


class PasteScreen(Screen[None]):
    """A text area to paste into, and what it holds once read."""

    CSS_PATH = "paste.tcss"
    #: A screen made for typing: the app's letter keys (q quits) are off here.
    TYPING: ClassVar[bool] = True
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: the text area has the focus and would take the keys otherwise.
        Binding("ctrl+r,ctrl+enter", "submit", "Analyze", id="paste.submit", priority=True),
        Binding("escape", "close", "Back", id="paste.close", priority=True),
        Binding("ctrl+l", "clear", "Clear", id="paste.clear", priority=True),
    ]

    class Submitted(Message):
        """SQL or a log was pasted: the app analyzes it against the database."""

        def __init__(self, text: str, kind: PasteKind) -> None:
            super().__init__()
            self.text = text
            self.kind = kind

    def __init__(self) -> None:
        super().__init__()
        self.plan: Plan | None = None
        self.findings: list[Finding] = []

    def compose(self) -> ComposeResult:
        yield Static(_HINT, id="paste-hint")
        yield TextArea(id="paste-input", show_line_numbers=True, soft_wrap=False)
        yield Static(id="paste-message")
        with Horizontal(id="paste-result"):
            yield Vertical(id="paste-plan")
            yield OptionList(id="paste-findings")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#paste-result").display = False
        self.query_one(TextArea).focus()

    @property
    def text(self) -> str:
        return self.query_one(TextArea).text

    @property
    def message(self) -> str:
        """The one line under the text area (what was read, or what is wrong)."""
        return str(self.query_one("#paste-message", Static).content)

    def _say(self, message: str, style: str) -> None:
        self.query_one("#paste-message", Static).update(Text(message, style=style))

    async def action_submit(self) -> None:
        text = self.text
        try:
            reading = read_paste(text)
        except InputError as exc:
            self._say(str(exc).splitlines()[0], "bold red")
            return
        if reading.kind == "plan" and reading.plan is not None:
            await self._show_plan(reading.plan)
            return
        what = f"a {reading.log_format}" if reading.kind == "log" else "SQL"
        self._say(f"{what}: analyzing it against the database…", "green")
        self.post_message(self.Submitted(text, reading.kind))

    async def _show_plan(self, plan: Plan) -> None:
        self.plan = plan
        self.findings = run_rules(plan, RuleContext())
        holder = self.query_one("#paste-plan", Vertical)
        await holder.remove_children()
        tree = PlanTree(plan, self.findings, id="paste-tree")
        await holder.mount(tree)
        findings = self.query_one("#paste-findings", OptionList)
        findings.clear_options()
        for number, finding in enumerate(self.findings):
            style = SEVERITY_STYLE[finding.severity]
            prompt = Text(f"● {finding.severity.value.upper()} ", style=style)
            prompt.append(finding.rule, style="bold")
            prompt.append(f"\n{finding.message}")
            findings.add_option(Option(prompt, id=f"finding-{number}"))
        if not self.findings:
            findings.add_option(Option(Text("no findings", style="green"), disabled=True))
        self.query_one("#paste-result").display = True
        self.add_class("has-plan")
        nodes = sum(1 for _ in plan.walk())
        timing = (
            format_ms(plan.total_ms)
            if plan.total_ms is not None
            else f"not analyzed, cost {plan.root.total_cost:,.0f}"
        )
        self._say(
            f"a plan: {nodes} node{'s' if nodes != 1 else ''}, {timing}, "
            f"{len(self.findings)} finding{'s' if len(self.findings) != 1 else ''} "
            "(no database needed)",
            "green",
        )
        tree.focus_tree()

    @on(OptionList.OptionHighlighted, "#paste-findings")
    def _finding_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index < len(self.findings):
            path = self.findings[event.option_index].node_path
            if path is not None:
                self.query_one(PlanTree).select_path(path)

    def action_clear(self) -> None:
        self.query_one(TextArea).clear()
        self.query_one("#paste-result").display = False
        self.remove_class("has-plan")
        self._say("", "")
        self.query_one(TextArea).focus()

    def action_close(self) -> None:
        self.dismiss(None)


__all__ = ["PasteKind", "PasteReading", "PasteScreen", "read_paste"]
