"""Compare two plans of the same query: which nodes correspond, and what changed.

``explainer plan --compare A B`` and the advisor's before/after evidence both read a
:class:`PlanComparison`. Only the plan model is used here (``plan/`` stays a leaf).

Matching
--------

Two plans of one query usually share most of their shape, but an index or a setting can
swap one node for another (``Seq Scan`` -> ``Index Scan``, ``Nested Loop`` ->
``Hash Join``), add nodes (a ``Bitmap Index Scan`` under the new ``Bitmap Heap Scan``, a
``Gather``) or remove some. Nodes are paired in three passes, each only among nodes not
paired yet:

1. **By path.** The nodes at the same path (``"0.1.0"``) are paired when they have the
   same node type and the same relation (and the same alias when both have one, so the
   two sides of a self-join are not crossed). This pairs everything an unchanged plan
   holds, whatever changed elsewhere.
2. **Relations.** A node that reads a relation can only pair with a node reading the
   same relation: that is the strongest evidence that two nodes do the same work. Among
   those, the pairs with the best :func:`similarity` are taken first (same alias, same
   kind of node, same index, the same position in the tree, paired parents).
3. **Everything else** (joins, aggregates, sorts, hashes...) pairs with a node of the same
   type or the same family (any join with any join, Sort with Incremental Sort...), but
   only with evidence: same path, paired parents, a paired child, or the same number of
   rows in all (within 1%, more than one row: a step of one query keeps its row count
   however the plan computes it). This pass repeats while it finds pairs, so a join whose
   scans were paired in pass 2 is paired, and then its parent.

Whatever is left is *removed* (only in the first plan) or *added* (only in the second).

Explaining node
---------------

Exclusive times add up to the root's time (see :mod:`explainer.plan.parse`), so the
change of the plan's node time is the sum of the per-node changes of exclusive time:
paired nodes contribute ``after - before``, removed nodes ``-before``, added nodes
``+after``. The *explaining* change is the one that moved furthest in the direction of
the total (the scan that went from 80 ms to 0.1 ms when the query got faster); its
``share`` of the total says how much of the difference it accounts for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from explainer.plan.model import Buffers, Plan, PlanNode

MatchedBy = Literal["path", "similarity"]
ChangeKind = Literal["matched", "removed", "added"]

#: Node types that do the same job in different ways: a change inside a family is a plan
#: change of the same node, not a different node.
_FAMILIES: dict[str, str] = {
    "Nested Loop": "join",
    "Hash Join": "join",
    "Merge Join": "join",
    "Aggregate": "aggregate",
    "Group": "aggregate",
    "Sort": "sort",
    "Incremental Sort": "sort",
    "Gather": "gather",
    "Gather Merge": "gather",
    "Append": "append",
    "Merge Append": "append",
    "Materialize": "cache",
    "Memoize": "cache",
}

#: Below this, a change of time is measurement noise (EXPLAIN prints 0.001 ms).
_NOISE_MS = 0.0005


def family(node: PlanNode) -> str:
    """The kind of work a node does: every scan is a scan, every join a join."""
    if node.node_type in _FAMILIES:
        return _FAMILIES[node.node_type]
    if node.node_type.endswith("Scan"):
        return "scan"
    return node.node_type


def operation(node: PlanNode) -> tuple[str, str | None, str | None, bool, str | None]:
    """What a node does, as far as a change of it is a change of plan.

    Node type, join type, aggregate/SetOp strategy, parallel awareness and scan direction:
    ``GroupAggregate`` -> ``HashAggregate`` or ``Hash Join`` -> ``Hash Left Join`` are
    changes of operation even though the JSON node type stays the same.
    """
    strategy = node.raw.get("Strategy")
    direction = node.raw.get("Scan Direction")
    return (
        node.node_type,
        node.join_type,
        strategy if isinstance(strategy, str) else None,
        node.parallel_aware,
        direction if isinstance(direction, str) and direction != "Forward" else None,
    )


@dataclass(frozen=True, slots=True)
class NodeChange:
    """One node of either plan and what became of it.

    ``before`` and ``after`` are both set for a matched pair; only ``before`` for a node
    the second plan no longer has (*removed*), only ``after`` for a new one (*added*).
    Figures of a missing side count as 0, so the changes add up to the plan's change.
    """

    before: PlanNode | None
    after: PlanNode | None
    matched_by: MatchedBy | None = None

    @property
    def kind(self) -> ChangeKind:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "matched"

    @property
    def node(self) -> PlanNode:
        """The node to name the change by: the first plan's, or the added one."""
        node = self.before or self.after
        assert node is not None  # a change always has one side
        return node

    @property
    def exclusive_before_ms(self) -> float:
        return self.before.exclusive_ms if self.before is not None else 0.0

    @property
    def exclusive_after_ms(self) -> float:
        return self.after.exclusive_ms if self.after is not None else 0.0

    @property
    def exclusive_change_ms(self) -> float:
        """After minus before: negative when the node got faster (or went away)."""
        return self.exclusive_after_ms - self.exclusive_before_ms

    @property
    def inclusive_before_ms(self) -> float:
        return self.before.inclusive_ms if self.before is not None else 0.0

    @property
    def inclusive_after_ms(self) -> float:
        return self.after.inclusive_ms if self.after is not None else 0.0

    @property
    def inclusive_change_ms(self) -> float:
        return self.inclusive_after_ms - self.inclusive_before_ms

    @property
    def operation_changed(self) -> bool:
        """True when a matched node does its work differently (Seq Scan -> Index Scan)."""
        if self.before is None or self.after is None:
            return False
        return (
            operation(self.before) != operation(self.after)
            or self.before.index_name != self.after.index_name
        )

    @property
    def rows_changed(self) -> bool:
        """True when a matched node produced a different number of rows in all."""
        if self.before is None or self.after is None:
            return False
        return self.before.total_rows != self.after.total_rows

    @property
    def exclusive_buffers_before(self) -> Buffers:
        return self.before.exclusive_buffers if self.before is not None else Buffers()

    @property
    def exclusive_buffers_after(self) -> Buffers:
        return self.after.exclusive_buffers if self.after is not None else Buffers()


