"""``explainer plan``: one plan (or two compared) as a tree, JSON or Markdown.

The terminal tree reads like pev2 or explain.depesz.com: one line per node in the order
EXPLAIN prints them, with the node's own (exclusive) time, a bar of its share of the
query, rows x loops and how far the planner's estimate was off, and each finding under
the node it points at. The JSON shapes are a contract documented in docs/report-format.md
("Plan JSON" and "Comparison JSON"). All figures come from the plan model, which does the
timing arithmetic once (see :mod:`explainer.plan.parse`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from explainer.plan import BUFFER_FIELDS, Buffers, Plan, PlanNode
from explainer.plan.compare import NodeChange, PlanComparison, changed_nodes
from explainer.plan.labels import node_label
from explainer.render.json import finding_dict
from explainer.render.phrases import format_ms
from explainer.rules import Finding, Severity

PLAN_FORMAT = "explainer-plan"
COMPARISON_FORMAT = "explainer-plan-comparison"
PLAN_JSON_VERSION = 1

_SEVERITY_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "cyan"}
_BAR_WIDTH = 10
_BLOCKS = " ▏▎▍▌▋▊▉█"
#: An estimate off by less than this factor either way is not worth a colour.
_ESTIMATE_NOTICE = 10.0
#: Findings are listed under the share bar of their node's line.
_FINDING_INDENT = 12


# -- figures shared by the JSON shapes ---------------------------------------------------


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _number(value: float | None) -> float | int | None:
    """Row counts as integers when they are whole (PostgreSQL 18 prints fractions)."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value, 3)


def _buffers(buffers: Buffers) -> dict[str, int]:
    """Only the counters that are not 0: a plan without BUFFERS gives ``{}``."""
    return {name: getattr(buffers, name) for name in BUFFER_FIELDS if getattr(buffers, name)}


def _share(node: PlanNode, plan: Plan) -> float | None:
    total = plan.total_ms
    if not plan.has_timing or not total:
        return None
    return round(node.exclusive_ms / total, 4)


def node_figures(node: PlanNode, plan: Plan) -> dict[str, Any]:
    """The figures of one node, without its children and findings."""
    timed = plan.has_timing
    factor = node.estimate_factor
    return {
        "path": node.path,
        "node_type": node.node_type,
        "label": node_label(node),
        "relation": node.relation,
        "schema": node.schema,
        "alias": node.alias,
        "index_name": node.index_name,
        "parent_relationship": node.parent_relationship,
        "subplan_name": node.subplan_name,
        "startup_cost": round(node.startup_cost, 2),
        "total_cost": round(node.total_cost, 2),
        "planned_rows": _number(node.plan_rows),
        "rows": _number(node.actual_rows),
        "loops": _number(node.actual_loops),
        "total_rows": _number(node.total_rows),
        "estimate_factor": None if factor is None else float(f"{factor:.4g}"),
        "actual_total_ms": _ms(node.actual_total_ms),
        "inclusive_ms": _ms(node.inclusive_ms) if timed else None,
        "exclusive_ms": _ms(node.exclusive_ms) if timed else None,
        "share_of_total": _share(node, plan),
        "never_executed": node.never_executed,
        "parallel_processes": node.parallel_processes,
        "rows_removed_by_filter": _number(node.rows_removed_by_filter_total),
        "rows_removed_by_join_filter": _number(node.rows_removed_by_join_filter_total),
        "rows_removed_by_index_recheck": _number(node.rows_removed_by_index_recheck_total),
        "removed_share": None if node.removed_share is None else round(node.removed_share, 4),
        "filter": node.filter,
        "index_cond": node.index_cond,
        "buffers": _buffers(node.buffers),
        "exclusive_buffers": _buffers(node.exclusive_buffers),
        "io_read_ms": _ms(node.io_read_ms),
        "io_write_ms": _ms(node.io_write_ms),
        "exclusive_io_read_ms": _ms(node.exclusive_io_read_ms),
        "exclusive_io_write_ms": _ms(node.exclusive_io_write_ms),
    }


