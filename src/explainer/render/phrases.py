"""Sentences shared by the human-readable renderers, so terminal and Markdown agree."""

from __future__ import annotations

from explainer.advise.consolidate import IndexFacts, QuerySaving, Widening
from explainer.advise.model import Evidence, IndexCandidate
from explainer.advise.regressions import Regression
from explainer.orm.models import ModelMap
from explainer.orm.nplus1 import NPlusOne
from explainer.render.sqlalchemy import ModelIndexSuggestion, model_index_suggestion
from explainer.units import format_size

METHOD_WORDS = {
    "rollback": "measured with the index built in a rolled-back transaction",
    "hypopg": "planner cost with a hypothetical index (HypoPG)",
    "estimate": "not verified (estimate only)",
}


def format_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:,.2f} s"
    if value >= 10:
        return f"{value:,.1f} ms"
    return f"{value:.3f} ms"


def evidence_phrase(evidence: Evidence) -> str:
    """'85.2 ms -> 0.412 ms (207x faster), index used' or the cost form."""
    if evidence.method == "estimate":
        return f"cost {evidence.before_cost:,.0f}; {METHOD_WORDS['estimate']}"
    if evidence.before_ms is not None and evidence.after_ms is not None:
        at_least = ">= " if evidence.before_timed_out else ""
        figures = f"{at_least}{format_ms(evidence.before_ms)} -> {format_ms(evidence.after_ms)}"
    else:
        figures = f"cost {evidence.before_cost:,.0f} -> {evidence.after_cost or 0:,.0f}"
    speedup = evidence.speedup
    faster = (
        f" ({speedup:,.0f}x faster)"
        if speedup and speedup >= 2
        else (f" ({speedup:.2f}x)" if speedup else "")
    )
    used = "index used" if evidence.index_used else "index NOT used"
    again = " (measured again: close to the --min-gain line)" if evidence.measured_again else ""
    return f"{figures}{faster}, {used}{again}"


# -- the ORM section ---------------------------------------------------------------------

#: What the names of ORM findings and index code stand on, by ``OrmReport.named_from``.
MODELS_NOTES = {
    "models": "names are your models' own (--models)",
    "reflected": (
        "models: reflected from the database; class and relationship names are "
        "sqlacodegen-style guesses (pass --models to use your own)"
    ),
    "sql": (
        "no models: class and relationship names are guessed from the SQL (pass --models "
        "to use your own)"
    ),
}


def model_suggestion(
    candidate: IndexCandidate, models: ModelMap | None
) -> ModelIndexSuggestion | None:
    """The index as a change to the user's model class, None without models (or when the
    table is not mapped). Reflected maps are not used: their classes have no file."""
    if models is None or models.source != "models":
        return None
    mapped = models.for_table(candidate.table, candidate.schema)
    if mapped is None:
        return None
    try:
        return model_index_suggestion(candidate, mapped)
    except Exception:
        # A renderer must not lose the whole report over one declaration it cannot
        # write in the model's terms; the plain Index(...) form stays in the output.
        return None


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def nplus1_message(finding: NPlusOne) -> str:
    """``Author.books is lazy-loaded one query per Author: 6 queries of books after the
    query that read them (3 times in the log, 41 ms)``."""
    loaded = "collection" if finding.kind == "collection" else "many-to-one"
    text = (
        f"{finding.relationship_name} ({loaded}) is lazy-loaded one query per "
        f"{finding.owner_class}: {finding.max_count:,} queries of "
        f"{finding.lookup.table} after the query that read them"
    )
    facts = []
    if finding.occurrences > 1:
        facts.append(f"{finding.occurrences:,} times in the log, {finding.executions:,} lookups")
    if finding.span_ms is not None:
        facts.append(f"{format_ms(finding.span_ms)} wall-clock")
    if finding.database_ms is not None:
        facts.append(f"{format_ms(finding.database_ms)} in the server")
    return text + (f" ({'; '.join(facts)})" if facts else "")