@dataclass(slots=True)
class PlanComparison:
    """Two plans of one query, their nodes paired (see the module docstring)."""

    before: Plan
    after: Plan
    #: Matched pairs and removed nodes in the first plan's order, then added nodes in the
    #: second plan's order.
    changes: list[NodeChange] = field(default_factory=list)

    @property
    def matched(self) -> list[NodeChange]:
        return [c for c in self.changes if c.kind == "matched"]

    @property
    def removed(self) -> list[NodeChange]:
        return [c for c in self.changes if c.kind == "removed"]

    @property
    def added(self) -> list[NodeChange]:
        return [c for c in self.changes if c.kind == "added"]

    @property
    def operation_changes(self) -> list[NodeChange]:
        """Matched nodes that changed how they work (the plan changes a reader looks for)."""
        return [c for c in self.matched if c.operation_changed]

    @property
    def has_timing(self) -> bool:
        """Whether both plans have node times, so time changes mean anything."""
        return self.before.has_timing and self.after.has_timing

    @property
    def before_ms(self) -> float | None:
        """Wall time of the first plan (``Execution Time``, else its root's time)."""
        return self.before.total_ms

    @property
    def after_ms(self) -> float | None:
        return self.after.total_ms

    @property
    def change_ms(self) -> float | None:
        if self.before_ms is None or self.after_ms is None:
            return None
        return self.after_ms - self.before_ms

    @property
    def speedup(self) -> float | None:
        """before / after: 2.0 means twice as fast; None when a time is unknown or 0."""
        if not self.before_ms or not self.after_ms:
            return None
        return self.before_ms / self.after_ms

    @property
    def node_change_ms(self) -> float:
        """The change of the time spent in nodes: the sum of every exclusive-time change
        (execution time also holds triggers and the executor's own start and end)."""
        return sum(c.exclusive_change_ms for c in self.changes)

    @property
    def related(self) -> bool:
        """Whether the plans look like plans of one query.

        They must share a relation read by a matched node; plans that read no relation at
        all (``SELECT 1``, function scans only) only need their roots to match.
        """
        if any(c.before is not None and c.before.relation for c in self.matched):
            return True
        reads = any(n.relation for n in self.before.walk()) or any(
            n.relation for n in self.after.walk()
        )
        return not reads and any(c.before is self.before.root for c in self.matched)

    @property
    def explaining(self) -> NodeChange | None:
        """The change that accounts for most of the node-time difference, or None when
        the plans have no timing or their node time did not change."""
        if not self.has_timing:
            return None
        total = self.node_change_ms
        if abs(total) <= _NOISE_MS:
            return None
        sign = 1.0 if total > 0 else -1.0
        best = max(self.changes, key=lambda c: sign * c.exclusive_change_ms)
        if sign * best.exclusive_change_ms <= _NOISE_MS:
            return None
        return best

    @property
    def explained_share(self) -> float | None:
        """The explaining change's part of the node-time difference (0.99 = 99%)."""
        best = self.explaining
        if best is None:
            return None
        return best.exclusive_change_ms / self.node_change_ms


