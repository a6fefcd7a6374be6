"""A Markdown report to paste into a pull request: suggestions first, with evidence."""

from __future__ import annotations

from explainer.render.phrases import METHOD_WORDS, evidence_phrase, format_ms
from explainer.render.sql import index_sql
from explainer.render.sqlalchemy import imports, index_declaration
from explainer.report import Report


def _fence(language: str, text: str) -> list[str]:
    return [f"```{language}", text, "```", ""]


def render_markdown(report: Report) -> str:
    db = report.database
    lines = [
        "# explainer report",
        "",
        f"Database `{db.dsn}` (PostgreSQL {db.server_version}); verification: {db.verify_method}.",
        "",
        f"{len(report.queries)} queries analyzed, {len(report.findings)} findings, "
        f"{len(report.suggestions)} index suggestions.",
        "",
    ]
    if report.suggestions:
        lines += ["## Index suggestions", ""]
    for number, suggestion in enumerate(report.suggestions, start=1):
        candidate = suggestion.candidate
        lines += [f"### {number}. `{candidate.name}` on `{candidate.qualified_table}`", ""]
        lines += _fence("sql", index_sql(candidate))
        lines += _fence("python", f"{imports(candidate)}\n\n{index_declaration(candidate)}")
        lines += ["| query | evidence |", "|---|---|"]
        for query_id, evidence in suggestion.evidence.items():
            lines.append(f"| `{query_id}` | {evidence_phrase(evidence)} |")
        method = next(iter(suggestion.evidence.values())).method
        lines += ["", f"Evidence: {METHOD_WORDS[method]}.", ""]
    lines += ["## Queries", ""]
    for query in report.queries:
        lines.append(f"### `{query.id}`")
        lines.append("")
        facts = [f"{query.calls} call" + ("" if query.calls == 1 else "s")]
        if query.total_ms is not None:
            facts.append(f"{format_ms(query.total_ms)} total in the log")
        if query.execution_ms is not None:
            facts.append(f"{format_ms(query.execution_ms)} per run")
        lines += [", ".join(facts) + f" ({query.source}:{query.line})", ""]
        lines += _fence("sql", query.sql)
        if query.error:
            lines += [f"**Not analyzed:** {query.error}", ""]
        if query.note:
            lines += [f"_Note:_ {query.note}", ""]
        for finding in query.findings:
            lines.append(f"- **{finding.severity.value}** `{finding.rule}`: {finding.message}")
        for item in query.no_suggestion:
            lines.append(f"- no index suggested (`{item.reason.value}`): {item.detail}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
