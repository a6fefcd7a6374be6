"""The workload without a database: the heaviest query shapes of a log, as a table or JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from explainer.render.phrases import format_ms
from explainer.report import InputSummary
from explainer.workload import QueryGroup, Workload

WORKLOAD_FORMAT_VERSION = 1


def _one_line(sql: str, width: int = 90) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def group_dict(group: QueryGroup) -> dict[str, Any]:
    example = group.example
    return {
        "id": group.fingerprint,
        "sql": example.sql,
        "parameters": list(example.parameters),
        "replayable": example.replayable,
        "source": {"file": example.source, "line": example.line},
        "calls": group.calls,
        "total_ms": None if group.total_ms is None else round(group.total_ms, 3),
        "mean_ms": None if group.mean_ms is None else round(group.mean_ms, 3),
        "p95_ms": None if group.p95_ms is None else round(group.p95_ms, 3),
        "max_ms": None if group.max_ms is None else round(group.max_ms, 3),
        "first_seen": group.first_seen,
        "last_seen": group.last_seen,
        "sessions": len(group.sessions),
        "sessions_capped": group.sessions_capped,
        "samples": [
            {"sql": s.sql, "parameters": list(s.parameters), "line": s.line} for s in group.samples
        ],
        "locations": [
            {"location": where, "calls": calls} for where, calls in group.ranked_locations()
        ],
    }


def render_workload_json(workload: Workload, inputs: InputSummary, groups: list[QueryGroup]) -> str:
    document = {
        "version": WORKLOAD_FORMAT_VERSION,
        "inputs": {
            "sources": inputs.sources,
            "statements": inputs.statements,
            "skipped": inputs.skipped,
        },
        "calls": workload.calls,
        "shapes": len(workload.groups),
        "utility": {
            "shapes": len(workload.utility),
            "calls": sum(g.calls for g in workload.utility),
        },
        "groups": [group_dict(g) for g in groups],
    }
    return json.dumps(document, indent=2)


def _table(title: str, groups: list[QueryGroup]) -> Table:
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("#", justify="right", style="dim")
    table.add_column("calls", justify="right")
    table.add_column("total", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("p95", justify="right")
    table.add_column("query", overflow="ellipsis", no_wrap=True, ratio=1)
    for number, group in enumerate(groups, start=1):
        table.add_row(
            str(number),
            f"{group.calls:,}",
            format_ms(group.total_ms),
            format_ms(group.mean_ms),
            format_ms(group.p95_ms),
            _one_line(group.example.sql),
        )
    return table


def render_workload_terminal(
    workload: Workload, inputs: InputSummary, top: int, console: Console
) -> None:
    utility_calls = sum(g.calls for g in workload.utility)
    console.print(
        f"[b]{workload.calls:,}[/b] statements in [b]{len(workload.groups):,}[/b] shapes "
        f"from {', '.join(inputs.sources) or 'no input'}; "
        f"{utility_calls:,} utility statements set aside"
    )
    skipped = sum(inputs.skipped.values())
    if skipped:
        reasons = "; ".join(f"{n:,} {r}" for r, n in inputs.skipped.items())
        console.print(f"[yellow]{skipped:,} lines skipped: {reasons}[/yellow]")
    by_total = [g for g in workload.groups if g.total_ms is not None][:top]
    if by_total:
        console.print(_table("By total time", by_total))
    by_calls = sorted(workload.groups, key=lambda g: -g.calls)[:top]
    console.print(_table("By calls", by_calls))
