"""The JSON report, contract version 1 (documented in docs/report-format.md).

Other tools read this: field names and meanings only change with a new ``version``.
Numbers are rounded to what a measurement supports (0.001 ms, 0.01 cost units).
"""

from __future__ import annotations

import json
from typing import Any

from explainer.advise.caching import CachingCandidate, CachingRefusal
from explainer.advise.consolidate import Consolidation, IndexFacts, WriteOverhead
from explainer.advise.model import Evidence, IndexSuggestion, NoSuggestion
from explainer.advise.regressions import regression_dict
from explainer.advise.removals import IndexRemoval
from explainer.lint.render import finding_dict as lint_finding_dict
from explainer.orm.loaders import Alternative
from explainer.orm.models import ModelMap
from explainer.orm.nplus1 import NPlusOne
from explainer.orm.patterns import OrmFinding
from explainer.plan import Plan
from explainer.plan.labels import node_label
from explainer.render.phrases import MODELS_NOTES, model_suggestion, nplus1_message
from explainer.render.pooling import pooling_dict
from explainer.render.sql import index_sql, suggestion_sql
from explainer.render.sqlalchemy import (
    ModelIndexSuggestion,
    index_declaration,
    table_args_declaration,
)
from explainer.report import OrmReport, QueryReport, Report
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
        "existing": item.existing,
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
        "locations": [{"location": where, "calls": calls} for where, calls in query.locations],
    }


def _evidence_dict(query_id: str, evidence: Evidence) -> dict[str, Any]:
    return {
        "query": query_id,
        "method": evidence.method,
        "before_ms": _ms(evidence.before_ms),
        "before_timed_out": evidence.before_timed_out,
        "after_ms": _ms(evidence.after_ms),
        "before_cost": _cost(evidence.before_cost),
        "after_cost": _cost(evidence.after_cost),
        "index_used": evidence.index_used,
        "measured_again": evidence.measured_again,
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


def _saving(value: float, unit: str) -> float:
    return round(value, 3) if unit == "ms" else round(value, 2)


def _write_dict(write: WriteOverhead | None) -> dict[str, Any] | None:
    if write is None:
        return None
    ratio = write.index_bytes_per_table_byte
    return {
        "index_bytes_per_table_byte": None if ratio is None else round(ratio, 4),
        "index_tuple_bytes": round(write.index_tuple_bytes),
        "table_row_bytes": round(write.table_row_bytes),
        "inserts": write.inserts,
        "updates": write.updates,
        "hot_updates": write.hot_updates,
        "deletes": write.deletes,
        "index_bytes_written": round(write.index_bytes_written),
    }


def facts_dict(facts: IndexFacts | None) -> dict[str, Any]:
    """The workload-wide fields of a suggestion (all null when not consolidated)."""
    if facts is None:
        return {
            "size_bytes": None,
            "size_source": None,
            "saving": None,
            "serves": [],
            "write_overhead": None,
            "hot_update_warning": None,
            "hot_update_columns": [],
            "replaces": [],
        }
    unit = facts.serves[0].unit if facts.serves else "ms"
    return {
        "size_bytes": facts.size_bytes,
        "size_source": facts.size_source,
        "saving": {"unit": unit, "total": _saving(facts.total_saving, unit)},
        "serves": [
            {
                "query": s.query,
                "calls": s.calls,
                "saving_per_call": _saving(s.per_call, s.unit),
                "saving": _saving(s.total, s.unit),
            }
            for s in facts.serves
        ],
        "write_overhead": _write_dict(facts.write),
        "hot_update_warning": facts.hot_update_warning,
        "hot_update_columns": list(facts.hot_update_columns),
        "replaces": [c.name for c in facts.replaces],
    }


def model_dict(model: ModelIndexSuggestion | None) -> dict[str, Any] | None:
    """Where and how to declare an index in the user's models (``null`` without them)."""
    if model is None:
        return None
    return {
        "class": model.class_name,
        "file": model.file,
        "line": model.line,
        "form": "index=True" if model.form == "column" else "__table_args__",
        "code": model.code,
        "after_class": model.after_class,
        "imports": model.imports,
        "name": model.name,
        "sql": model.sql,
    }


def suggestion_dict(
    suggestion: IndexSuggestion,
    facts: IndexFacts | None = None,
    models: ModelMap | None = None,
) -> dict[str, Any]:
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
        "sql": suggestion_sql(suggestion),
        # A partitioned table's partitions, which "sql" builds one by one.
        "partitions": [p.qualified for p in suggestion.partitions],
        "sqlalchemy": index_declaration(candidate),
        "sqlalchemy_table_args": table_args_declaration(candidate),
        **facts_dict(facts),
        "model": model_dict(model_suggestion(candidate, models)),
    }