def _plan_figures(plan: Plan) -> dict[str, Any]:
    nodes = list(plan.walk())
    return {
        "analyzed": plan.analyzed,
        "has_timing": plan.has_timing,
        "execution_ms": _ms(plan.execution_ms),
        "planning_ms": _ms(plan.planning_ms),
        "total_ms": _ms(plan.total_ms),
        "trigger_ms": _ms(plan.trigger_ms) if plan.triggers else None,
        "total_cost": round(plan.root.total_cost, 2),
        "node_count": len(nodes),
    }


def plan_to_json(
    plan: Plan, findings: Sequence[Finding], *, source: str | None = None
) -> dict[str, Any]:
    """The ``explainer plan --format json`` document (docs/report-format.md)."""
    by_node: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.node_path is not None:
            by_node.setdefault(finding.node_path, []).append(finding)

    # Built without recursion, as the parser builds the tree: a very deep plan must not
    # hit Python's recursion limit. walk() is pre-order, so a parent is built first.
    built: dict[str, dict[str, Any]] = {}
    for node in plan.walk():
        figures = node_figures(node, plan)
        figures["findings"] = [finding_dict(f) for f in by_node.get(node.path, [])]
        figures["children"] = []
        built[node.path] = figures
        if "." in node.path:
            built[node.path.rsplit(".", 1)[0]]["children"].append(figures)
    return {
        "format": PLAN_FORMAT,
        "version": PLAN_JSON_VERSION,
        "source": source,
        **_plan_figures(plan),
        "findings": [finding_dict(f) for f in findings],
        "plan": built[plan.root.path],
    }


def render_plan_json(plan: Plan, findings: Sequence[Finding], *, source: str | None = None) -> str:
    return json.dumps(plan_to_json(plan, findings, source=source), indent=2) + "\n"


# -- terminal ----------------------------------------------------------------------------


def _bar(share: float) -> str:
    eighths = round(max(0.0, min(share, 1.0)) * _BAR_WIDTH * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_BLOCKS[rest] if rest else "")).ljust(_BAR_WIDTH)


def estimate_phrase(factor: float | None) -> str:
    """``"x12 under"`` when the planner expected 12 times fewer rows, ``"x3.0 over"``
    when more, ``""`` when unknown."""
    if factor is None:
        return ""
    if factor >= 1:
        off, word = factor, "under"
    else:
        off, word = 1 / factor, "over"
    if off < 1.05:
        return "ok"
    figure = f"{off:,.0f}" if off >= 10 else f"{off:.1f}"
    return f"x{figure} {word}"


def _rows_phrase(node: PlanNode) -> str:
    if node.never_executed:
        return "never executed"
    if node.actual_rows is None or node.actual_loops is None:
        return f"~{node.plan_rows:,.0f} planned"
    rows = _number(node.actual_rows)
    rows_text = f"{rows:,}" if isinstance(rows, int) else f"{rows:,.2f}"
    return f"{rows_text} x {node.actual_loops:,.0f}"


def _node_line(node: PlanNode, plan: Plan) -> Text:
    line = Text()
    timed = plan.has_timing
    total = plan.total_ms or 0.0
    if timed:
        share = node.exclusive_ms / total if total else 0.0
        style = "bold red" if share >= 0.5 else ("yellow" if share >= 0.1 else "")
        line.append(f"{format_ms(node.exclusive_ms):>11} ", style=style)
        line.append(_bar(share), style=style or "dim")
        line.append(f" {share:>4.0%} ", style=style)
    else:
        line.append(f"{node.total_cost:>16,.0f}  ", style="dim")
    line.append(f"{_rows_phrase(node):>18} ", style="dim" if node.never_executed else "")
    factor = node.estimate_factor
    off = max(factor, 1 / factor) if factor else 1.0
    line.append(
        f"{estimate_phrase(factor):>11}  ", style="magenta" if off >= _ESTIMATE_NOTICE else "dim"
    )
    line.append("  " * node.depth + ("→ " if node.depth else ""))
    line.append(node_label(node), style="dim" if node.never_executed else "bold")
    return line


