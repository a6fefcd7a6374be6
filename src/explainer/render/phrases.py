"""Sentences shared by the human-readable renderers, so terminal and Markdown agree."""

from __future__ import annotations

from explainer.advise.model import Evidence

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
        figures = f"{format_ms(evidence.before_ms)} -> {format_ms(evidence.after_ms)}"
    else:
        figures = f"cost {evidence.before_cost:,.0f} -> {evidence.after_cost or 0:,.0f}"
    speedup = evidence.speedup
    faster = (
        f" ({speedup:,.0f}x faster)"
        if speedup and speedup >= 2
        else (f" ({speedup:.2f}x)" if speedup else "")
    )
    used = "index used" if evidence.index_used else "index NOT used"
    return f"{figures}{faster}, {used}"