# -- the ORM section -------------------------------------------------------------------


def models_dict(orm: OrmReport) -> dict[str, Any]:
    """Whose names the ORM findings and index code use."""
    return {
        "source": orm.named_from,
        "target": orm.models_target,
        "classes": len(orm.models.classes) if orm.models is not None else 0,
        "note": MODELS_NOTES[orm.named_from],
    }


def _alternative(item: Alternative) -> dict[str, Any]:
    return {"title": item.title, "code": item.code, "note": item.note}


def _shape(group_id: str, sql: str) -> dict[str, Any]:
    return {"query": group_id, "sql": sql}


def nplus1_dict(finding: NPlusOne) -> dict[str, Any]:
    rewrite = finding.rewrite
    relationship = finding.relationship
    return {
        "rule": "n-plus-one",
        "message": nplus1_message(finding),
        "named_from": finding.named_from,
        "table": finding.lookup.table,
        "model_class": finding.target_class,
        "source": _shape(finding.source.fingerprint, finding.source.example.sql),
        "repeated": _shape(finding.repeated.fingerprint, finding.repeated.example.sql),
        "root_source": _shape(finding.root_source.fingerprint, finding.root_source.example.sql),
        "count": finding.max_count,
        "executions": finding.executions,
        "occurrences": finding.occurrences,
        "distinct_values": max((b.distinct_values for b in finding.bursts), default=0),
        "span_ms": finding.span_ms,
        "database_ms": _ms(finding.database_ms),
        "relationship": finding.relationship_name,
        "kind": finding.kind,
        "direction": relationship.direction if relationship is not None else None,
        "target_class": finding.target_class,
        "strategy": finding.strategy,
        "option": finding.option,
        "nested": [child.relationship_name for child in finding.nested],
        "imports": list(rewrite.imports) if rewrite else [],
        "before": rewrite.before if rewrite else None,
        "after": rewrite.after if rewrite else None,
        "emitted_sql": list(rewrite.sql_after) if rewrite else [],
        "queries_before": rewrite.queries_before if rewrite else None,
        "queries_after": rewrite.queries_after if rewrite else None,
        "alternatives": [_alternative(a) for a in rewrite.alternatives] if rewrite else [],
        "location": finding.location,
        "source_location": finding.source_location,
        "declared_at": rewrite.defined_at if rewrite else None,
        "caveat": None,
        "numbers": {},
        "index": None,
    }


def pattern_dict(finding: OrmFinding, models: ModelMap | None = None) -> dict[str, Any]:
    rewrite = finding.rewrite
    index = rewrite.index
    shapes = [_shape(g.fingerprint, g.example.sql) for g in finding.shapes]
    return {
        "rule": finding.rule,
        "message": finding.message,
        "named_from": finding.named_from,
        "table": finding.table,
        "model_class": finding.model_class,
        "source": None,
        "repeated": shapes[0] if shapes else None,
        "queries": shapes,
        "count": None,
        "executions": finding.executions,
        "occurrences": finding.occurrences,
        "span_ms": None,
        "database_ms": _ms(finding.database_ms),
        "imports": list(rewrite.imports),
        "before": rewrite.before,
        "after": rewrite.after,
        "emitted_sql": list(rewrite.sql_after),
        "queries_before": rewrite.round_trips_before,
        "queries_after": rewrite.round_trips_after,
        "alternatives": [_alternative(a) for a in finding.alternatives],
        "location": finding.location,
        "source_location": None,
        "declared_at": finding.defined_at,
        "caveat": finding.caveat,
        "numbers": dict(finding.numbers),
        "index": None
        if index is None
        else {
            "name": index.name,
            "table": index.qualified_table,
            "columns": list(index.columns),
            "sql": index_sql(index),
            "sqlalchemy": index_declaration(index),
            "model": model_dict(model_suggestion(index, models)),
        },
    }


def orm_findings(orm: OrmReport) -> list[dict[str, Any]]:
    """``orm_findings[]``: N+1 first (most lookups first), then the other patterns."""
    models = orm.user_models
    return [nplus1_dict(f) for f in orm.nplus1] + [pattern_dict(f, models) for f in orm.patterns]