def compare_plans(before: Plan, after: Plan) -> PlanComparison:
    """Pair the nodes of two plans of one query (see the module docstring for how).

    Always returns a comparison; check :attr:`PlanComparison.related` before presenting
    it as the same query's plans.
    """
    before_nodes = list(before.walk())
    after_nodes = list(after.walk())
    pairs: dict[int, int] = {}  # id(before node) -> id(after node)
    paired_after: set[int] = set()

    def pair(a: PlanNode, b: PlanNode) -> None:
        pairs[id(a)] = id(b)
        paired_after.add(id(b))

    how: dict[int, MatchedBy] = {}

    # Pass 1: same path, same type and relation.
    after_by_path = {n.path: n for n in after_nodes}
    for a in before_nodes:
        b = after_by_path.get(a.path)
        if b is not None and _same_node(a, b):
            pair(a, b)
            how[id(a)] = "path"

    before_parent = _parents(before.root)
    after_parent = _parents(after.root)

    def take_best(candidates: list[tuple[float, int, int, PlanNode, PlanNode]]) -> int:
        candidates.sort(key=lambda item: (-item[0], item[1], item[2]))
        taken = 0
        for _, _, _, a, b in candidates:
            if id(a) in pairs or id(b) in paired_after:
                continue
            pair(a, b)
            how[id(a)] = "similarity"
            taken += 1
        return taken

    # Pass 2: nodes reading a relation, with nodes reading the same relation.
    order_a = {id(n): i for i, n in enumerate(before_nodes)}
    order_b = {id(n): i for i, n in enumerate(after_nodes)}
    by_relation: dict[str, list[PlanNode]] = {}
    for b in after_nodes:
        if b.relation and id(b) not in paired_after:
            by_relation.setdefault(b.relation, []).append(b)
    candidates: list[tuple[float, int, int, PlanNode, PlanNode]] = []
    for a in before_nodes:
        if not a.relation or id(a) in pairs:
            continue
        for b in by_relation.get(a.relation, []):
            score = similarity(a, b, before_parent, after_parent, pairs)
            candidates.append((score, order_a[id(a)], order_b[id(b)], a, b))
    take_best(candidates)

    # Pass 3: the other nodes, with evidence from the tree; repeat while it pairs.
    while True:
        by_family: dict[str, list[PlanNode]] = {}
        for b in after_nodes:
            if not b.relation and id(b) not in paired_after:
                by_family.setdefault(family(b), []).append(b)
        candidates = []
        for a in before_nodes:
            if a.relation or id(a) in pairs:
                continue
            for b in by_family.get(family(a), []):
                if not _placed_alike(a, b, before_parent, after_parent, pairs):
                    continue
                score = similarity(a, b, before_parent, after_parent, pairs)
                candidates.append((score, order_a[id(a)], order_b[id(b)], a, b))
        if not take_best(candidates):
            break

    after_by_id = {id(n): n for n in after_nodes}
    changes: list[NodeChange] = []
    for a in before_nodes:
        matched = pairs.get(id(a))
        if matched is None:
            changes.append(NodeChange(a, None))
        else:
            changes.append(NodeChange(a, after_by_id[matched], how[id(a)]))
    changes.extend(NodeChange(None, b) for b in after_nodes if id(b) not in paired_after)
    return PlanComparison(before=before, after=after, changes=changes)


