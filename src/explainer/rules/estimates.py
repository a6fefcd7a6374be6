"""``row-misestimate``: the planner's row estimate is off by 10x or more where it matters.

A wrong row count is rarely slow by itself; it is slow because the planner chose a strategy
for the wrong size: a nested loop for "1 row" that turned out to be 30,000, a hash table
sized for 200 groups that spilled. So the rule reports 10x errors on the nodes whose
estimate fed such a choice (an input of a join, of a Sort or a Hash, a hash aggregate's own
group count), and, at low severity, any node off by 100x (where pev2 and explain.depesz.com
paint the row count red).

Rows are compared per loop, as the planner estimates them, with both sides below one row
counted as one (a "rows=1" estimate for an empty result is not wrong). Over-estimates are
ignored where the executor legitimately stopped early: below a Limit (down to the first node
that reads its whole input: Sort, Hash, plain or hashed Aggregate), on the inner side of a
semi/anti nested loop, in a SubPlan that is not hashed (EXISTS, IN and ALL stop at the
first decisive row), on both sides of a merge join, on the outer side of a hash join whose
hash table came out empty, and in a CTE read only by such scans.
"""

from __future__ import annotations

from collections.abc import Iterator

from explainer.plan import Plan, PlanNode
from explainer.plan.labels import short_label
from explainer.rules.model import Finding, RuleContext, Severity, severity_for_share, table_name
from explainer.rules.node_common import JOIN_TYPES, executed_nodes, share_of_query

RULE_ID = "row-misestimate"

#: Factor that changes a strategy decision when the node feeds one.
STRATEGY_FACTOR = 10.0
#: Factor reported anywhere (pev2's and depesz's red).
ANYWHERE_FACTOR = 100.0
#: Estimated and actual rows (over all loops) must differ by at least this many rows.
MIN_ROW_DIFFERENCE = 100.0

#: An input estimated within this factor counts as right when judging who made an error.
INPUT_NOISE = 2.0

#: Nodes that hand their input through unchanged; an estimate is judged below them.
PASS_THROUGH = frozenset({"Hash", "Materialize", "Memoize", "Gather", "Gather Merge"})
#: Nodes that read their whole input before returning a row: an early stop above them does
#: not reach their input.
_BLOCKING_TYPES = frozenset({"Sort", "Hash"})


def _blocking(node: PlanNode) -> bool:
    if node.node_type in _BLOCKING_TYPES:
        return True
    return node.node_type in ("Aggregate", "SetOp") and node.raw.get("Strategy") in (
        "Plain",
        "Hashed",
        None,
    )


def _hashed_subplans(node: PlanNode) -> set[str]:
    names: set[str] = set()
    texts = [node.filter, node.join_filter, node.index_cond, node.recheck_cond, node.hash_cond]
    output = node.raw.get("Output")
    if isinstance(output, list):
        texts.extend(str(item) for item in output)
    for text in texts:
        if not text:
            continue
        start = 0
        while (pos := text.find("hashed SubPlan ", start)) >= 0:
            start = pos + len("hashed SubPlan ")
            digits = ""
            while start < len(text) and text[start].isdigit():
                digits += text[start]
                start += 1
            if digits:
                names.add(f"SubPlan {digits}")
    return names


def cut_short_paths(plan: Plan) -> set[str]:
    """Paths of nodes whose actual rows may be fewer than a full run would produce."""
    cut: set[str] = set()

    def mark(node: PlanNode, short: bool) -> None:
        if short:
            cut.add(node.path)
        child_short = short and not _blocking(node)
        hashed = _hashed_subplans(node)
        for index, child in enumerate(node.children):
            rel = child.parent_relationship
            if rel == "InitPlan":
                # A CTE is judged by its scans (below); any other InitPlan may be an
                # uncorrelated EXISTS, which stops at its first row.
                flag = not (child.subplan_name or "").startswith("CTE ")
            elif rel == "SubPlan":
                flag = child_short or child.subplan_name not in hashed
            else:
                flag = child_short or _stops_child_early(node, index)
            mark(child, flag)

    mark(plan.root, False)
    # A CTE runs as its scans pull rows: if every scan of it stopped early, so did the CTE.
    changed = True
    while changed:
        changed = False
        for node in plan.walk():
            name = node.subplan_name or ""
            if not name.startswith("CTE ") or node.path in cut:
                continue
            scans = [n for n in plan.walk() if n.node_type == "CTE Scan" and n.cte_name == name[4:]]
            if scans and all(s.path in cut for s in scans if (s.actual_loops or 0) > 0):
                before = len(cut)
                mark(node, True)
                changed = len(cut) != before
    return cut


def _stops_child_early(node: PlanNode, index: int) -> bool:
    """Whether ``node`` may stop reading its ``index``-th child before the child is done."""
    if node.node_type in ("Limit", "Merge Join"):
        return True
    if node.node_type == "Nested Loop" and index == 1:
        return (node.join_type or node.raw.get("Join Type")) in ("Semi", "Anti")
    return node.node_type == "Hash Join" and index == 0 and _empty_hash(node)


def _empty_hash(join: PlanNode) -> bool:
    if len(join.children) < 2:
        return False
    inner = join.children[1]
    return inner.node_type == "Hash" and inner.total_rows == 0


def _pass_through(node: PlanNode) -> bool:
    if node.node_type in PASS_THROUGH:
        return True
    return node.node_type in ("Subquery Scan", "Result") and not node.filter