def _finding_line(finding: Finding, indent: int) -> Text:
    line = Text(" " * indent + "↳ ")
    line.append(f"{finding.severity.value.upper()} ", style=_SEVERITY_STYLE[finding.severity])
    line.append(f"{finding.rule}: ", style="bold")
    line.append(finding.message)
    return line


def _summary(plan: Plan, findings: Sequence[Finding], source: str | None) -> Text:
    nodes = list(plan.walk())
    facts: list[str] = []
    if plan.execution_ms is not None:
        facts.append(f"execution {format_ms(plan.execution_ms)}")
    elif plan.has_timing:
        facts.append(f"root {format_ms(plan.root.inclusive_ms)}")
    else:
        facts.append(f"not analyzed, cost {plan.root.total_cost:,.0f}")
    if plan.planning_ms is not None:
        facts.append(f"planning {format_ms(plan.planning_ms)}")
    if plan.triggers:
        facts.append(f"triggers {format_ms(plan.trigger_ms)}")
    facts.append(f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}")
    facts.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}")
    text = Text()
    text.append("explainer plan", style="bold")
    if source:
        text.append(f"  {source}", style="dim")
    text.append("\n" + " · ".join(facts))
    if plan.has_timing and plan.total_ms:
        slowest = max(nodes, key=lambda n: n.exclusive_ms)
        text.append(
            f"\nslowest node: {node_label(slowest)} ({slowest.path}), "
            f"{format_ms(slowest.exclusive_ms)} of its own, "
            f"{slowest.exclusive_ms / plan.total_ms:.0%} of the query"
        )
    return text


def render_plan_terminal(
    plan: Plan, findings: Sequence[Finding], console: Console, *, source: str | None = None
) -> None:
    """The plan tree in EXPLAIN order, each finding under its node."""
    console.print(_summary(plan, findings, source))
    console.print()
    if plan.has_timing:
        header = (
            f"{'exclusive':>11} {'share':<{_BAR_WIDTH + 5}} {'rows x loops':>18} "
            f"{'estimate':>11}  node"
        )
    else:
        header = f"{'total cost':>16}  {'rows':>18} {'estimate':>11}  node"
    console.print(Text(header, style="dim"))
    by_node: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.node_path is not None:
            by_node.setdefault(finding.node_path, []).append(finding)
    # Lines are not cut at the console's width (soft wrap): a plan's labels are long and a
    # folded tree is harder to read than one the terminal wraps.
    for node in plan.walk():
        console.print(_node_line(node, plan), soft_wrap=True)
        for finding in by_node.get(node.path, []):
            console.print(_finding_line(finding, _FINDING_INDENT), soft_wrap=True)
    general = [f for f in findings if f.node_path is None]
    if general:
        console.print()
        console.print(Text("Plan findings", style="bold"))
        for finding in general:
            console.print(_finding_line(finding, 2), soft_wrap=True)
    if not findings:
        console.print()
        console.print(Text("no findings", style="green"))


# -- Markdown ----------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_plan_markdown(
    plan: Plan, findings: Sequence[Finding], *, source: str | None = None
) -> str:
    summary = _summary(plan, findings, None).plain.splitlines()[1:]
    lines = [f"# explainer plan{f' `{source}`' if source else ''}", ""]
    lines += [line + "  " for line in summary] + [""]
    timed = plan.has_timing
    if timed:
        lines += [
            "| node | exclusive | share | rows x loops | estimate |",
            "|---|---:|---:|---:|---|",
        ]
    else:
        lines += ["| node | total cost | planned rows | | |", "|---|---:|---:|---:|---|"]
    total = plan.total_ms or 0.0
    for node in plan.walk():
        label = "&nbsp;&nbsp;" * node.depth + ("→ " if node.depth else "") + node_label(node)
        if timed:
            share = f"{node.exclusive_ms / total:.0%}" if total else ""
            cells = [format_ms(node.exclusive_ms), share, _rows_phrase(node)]
        else:
            cells = [f"{node.total_cost:,.0f}", f"{node.plan_rows:,.0f}", ""]
        cells.append(estimate_phrase(node.estimate_factor))
        lines.append(f"| `{node.path}` {_md_cell(label)} | " + " | ".join(cells) + " |")
    lines.append("")
    if findings:
        lines += ["## Findings", ""]
        for finding in findings:
            where = f" (node `{finding.node_path}`)" if finding.node_path else ""
            lines.append(
                f"- **{finding.severity.value}** `{finding.rule}`{where}: {finding.message}"
            )
    else:
        lines.append("No findings.")
    return "\n".join(lines).rstrip() + "\n"


