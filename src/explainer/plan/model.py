"""The plan model every other module reads: a tree of :class:`PlanNode` inside a :class:`Plan`.

Fields keep PostgreSQL's own units so that a figure shown to the user can be checked against
the EXPLAIN output it came from: times in milliseconds and rows *per loop*, exactly as printed.
Totals across loops, and the wall-time figures that diagnosis needs (``inclusive_ms``,
``exclusive_ms``, ``exclusive_buffers``), are derived once by the parser
(:mod:`explainer.plan.parse`, whose docstring states the timing rules) so that every rule and
renderer agrees on them instead of redoing the arithmetic.

Nodes are plain mutable dataclasses: tests and other modules can build a tree by hand with
only the fields they care about.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

#: Names of the buffer counters, in the order PostgreSQL prints them.
BUFFER_FIELDS: tuple[str, ...] = (
    "shared_hit",
    "shared_read",
    "shared_dirtied",
    "shared_written",
    "local_hit",
    "local_read",
    "local_dirtied",
    "local_written",
    "temp_read",
    "temp_written",
)


@dataclass(slots=True)
class Buffers:
    """Block counts of EXPLAIN (BUFFERS) for one node.

    PostgreSQL prints them inclusive of the node's children and summed over all loops and all
    parallel processes; subtraction clamps at 0 because the counters are not always consistent
    between a node and its children (a Gather on older servers counts only the leader's blocks).
    """

    shared_hit: int = 0
    shared_read: int = 0
    shared_dirtied: int = 0
    shared_written: int = 0
    local_hit: int = 0
    local_read: int = 0
    local_dirtied: int = 0
    local_written: int = 0
    temp_read: int = 0
    temp_written: int = 0

    def as_tuple(self) -> tuple[int, ...]:
        """The counters in :data:`BUFFER_FIELDS` order, for element-wise arithmetic."""
        return tuple(getattr(self, name) for name in BUFFER_FIELDS)

    @classmethod
    def from_tuple(cls, values: tuple[int, ...] | list[int] | list[float]) -> Buffers:
        """Inverse of :meth:`as_tuple`; negative values are clamped to 0."""
        return cls(*(max(0, int(v)) for v in values))

    def __add__(self, other: Buffers) -> Buffers:
        if not isinstance(other, Buffers):
            return NotImplemented
        return Buffers.from_tuple(
            [a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)]
        )

    def __sub__(self, other: Buffers) -> Buffers:
        if not isinstance(other, Buffers):
            return NotImplemented
        return Buffers.from_tuple(
            [a - b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)]
        )

    def __bool__(self) -> bool:
        return any(self.as_tuple())

    @property
    def shared_total(self) -> int:
        """Every shared block touched (hit, read, dirtied or written)."""
        return self.shared_hit + self.shared_read + self.shared_dirtied + self.shared_written

    @property
    def local_total(self) -> int:
        """Every local (temporary table) block touched."""
        return self.local_hit + self.local_read + self.local_dirtied + self.local_written

    @property
    def temp_total(self) -> int:
        """Temporary-file blocks (sorts, hashes and materialisations that spilled)."""
        return self.temp_read + self.temp_written

    @property
    def total(self) -> int:
        """All blocks of every kind: a rough "how much I/O work" figure for ranking nodes."""
        return self.shared_total + self.local_total + self.temp_total

    @property
    def total_hit(self) -> int:
        """Blocks found in shared_buffers or local buffers: no I/O request was needed."""
        return self.shared_hit + self.local_hit

    @property
    def total_read(self) -> int:
        """Blocks that needed a read from the OS (page cache or disk), temp files included."""
        return self.shared_read + self.local_read + self.temp_read

    @property
    def total_written(self) -> int:
        """Blocks this query wrote itself (evictions, temp files), not the checkpointer."""
        return self.shared_written + self.local_written + self.temp_written

    @property
    def total_dirtied(self) -> int:
        """Blocks this query modified; they must be written out later (WAL, checkpoints)."""
        return self.shared_dirtied + self.local_dirtied

    @property
    def hit_ratio(self) -> float | None:
        """Share of shared+local block accesses served from buffers; None when nothing was read."""
        accessed = self.total_hit + self.shared_read + self.local_read
        return None if accessed == 0 else self.total_hit / accessed


@dataclass(slots=True)
class PlanNode:
    """One node of an execution plan.

    Per-loop figures (``actual_*``, ``rows_removed_*``) are as PostgreSQL prints them; the
    ``*_total`` properties and the computed fields give the totals. Every field but the first
    two has a default so that a test can build just the nodes it needs.
    """

    node_type: str
    path: str
    relation: str | None = None
    schema: str | None = None
    alias: str | None = None
    index_name: str | None = None
    parent_relationship: str | None = None
    subplan_name: str | None = None
    startup_cost: float = 0.0
    total_cost: float = 0.0
    plan_rows: float = 0.0
    plan_width: int = 0
    actual_startup_ms: float | None = None
    actual_total_ms: float | None = None
    actual_rows: float | None = None
    actual_loops: float | None = None
    filter: str | None = None
    index_cond: str | None = None
    recheck_cond: str | None = None
    join_filter: str | None = None
    hash_cond: str | None = None
    sort_key: list[str] = field(default_factory=list)
    rows_removed_by_filter: float | None = None
    rows_removed_by_index_recheck: float | None = None
    workers_planned: int | None = None
    workers_launched: int | None = None
    buffers: Buffers = field(default_factory=Buffers)
    raw: dict[str, Any] = field(default_factory=dict)
    children: list[PlanNode] = field(default_factory=list)
    # Computed by the parser (see explainer.plan.parse):
    inclusive_ms: float = 0.0
    exclusive_ms: float = 0.0
    exclusive_buffers: Buffers = field(default_factory=Buffers)
    # Additions beyond the agreed API:
    rows_removed_by_join_filter: float | None = None
    join_type: str | None = None
    operation: str | None = None
    cte_name: str | None = None
    parallel_aware: bool = False
    #: Number of processes whose summed time the node's figures hold (1 outside a parallel
    #: section; launched workers + leader under a Gather). Computed by the parser.
    parallel_processes: int = 1
    #: Time spent reading and writing blocks (track_io_timing), shared + local + temp, as
    #: printed: inclusive of children and summed over loops and processes, like buffers.
    io_read_ms: float = 0.0
    io_write_ms: float = 0.0
    #: The same with the children's (and consumed InitPlans'/CTEs') I/O removed, as
    #: ``exclusive_buffers``. Computed by the parser.
    exclusive_io_read_ms: float = 0.0
    exclusive_io_write_ms: float = 0.0

    @property
    def never_executed(self) -> bool:
        """True for a node of an analyzed plan that never ran (``Actual Loops`` 0)."""
        return self.actual_loops is not None and self.actual_loops == 0

    @property
    def total_rows(self) -> float | None:
        """Rows produced over all loops (``Actual Rows`` is a per-loop average)."""
        if self.actual_rows is None or self.actual_loops is None:
            return None
        return self.actual_rows * self.actual_loops

    @property
    def planned_total_rows(self) -> float | None:
        """The planner's row estimate scaled to the loops that actually ran."""
        if self.actual_loops is None:
            return None
        return self.plan_rows * self.actual_loops

    @property
    def estimate_factor(self) -> float | None:
        """Actual rows / planned rows per loop: > 1 means the planner under-estimated.

        Per loop, because that is what the planner estimates (an inner index scan's
        "rows=1" is per outer row). Both sides below one row count as one, so an estimate
        of 1 for an empty result is "right" rather than infinitely wrong, and 537 empty
        loops of a 1-row estimate are not a 537x error (pev2 compares totals and says
        they are). None when the plan was not analyzed, when the node never ran (no
        evidence either way) or when the plan has no row estimates (COSTS OFF).
        """
        if self.actual_rows is None or self.actual_loops is None or self.never_executed:
            return None
        if self.raw and "Plan Rows" not in self.raw:
            return None
        return max(self.actual_rows, 1.0) / max(self.plan_rows, 1.0)

    @property
    def rows_removed_total(self) -> float | None:
        """Rows read and then thrown away, over all loops: by the Filter, the Join Filter
        and the recheck of a lossy bitmap. None when the node printed none of them."""
        parts = [
            self.rows_removed_by_filter_total,
            self.rows_removed_by_join_filter_total,
            self.rows_removed_by_index_recheck_total,
        ]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None

    @property
    def removed_share(self) -> float | None:
        """Rows thrown away as a share of the rows the node read (kept + removed)."""
        removed = self.rows_removed_total
        kept = self.total_rows
        if removed is None or kept is None or removed + kept == 0:
            return None
        return removed / (removed + kept)

    @property
    def rows_removed_by_filter_total(self) -> float | None:
        """Rows discarded by ``Filter`` over all loops (PostgreSQL prints a per-loop average)."""
        return _times_loops(self.rows_removed_by_filter, self.actual_loops)

    @property
    def rows_removed_by_join_filter_total(self) -> float | None:
        """Rows discarded by ``Join Filter`` over all loops."""
        return _times_loops(self.rows_removed_by_join_filter, self.actual_loops)

    @property
    def rows_removed_by_index_recheck_total(self) -> float | None:
        """Rows discarded by a bitmap recheck over all loops (lossy pages, work_mem too small)."""
        return _times_loops(self.rows_removed_by_index_recheck, self.actual_loops)

    @property
    def depth(self) -> int:
        """0 for the root; derived from the path so it can never disagree with it."""
        return self.path.count(".")

    def walk(self) -> Iterator[PlanNode]:
        """This node and its descendants, pre-order (the order EXPLAIN prints them)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


def _times_loops(value: float | None, loops: float | None) -> float | None:
    if value is None:
        return None
    if loops is None:
        return value
    return value * loops


@dataclass(slots=True)
class Plan:
    """A whole EXPLAIN result: the node tree plus the figures printed around it."""

    root: PlanNode
    planning_ms: float | None = None
    execution_ms: float | None = None
    analyzed: bool = False
    triggers: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    jit: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def walk(self) -> Iterator[PlanNode]:
        """Every node, pre-order: the order EXPLAIN prints them."""
        return self.root.walk()

    def node(self, path: str) -> PlanNode:
        """The node at ``path`` ("0", "0.1", ...); KeyError when there is none."""
        parts = path.split(".")
        if parts[0] != "0" or not all(p.isdigit() for p in parts):
            raise KeyError(f"no plan node at path {path!r}")
        node = self.root
        for part in parts[1:]:
            index = int(part)
            if index >= len(node.children):
                raise KeyError(f"no plan node at path {path!r}")
            node = node.children[index]
        return node

    def parent(self, node: PlanNode) -> PlanNode | None:
        """The node's parent, None for the root (nodes hold no back-reference, to stay plain)."""
        if "." not in node.path:
            return None
        return self.node(node.path.rsplit(".", 1)[0])

    @property
    def total_ms(self) -> float | None:
        """Wall time of the statement: ``Execution Time`` when printed, else the root's time.

        Execution time also covers what no node accounts for (AFTER triggers, deferred
        constraints, finishing writable CTEs), so it is the right denominator for "share of
        the query" when available. None for a plan that was not analyzed.
        """
        if self.execution_ms is not None:
            return self.execution_ms
        if not self.analyzed:
            return None
        return self.root.inclusive_ms

    @property
    def has_timing(self) -> bool:
        """False for plain EXPLAIN and for EXPLAIN (ANALYZE, TIMING OFF): node times are 0."""
        return self.analyzed and any(n.actual_total_ms is not None for n in self.walk())

    @property
    def trigger_ms(self) -> float:
        """Time spent in triggers, which EXPLAIN reports outside every node."""
        total = 0.0
        for trigger in self.triggers:
            value = trigger.get("Time")
            if isinstance(value, int | float) and not isinstance(value, bool):
                total += float(value)
        return total


__all__ = ["BUFFER_FIELDS", "Buffers", "Plan", "PlanNode"]

# Keep the field list and BUFFER_FIELDS from drifting apart silently.
assert tuple(f.name for f in fields(Buffers)) == BUFFER_FIELDS