def _same_node(a: PlanNode, b: PlanNode) -> bool:
    if a.node_type != b.node_type or a.relation != b.relation:
        return False
    return a.alias is None or b.alias is None or a.alias == b.alias


def _parents(root: PlanNode) -> dict[int, PlanNode]:
    parents: dict[int, PlanNode] = {}
    for node in root.walk():
        for child in node.children:
            parents[id(child)] = node
    return parents


def _parents_paired(
    a: PlanNode,
    b: PlanNode,
    before_parent: dict[int, PlanNode],
    after_parent: dict[int, PlanNode],
    pairs: dict[int, int],
) -> bool:
    pa, pb = before_parent.get(id(a)), after_parent.get(id(b))
    return pa is not None and pb is not None and pairs.get(id(pa)) == id(pb)


def _children_paired(a: PlanNode, b: PlanNode, pairs: dict[int, int]) -> bool:
    after_children = {id(c) for c in b.children}
    return any(pairs.get(id(c)) in after_children for c in a.children)


def _placed_alike(
    a: PlanNode,
    b: PlanNode,
    before_parent: dict[int, PlanNode],
    after_parent: dict[int, PlanNode],
    pairs: dict[int, int],
) -> bool:
    """Evidence from the tree that two relation-less nodes are the same step."""
    return (
        a.path == b.path
        or _parents_paired(a, b, before_parent, after_parent, pairs)
        or _children_paired(a, b, pairs)
        or _same_rows(a, b)
    )


def _same_rows(a: PlanNode, b: PlanNode) -> bool:
    """Both produced the same number of rows (within 1%, more than one): one query's
    steps keep their row counts whatever way the plan computes them."""
    ra, rb = a.total_rows, b.total_rows
    if ra is None or rb is None or min(ra, rb) < 2:
        return False
    return abs(ra - rb) <= 0.01 * max(ra, rb)


def similarity(
    a: PlanNode,
    b: PlanNode,
    before_parent: dict[int, PlanNode],
    after_parent: dict[int, PlanNode],
    pairs: dict[int, int],
) -> float:
    """How alike two nodes are, by what they read and where they sit (higher is closer).

    The weights rank what identifies a node: the relation (checked by the caller), then
    its alias (one side of a self-join), the kind of node, its index, its place in the
    tree, its row count. Only their order matters; a pair with a higher score is taken
    first.
    """
    score = 0.0
    if a.alias is not None and b.alias is not None:
        score += 4.0 if a.alias == b.alias else -4.0
    if a.node_type == b.node_type:
        score += 3.0
    elif family(a) == family(b):
        score += 1.5
    if a.index_name is not None and a.index_name == b.index_name:
        score += 1.0
    if a.subplan_name is not None and a.subplan_name == b.subplan_name:
        score += 1.0
    if a.cte_name is not None and a.cte_name == b.cte_name:
        score += 1.0
    if a.path == b.path:
        score += 2.0
    elif a.depth == b.depth:
        score += 0.5
    if _parents_paired(a, b, before_parent, after_parent, pairs):
        score += 2.0
    if _children_paired(a, b, pairs):
        score += 1.0
    if _same_rows(a, b):
        score += 1.5
    if a.parent_relationship == b.parent_relationship:
        score += 0.5
    return score


def changed_nodes(comparison: PlanComparison) -> Iterable[NodeChange]:
    """Changes worth showing: operation changes, added and removed nodes, and matched
    nodes whose time or rows moved, largest time change first."""
    shown = [
        c
        for c in comparison.changes
        if c.kind != "matched"
        or c.operation_changed
        or c.rows_changed
        or abs(c.exclusive_change_ms) > _NOISE_MS
    ]
    return sorted(shown, key=lambda c: -abs(c.exclusive_change_ms))


__all__ = [
    "ChangeKind",
    "MatchedBy",
    "NodeChange",
    "PlanComparison",
    "changed_nodes",
    "compare_plans",
    "family",
    "operation",
    "similarity",
]