# -- comparison --------------------------------------------------------------------------


def _side(plan: Plan, source: str | None) -> dict[str, Any]:
    return {"source": source, **_plan_figures(plan)}


def _change_dict(change: NodeChange, comparison: PlanComparison) -> dict[str, Any]:
    timed = comparison.has_timing
    return {
        "kind": change.kind,
        "matched_by": change.matched_by,
        "operation_changed": change.operation_changed,
        "rows_changed": change.rows_changed,
        "exclusive_change_ms": _ms(change.exclusive_change_ms) if timed else None,
        "inclusive_change_ms": _ms(change.inclusive_change_ms) if timed else None,
        "before": None if change.before is None else node_figures(change.before, comparison.before),
        "after": None if change.after is None else node_figures(change.after, comparison.after),
    }


def comparison_to_json(
    comparison: PlanComparison,
    *,
    sources: tuple[str | None, str | None] = (None, None),
    findings: Sequence[Finding] = (),
) -> dict[str, Any]:
    """The ``explainer plan --compare --format json`` document (docs/report-format.md).

    ``findings`` are the second plan's: what is still to fix after the change.
    """
    explaining = comparison.explaining
    share = comparison.explained_share
    speedup = comparison.speedup
    return {
        "format": COMPARISON_FORMAT,
        "version": PLAN_JSON_VERSION,
        "before": _side(comparison.before, sources[0]),
        "after": _side(comparison.after, sources[1]),
        "change_ms": _ms(comparison.change_ms),
        "speedup": None if speedup is None else round(speedup, 3),
        "node_change_ms": _ms(comparison.node_change_ms) if comparison.has_timing else None,
        "counts": {
            "matched": len(comparison.matched),
            "operation_changed": len(comparison.operation_changes),
            "removed": len(comparison.removed),
            "added": len(comparison.added),
        },
        "explaining": None
        if explaining is None
        else {
            **_change_dict(explaining, comparison),
            "share": None if share is None else round(share, 4),
        },
        "changes": [_change_dict(c, comparison) for c in comparison.changes],
        "findings": [finding_dict(f) for f in findings],
    }


def render_comparison_json(
    comparison: PlanComparison,
    *,
    sources: tuple[str | None, str | None] = (None, None),
    findings: Sequence[Finding] = (),
) -> str:
    document = comparison_to_json(comparison, sources=sources, findings=findings)
    return json.dumps(document, indent=2) + "\n"


def _change_label(change: NodeChange) -> str:
    if change.before is not None and change.after is not None:
        before, after = node_label(change.before), node_label(change.after)
        return before if before == after else f"{before} → {after}"
    if change.before is not None:
        return f"{node_label(change.before)} (removed)"
    return f"{node_label(change.node)} (added)"


def _signed_ms(value: float) -> str:
    sign = "+" if value > 0 else ("-" if value < 0 else "±")
    return f"{sign}{format_ms(abs(value))}"


def _total_rows_text(node: PlanNode | None) -> str:
    if node is None:
        return "-"
    if node.never_executed:
        return "never"
    total = _number(node.total_rows)
    if total is None:
        return f"~{node.plan_rows:,.0f}"
    return f"{total:,}" if isinstance(total, int) else f"{total:,.2f}"