def nplus1_where(finding: NPlusOne, quote: str = "") -> str | None:
    """``loop at app/views.py:42; parent rows read at app/views.py:40 (the loader option
    goes there)``: the application lines, when the in-app capture recorded them
    (``quote`` around each, a backtick for Markdown)."""
    parts = []
    if finding.location:
        parts.append(f"loop at {quote}{finding.location}{quote}")
    if finding.source_location:
        parts.append(
            f"parent rows read at {quote}{finding.source_location}{quote} "
            "(the loader option goes there)"
        )
    return "; ".join(parts) or None


def orm_counts(nplus1: int, patterns: int) -> str:
    """``2 N+1 patterns, 1 other ORM finding``."""
    return f"{_plural(nplus1, 'N+1 pattern')}, {_plural(patterns, 'other ORM finding')}"


def with_imports(imports: tuple[str, ...], code: str) -> str:
    """The import lines, a blank line, then the code (just the code without imports)."""
    return "\n".join((*imports, "", code)) if imports else code


#: Why consolidation left a verified index out of the set.
LEFT_OUT_WORDS = {
    "max_indexes": "left out by --max-indexes",
    "max_size": "left out by --max-size",
    "regression": "dropped: it makes another query of the workload slower",
    "partner": "left out: it pays off only together with an index that was left out",
}


def regression_phrase(regression: Regression) -> str:
    """'Q5 1.2 s -> 2.3 s (1.9x slower) with ix_orders_o_custkey: dropped (...)'."""
    index = regression.index.name if regression.index is not None else "the new set"
    return (
        f"{regression.query}: {format_ms(regression.before_ms)} -> "
        f"{format_ms(regression.after_ms)} ({regression.slowdown:.2f}x slower) with {index}; "
        f"{regression.decision}: {regression.reason}"
    )


def widening_phrase(widening: Widening, code: str = "") -> str:
    """'ix_a is widened into ix_b (INCLUDE ...) for Q9, Q8: 1.3 s -> 1.0 s with it'."""
    users = ", ".join(f"{code}{query}{code}" for query, _, _ in widening.users)
    narrow = sum(n for _, n, _ in widening.users)
    wide = sum(w for _, _, w in widening.users)
    return (
        f"{code}{widening.narrow.name}{code} is widened into {code}{widening.wide.name}{code} "
        f"(INCLUDE {', '.join(widening.wide.include)}) for the other queries that use it, "
        f"{users}: {format_ms(narrow)} -> {format_ms(wide)} with it"
    )


def saving_phrase(saving: float, unit: str) -> str:
    """``1.2 s`` or ``cost 45,000``: a saving in the consolidation's unit."""
    return format_ms(saving) if unit == "ms" else f"cost {saving:,.0f}"


def serves_phrase(item: QuerySaving) -> str:
    """``50 calls x 7.4 ms = 370 ms saved``."""
    calls = f"{item.calls:,} call{'s' if item.calls != 1 else ''}"
    return (
        f"{calls} x {saving_phrase(item.per_call, item.unit)} = "
        f"{saving_phrase(item.total, item.unit)} saved"
    )


def facts_phrases(facts: IndexFacts) -> list[str]:
    """Size, write overhead, HOT warning and replaced candidates, one sentence each."""
    source = {"hypopg": "HypoPG's estimate", "estimate": "estimated from pg_stats"}
    lines = [f"Size: {format_size(facts.size_bytes)} ({source.get(facts.size_source, '')})."]
    write = facts.write
    if write is not None and write.index_bytes_per_table_byte is not None:
        counted = (
            f"{write.inserts:,} inserts, {write.updates:,} updates "
            f"({write.hot_updates:,} HOT), {write.deletes:,} deletes counted"
        )
        lines.append(
            f"Writes: {write.index_bytes_per_table_byte:.2f} index bytes per table byte "
            f"written ({counted})."
        )
    if facts.hot_update_warning:
        lines.append(f"Warning: {facts.hot_update_warning}.")
    if facts.replaces:
        names = ", ".join(c.name for c in facts.replaces)
        lines.append(f"Replaces {names}: this index serves their queries too.")
    return lines
