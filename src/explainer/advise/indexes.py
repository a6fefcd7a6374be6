"""The index advisor for one statement: findings in, verified suggestions out.

For each finding that points at a table, derive a candidate from the query's predicates,
drop it when an existing index already serves it, and verify the rest. What is not
suggested is reported with a reason code, so a user can tell "nothing to do" from
"explainer could not tell".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from explainer.advise.candidates import covering_index, derive_candidate
from explainer.advise.model import (
    Evidence,
    IndexCandidate,
    NoSuggestion,
    NoSuggestionReason,
)
from explainer.advise.verify import (
    VerifyOptions,
    estimate_only,
    helps,
    verify_hypopg,
    verify_rollback,
)
from explainer.db.catalog import TableInfo
from explainer.db.explain import Connection, Execution
from explainer.errors import QueryFailed
from explainer.plan import Plan
from explainer.rules import Finding

VerifyMode = Literal["rollback", "hypopg", "none"]

#: Rules whose findings call for an index on the finding's table.
INDEX_RULES = frozenset({"seq-scan-selective"})


@dataclass(slots=True)
class StatementAdvice:
    #: Verified candidates with their evidence for this statement.
    accepted: list[tuple[IndexCandidate, Evidence, str]] = field(default_factory=list)
    rejected: list[NoSuggestion] = field(default_factory=list)


def advise_statement(
    conn: Connection,
    execution: Execution,
    plan: Plan,
    findings: list[Finding],
    tables: dict[str, TableInfo],
    *,
    mode: VerifyMode,
    options: VerifyOptions,
) -> StatementAdvice:
    """Candidates for every index-worthy finding of one statement, verified by ``mode``.

    ``tables`` maps the finding's table name to its catalog entry.
    """
    advice = StatementAdvice()
    seen: set[IndexCandidate] = set()
    for finding in findings:
        if finding.rule not in INDEX_RULES or finding.table is None:
            continue
        table = tables.get(finding.table)
        if table is None:
            advice.rejected.append(
                NoSuggestion(
                    NoSuggestionReason.UNKNOWN_TABLE,
                    f"{finding.table} is not in the catalog",
                    finding.table,
                )
            )
            continue
        candidate = derive_candidate(execution.statement.sql, table)
        if candidate is None:
            advice.rejected.append(
                NoSuggestion(
                    NoSuggestionReason.NO_SARGABLE_PREDICATE,
                    f"no predicate on {table.qualified} that a btree index could serve",
                    table.qualified,
                )
            )
            continue
        if candidate in seen:
            continue
        seen.add(candidate)
        existing = covering_index(candidate, table.indexes)
        if existing is not None:
            advice.rejected.append(
                NoSuggestion(
                    NoSuggestionReason.ALREADY_INDEXED,
                    f"{existing.name} already covers ({', '.join(candidate.columns)})",
                    table.qualified,
                    candidate,
                )
            )
            continue
        try:
            evidence = _verify(conn, execution, plan, candidate, mode, options)
        except QueryFailed as exc:
            advice.rejected.append(
                NoSuggestion(NoSuggestionReason.VERIFY_FAILED, str(exc), table.qualified, candidate)
            )
            continue
        if helps(evidence, options.min_gain):
            advice.accepted.append((candidate, evidence, finding.rule))
        else:
            advice.rejected.append(_why_not(candidate, evidence, options.min_gain))
    return advice


def _verify(
    conn: Connection,
    execution: Execution,
    plan: Plan,
    candidate: IndexCandidate,
    mode: VerifyMode,
    options: VerifyOptions,
) -> Evidence:
    if mode == "rollback":
        return verify_rollback(conn, execution, candidate, options)
    if mode == "hypopg":
        return verify_hypopg(conn, execution, candidate, options)
    return estimate_only(plan)


def _why_not(candidate: IndexCandidate, evidence: Evidence, min_gain: float) -> NoSuggestion:
    table = candidate.qualified_table
    columns = ", ".join(candidate.columns)
    if not evidence.index_used:
        return NoSuggestion(
            NoSuggestionReason.NOT_USED,
            f"the planner did not use an index on {table} ({columns})",
            table,
            candidate,
        )
    if evidence.before_ms is not None and evidence.after_ms is not None:
        figures = f"{evidence.before_ms:.1f} ms -> {evidence.after_ms:.1f} ms"
    else:
        figures = f"cost {evidence.before_cost:.0f} -> {evidence.after_cost or 0:.0f}"
    return NoSuggestion(
        NoSuggestionReason.NO_GAIN,
        f"an index on {table} ({columns}) saves less than {min_gain:.0%} ({figures})",
        table,
        candidate,
    )