def comparison_headline(comparison: PlanComparison) -> list[str]:
    """The sentences terminal and Markdown both start with."""
    lines: list[str] = []
    before, after = comparison.before_ms, comparison.after_ms
    if before is not None and after is not None:
        speedup = comparison.speedup
        if speedup is None or abs(speedup - 1) < 0.005:
            trend = "no change"
        elif speedup > 1:
            trend = f"{speedup:,.1f}x faster" if speedup < 100 else f"{speedup:,.0f}x faster"
        else:
            trend = f"{1 / speedup:,.1f}x slower"
        lines.append(f"time: {format_ms(before)} → {format_ms(after)} ({trend})")
    else:
        lines.append(
            f"cost: {comparison.before.root.total_cost:,.0f} → "
            f"{comparison.after.root.total_cost:,.0f} (a plan without timing)"
        )
    lines.append(
        f"{len(comparison.matched)} nodes matched, "
        f"{len(comparison.operation_changes)} changed operation, "
        f"{len(comparison.removed)} removed, {len(comparison.added)} added"
    )
    explaining = comparison.explaining
    share = comparison.explained_share
    if explaining is not None and share is not None:
        lines.append(
            f"explained by: {_change_label(explaining)}: "
            f"{format_ms(explaining.exclusive_before_ms)} → "
            f"{format_ms(explaining.exclusive_after_ms)} of its own "
            f"({_signed_ms(explaining.exclusive_change_ms)}, {share:.0%} of the change)"
        )
    elif comparison.has_timing:
        lines.append("no node's time changed")
    return lines


def render_comparison_terminal(
    comparison: PlanComparison,
    console: Console,
    *,
    sources: tuple[str | None, str | None] = (None, None),
    findings: Sequence[Finding] = (),
) -> None:
    title = Text("explainer plan --compare", style="bold")
    if sources[0] and sources[1]:
        title.append(f"  {sources[0]} → {sources[1]}", style="dim")
    console.print(title)
    for line in comparison_headline(comparison):
        console.print(Text(line))
    console.print()
    shown = list(changed_nodes(comparison))
    if not shown:
        console.print(Text("the plans are the same", style="green"))
    else:
        table = Table(title="What changed, largest time change first", title_justify="left")
        table.add_column("node", overflow="fold")
        table.add_column("exclusive before → after", justify="right")
        table.add_column("change", justify="right")
        table.add_column("rows before → after", justify="right")
        for change in shown:
            style = "bold" if change.operation_changed or change.kind != "matched" else ""
            table.add_row(
                Text(_change_label(change), style=style),
                f"{format_ms(change.exclusive_before_ms)} → {format_ms(change.exclusive_after_ms)}"
                if comparison.has_timing
                else "-",
                _signed_ms(change.exclusive_change_ms) if comparison.has_timing else "-",
                f"{_total_rows_text(change.before)} → {_total_rows_text(change.after)}",
            )
        console.print(table)
    if findings:
        console.print()
        console.print(Text("Findings in the second plan", style="bold"))
        for finding in findings:
            console.print(_finding_line(finding, 2))


def render_comparison_markdown(
    comparison: PlanComparison,
    *,
    sources: tuple[str | None, str | None] = (None, None),
    findings: Sequence[Finding] = (),
) -> str:
    title = "# Plan comparison"
    if sources[0] and sources[1]:
        title += f": `{sources[0]}` → `{sources[1]}`"
    lines = [title, ""]
    lines += [line + "  " for line in comparison_headline(comparison)] + [""]
    shown = list(changed_nodes(comparison))
    if shown:
        lines += [
            "| node | exclusive before → after | change | rows before → after |",
            "|---|---:|---:|---:|",
        ]
        for change in shown:
            timing = (
                f"{format_ms(change.exclusive_before_ms)} → {format_ms(change.exclusive_after_ms)}"
            )
            lines.append(
                f"| {_md_cell(_change_label(change))} | "
                f"{timing if comparison.has_timing else '-'} | "
                f"{_signed_ms(change.exclusive_change_ms) if comparison.has_timing else '-'} | "
                f"{_total_rows_text(change.before)} → {_total_rows_text(change.after)} |"
            )
        lines.append("")
    else:
        lines += ["The plans are the same.", ""]
    if findings:
        lines += ["## Findings in the second plan", ""]
        for finding in findings:
            lines.append(f"- **{finding.severity.value}** `{finding.rule}`: {finding.message}")
    return "\n".join(lines).rstrip() + "\n"
