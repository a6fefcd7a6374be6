"""A Markdown report to paste into a pull request: suggestions first, with evidence."""

from __future__ import annotations

from explainer.advise.caching import describe, tables_text
from explainer.advise.model import IndexCandidate
from explainer.lint.render import lint_markdown
from explainer.orm.models import ModelMap
from explainer.orm.nplus1 import NPlusOne
from explainer.orm.patterns import OrmFinding
from explainer.render.alembic import upgrade_code
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
from explainer.render.pooling import pooling_markdown
from explainer.render.sql import index_sql, suggestion_sql
from explainer.render.sqlalchemy import ModelIndexSuggestion, imports, index_declaration
from explainer.report import OrmReport, Report
from explainer.units import format_size


def _fence(language: str, text: str) -> list[str]:
    return [f"```{language}", text, "```", ""]


def render_markdown(report: Report) -> str:
    db = report.database
    lines = [
        "# explainer report",
        "",
        f"Database `{db.dsn}` (PostgreSQL {db.server_version}); verification: {db.verify_method}.",
        "",
        *(f"> Note: {note}\n" for note in report.notes),
        f"{len(report.queries)} queries analyzed, {len(report.findings)} findings, "
        f"{len(report.suggestions)} index suggestions"
        + (
            f", {orm_counts(len(report.orm.nplus1), len(report.orm.patterns))}."
            if report.orm.count
            else "."
        ),
        "",
    ]
    if report.suggestions:
        lines += ["## Index suggestions", ""]
    for number, suggestion in enumerate(report.suggestions, start=1):
        candidate = suggestion.candidate
        lines += [f"### {number}. `{candidate.name}` on `{candidate.qualified_table}`", ""]
        lines += _fence("sql", suggestion_sql(suggestion))
        lines += index_code(candidate, report.orm.user_models)
        index_facts = report.consolidation.facts.get(candidate)
        serves = {s.query: serves_phrase(s) for s in index_facts.serves} if index_facts else {}
        lines += ["| query | evidence | saving |", "|---|---|---|"]
        for query_id, evidence in suggestion.evidence.items():
            saving = serves.get(query_id, "-")
            lines.append(f"| `{query_id}` | {evidence_phrase(evidence)} | {saving} |")
        method = next(iter(suggestion.evidence.values())).method
        lines += ["", f"Evidence: {METHOD_WORDS[method]}.", ""]
        if index_facts is not None:
            lines += [*facts_phrases(index_facts), ""]
    if report.suggestions:
        lines += [
            "### Migration",
            "",
            "The Alembic revision's `upgrade()` (`--export` writes the whole revision, "
            "`migration_add_indexes.py`, and the same as `indexes.sql`):",
            "",
            *_fence("python", upgrade_code(report)),
        ]
    lines += orm_markdown(report.orm)
    lines += _left_out(report)
    lines += _removals(report)
    lines += lint_markdown(report.lint)
    lines += caching_markdown(report)
    lines += pooling_markdown(report.pooling)
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


def _left_out(report: Report) -> list[str]:
    c = report.consolidation
    lines: list[str] = []
    for merge in c.merges:
        lines.append(
            f"- `{merge.absorbed.name}` is not suggested: `{merge.into.name}` serves its "
            f"queries ({', '.join(f'`{q}`' for q in merge.queries)})."
        )
    for apart in c.kept_apart:
        lines.append(f"- `{apart.short.name}` kept beside `{apart.long.name}`: {apart.reason}.")
    for widening in c.widenings:
        lines.append(f"- {widening_phrase(widening, code='`')}.")
    for item in c.left_out:
        lines.append(
            f"- `{item.candidate.name}` {LEFT_OUT_WORDS.get(item.reason, item.reason)} "
            f"({format_size(item.size_bytes)}, {saving_phrase(item.total_saving, c.unit)} saved)."
        )
    for regression in c.regressions:
        lines.append(f"- Workload check: {regression_phrase(regression)}.")
    return ["## Consolidation", "", *lines, ""] if lines else []


def _removals(report: Report) -> list[str]:
    if not report.removals:
        return []
    lines = ["## Indexes to remove", ""]
    lines += ["| index | table | reason | size | detail |", "|---|---|---|---|---|"]
    for r in report.removals:
        lines.append(
            f"| `{r.index}` | `{r.qualified_table}` | {r.reason} | {format_size(r.size_bytes)} "
            f"| {r.detail} |"
        )
    lines.append("")
    lines += _fence("sql", "\n".join(r.sql for r in report.removals))
    return lines


def where_to_declare(model: ModelIndexSuggestion) -> str:
    """``shop/models.py:93, class Order: replace its __table_args__``."""
    place = f"{model.file}:{model.line}" if model.file and model.line else model.file or "?"
    if model.form == "column":
        change = "add index=True to the column (this line)"
    else:
        change = "add the index to __table_args__ (replace the class's own, if any)"
    return f"{place}, class {model.class_name}: {change}"


def index_code(candidate: IndexCandidate, models: ModelMap | None) -> list[str]:
    """The index as Python: in the user's model class when models are known, else the
    ``Index(...)`` on a class named from the table."""
    model = model_suggestion(candidate, models)
    if model is None:
        return _fence("python", f"{imports(candidate)}\n\n{index_declaration(candidate)}")
    lines = [f"In your models, {where_to_declare(model)}:", ""]
    lines += _fence("python", f"{model.imports}\n\n{model.code}")
    if model.after_class is not None:
        lines += ["Or after the class:", ""]
        lines += _fence("python", model.after_class)
    return lines


