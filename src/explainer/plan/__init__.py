"""Execution plans: the typed model and the parsers that build it.

Everything else in explainer reads plans through these names; the timing rules (loops,
parallel workers, InitPlans, CTEs) are documented in :mod:`explainer.plan.parse`.
"""

from explainer.errors import PlanParseError
from explainer.plan.model import BUFFER_FIELDS, Buffers, Plan, PlanNode
from explainer.plan.parse import compute_metrics, parse_json_plan, plan_from_document
from explainer.plan.source import PlanFormat, clean_plan_text, detect_format, parse_plan
from explainer.plan.text import text_to_document

__all__ = [
    "BUFFER_FIELDS",
    "Buffers",
    "Plan",
    "PlanFormat",
    "PlanNode",
    "PlanParseError",
    "clean_plan_text",
    "compute_metrics",
    "detect_format",
    "parse_json_plan",
    "parse_plan",
    "plan_from_document",
    "text_to_document",
]