def consolidation_dict(report: Report) -> dict[str, Any]:
    c: Consolidation = report.consolidation
    total = sum(
        c.facts[s.candidate].total_saving for s in report.suggestions if s.candidate in c.facts
    )
    return {
        "unit": c.unit,
        "max_indexes": c.max_indexes,
        "max_size_bytes": c.max_size_bytes,
        "total_size_bytes": c.total_size_bytes(report.suggestions),
        "total_saving": _saving(total, c.unit),
        "merges": [
            {
                "absorbed": m.absorbed.name,
                "absorbed_columns": list(m.absorbed.columns),
                "into": m.into.name,
                "queries": list(m.queries),
                "reverified": list(m.reverified),
            }
            for m in c.merges
        ],
        "kept_apart": [
            {"short": k.short.name, "long": k.long.name, "reason": k.reason} for k in c.kept_apart
        ],
        "widened": [
            {
                "index": w.narrow.name,
                "into": w.wide.name,
                "include": list(w.wide.include),
                "users": [
                    {"query": query, "narrow_ms": narrow_ms, "wide_ms": wide_ms}
                    for query, narrow_ms, wide_ms in w.users
                ],
            }
            for w in c.widenings
        ],
        "left_out": [
            {
                "name": item.candidate.name,
                "table": item.candidate.qualified_table,
                "columns": list(item.candidate.columns),
                "reason": item.reason,
                "partners": [partner.name for partner in item.partners],
                "size_bytes": item.size_bytes,
                "saving": _saving(item.total_saving, c.unit),
            }
            for item in c.left_out
        ],
        "regression_check": {
            "checked": list(c.regression_checked),
            "changed": list(c.regression_changed),
            "regressions": [regression_dict(r) for r in c.regressions],
            "notes": list(c.regression_notes),
        },
    }


def removal_dict(removal: IndexRemoval) -> dict[str, Any]:
    return {
        "index": removal.index,
        "table": removal.qualified_table,
        "reason": removal.reason,
        "covered_by": removal.covered_by,
        "size_bytes": removal.size_bytes,
        "idx_scan": removal.idx_scan,
        "detail": removal.detail,
        "definition": removal.definition,
        "sql": removal.sql,
    }


def caching_dict(candidate: CachingCandidate) -> dict[str, Any]:
    """One caching candidate (docs/report-format.md, "caching")."""
    return {
        "rule": candidate.rule,
        "query": candidate.group.fingerprint,
        "sql": candidate.group.example.sql,
        "calls": candidate.calls,
        "distinct_values": candidate.distinct_values,
        "shared_hits": candidate.shared_hits,
        "contexts": candidate.contexts,
        "context_kind": candidate.context_kind,
        "hit_rate": round(candidate.hit_rate, 4),
        "ttl_s": candidate.ttl_s,
        "ttl_hit_rate": None
        if candidate.ttl_hit_rate is None
        else round(candidate.ttl_hit_rate, 4),
        "total_ms": _ms(candidate.group.total_ms),
        "saved_ms": _ms(candidate.saved_ms),
        "approximate": candidate.approximate,
        "writes_known": candidate.writes_known,
        "tables": [
            {
                "table": use.name,
                "rows_written": use.rows_written,
                "rows_read": use.rows_read,
                "write_ratio": None if use.write_ratio is None else round(use.write_ratio, 6),
                "writes_per_hour": None
                if use.writes_per_hour is None
                else round(use.writes_per_hour, 3),
            }
            for use in candidate.tables
        ],
        "invalidated_by": [use.name for use in candidate.tables],
        "invalidation": candidate.invalidation,
        "location": candidate.site,
        "locations": list(candidate.sites),
        "function": candidate.function,
        "parameters": list(candidate.parameters),
        "sketches": [
            {"title": s.title, "language": s.language, "code": s.code} for s in candidate.sketches
        ],
    }


def caching_refusal_dict(refusal: CachingRefusal) -> dict[str, Any]:
    return {
        "query": refusal.group.fingerprint,
        "sql": refusal.group.example.sql,
        "reason": refusal.reason,
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
        "suggestions": [
            suggestion_dict(s, report.consolidation.facts.get(s.candidate), report.orm.user_models)
            for s in report.suggestions
        ],
        "consolidation": consolidation_dict(report),
        "removals": [removal_dict(r) for r in report.removals],
        "notes": list(report.notes),
        "stats_since": None
        if report.stats_since is None
        else {
            "since": report.stats_since.since.isoformat() if report.stats_since.since else None,
            "source": report.stats_since.source,
        },
        "models": models_dict(report.orm),
        "orm_findings": orm_findings(report.orm),
        "orm_notes": list(report.orm.notes),
        # The same objects as the findings of `explainer lint --format json`.
        "lint": [lint_finding_dict(f) for f in report.lint],
        "caching": [caching_dict(c) for c in report.caching],
        "caching_refused": [caching_refusal_dict(r) for r in report.caching_refused],
        "pooling": pooling_dict(report.pooling),
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, default=str)