def _alternatives(alternatives: list[tuple[str, str, str]]) -> list[str]:
    lines: list[str] = []
    for title, code, note in alternatives:
        lines += [f"- **{title}**: {note}", ""]
        lines += ["  ```python", *(f"  {line}" for line in code.splitlines()), "  ```", ""]
    return lines


def roots(findings: list[NPlusOne]) -> list[NPlusOne]:
    """The findings no other finding nests: their rewrite loads the nested ones too."""
    nested = {id(child) for f in findings for child in f.nested}
    return [f for f in findings if id(f) not in nested]


def _nplus1(finding: NPlusOne) -> list[str]:
    where = f" in `{finding.location}`" if finding.location else ""
    lines = [f"### N+1: `{finding.relationship_name}` -> `{finding.strategy}`{where}", ""]
    lines += [nplus1_message(finding) + ".", ""]
    place = nplus1_where(finding, "`")
    if place:
        lines += [place[:1].upper() + place[1:] + ".", ""]
    nested = [child.relationship_name for child in finding.nested]
    if nested:
        lines += [f"Nested in it: {', '.join(f'`{n}`' for n in nested)}.", ""]
    rewrite = finding.rewrite
    if rewrite is None:
        return lines
    if rewrite.defined_at:
        lines += [f"Relationship declared at `{rewrite.defined_at}`.", ""]
    lines += ["Before:", "", *_fence("python", rewrite.before)]
    lines += ["After:", "", *_fence("python", with_imports(rewrite.imports, rewrite.after))]
    lines += [
        f"SQL the new form sends ({rewrite.queries_after} statement"
        f"{'s' if rewrite.queries_after != 1 else ''} instead of {rewrite.queries_before} "
        "per loop):",
        "",
        *_fence("sql", ";\n\n".join(rewrite.sql_after) + ";"),
    ]
    lines += _alternatives([(a.title, a.code, a.note) for a in rewrite.alternatives])
    return lines


def _pattern(finding: OrmFinding, models: ModelMap | None) -> list[str]:
    lines = [f"### `{finding.rule}`: `{finding.model_class}` (`{finding.table}`)", ""]
    lines += [finding.message, ""]
    if finding.caveat:
        lines += [f"_Caveat:_ {finding.caveat}", ""]
    if finding.location:
        lines += [f"Run at `{finding.location}`.", ""]
    if finding.defined_at:
        lines += [f"Declared at `{finding.defined_at}`.", ""]
    rewrite = finding.rewrite
    lines += ["Before:", "", *_fence("python", rewrite.before)]
    lines += ["After:", "", *_fence("python", with_imports(rewrite.imports, rewrite.after))]
    if rewrite.sql_after:
        counts = ""
        if rewrite.round_trips_before is not None and rewrite.round_trips_after is not None:
            counts = (
                f" ({rewrite.round_trips_after} round trips instead of "
                f"{rewrite.round_trips_before})"
            )
        lines += [
            f"SQL the new form sends{counts}:",
            "",
            *_fence("sql", ";\n\n".join(rewrite.sql_after) + ";"),
        ]
    if rewrite.index is not None:
        lines += ["It needs this index:", "", *_fence("sql", index_sql(rewrite.index))]
        lines += index_code(rewrite.index, models)
    lines += _alternatives([(a.title, a.code, a.note) for a in finding.alternatives])
    return lines


def orm_markdown(orm: OrmReport) -> list[str]:
    """The "ORM" section: N+1 patterns and other ORM habits, with the rewrite as code."""
    if not orm.count and not orm.notes and orm.models_target is None:
        return []
    lines = ["## ORM", "", f"_{MODELS_NOTES[orm.named_from]}._", ""]
    lines += [f"_Note:_ {note}." for note in orm.notes]
    if orm.notes:
        lines.append("")
    if not orm.count:
        lines += ["No N+1 pattern or other ORM habit found.", ""]
    for finding in roots(orm.nplus1):
        lines += _nplus1(finding)
    for pattern in orm.patterns:
        lines += _pattern(pattern, orm.user_models)
    return lines


def caching_markdown(report: Report) -> list[str]:
    """The "Caching candidates" section, only when there is one."""
    if not report.caching:
        return []
    lines = ["## Caching candidates", ""]
    for candidate in report.caching:
        lines += [f"### `{candidate.function}` (`{candidate.group.fingerprint}`)", ""]
        lines += _fence("sql", candidate.group.example.sql)
        lines += [describe(candidate), "", f"Tables: {tables_text(candidate)}.", ""]
        if candidate.sites:
            lines += ["Called at " + ", ".join(f"`{s}`" for s in candidate.sites) + ".", ""]
        lines += [f"**Invalidation:** {candidate.invalidation}", ""]
        for sketch in candidate.sketches:
            lines += [f"{sketch.title}:", "", *_fence(sketch.language, sketch.code.rstrip())]
    for refusal in report.caching_refused:
        lines.append(f"- not cached: `{refusal.group.fingerprint}`: {refusal.reason}")
    if report.caching_refused:
        lines.append("")
    return lines
