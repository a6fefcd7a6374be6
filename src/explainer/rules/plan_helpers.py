"""Helpers the plan-wide rules share: numbers from raw JSON, shares, node labels, sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from explainer.plan import Plan, PlanNode


def number(value: Any) -> float | None:
    """A JSON number as float; None for anything else (missing key, text, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def raw_number(mapping: Mapping[str, Any], key: str) -> float | None:
    return number(mapping.get(key))


def share(part: float, whole: float | None) -> float:
    """``part / whole`` capped at 1, 0 when the whole is unknown or zero.

    Capped because some figures PostgreSQL sums over parallel processes (I/O time, JIT) can
    exceed the statement's wall time, and a share above 100% would only confuse.
    """
    if whole is None or whole <= 0:
        return 0.0
    return min(1.0, part / whole)


def modify_table_on(plan: Plan, relation: str | None) -> PlanNode | None:
    """The ModifyTable node writing ``relation``; with no relation, the only ModifyTable."""
    writers = [n for n in plan.walk() if n.node_type == "ModifyTable"]
    if relation is not None:
        for node in writers:
            if node.relation == relation:
                return node
        return None
    return writers[0] if len(writers) == 1 else None


def megabytes(blocks: float) -> str:
    """Blocks of 8 kB as a human size (PostgreSQL's default block size)."""
    size = blocks * 8192 / 1024 / 1024
    if size >= 1024:
        return f"{size / 1024:,.1f} GB"
    return f"{size:,.1f} MB"
