"""The plan as a tree: one line per node, as ``explainer plan`` prints it, with details.

Each line reads like the terminal tree of :mod:`explainer.render.plan`: the node's own
(exclusive) time, a bar of its share of the query, rows x loops, how far the planner's
per-loop estimate was off, a mark when a finding points at the node, then the node's
label (:func:`explainer.plan.labels.node_label`) indented under its parent. The figures
come first so that they line up whatever the depth; a long label runs off to the right.

Why not Textual's ``Tree``: it measures every label on each rebuild and puts its guides
before the label, so the figures could not line up. :class:`PlanTreeView` is a line
widget instead: it keeps the nodes in EXPLAIN (pre-order) order, the visible rows as
indices into them, and builds a line only when it is first painted (then caches it), so
a plan of thousands of nodes scrolls at the cost of the lines on screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from explainer.plan import BUFFER_FIELDS, Buffers, Plan, PlanNode
from explainer.plan.labels import node_label
from explainer.render.phrases import format_ms
from explainer.render.plan import estimate_phrase
from explainer.rules import Finding, Severity

SEVERITY_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "cyan"}
_BAR_WIDTH = 8
_MS_WIDTH = 9
_COST_WIDTH = 12
_ROWS_WIDTH = 14
_ESTIMATE_WIDTH = 12
#: The figures a line can show, in the order they are shown: the node's own time, a bar
#: and a percentage of its share of the query (``total cost`` instead of the three for a
#: plan without timing), rows x loops, and the estimate's error.
COLUMNS: tuple[str, ...] = ("time", "bar", "share", "rows", "estimate")
#: The figures that matter most, for a narrow tree (two plans side by side).
COMPACT_COLUMNS: tuple[str, ...] = ("time", "share", "rows")
_BLOCKS = " ▏▎▍▌▋▊▉█"
#: An estimate off by less than this factor either way is not worth a colour (as
#: ``explainer plan``).
_ESTIMATE_NOTICE = 10.0
#: Fields the details panel shows by name; the node's other EXPLAIN fields follow as-is.
_SHOWN_RAW = {
    "Node Type",
    "Plans",
    "Relation Name",
    "Schema",
    "Alias",
    "Index Name",
    "Parent Relationship",
    "Subplan Name",
    "Startup Cost",
    "Total Cost",
    "Plan Rows",
    "Plan Width",
    "Actual Startup Time",
    "Actual Total Time",
    "Actual Rows",
    "Actual Loops",
    "Filter",
    "Index Cond",
    "Recheck Cond",
    "Join Filter",
    "Hash Cond",
    "Sort Key",
    "Rows Removed by Filter",
    "Rows Removed by Index Recheck",
    "Rows Removed by Join Filter",
    "Workers Planned",
    "Workers Launched",
    "Join Type",
    "Operation",
    "CTE Name",
    "Parallel Aware",
    "Strategy",
    "Scan Direction",
}


def share_bar(share: float) -> str:
    """A bar of ``_BAR_WIDTH`` cells, to the eighth of a cell."""
    eighths = round(max(0.0, min(share, 1.0)) * _BAR_WIDTH * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_BLOCKS[rest] if rest else "")).ljust(_BAR_WIDTH)


def rows_phrase(node: PlanNode) -> str:
    """``1,000 x 3`` (rows per loop x loops), ``~120 planned`` or ``never executed``."""
    if node.never_executed:
        return "never executed"
    if node.actual_rows is None or node.actual_loops is None:
        return f"~{node.plan_rows:,.0f} planned"
    rows = node.actual_rows
    rows_text = f"{rows:,.0f}" if float(rows).is_integer() else f"{rows:,.2f}"
    return f"{rows_text} x {node.actual_loops:,.0f}"


def _worst(findings: Sequence[Finding]) -> Severity:
    return max((f.severity for f in findings), key=lambda s: s.rank)


class PlanTreeView(ScrollView, can_focus=True):
    """The lines of the tree, with a cursor; see the module docstring."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", id="plan_tree.cursor_up", show=False),
        Binding("down,j", "cursor_down", "Down", id="plan_tree.cursor_down", show=False),
        Binding("pageup", "page_up", "Page up", id="plan_tree.page_up", show=False),
        Binding("pagedown", "page_down", "Page down", id="plan_tree.page_down", show=False),
        Binding("home", "first", "First", id="plan_tree.first", show=False),
        Binding("end", "last", "Last", id="plan_tree.last", show=False),
        Binding("left,h", "collapse", "Collapse", id="plan_tree.collapse", show=False),
        Binding("right,l", "expand", "Expand", id="plan_tree.expand", show=False),
        Binding("space", "fold", "Fold", id="plan_tree.fold", show=False),
        Binding(
            "shift+right,greater_than_sign",
            "scroll_right",
            "Scroll right",
            id="plan_tree.scroll_right",
            show=False,
        ),
        Binding(
            "shift+left,less_than_sign",
            "scroll_left",
            "Scroll left",
            id="plan_tree.scroll_left",
            show=False,
        ),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"plan-tree--cursor"}
    DEFAULT_CSS = """
    PlanTreeView {
        height: 1fr;
        background: $surface;
    }
    PlanTreeView > .plan-tree--cursor {
        background: $surface-lighten-2;
        text-style: bold;
    }
    PlanTreeView:focus > .plan-tree--cursor {
        background: $accent 40%;
    }
    """

    #: Index into the visible rows.
    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class Highlighted(Message):
        """The cursor is on another node."""

        def __init__(self, view: PlanTreeView, node: PlanNode) -> None:
            super().__init__()
            self.view = view
            self.node = node

    def __init__(
        self,
        plan: Plan,
        findings: Sequence[Finding] = (),
        *,
        marks: Mapping[str, Text] | None = None,
        columns: Sequence[str] = COLUMNS,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.plan = plan
        self.columns = tuple(c for c in COLUMNS if c in columns)
        self.nodes: list[PlanNode] = list(plan.walk())
        self._index = {node.path: i for i, node in enumerate(self.nodes)}
        self._ends = self._subtree_ends(self.nodes)
        self._findings: dict[str, list[Finding]] = {}
        for finding in findings:
            if finding.node_path is not None:
                self._findings.setdefault(finding.node_path, []).append(finding)
        self._marks = dict(marks or {})
        self._collapsed: set[int] = set()
        self._rows: list[int] = list(range(len(self.nodes)))
        self._strips: dict[int, Strip] = {}
        self._timed = plan.has_timing
        self._total = plan.total_ms or 0.0
        self._last_posted: int | None = None
        #: The column titles above the lines, kept in step with horizontal scrolling.
        self.header_widget: Static | None = None
        # The widest line, for horizontal scrolling: the figures are a fixed width and a
        # label's length is known without building the line.
        self._figures_width = len(self.header) - len("node")
        widest = max(2 * n.depth + 2 + cell_len(node_label(n)) for n in self.nodes)
        self._width = self._figures_width + widest

    @staticmethod
    def _subtree_ends(nodes: list[PlanNode]) -> list[int]:
        """For each node (pre-order), the index just past its last descendant."""
        ends = [len(nodes)] * len(nodes)
        stack: list[int] = []
        for i, node in enumerate(nodes):
            depth = node.depth
            while stack and nodes[stack[-1]].depth >= depth:
                ends[stack.pop()] = i
            stack.append(i)
        return ends

    def on_mount(self) -> None:
        self.virtual_size = Size(self._width, len(self._rows))
        self._post_highlight()

    # -- what is shown -------------------------------------------------------------------

    @property
    def header(self) -> str:
        """The column titles, aligned with :meth:`line`'s figures."""
        head = ""
        if self._timed:
            if "time" in self.columns:
                head += f"{'exclusive':>{_MS_WIDTH}} "
            if "bar" in self.columns or "share" in self.columns:
                width = ("bar" in self.columns) * (_BAR_WIDTH + 1) + ("share" in self.columns) * 5
                head += f"{'share':<{width}}"
        elif {"time", "bar", "share"} & set(self.columns):
            head += f"{'total cost':>{_COST_WIDTH}} "
        if "rows" in self.columns:
            head += f"{'rows x loops':>{_ROWS_WIDTH}} "
        if "estimate" in self.columns:
            head += f"{'estimate':>{_ESTIMATE_WIDTH}} "
        return head + "  node"

    @property
    def cursor_node(self) -> PlanNode:
        return self.nodes[self._rows[self.cursor]]

    @property
    def visible_nodes(self) -> list[PlanNode]:
        """The nodes on rows (not hidden under a folded parent), in order."""
        return [self.nodes[i] for i in self._rows]

    def findings_of(self, node: PlanNode) -> list[Finding]:
        return self._findings.get(node.path, [])

    def line(self, node: PlanNode) -> Text:
        """The text of a node's line (without the cursor's style)."""
        index = self._index[node.path]
        text = Text(no_wrap=True, end="")
        columns = self.columns
        if self._timed:
            share = node.exclusive_ms / self._total if self._total else 0.0
            style = "bold red" if share >= 0.5 else ("yellow" if share >= 0.1 else "")
            if "time" in columns:
                text.append(f"{format_ms(node.exclusive_ms):>{_MS_WIDTH}} ", style=style)
            if "bar" in columns:
                text.append(share_bar(share) + " ", style=style or "dim")
            if "share" in columns:
                text.append(f"{share:>4.0%} ", style=style)
        elif {"time", "bar", "share"} & set(columns):
            text.append(f"{node.total_cost:>{_COST_WIDTH},.0f} ", style="dim")
        if "rows" in columns:
            text.append(
                f"{rows_phrase(node):>{_ROWS_WIDTH}} ", style="dim" if node.never_executed else ""
            )
        if "estimate" in columns:
            factor = node.estimate_factor
            off = max(factor, 1 / factor) if factor else 1.0
            text.append(
                f"{estimate_phrase(factor):>{_ESTIMATE_WIDTH}} ",
                style="magenta" if off >= _ESTIMATE_NOTICE else "dim",
            )
        findings = self._findings.get(node.path)
        if findings:
            text.append("● ", style=SEVERITY_STYLE[_worst(findings)])
        elif node.path in self._marks:
            text.append_text(self._marks[node.path])
            text.append(" ")
        else:
            text.append("  ")
        text.append("  " * node.depth)
        if node.children:
            text.append("▸ " if index in self._collapsed else "▾ ", style="dim")
        else:
            text.append("→ " if node.depth else "  ", style="dim")
        text.append(node_label(node), style="dim" if node.never_executed else "bold")
        return text

    def _strip(self, index: int) -> Strip:
        strip = self._strips.get(index)
        if strip is None:
            text = self.line(self.nodes[index])
            segments = list(text.render(self.app.console, end=""))
            strip = self._strips[index] = Strip(segments, text.cell_len)
        return strip

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.size.width
        base = self.rich_style
        if row >= len(self._rows):
            return Strip.blank(width, base)
        strip = self._strip(self._rows[row])
        if row == self.cursor:
            cursor_style = self.get_component_rich_style("plan-tree--cursor")
            strip = strip.extend_cell_length(max(width + scroll_x, strip.cell_length))
            strip = strip.apply_style(cursor_style)
        strip = strip.crop_extend(scroll_x, scroll_x + width, None)
        return strip.apply_style(base)

    def watch_scroll_x(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_x(old_value, new_value)
        if self.header_widget is not None and round(old_value) != round(new_value):
            self.header_widget.update(Text(self.header[round(new_value) :], no_wrap=True))

    # -- moving and folding ------------------------------------------------------------

    def _rebuild_rows(self) -> None:
        rows: list[int] = []
        i, count = 0, len(self.nodes)
        while i < count:
            rows.append(i)
            i = self._ends[i] if i in self._collapsed else i + 1
        self._rows = rows
        self.virtual_size = Size(self._width, len(rows))

    def _post_highlight(self) -> None:
        if not self._rows:
            return
        index = self._rows[self.cursor]
        if index != self._last_posted:
            self._last_posted = index
            self.post_message(self.Highlighted(self, self.nodes[index]))

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._rows) - 1))

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        self._post_highlight()

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height or self.size.height
        top = round(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif height and self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def select_path(self, path: str) -> bool:
        """Put the cursor on the node at ``path``, unfolding its parents; False when the
        plan has no such node."""
        index = self._index.get(path)
        if index is None:
            return False
        folded = {i for i in self._collapsed if i < index < self._ends[i]}
        if folded:
            self._collapsed -= folded
            self._strips = {k: v for k, v in self._strips.items() if k not in folded}
            self._rebuild_rows()
        self.cursor = self._rows.index(index)
        return True

    def set_folded(self, path: str, folded: bool) -> None:
        """Fold or unfold the node at ``path`` (a node without children stays as it is)."""
        index = self._index[path]
        if not self.nodes[index].children or (index in self._collapsed) == folded:
            return
        current = self._rows[self.cursor]
        if folded:
            self._collapsed.add(index)
        else:
            self._collapsed.discard(index)
        self._strips.pop(index, None)
        self._rebuild_rows()
        # The cursor stays on its node, or moves to the folded node that now hides it.
        while current not in self._rows:
            current = next(i for i in self._rows if i < current and current < self._ends[i])
        self.cursor = self._rows.index(current)

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_page_up(self) -> None:
        self.cursor -= max(1, self.size.height - 1)

    def action_page_down(self) -> None:
        self.cursor += max(1, self.size.height - 1)

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = len(self._rows) - 1

    def action_collapse(self) -> None:
        node = self.cursor_node
        index = self._rows[self.cursor]
        if node.children and index not in self._collapsed:
            self.set_folded(node.path, True)
        elif node.depth:
            self.select_path(node.path.rsplit(".", 1)[0])

    def action_expand(self) -> None:
        node = self.cursor_node
        if self._rows[self.cursor] in self._collapsed:
            self.set_folded(node.path, False)
        elif node.children:
            self.cursor += 1

    def action_fold(self) -> None:
        node = self.cursor_node
        self.set_folded(node.path, self._rows[self.cursor] not in self._collapsed)

    def on_click(self, event: events.Click) -> None:
        row = round(self.scroll_offset.y) + event.y
        if 0 <= row < len(self._rows):
            self.cursor = row
            if event.chain == 2:
                self.action_fold()


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _buffers_text(buffers: Buffers) -> str:
    parts = [
        f"{name.replace('_', ' ')}={getattr(buffers, name):,}"
        for name in BUFFER_FIELDS
        if getattr(buffers, name)
    ]
    return ", ".join(parts) if parts else "-"


def node_details(node: PlanNode, plan: Plan, findings: Sequence[Finding] = ()) -> RenderableType:
    """Every figure of one node, for the details panel (and for tests to read)."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")

    def row(key: str, value: object) -> None:
        if value is None or value == "" or value == []:
            return
        grid.add_row(key, value if isinstance(value, Text) else str(value))

    row("node", Text(node_label(node), style="bold"))
    row("path", node.path)
    row("type", node.node_type)
    row("relation", ".".join(p for p in (node.schema, node.relation) if p) or None)
    row("alias", node.alias)
    row("index", node.index_name)
    row("parent relationship", node.parent_relationship)
    row("cost", f"{node.startup_cost:,.2f}..{node.total_cost:,.2f}")
    row("planned rows", f"{_figure(node.plan_rows)} per loop, width {node.plan_width}")
    if node.never_executed:
        row("actual", "never executed")
    elif node.actual_rows is not None:
        row(
            "actual rows",
            f"{_figure(node.actual_rows)} x {_figure(node.actual_loops)} loops "
            f"= {_figure(node.total_rows)}",
        )
        factor = node.estimate_factor
        if factor is not None:
            row("estimate", f"{estimate_phrase(factor)} (actual/planned per loop {factor:.4g})")
    if node.actual_total_ms is not None:
        row(
            "actual time",
            f"{format_ms(node.actual_startup_ms)}..{format_ms(node.actual_total_ms)} per loop",
        )
    if plan.has_timing:
        total = plan.total_ms or 0.0
        share = f" ({node.exclusive_ms / total:.0%} of the query)" if total else ""
        row("exclusive time", format_ms(node.exclusive_ms) + share)
        row("inclusive time", format_ms(node.inclusive_ms))
    if node.parallel_processes > 1:
        row("processes", node.parallel_processes)
    if node.workers_planned is not None:
        row("workers", f"{node.workers_launched} launched of {node.workers_planned} planned")
    row("filter", node.filter)
    row("index cond", node.index_cond)
    row("recheck cond", node.recheck_cond)
    row("join filter", node.join_filter)
    row("hash cond", node.hash_cond)
    row("sort key", ", ".join(node.sort_key) or None)
    for key, value in (
        ("removed by filter", node.rows_removed_by_filter_total),
        ("removed by join filter", node.rows_removed_by_join_filter_total),
        ("removed by recheck", node.rows_removed_by_index_recheck_total),
    ):
        if value is not None:
            row(key, _figure(value))
    if node.removed_share is not None:
        row("removed share", f"{node.removed_share:.1%} of the rows read")
    if node.buffers:
        row("buffers", _buffers_text(node.buffers))
        row("own buffers", _buffers_text(node.exclusive_buffers))
    if node.io_read_ms or node.io_write_ms:
        row(
            "I/O time",
            f"read {format_ms(node.io_read_ms)}, write {format_ms(node.io_write_ms)} "
            f"(own: read {format_ms(node.exclusive_io_read_ms)}, "
            f"write {format_ms(node.exclusive_io_write_ms)})",
        )
    for key, value in node.raw.items():
        if key not in _SHOWN_RAW and not key.endswith("Blocks") and "I/O" not in key:
            row(key.lower(), value if not isinstance(value, list) else ", ".join(map(str, value)))
    parts: list[RenderableType] = [grid]
    for finding in findings:
        line = Text("● ", style=SEVERITY_STYLE[finding.severity])
        line.append(f"{finding.rule}: ", style="bold")
        line.append(finding.message)
        parts.append(line)
    return Group(*parts)


class PlanTree(Vertical):
    """A plan tree with its column titles and, optionally, the selected node's details.

    ``marks`` put a short text before the label of nodes without findings (the compare
    screen marks changed nodes). Posts :class:`PlanTree.NodeHighlighted` when the cursor
    moves to another node.
    """

    DEFAULT_CSS = """
    PlanTree {
        height: 1fr;
    }
    PlanTree .plan-tree--lines {
        height: 1fr;
    }
    PlanTree > Horizontal {
        height: 1fr;
    }
    PlanTree .plan-tree--header {
        height: 1;
        color: $text-muted;
        background: $surface;
    }
    PlanTree .plan-tree--details {
        background: $surface;
    }
    PlanTree.-details-bottom .plan-tree--details {
        height: 12;
        border-top: solid $primary-background;
    }
    PlanTree.-details-right .plan-tree--details {
        width: 44;
        height: 1fr;
        border-left: solid $primary-background;
    }
    """

    class NodeHighlighted(Message):
        """The cursor of ``plan_tree`` is on ``node``."""

        def __init__(self, plan_tree: PlanTree, node: PlanNode) -> None:
            super().__init__()
            self.plan_tree = plan_tree
            self.node = node

        @property
        def control(self) -> PlanTree:
            return self.plan_tree

    def __init__(
        self,
        plan: Plan,
        findings: Sequence[Finding] = (),
        *,
        marks: Mapping[str, Text] | None = None,
        columns: Sequence[str] = COLUMNS,
        details: Literal["bottom", "right"] | None = "bottom",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.plan = plan
        self.findings = list(findings)
        self.view = PlanTreeView(plan, self.findings, marks=marks, columns=columns)
        self._placement = details
        self._details = Static(classes="plan-tree--details-body") if details else None
        if details is not None:
            self.add_class(f"-details-{details}")

    def compose(self) -> ComposeResult:
        header = Static(Text(self.view.header, no_wrap=True), classes="plan-tree--header")
        self.view.header_widget = header
        lines = Vertical(
            header,
            self.view,
            classes="plan-tree--lines",
        )
        if self._details is None:
            yield lines
            return
        details = VerticalScroll(self._details, classes="plan-tree--details")
        if self._placement == "right":
            yield Horizontal(lines, details)
        else:
            yield lines
            yield details

    @property
    def cursor_node(self) -> PlanNode:
        return self.view.cursor_node

    def select_path(self, path: str) -> bool:
        """Put the cursor on the node at ``path``; False when there is none."""
        return self.view.select_path(path)

    def on_plan_tree_view_highlighted(self, event: PlanTreeView.Highlighted) -> None:
        event.stop()
        if self._details is not None:
            node = event.node
            self._details.update(node_details(node, self.plan, self.view.findings_of(node)))
        self.post_message(self.NodeHighlighted(self, event.node))

    def focus_tree(self) -> None:
        self.view.focus()


__all__ = [
    "COLUMNS",
    "COMPACT_COLUMNS",
    "SEVERITY_STYLE",
    "PlanTree",
    "PlanTreeView",
    "node_details",
    "rows_phrase",
    "share_bar",
]
