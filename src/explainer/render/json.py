"""The JSON report, contract version 1 (documented in docs/report-format.md).

Other tools read this: field names and meanings only change with a new ``version``.
Numbers are rounded to what a measurement supports (0.001 ms, 0.01 cost units).
"""

from __future__ import annotations

import json
from typing import Any

from explainer.advise.model import Evidence, IndexSuggestion, NoSuggestion
from explainer.plan import Plan
from explainer.plan.labels import node_label
from explainer.render.sql import index_sql
from explainer.render.sqlalchemy import index_declaration, table_args_declaration
from explainer.report import QueryReport, Report
from explainer.rules import Finding

REPORT_VERSION = 1


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _cost(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "message": finding.message,
        "table": finding.table,
        "node": finding.node_path,
        "details": dict(finding.details),
    }


def plan_summary(plan: Plan, analyzed: bool) -> dict[str, Any]:
    nodes = list(plan.walk())
    slowest = max(nodes, key=lambda n: n.exclusive_ms) if analyzed and nodes else None
    return {
        "analyzed": analyzed,
        "total_cost": _cost(plan.root.total_cost),
        "node_count": len(nodes),
        "root": plan.root.node_type,
        "relations": sorted({n.relation for n in nodes if n.relation}),
        "slowest_node": None
        if slowest is None
        else {
            "node": slowest.path,
            "node_type": slowest.node_type,
            "relation": slowest.relation,
            "exclusive_ms": _ms(slowest.exclusive_ms),
        },
    }


def _no_suggestion(item: NoSuggestion) -> dict[str, Any]:
    return {
        "reason": item.reason.value,
        "detail": item.detail,
        "table": item.table,
        "columns": list(item.candidate.columns) if item.candidate else None,
    }


def query_dict(query: QueryReport) -> dict[str, Any]:
    return {
        "id": query.id,
        "sql": query.sql,
        "source": {"file": query.source, "line": query.line},
        "calls": query.calls,
        "total_ms": _ms(query.total_ms),
        "execution_ms": _ms(query.execution_ms),
        "planning_ms": _ms(query.planning_ms),
        "analyzed": query.analyzed,
        "note": query.note,
        "error": query.error,
        "findings": [finding_dict(f) for f in query.findings],
        "no_suggestion": [_no_suggestion(n) for n in query.no_suggestion],
        "plan": plan_summary(query.plan, query.analyzed) if query.plan else None,
    }


def _evidence_dict(query_id: str, evidence: Evidence) -> dict[str, Any]:
    return {
        "query": query_id,
        "method": evidence.method,
        "before_ms": _ms(evidence.before_ms),
        "after_ms": _ms(evidence.after_ms),
        "before_cost": _cost(evidence.before_cost),
        "after_cost": _cost(evidence.after_cost),
        "index_used": evidence.index_used,
        "plan_change": _plan_change(evidence),
    }


def _plan_change(evidence: Evidence) -> dict[str, Any] | None:
    """The node that explains the before/after difference, as ``explainer plan --compare``
    names it; None without both plans or without a measured difference."""
    comparison = evidence.comparison
    change = comparison.explaining if comparison is not None else None
    if change is None:
        return None
    return {
        "before": node_label(change.before) if change.before is not None else None,
        "after": node_label(change.after) if change.after is not None else None,
        "before_path": change.before.path if change.before is not None else None,
        "after_path": change.after.path if change.after is not None else None,
        "exclusive_before_ms": _ms(change.exclusive_before_ms),
        "exclusive_after_ms": _ms(change.exclusive_after_ms),
    }


def _sum(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def evidence_summary(suggestion: IndexSuggestion) -> dict[str, Any]:
    """Totals over the queries served: one run of each, before and after."""
    items = list(suggestion.evidence.values())
    return {
        "method": items[0].method if items else "estimate",
        "before_ms": _ms(_sum([e.before_ms for e in items])),
        "after_ms": _ms(_sum([e.after_ms for e in items])),
        "before_cost": _cost(_sum([e.before_cost for e in items])),
        "after_cost": _cost(_sum([e.after_cost for e in items])),
        "index_used": all(e.index_used for e in items),
        "per_query": [_evidence_dict(q, e) for q, e in suggestion.evidence.items()],
    }


def suggestion_dict(suggestion: IndexSuggestion) -> dict[str, Any]:
    candidate = suggestion.candidate
    return {
        "kind": "index",
        "name": candidate.name,
        "table": candidate.qualified_table,
        "columns": list(candidate.columns),
        "where": candidate.where,
        "using": candidate.using,
        "include": list(candidate.include),
        "queries": suggestion.queries,
        "rules": suggestion.rules,
        "evidence": evidence_summary(suggestion),
        "sql": index_sql(candidate),
        "sqlalchemy": index_declaration(candidate),
        "sqlalchemy_table_args": table_args_declaration(candidate),
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "database": {
            "server_version": report.database.server_version,
            "database": report.database.database,
            "dsn": report.database.dsn,
            "verify_method": report.database.verify_method,
        },
        "inputs": {
            "sources": report.inputs.sources,
            "statements": report.inputs.statements,
            "set_aside": report.inputs.set_aside,
            "skipped": report.inputs.skipped,
        },
        "queries": [query_dict(q) for q in report.queries],
        "suggestions": [suggestion_dict(s) for s in report.suggestions],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, default=str)
