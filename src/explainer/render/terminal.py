"""The default report on a terminal: suggestions first, then every query, with rich."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from explainer.advise.caching import CachingCandidate, describe, tables_text
from explainer.advise.model import IndexCandidate
from explainer.lint.render import finding_panel as lint_panel
from explainer.orm.loaders import Alternative
from explainer.orm.models import ModelMap
from explainer.orm.nplus1 import NPlusOne
from explainer.orm.patterns import OrmFinding
from explainer.render.markdown import roots, where_to_declare
from explainer.render.phrases import (
    LEFT_OUT_WORDS,
    METHOD_WORDS,
    MODELS_NOTES,
    evidence_phrase,
    facts_phrases,
    format_ms,
    model_suggestion,
    nplus1_message,
    nplus1_where,
    orm_counts,
    regression_phrase,
    saving_phrase,
    serves_phrase,
    widening_phrase,
    with_imports,
)
from explainer.render.pooling import render_pooling
from explainer.render.sql import index_sql, suggestion_sql
from explainer.render.sqlalchemy import index_declaration, table_args_declaration
from explainer.report import OrmReport, QueryReport, Report
from explainer.rules import Severity
from explainer.units import format_size, one_line

_SEVERITY_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "cyan"}


def _header(report: Report) -> Text:
    db = report.database
    text = Text()
    text.append("explainer", style="bold")
    text.append(f"  {db.dsn}  PostgreSQL {db.server_version}  verification: {db.verify_method}\n")
    text.append(
        f"{len(report.queries)} queries analyzed · {len(report.findings)} findings · "
        f"{len(report.suggestions)} index suggestions"
    )
    if report.orm.count:
        text.append(f" · {orm_counts(len(report.orm.nplus1), len(report.orm.patterns))}")
    if report.lint:
        text.append(f" · {len(report.lint)} schema finding{'' if len(report.lint) == 1 else 's'}")
    if report.inputs.set_aside:
        text.append(f" · {report.inputs.set_aside} utility statements set aside")
    skipped = sum(report.inputs.skipped.values())
    if skipped:
        reasons = ", ".join(f"{n} {r}" for r, n in report.inputs.skipped.items())
        text.append(f" · {skipped} input lines skipped ({reasons})")
    for note in report.notes:
        text.append(f"\nnote: {note}", style="dim")
    return text


def _suggestions(report: Report) -> list[RenderableType]:
    short_ids = {q.id: f"q{n}" for n, q in enumerate(report.queries, start=1)}
    panels: list[RenderableType] = []
    for number, suggestion in enumerate(report.suggestions, start=1):
        candidate = suggestion.candidate
        facts = report.consolidation.facts.get(candidate)
        serves = {s.query: serves_phrase(s) for s in facts.serves} if facts else {}
        evidence = Table.grid(padding=(0, 1))
        for query_id, item in suggestion.evidence.items():
            evidence.add_row(
                Text(short_ids.get(query_id, query_id), style="bold"),
                Text(evidence_phrase(item)),
                Text(serves.get(query_id, ""), style="dim"),
            )
        method = next(iter(suggestion.evidence.values())).method
        notes: list[RenderableType] = []
        for phrase in facts_phrases(facts) if facts is not None else []:
            style = "bold yellow" if phrase.startswith("Warning") else "dim"
            notes.append(Text(phrase, style=style))
        body = Group(
            _code(suggestion_sql(suggestion), "sql"),
            *_index_code(candidate, report.orm.user_models),
            Text(f"Evidence ({METHOD_WORDS[method]}):", style="italic"),
            evidence,
            *notes,
        )
        panels.append(
            Panel(
                body,
                title=f"[b]{number}[/b]. index on {candidate.qualified_table}",
                title_align="left",
                border_style="green",
            )
        )
    return panels


def _code(text: str, language: str) -> Syntax:
    return Syntax(text, language, word_wrap=True, background_color="default")


def _index_code(candidate: IndexCandidate, models: ModelMap | None) -> list[RenderableType]:
    """The index in the user's model class (file:line) when models are known, else the
    ``Index(...)`` on a class named from the table."""
    model = model_suggestion(candidate, models)
    if model is None:
        return [
            _code(index_declaration(candidate), "python"),
            Text(f"# or, inside class {table_args_declaration(candidate)}", style="dim"),
        ]
    parts: list[RenderableType] = [
        Text(where_to_declare(model), style="bold"),
        _code(f"{model.imports}\n\n{model.code}", "python"),
    ]
    if model.after_class is not None:
        parts.append(Text(f"# or, after the class: {model.after_class}", style="dim"))
    return parts


def _alternatives(alternatives: tuple[Alternative, ...]) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for item in alternatives:
        parts.append(Text(f"{item.title}: {item.note}", style="dim"))
        parts.append(_code(item.code, "python"))
    return parts


def _nplus1_panel(finding: NPlusOne) -> RenderableType:
    parts: list[RenderableType] = [Text(nplus1_message(finding))]
    where = nplus1_where(finding)
    if where:
        parts.append(Text(where, style="bold"))
    if finding.nested:
        names = ", ".join(child.relationship_name for child in finding.nested)
        parts.append(Text(f"nested in it: {names}", style="dim"))
    rewrite = finding.rewrite
    if rewrite is not None:
        if rewrite.defined_at:
            parts.append(Text(f"relationship declared at {rewrite.defined_at}", style="dim"))
        parts += [
            Text("before:", style="italic"),
            _code(rewrite.before, "python"),
            Text("after:", style="italic"),
            _code(with_imports(rewrite.imports, rewrite.after), "python"),
            Text(
                f"SQL it sends instead ({rewrite.queries_after} statements instead of "
                f"{rewrite.queries_before} per loop):",
                style="italic",
            ),
            _code(";\n".join(rewrite.sql_after) + ";", "sql"),
            *_alternatives(rewrite.alternatives),
        ]
    return Panel(
        Group(*parts),
        title=f"[b]N+1[/b] {finding.relationship_name} -> {finding.strategy}"
        + (f" in {finding.location}" if finding.location else ""),
        title_align="left",
        border_style="magenta",
    )


def _pattern_panel(finding: OrmFinding, models: ModelMap | None) -> RenderableType:
    rewrite = finding.rewrite
    parts: list[RenderableType] = [Text(finding.message)]
    if finding.caveat:
        parts.append(Text(f"caveat: {finding.caveat}", style="yellow"))
    if finding.location:
        parts.append(Text(f"run at {finding.location}", style="bold"))
    if finding.defined_at:
        parts.append(Text(f"declared at {finding.defined_at}", style="dim"))
    parts += [
        Text("before:", style="italic"),
        _code(rewrite.before, "python"),
        Text("after:", style="italic"),
        _code(with_imports(rewrite.imports, rewrite.after), "python"),
    ]
    if rewrite.sql_after:
        parts += [
            Text("SQL it sends:", style="italic"),
            _code(";\n".join(rewrite.sql_after) + ";", "sql"),
        ]
    if rewrite.index is not None:
        parts += [
            Text("it needs this index:", style="italic"),
            _code(index_sql(rewrite.index), "sql"),
        ]
        parts += _index_code(rewrite.index, models)
    parts += _alternatives(finding.alternatives)
    return Panel(
        Group(*parts),
        title=f"[b]{finding.rule}[/b] {finding.model_class} ({finding.table})",
        title_align="left",
        border_style="magenta",
    )


def render_orm(orm: OrmReport, console: Console) -> None:
    """The "ORM" section: N+1 patterns and other ORM habits, the rewrite as code. Also
    printed by ``explainer workload``, which needs no database."""
    if not orm.count and not orm.notes and orm.models_target is None:
        return
    console.rule("ORM", align="left")
    console.print(Text(MODELS_NOTES[orm.named_from], style="dim"))
    for note in orm.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if not orm.count:
        console.print(Text("no N+1 pattern or other ORM habit found", style="green"))
    for finding in roots(orm.nplus1):
        console.print(_nplus1_panel(finding))
    for pattern in orm.patterns:
        console.print(_pattern_panel(pattern, orm.user_models))
    console.print()


def _consolidation(report: Report) -> list[RenderableType]:
    c = report.consolidation
    lines: list[RenderableType] = []
    for merge in c.merges:
        lines.append(
            Text(f"{merge.absorbed.name} not suggested: {merge.into.name} serves its queries")
        )
    for apart in c.kept_apart:
        lines.append(Text(f"{apart.short.name} kept beside {apart.long.name}: {apart.reason}"))
    for widening in c.widenings:
        lines.append(Text(widening_phrase(widening)))
    for item in c.left_out:
        lines.append(
            Text(
                f"{item.candidate.name} {LEFT_OUT_WORDS.get(item.reason, item.reason)} "
                f"({format_size(item.size_bytes)}, {saving_phrase(item.total_saving, c.unit)} "
                "saved)",
                style="dim",
            )
        )
    for regression in c.regressions:
        lines.append(Text(f"workload check: {regression_phrase(regression)}", style="dim"))
    return lines


def _removals(report: Report) -> RenderableType:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("index", "table", "reason", "size", "detail"):
        table.add_column(column, overflow="fold")
    for r in report.removals:
        table.add_row(r.index, r.qualified_table, r.reason, format_size(r.size_bytes), r.detail)
    sql = "\n".join(r.sql for r in report.removals)
    return Group(table, Syntax(sql, "sql", word_wrap=True, background_color="default"), Text())


def _query(number: int, query: QueryReport) -> RenderableType:
    facts = [f"{query.calls} call{'s' if query.calls != 1 else ''}"]
    if query.total_ms is not None:
        facts.append(f"{format_ms(query.total_ms)} total in the log")
    if query.execution_ms is not None:
        facts.append(f"{format_ms(query.execution_ms)} per run")
    title = Text(f"q{number} ", style="bold")
    title.append(" · ".join(facts))
    title.append(f"  {query.source}:{query.line}", style="dim")
    parts: list[RenderableType] = [
        title,
        Syntax(query.sql, "sql", word_wrap=True, background_color="default"),
    ]
    if query.error:
        parts.append(Text(f"not analyzed: {query.error}", style="red"))
    if query.note:
        parts.append(Text(f"note: {query.note}", style="yellow"))
    for finding in query.findings:
        line = Text("  ")
        line.append(f"{finding.severity.value.upper():6}", style=_SEVERITY_STYLE[finding.severity])
        line.append(f" {finding.rule}: ", style="bold")
        line.append(finding.message)
        parts.append(line)
    for item in query.no_suggestion:
        parts.append(Text(f"  no index: {item.reason.value}: {item.detail}", style="dim"))
    if query.plan is not None and not query.findings and not query.error:
        parts.append(Text("  no findings", style="green"))
    return Group(*parts, Text())


def _caching_panel(candidate: CachingCandidate) -> RenderableType:
    parts: list[RenderableType] = [
        Syntax(candidate.group.example.sql, "sql", word_wrap=True, background_color="default"),
        Text(describe(candidate)),
        Text(f"tables: {tables_text(candidate)}", style="dim"),
    ]
    if candidate.site:
        parts.append(Text(f"called at {', '.join(candidate.sites)}", style="dim"))
    parts.append(Text(f"invalidation: {candidate.invalidation}", style="yellow"))
    for sketch in candidate.sketches:
        parts += [Text(f"{sketch.title}:", style="italic"), _code(sketch.code, sketch.language)]
    return Panel(
        Group(*parts),
        title=f"[b]cache[/b] {candidate.function} (hit rate {candidate.hit_rate:.0%})",
        title_align="left",
        border_style="cyan",
    )


def render_caching(report: Report, console: Console) -> None:
    """The "Caching candidates" section, only when there is one."""
    if not report.caching:
        return
    console.rule("Caching candidates", align="left")
    for candidate in report.caching:
        console.print(_caching_panel(candidate))
    for refusal in report.caching_refused:
        sql = one_line(refusal.group.example.sql, 80)
        console.print(Text(f"not cached: {sql}: {refusal.reason}", style="dim"))
    console.print()


def render_terminal(report: Report, console: Console) -> None:
    console.print(_header(report))
    console.print()
    if report.suggestions:
        console.rule("Index suggestions", align="left")
        for panel in _suggestions(report):
            console.print(panel)
    render_orm(report.orm, console)
    consolidation = _consolidation(report)
    if consolidation:
        console.rule("Consolidation", align="left")
        for line in consolidation:
            console.print(line)
        console.print()
    if report.removals:
        console.rule("Indexes to remove", align="left")
        console.print(_removals(report))
    if report.lint:
        console.rule("Schema", align="left")
        for number, finding in enumerate(report.lint, start=1):
            console.print(lint_panel(number, finding))
        console.print()
    render_caching(report, console)
    render_pooling(report.pooling, console)
    console.rule("Queries", align="left")
    for number, query in enumerate(report.queries, start=1):
        console.print(_query(number, query))
