"""``explainer lint`` output: the terminal report (rich) and the JSON document
(docs/report-format.md, "Lint JSON")."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from explainer.lint.model import LintFinding, LintReport
from explainer.orm.models import ModelMap
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
        console.print(finding_panel(number, finding))
    unused = [f for f in report.findings if f.rule == "lint-unused-index"]
    if unused:
        console.print(Text(f"index usage counted {report.stats_since}", style="dim"))


def where(finding: LintFinding) -> str:
    """``orders.customer_id``, ``orders (a, b)`` for a key of several columns, ``orders``."""
    if not finding.column:
        return finding.qualified_table
    if "," in finding.column:
        return f"{finding.qualified_table} ({finding.column})"
    return f"{finding.qualified_table}.{finding.column}"


def finding_panel(number: int, finding: LintFinding) -> Panel:
    """One finding as ``explainer lint`` and the Schema section of ``analyze`` show it."""
    title = Text(f"{number}. ")
    title.append(finding.severity.value.upper(), style=_STYLE[finding.severity])
    title.append(f" {finding.rule}", style="bold")
    title.append(f"  {where(finding)}")
    parts: list[Any] = [Text(finding.message), _code(finding.sql, "sql")]
    if finding.model:
        parts.append(_code(finding.model, "python"))
    return Panel(Group(*parts), title=title, title_align="left", border_style="dim")


def _fence(language: str, text: str) -> list[str]:
    return [f"```{language}", text, "```", ""]


def lint_markdown(findings: Sequence[LintFinding]) -> list[str]:
    """The "Schema" section of the Markdown report (nothing without findings)."""
    if not findings:
        return []
    lines = [
        "## Schema",
        "",
        "The schema lint of the tables these queries touch (docs/rules.md, Schema lint).",
        "",
    ]
    for number, finding in enumerate(findings, start=1):
        lines += [
            f"### {number}. **{finding.severity.value}** `{finding.rule}`: `{where(finding)}`",
            "",
            finding.message,
            "",
        ]
        lines += _fence("sql", finding.sql)
        if finding.model:
            lines += _fence("python", finding.model)
    return lines


def lint_script(findings: Sequence[LintFinding]) -> str:
    """The findings' SQL as one script (the export's ``schema.sql``), each statement after
    its rule and message as comments. Kept apart from ``indexes.sql``: a column type
    change or a new primary key column rewrites its table under an ACCESS EXCLUSIVE lock,
    so this script is to be read and run in parts, not re-run blindly."""
    lines = [
        "-- Generated by explainer: the schema lint's fixes (docs/rules.md, Schema lint).",
        "-- Run it with psql, not inside BEGIN ... COMMIT (CREATE INDEX CONCURRENTLY cannot",
        "-- run in a transaction block). Read it first: an ALTER ... TYPE or ADD COLUMN ...",
        "-- PRIMARY KEY rewrites its table under an ACCESS EXCLUSIVE lock (plan a window).",
        "",
        "SET lock_timeout = '5s';",
        "",
    ]
    for finding in findings:
        lines.append(f"-- {finding.rule} ({finding.severity.value}): {where(finding)}")
        lines += [f"-- {line}" for line in textwrap.wrap(finding.message, 86)]
        lines += [finding.sql, ""]
    return "\n".join(lines)


def lint_snippets(findings: Sequence[LintFinding], models: ModelMap | None = None) -> list[str]:
    """The findings' model changes, for the export's ``models_snippets.md``. The code
    names classes as sqlacodegen would guess them; with the user's ``models`` each change
    also says which of their classes (file:line) it goes into."""
    with_model = [f for f in findings if f.model]
    if not with_model:
        return []
    lines = ["## Schema lint", ""]
    for finding in with_model:
        lines += [f"### `{finding.rule}`: `{where(finding)}`", ""]
        mapped = models.for_table(finding.table, finding.schema) if models else None
        if mapped is not None:
            place = f"{mapped.file}:{mapped.line}" if mapped.file and mapped.line else mapped.module
            lines += [f"In your models: class `{mapped.name}` ({place}).", ""]
        lines += _fence("python", finding.model or "")
    return lines
