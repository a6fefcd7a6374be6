"""``explainer lint`` output: the terminal report (rich) and the JSON document
(docs/report-format.md, "Lint JSON")."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from explainer.lint.model import LintFinding, LintReport
from explainer.rules.model import Severity

LINT_FORMAT_VERSION = 1

_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "cyan"}


def finding_dict(finding: LintFinding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "schema": finding.schema,
        "table": finding.qualified_table,
        "column": finding.column,
        "message": finding.message,
        "sql": finding.sql,
        "model": finding.model,
        "details": dict(finding.details),
    }


def lint_dict(report: LintReport) -> dict[str, Any]:
    return {
        "format": "explainer-lint",
        "version": LINT_FORMAT_VERSION,
        "database": {"name": report.database, "server_version": report.server_version},
        "schema": report.schema,
        "tables": report.tables,
        "stats_since": report.stats_since,
        "sampled_tables": list(report.sampled_tables),
        "findings": [finding_dict(f) for f in report.findings],
    }


def render_lint_json(report: LintReport) -> str:
    return json.dumps(lint_dict(report), indent=2, default=str) + "\n"


def _code(text: str, language: str) -> Syntax:
    return Syntax(text, language, word_wrap=True, background_color="default")


def render_lint_terminal(report: LintReport, console: Console) -> None:
    where = f"schema {report.schema}" if report.schema else "every user schema"
    header = Text("explainer lint", style="bold")
    header.append(
        f"  {report.database} (PostgreSQL {report.server_version}), {where}: "
        f"{report.tables} tables, {len(report.findings)} findings",
        style="dim",
    )
    console.print(header)
    if report.sampled_tables:
        console.print(
            Text(
                "never analyzed, their text columns were sampled: "
                + ", ".join(report.sampled_tables),
                style="dim",
            )
        )
    console.print()
    if not report.findings:
        console.print(Text("no findings", style="green"))
        return
    for number, finding in enumerate(report.findings, start=1):
        title = Text(f"{number}. ")
        title.append(finding.severity.value.upper(), style=_STYLE[finding.severity])
        title.append(f" {finding.rule}", style="bold")
        where_text = finding.qualified_table
        if finding.column:
            where_text += (
                f".{finding.column}" if "," not in finding.column else (f" ({finding.column})")
            )
        title.append(f"  {where_text}")
        parts: list[Any] = [Text(finding.message), _code(finding.sql, "sql")]
        if finding.model:
            parts.append(_code(finding.model, "python"))
        console.print(Panel(Group(*parts), title=title, title_align="left", border_style="dim"))
    unused = [f for f in report.findings if f.rule == "lint-unused-index"]
    if unused:
        console.print(Text(f"index usage counted {report.stats_since}", style="dim"))
