"""The Compare screen: a suggestion's before and after plans side by side.

On top, what :func:`explainer.plan.compare.compare_plans` found, in the sentences of
``explainer plan --compare`` (time before and after, nodes matched, changed, added and
removed, and the node whose change explains the gain). Below, both plans as trees:
nodes whose operation changed are marked ``≠``, removed ones ``✕`` (before), added ones
``+`` (after), the explaining node ``◆``; moving the cursor in one tree moves the other
to the paired node, so a reader follows the same step of the query in both plans.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from explainer.plan import Plan
from explainer.plan.compare import PlanComparison, compare_plans
from explainer.render.phrases import format_ms
from explainer.render.plan import comparison_headline
from explainer.tui.widgets.plan_tree import COMPACT_COLUMNS, PlanTree

_EXPLAINING = Text("◆", style="bold green")
_CHANGED = Text("≠", style="bold yellow")
_REMOVED = Text("✕", style="bold red")
_ADDED = Text("+", style="bold green")


def _marks(comparison: PlanComparison) -> tuple[dict[str, Text], dict[str, Text]]:
    """Marks for the before and after trees, by node path."""
    before: dict[str, Text] = {}
    after: dict[str, Text] = {}
    for change in comparison.changes:
        if change.kind == "removed" and change.before is not None:
            before[change.before.path] = _REMOVED
        elif change.kind == "added" and change.after is not None:
            after[change.after.path] = _ADDED
        elif change.operation_changed and change.before and change.after:
            before[change.before.path] = _CHANGED
            after[change.after.path] = _CHANGED
    explaining = comparison.explaining
    if explaining is not None:
        if explaining.before is not None:
            before[explaining.before.path] = _EXPLAINING
        if explaining.after is not None:
            after[explaining.after.path] = _EXPLAINING
    return before, after


def _side_title(name: str, plan: Plan) -> Text:
    text = Text(name, style="bold")
    if plan.total_ms is not None:
        text.append(f"  {format_ms(plan.total_ms)}")
    else:
        text.append(f"  cost {plan.root.total_cost:,.0f} (not analyzed)", style="dim")
    nodes = sum(1 for _ in plan.walk())
    text.append(f"  {nodes} node{'s' if nodes != 1 else ''}", style="dim")
    return text


class CompareScreen(Screen[None]):
    """Two plans of one query, side by side, with what changed between them."""

    CSS_PATH = "compare.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="compare.close"),
        Binding("b", "focus_side('before')", "Before", id="compare.before"),
        Binding("a", "focus_side('after')", "After", id="compare.after"),
    ]

    def __init__(self, before: Plan, after: Plan, title: str) -> None:
        super().__init__()
        self.before = before
        self.after = after
        self.title_text = title
        self.comparison = compare_plans(before, after)
        # Paired nodes, both ways, to move one tree's cursor with the other's.
        self._pairs: dict[tuple[str, str], str] = {}
        for change in self.comparison.matched:
            if change.before is not None and change.after is not None:
                self._pairs[("before", change.before.path)] = change.after.path
                self._pairs[("after", change.after.path)] = change.before.path

    def compose(self) -> ComposeResult:
        yield Static(self._summary(), id="compare-summary")
        before_marks, after_marks = _marks(self.comparison)
        with Horizontal(id="compare-sides"):
            with Vertical(id="compare-before", classes="side"):
                yield Static(_side_title("before", self.before), classes="side-title")
                yield PlanTree(
                    self.before, marks=before_marks, columns=COMPACT_COLUMNS, id="before"
                )
            with Vertical(id="compare-after", classes="side"):
                yield Static(_side_title("after", self.after), classes="side-title")
                yield PlanTree(
                    self.after, marks=after_marks, columns=COMPACT_COLUMNS, id="after"
                )
        yield Footer()

    def _summary(self) -> Text:
        text = Text(self.title_text, style="bold")
        if not self.comparison.related:
            text.append("\nthese plans share no table: they may not be of the same query", "red")
        for line in comparison_headline(self.comparison):
            text.append("\n" + line)
        text.append("\n◆ explains the change  ≠ operation changed  ✕ removed  + added", "dim")
        return text

    def on_mount(self) -> None:
        explaining = self.comparison.explaining
        if explaining is not None:
            if explaining.before is not None:
                self.query_one("#before", PlanTree).select_path(explaining.before.path)
            if explaining.after is not None:
                self.query_one("#after", PlanTree).select_path(explaining.after.path)
        self.query_one("#before", PlanTree).focus_tree()

    @on(PlanTree.NodeHighlighted)
    def _follow(self, event: PlanTree.NodeHighlighted) -> None:
        """Keep the other tree on the node paired with the one under the cursor."""
        side = event.plan_tree.id or ""
        other = "after" if side == "before" else "before"
        paired = self._pairs.get((side, event.node.path))
        if paired is not None and event.plan_tree.view.has_focus:
            self.query_one(f"#{other}", PlanTree).select_path(paired)

    def action_focus_side(self, side: str) -> None:
        self.query_one(f"#{side}", PlanTree).focus_tree()

    def action_close(self) -> None:
        self.dismiss(None)


__all__ = ["CompareScreen"]
