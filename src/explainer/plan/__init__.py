"""Execution plans: the typed model and the parsers that build it.

Everything else in explainer reads plans through these names; the timing rules (loops,
parallel workers, InitPlans, CTEs) are documented in :mod:`explainer.plan.parse`.
"""

from explainer.plan.model import BUFFER_FIELDS, Buffers, Plan, PlanNode
from explainer.plan.parse import compute_metrics, parse_json_plan, plan_from_document

__all__ = [
    "BUFFER_FIELDS",
    "Buffers",
    "Plan",
    "PlanNode",
    "compute_metrics",
    "parse_json_plan",
    "plan_from_document",
]
