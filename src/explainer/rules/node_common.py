"""Helpers shared by the node-level rules (docs/rules.md states every threshold used here).

Rules measure "how much of the query" a node is with :func:`share_of_query`, decide whether a
finding is worth a reader's attention with :func:`is_material`, and read raw EXPLAIN keys
that the typed model does not carry with :func:`raw_number`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from explainer.plan import Plan, PlanNode

#: A node that reads at least this many rows (all loops) is worth a finding on rows alone.
MATERIAL_ROWS = 10_000
#: Otherwise it must take at least this share of the query's time ...
MATERIAL_SHARE = 0.1
#: ... and at least this much time: nothing in a sub-millisecond query is worth fixing.
MATERIAL_MS = 1.0
#: "Most rows": the share a filter must remove (pev2 colours a node red above 90%).
MOST_REMOVED_SHARE = 0.9

JOIN_TYPES = frozenset({"Nested Loop", "Hash Join", "Merge Join"})
INDEX_SCAN_TYPES = frozenset({"Index Scan", "Index Only Scan", "Bitmap Heap Scan"})


def share_of_query(plan: Plan, ms: float) -> float:
    """``ms`` as a share of the statement's time; 0 when the plan has no timing."""
    total = plan.total_ms or 0.0
    return ms / total if total > 0 else 0.0


def is_material(plan: Plan, rows_read: float, time_ms: float) -> bool:
    """True when a finding on a node reading ``rows_read`` rows in ``time_ms`` is worth showing."""
    if rows_read >= MATERIAL_ROWS:
        return True
    return time_ms >= MATERIAL_MS and share_of_query(plan, time_ms) >= MATERIAL_SHARE


def executed_nodes(plan: Plan) -> Iterator[PlanNode]:
    """Nodes of an analyzed plan that ran at least once (rules need their actual figures)."""
    if not plan.analyzed:
        return
    for node in plan.walk():
        if node.actual_loops and node.actual_rows is not None:
            yield node


def as_number(value: object) -> float | None:
    """A finite JSON number as float; None for anything else (strings, booleans, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def raw_number(node: PlanNode, key: str) -> float | None:
    """A numeric EXPLAIN key of the node that the model has no field for, or None."""
    return as_number(node.raw.get(key))


def filter_counts(node: PlanNode) -> tuple[float, float]:
    """(rows kept, rows removed by ``Filter``) over all loops."""
    return (node.total_rows or 0.0), (node.rows_removed_by_filter_total or 0.0)


def work_mem_text(kb: float) -> str:
    """A ``work_mem`` value that holds ``kb`` kilobytes, rounded up to whole megabytes, and
    above 1 GB to a multiple of 256 MB, so the SET line reads like one a person would write."""
    mb = max(1, math.ceil(kb / 1024))
    if mb > 1024:
        mb = math.ceil(mb / 256) * 256
    return f"{mb}MB"