def _consumer(plan: Plan, node: PlanNode) -> PlanNode | None:
    """The node whose strategy was chosen from this node's estimate, if any."""
    if _pass_through(node):
        return None
    if node.node_type in ("Aggregate", "SetOp") and node.raw.get("Strategy") in (
        "Hashed",
        "Mixed",
    ):
        return node
    if node.parent_relationship in ("InitPlan", "SubPlan"):
        return None
    parent = plan.parent(node)
    while parent is not None and _pass_through(parent):
        parent = plan.parent(parent)
    if parent is not None and (
        parent.node_type in JOIN_TYPES or parent.node_type in ("Sort", "Incremental Sort")
    ):
        return parent
    return None


def _inherited(node: PlanNode, factor: float) -> bool:
    """Whether the node's error was made below it and only passed on (it is reported there).

    A node's output estimate is built from its inputs' estimates (a join's is roughly
    outer x inner x selectivity), so the error the node adds itself is its factor divided by
    the product of its inputs' factors. Errors compound up a plan: without this, one bad
    estimate at a leaf is reported again at every join above it.
    """
    inherited = 1.0
    for child in node.children:
        if child.parent_relationship in ("InitPlan", "SubPlan") or not child.actual_loops:
            continue
        child_factor = _factor(child)
        # An input off by less than 2x is estimated about right: the error starts here.
        if child_factor is not None and max(child_factor, 1 / child_factor) >= INPUT_NOISE:
            inherited *= child_factor
    if inherited == 1.0:
        return False
    own = factor / inherited
    return max(own, 1 / own) < STRATEGY_FACTOR


#: Bitmap nodes hand a bitmap up, not rows: BitmapAnd/BitmapOr always show 0 actual rows.
#: ModifyTable returns rows only with RETURNING (0 otherwise), and no plan choice is made
#: from its estimate.
_NO_ROW_COUNT = frozenset({"BitmapAnd", "BitmapOr", "ModifyTable"})


def _factor(node: PlanNode) -> float | None:
    """Per-loop actual / estimated rows, both sides at least one; None without estimates."""
    if node.node_type in _NO_ROW_COUNT or node.actual_rows is None:
        return None
    if node.raw and "Plan Rows" not in node.raw:
        return None
    return max(node.actual_rows, 1.0) / max(node.plan_rows, 1.0)


def check(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    cut: set[str] | None = None
    reported: list[str] = []
    # Children before parents, so that an error is reported where it was made and the
    # nodes above that only pass it on can see it was.
    for node in reversed(list(executed_nodes(plan))):
        factor = _factor(node)
        if factor is None:
            continue
        magnitude = max(factor, 1 / factor)
        loops = node.actual_loops or 0.0
        difference = abs((node.actual_rows or 0.0) - node.plan_rows) * loops
        if magnitude < STRATEGY_FACTOR or difference < MIN_ROW_DIFFERENCE:
            continue
        under = factor > 1
        if not under:
            if cut is None:
                cut = cut_short_paths(plan)
            # Nothing stops a node before its first row: one that returned none ran to
            # the end, and its estimate was simply wrong.
            if node.path in cut and (node.actual_rows or 0.0) > 0:
                continue
        consumer = _consumer(plan, node)
        if _inherited(node, factor):
            # Errors of a few x each compound up a plan: when no node below made a 10x
            # error itself, the first node whose (100x) estimate fed a plan choice is
            # where the error shows, and it is reported there.
            below = node.path + "."
            if consumer is None or magnitude < ANYWHERE_FACTOR:
                continue
            if any(path.startswith(below) for path in reported):
                continue
        elif consumer is None and magnitude < ANYWHERE_FACTOR:
            continue
        reported.append(node.path)
        yield _finding(plan, node, consumer, magnitude, under)


def _finding(
    plan: Plan, node: PlanNode, consumer: PlanNode | None, magnitude: float, under: bool
) -> Finding:
    loops = node.actual_loops or 0.0
    planned = node.plan_rows
    actual = node.actual_rows or 0.0
    direction = "under" if under else "over"
    per_loop = " per loop" if loops > 1 else ""
    rows = f"estimated {planned:,.0f} rows{per_loop}, got {actual:,.0f}"
    advice = (
        "ANALYZE the tables below it; for correlated filters on several columns "
        "CREATE STATISTICS (dependencies, ndistinct, mcv); for skewed columns raise the "
        "column's statistics target"
    )
    if consumer is not None:
        saved = consumer.exclusive_ms
        if consumer.node_type == "Nested Loop" and len(consumer.children) > 1:
            saved += consumer.children[1].inclusive_ms
        share = share_of_query(plan, saved)
        severity = severity_for_share(share)
        what = (
            "its own hash table"
            if consumer is node
            else f"the {short_label(consumer)} above it ({consumer.path})"
        )
        message = (
            f"{short_label(node)} {rows} ({magnitude:,.0f}x {direction}-estimate), and "
            f"{what} was planned for that size: {advice}"
        )
    else:
        saved = 0.0
        share = 0.0
        severity = Severity.LOW
        message = f"{short_label(node)} {rows} ({magnitude:,.0f}x {direction}-estimate): {advice}"
    return Finding(
        rule=RULE_ID,
        severity=severity,
        message=message,
        node_path=node.path,
        table=table_name(node),
        potential_ms=saved,
        details={
            "plan_rows": planned,
            "actual_rows": actual,
            "loops": loops,
            "factor": magnitude,
            "direction": direction,
            "consumer_path": consumer.path if consumer is not None else None,
            "consumer_node": consumer.node_type if consumer is not None else None,
            "time_ms": saved,
            "share_of_total": share,
        },
    )
