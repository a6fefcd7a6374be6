"""Read EXPLAIN (FORMAT JSON) output into a :class:`~explainer.plan.model.Plan`.

The work is split in three steps so that other input formats can be added beside this one:

1. :func:`parse_json_plan` turns the input (text, bytes or already-decoded JSON) into the
   JSON document PostgreSQL produced. A text/YAML/XML reader only has to produce the same
   JSON-shaped dict (as pev2 does) and hand it to step 2.
2. :func:`plan_from_document` builds the typed tree from that dict, checking the shape.
3. :func:`compute_metrics` derives the wall-time and buffer figures from the tree. It is
   public so a hand-built tree can get the same figures.

Timing rules implemented by :func:`compute_metrics`
---------------------------------------------------

PostgreSQL prints ``Actual Total Time`` and ``Actual Rows`` as averages per loop, and, under a
Gather, summed over every process that ran the node (loops count the processes too).

*Inclusive time* (``inclusive_ms``): ``actual_total_ms * actual_loops / processes``.
``processes`` is 1 outside a parallel section. For the descendants of a Gather / Gather Merge
it is ``Workers Launched + 1`` (the leader takes part by default), the rule pev2 and depesz
use: the figure is then the node's share of the wall time, so it adds up along the tree.
It is 1 under a ``Single Copy`` Gather (one process runs the child), and ``Workers
Launched`` alone when the leader did not run the parallel part: ``parallel_leader_participation
= off`` in Settings, or the Gather's child shows exactly ``Workers Launched`` loops per Gather
loop. The count flows down
through ordinary children and SubPlans (a SubPlan runs in whichever process evaluates its
parent) but not into InitPlans or CTEs, which the leader runs once. The Gather itself runs
in the leader only, so its own figures are not divided. Never-executed nodes (loops 0) and
every node of a plan without ANALYZE (or with TIMING OFF) get 0.

A node's inclusive time is never less than the time of the children that ran inside it:
when they add up to more, its inclusive time is raised to their sum. Two things cause it.
PostgreSQL prints per-loop times rounded to 0.001 ms, so ``actual_total_ms * loops`` can be
off by ``0.0005 * loops`` (a Materialize rescanned 518 times at "0.088" ms may really have
taken 45.84 ms, not 45.584). And a Gather is timed until its workers have shut down, which
some versions record after the parent stopped its own clock (corpus plan 06: a Gather at
486.428 ms under an Aggregate at 484.970 ms). Either way the children's figure is the
better one for the node, and raising it keeps the sum of exclusive times equal to the
root's inclusive time on every plan. ``raw["Actual Total Time"]`` keeps the printed figure.

*Exclusive time* (``exclusive_ms``): inclusive time minus the inclusive time of the nodes
whose work happened inside it; each node's time is subtracted from exactly one node, so
that the exclusive times add up to the root's inclusive time:

- ordinary children (Outer, Inner, Member, Subquery...) and SubPlans (evaluated by the
  parent's own expressions, once per row) are subtracted from the parent;
- an InitPlan runs once, lazily, inside whichever node first needs its value, and that can
  be a descendant of the node it hangs under (``Index Cond: (id = $0)`` on a scan deep
  down). So it is subtracted from the node that uses it: the Gather it hangs under (the
  leader evaluates it before starting workers); else the first node, parent first then
  pre-order, whose expressions mention its output (``$0``, ``(InitPlan 1).col1``) and whose
  remaining exclusive time can hold it; else the mentioning node with the most remaining
  time; else the parent. (pev2's "fixInitPlanUsageDuration" searches the same way but
  charges every mentioning node, which double counts when several use the value.)
- a CTE (``Subplan Name`` "CTE x") runs lazily as its CTE Scans pull rows, so its time is
  already inside those scans' inclusive times, not its parent's: it is subtracted from the
  CTE Scans of that name under the same parent, taking from the scan with the most
  remaining time first, each down to 0. One scan usually drives the CTE and the others
  read the stored rows, so this leaves the cheap scans their own small time, where pev2's
  proportional split would smear the CTE over all of them. Any part no scan can hold (a
  writable CTE finished after the main query) stays with the CTE alone.

InitPlans are placed before CTEs because their location is known, while a CTE's can move.
Exclusive times are clamped at 0 (an InitPlan or CTE whose consumer cannot hold its time).

*Exclusive buffers* follow the same attribution (same consumers, same CTE scan order), field
by field, clamped at 0. Buffers are counts summed over loops and processes, never divided.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from explainer.errors import PlanParseError
from explainer.plan.model import BUFFER_FIELDS, Buffers, Plan, PlanNode

_NOT_A_PLAN = "not a PostgreSQL JSON plan"
_SHAPE_HINT = "expected a list with an object holding 'Plan'"

#: JSON key of each Buffers field.
_BUFFER_KEYS: dict[str, str] = {
    name: name.replace("_", " ").title() + " Blocks" for name in BUFFER_FIELDS
}

_GATHER_TYPES = frozenset({"Gather", "Gather Merge"})

# How a child relates to its parent for time attribution.
_CHILD, _SUBPLAN, _INITPLAN, _CTE = "child", "subplan", "initplan", "cte"


# --------------------------------------------------------------------------------------
# Step 1: input -> JSON document


def parse_json_plan(source: str | bytes | list[Any] | dict[str, Any]) -> Plan:
    """Parse EXPLAIN (FORMAT JSON) output: the list PostgreSQL returns, its single object,
    or the JSON text of either (a bare node object is taken as the inside of "Plan").
    Raises :class:`PlanParseError` for anything else."""
    if isinstance(source, bytes | bytearray):
        try:
            source = bytes(source).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PlanParseError(f"{_NOT_A_PLAN}: input is not UTF-8 text ({exc.reason})") from exc
    value: Any = _load_json_text(source) if isinstance(source, str) else source
    return plan_from_document(_unwrap_document(value))


def _load_json_text(text: str) -> Any:
    stripped = text.strip().lstrip("\ufeff").strip()
    if not stripped:
        raise PlanParseError(f"{_NOT_A_PLAN}: the input is empty")
    if stripped[0] not in "[{":
        first_line = stripped.splitlines()[0].strip()
        if len(first_line) > 40:
            first_line = first_line[:37] + "..."
        raise PlanParseError(
            f"{_NOT_A_PLAN}: input starts with {first_line!r}, not '[' or '{{' "
            "(run EXPLAIN with FORMAT JSON)"
        )
    try:
        return json.loads(stripped, object_pairs_hook=_merge_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise PlanParseError(
            f"{_NOT_A_PLAN}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise PlanParseError(f"{_NOT_A_PLAN}: JSON nested too deeply") from exc
    except ValueError as exc:  # not a syntax error: int() refuses a number of 4300+ digits
        raise PlanParseError(f"{_NOT_A_PLAN}: the JSON holds a number too long to read") from exc


def _merge_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Keep both halves of a key PostgreSQL printed twice.

    Some server versions emit "Workers" twice on one node under VERBOSE (once with sort
    details, once with timings); plain ``json.loads`` would silently keep only the last.
    Lists of objects are merged element by element, objects key by key; otherwise the last
    value wins, as in standard JSON parsing.
    """
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key not in result:
            result[key] = value
            continue
        old = result[key]
        if isinstance(old, dict) and isinstance(value, dict):
            result[key] = {**old, **value}
        elif isinstance(old, list) and isinstance(value, list):
            merged: list[Any] = []
            for i in range(max(len(old), len(value))):
                a = old[i] if i < len(old) else None
                b = value[i] if i < len(value) else None
                if isinstance(a, dict) and isinstance(b, dict):
                    merged.append({**a, **b})
                else:
                    merged.append(b if b is not None else a)
            result[key] = merged
        else:
            result[key] = value
    return result


def _unwrap_document(value: Any) -> dict[str, Any]:
    """The object holding "Plan", from either the list PostgreSQL returns or the object."""
    if isinstance(value, list):
        if not value:
            raise PlanParseError(f"{_NOT_A_PLAN}: {_SHAPE_HINT} (got an empty list)")
        value = value[0]
        if not isinstance(value, dict):
            raise PlanParseError(
                f"{_NOT_A_PLAN}: {_SHAPE_HINT} (got a list of {_json_type(value)})"
            )
    if not isinstance(value, dict):
        raise PlanParseError(f"{_NOT_A_PLAN}: {_SHAPE_HINT} (got {_json_type(value)})")
    if "Plan" not in value:
        if "Node Type" in value:
            # A bare node object (the inside of "Plan"), e.g. copied from a larger document.
            return {"Plan": value}
        keys = ", ".join(repr(k) for k in list(value)[:5]) or "no keys"
        raise PlanParseError(f"{_NOT_A_PLAN}: {_SHAPE_HINT} (got an object with {keys})")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


# --------------------------------------------------------------------------------------
# Step 2: JSON document -> typed tree


def plan_from_document(document: dict[str, Any]) -> Plan:
    """Build a :class:`Plan` from the object holding "Plan" and compute its metrics."""
    root_obj = document.get("Plan")
    if not isinstance(root_obj, dict):
        raise PlanParseError(f"{_NOT_A_PLAN}: 'Plan' is {_json_type(root_obj)}, not an object")
    root = _build_tree(root_obj)
    analyzed = any(k in root_obj for k in ("Actual Loops", "Actual Rows", "Actual Total Time"))

    execution_ms = _opt_float(document, "Execution Time", "the plan")
    if execution_ms is None:  # before PostgreSQL 9.4
        execution_ms = _opt_float(document, "Total Runtime", "the plan")
    triggers = document.get("Triggers")
    settings = document.get("Settings")
    jit = document.get("JIT")
    plan = Plan(
        root=root,
        planning_ms=_opt_float(document, "Planning Time", "the plan"),
        execution_ms=execution_ms,
        analyzed=analyzed,
        triggers=[t for t in triggers if isinstance(t, dict)] if isinstance(triggers, list) else [],
        settings={str(k): _setting_text(v) for k, v in settings.items()}
        if isinstance(settings, dict)
        else {},
        jit=jit if isinstance(jit, dict) else None,
        raw={k: v for k, v in document.items() if k != "Plan"},
    )
    compute_metrics(plan)
    return plan


def _setting_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _build_tree(root_obj: dict[str, Any]) -> PlanNode:
    # Iterative, so that a very deep plan cannot hit Python's recursion limit.
    root = _build_node(root_obj, "0")
    pending: list[tuple[PlanNode, dict[str, Any]]] = [(root, root_obj)]
    while pending:
        node, obj = pending.pop()
        subplans = obj.get("Plans", [])
        if not isinstance(subplans, list):
            raise PlanParseError(
                f"{_NOT_A_PLAN}: 'Plans' of node {node.path} is {_json_type(subplans)}, not a list"
            )
        for index, child_obj in enumerate(subplans):
            path = f"{node.path}.{index}"
            if not isinstance(child_obj, dict):
                raise PlanParseError(
                    f"{_NOT_A_PLAN}: node {path} is {_json_type(child_obj)}, not an object"
                )
            child = _build_node(child_obj, path)
            node.children.append(child)
            pending.append((child, child_obj))
    return root


def _build_node(obj: dict[str, Any], path: str) -> PlanNode:
    node_type = obj.get("Node Type")
    if not isinstance(node_type, str) or not node_type:
        raise PlanParseError(f"{_NOT_A_PLAN}: node {path} has no 'Node Type'")
    where = f"node {path}"
    sort_key = obj.get("Sort Key")
    return PlanNode(
        node_type=node_type,
        path=path,
        relation=_opt_str(obj, "Relation Name"),
        schema=_opt_str(obj, "Schema"),
        alias=_opt_str(obj, "Alias"),
        index_name=_opt_str(obj, "Index Name"),
        parent_relationship=_opt_str(obj, "Parent Relationship"),
        subplan_name=_opt_str(obj, "Subplan Name"),
        startup_cost=_opt_float(obj, "Startup Cost", where) or 0.0,
        total_cost=_opt_float(obj, "Total Cost", where) or 0.0,
        plan_rows=_opt_float(obj, "Plan Rows", where) or 0.0,
        plan_width=int(_opt_float(obj, "Plan Width", where) or 0),
        actual_startup_ms=_opt_float(obj, "Actual Startup Time", where),
        actual_total_ms=_opt_float(obj, "Actual Total Time", where),
        actual_rows=_opt_float(obj, "Actual Rows", where),
        actual_loops=_opt_float(obj, "Actual Loops", where),
        filter=_opt_str(obj, "Filter"),
        index_cond=_opt_str(obj, "Index Cond"),
        recheck_cond=_opt_str(obj, "Recheck Cond"),
        join_filter=_opt_str(obj, "Join Filter"),
        hash_cond=_opt_str(obj, "Hash Cond"),
        sort_key=[str(k) for k in sort_key] if isinstance(sort_key, list) else [],
        rows_removed_by_filter=_opt_float(obj, "Rows Removed by Filter", where),
        rows_removed_by_index_recheck=_opt_float(obj, "Rows Removed by Index Recheck", where),
        workers_planned=_opt_int(obj, "Workers Planned", where),
        workers_launched=_opt_int(obj, "Workers Launched", where),
        buffers=Buffers(
            *(int(_opt_float(obj, _BUFFER_KEYS[name], where) or 0) for name in BUFFER_FIELDS)
        ),
        raw={k: v for k, v in obj.items() if k != "Plans"},
        rows_removed_by_join_filter=_opt_float(obj, "Rows Removed by Join Filter", where),
        join_type=_opt_str(obj, "Join Type"),
        operation=_opt_str(obj, "Operation"),
        cte_name=_opt_str(obj, "CTE Name"),
        parallel_aware=obj.get("Parallel Aware") is True,
        io_read_ms=_io_ms(obj, _IO_READ_KEYS, where),
        io_write_ms=_io_ms(obj, _IO_WRITE_KEYS, where),
    )


#: I/O timing keys: one pair up to PostgreSQL 16, split by buffer kind from 17 (16 has
#: "Temp I/O Read Time" beside the shared/local pair). Only one generation appears per node.
_IO_READ_KEYS = (
    "I/O Read Time",
    "Shared I/O Read Time",
    "Local I/O Read Time",
    "Temp I/O Read Time",
)
_IO_WRITE_KEYS = (
    "I/O Write Time",
    "Shared I/O Write Time",
    "Local I/O Write Time",
    "Temp I/O Write Time",
)


def _io_ms(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> float:
    return round(sum(_opt_float(obj, key, where) or 0.0 for key in keys), 6)


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _opt_float(obj: dict[str, Any], key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = float(value)
        except (ValueError, OverflowError):  # OverflowError: a JSON integer of 309+ digits
            number = math.nan
    else:
        number = math.nan
    if not math.isfinite(number):
        raise PlanParseError(f"{_NOT_A_PLAN}: {key!r} of {where} is {value!r}, not a number")
    return number


def _opt_int(obj: dict[str, Any], key: str, where: str) -> int | None:
    value = _opt_float(obj, key, where)
    return None if value is None else int(value)


# --------------------------------------------------------------------------------------
# Step 3: derived figures


def compute_metrics(plan: Plan) -> None:
    """Fill ``inclusive_ms``, ``exclusive_ms``, ``exclusive_buffers`` and
    ``parallel_processes`` on every node, following the rules in the module docstring."""
    _assign_processes(plan)
    nodes = list(plan.walk())
    for node in nodes:
        node.inclusive_ms = _inclusive_ms(node) if plan.analyzed else 0.0
    # Children first (reverse pre-order), so a raised child can raise its parent in turn.
    for node in reversed(nodes):
        _absorb_children(node)

    # Signed working values, keyed by id(node); clamped only at the end so that the
    # attribution steps can see how much time a node still has to give.
    time_left: dict[int, float] = {}
    blocks_left: dict[int, list[float]] = {}
    for node in nodes:
        t = node.inclusive_ms
        b = _work(node)
        for child in node.children:
            if _kind(child) in (_CHILD, _SUBPLAN):
                t -= child.inclusive_ms
                _subtract(b, _work(child))
        time_left[id(node)] = t
        blocks_left[id(node)] = b

    timed = any(n.inclusive_ms > 0 for n in nodes)

    def room(node: PlanNode) -> float:
        # What a node can still give: time when the plan has it, else blocks.
        if timed:
            return time_left[id(node)]
        return float(sum(max(0, v) for v in blocks_left[id(node)][: len(BUFFER_FIELDS)]))

    def need(node: PlanNode) -> float:
        return node.inclusive_ms if timed else float(node.buffers.total)

    # InitPlans first: where their time sits is known from the expressions. The parent's
    # subtree is walked once for all its InitPlans (and CTEs below), not once for each:
    # a plan with thousands of them would take minutes.
    for parent in nodes:
        initplans = [child for child in parent.children if _kind(child) == _INITPLAN]
        if not initplans:
            continue
        referring = [
            n for n in parent.walk() if any(_ANY_REFERENCE.search(t) for t in _expressions(n))
        ]
        mentions: dict[str, list[PlanNode]] = {}
        for child in initplans:
            consumer = _initplan_consumer(parent, child, room, need(child), referring, mentions)
            time_left[id(consumer)] -= child.inclusive_ms
            _subtract(blocks_left[id(consumer)], _work(child))

    # Then CTEs, into their scans, fullest scan first.
    for parent in nodes:
        ctes = [child for child in parent.children if _kind(child) == _CTE]
        if not ctes:
            continue
        scans_named: dict[str | None, list[PlanNode]] = {}
        for n in parent.walk():
            if n.node_type == "CTE Scan":
                scans_named.setdefault(n.cte_name, []).append(n)
        for child in ctes:
            own = {id(n) for n in child.walk()}
            name = (child.subplan_name or "")[4:]
            scans = [n for n in scans_named.get(name, []) if id(n) not in own]
            scans.sort(key=room, reverse=True)  # stable: pre-order among equals
            remaining = child.inclusive_ms
            for scan in scans:
                take = min(remaining, max(0.0, time_left[id(scan)]))
                time_left[id(scan)] -= take
                remaining -= take
            blocks = _work(child)
            for scan in scans:
                left = blocks_left[id(scan)]
                for i, amount in enumerate(blocks):
                    take_blocks = min(amount, max(0.0, left[i]))
                    left[i] -= take_blocks
                    blocks[i] -= take_blocks

    for node in nodes:
        node.exclusive_ms = round(max(0.0, time_left[id(node)]), 6)
        left = blocks_left[id(node)]
        node.exclusive_buffers = Buffers.from_tuple(left[: len(BUFFER_FIELDS)])
        node.exclusive_io_read_ms = round(max(0.0, left[-2]), 6)
        node.exclusive_io_write_ms = round(max(0.0, left[-1]), 6)


def _kind(node: PlanNode) -> str:
    if (node.subplan_name or "").startswith("CTE "):
        return _CTE
    if node.parent_relationship == "InitPlan":
        return _INITPLAN
    if node.parent_relationship == "SubPlan":
        return _SUBPLAN
    return _CHILD


def _assign_processes(plan: Plan) -> None:
    stack: list[tuple[PlanNode, int]] = [(plan.root, 1)]
    while stack:
        node, processes = stack.pop()
        node.parallel_processes = processes
        for child in node.children:
            kind = _kind(child)
            if kind in (_INITPLAN, _CTE):
                child_processes = 1
            elif node.node_type in _GATHER_TYPES and kind == _CHILD:
                child_processes = _gather_processes(plan, node, child)
            else:
                child_processes = processes
            stack.append((child, child_processes))


def _gather_processes(plan: Plan, gather: PlanNode, child: PlanNode) -> int:
    """How many processes ran the parallel part under ``gather`` (see the module docstring)."""
    if gather.raw.get("Single Copy") is True:
        return 1
    workers = gather.workers_launched
    if workers is None:  # no ANALYZE: nothing is divided anyway
        workers = gather.workers_planned or 0
    if workers <= 0:
        return 1
    if plan.settings.get("parallel_leader_participation", "").lower() == "off":
        return workers
    if (
        gather.actual_loops
        and child.actual_loops is not None
        and child.actual_loops == gather.actual_loops * workers
    ):
        return workers  # the leader never ran the child: its loops are the workers' only
    return workers + 1


def _inclusive_ms(node: PlanNode) -> float:
    if node.actual_total_ms is None or not node.actual_loops:
        return 0.0
    return round(node.actual_total_ms * node.actual_loops / node.parallel_processes, 6)


def _absorb_children(node: PlanNode) -> None:
    """Raise a node's inclusive time to the sum of its children's when they show more.

    The reasons (per-loop rounding, Gather shutdown timed after the parent) are in the
    module docstring; in both the children's sum is the better figure for the node.
    """
    if node.actual_total_ms is None or not node.actual_loops:
        return
    children_ms = sum(c.inclusive_ms for c in node.children if _kind(c) in (_CHILD, _SUBPLAN))
    if children_ms > node.inclusive_ms:
        node.inclusive_ms = round(children_ms, 6)


def _work(node: PlanNode) -> list[float]:
    """The node's buffer counters followed by its I/O read and write times: the figures
    that are attributed to nodes the same way (children, InitPlan consumers, CTE scans)."""
    return [*node.buffers.as_tuple(), node.io_read_ms, node.io_write_ms]


def _subtract(into: list[float], values: list[float]) -> None:
    for i, value in enumerate(values):
        into[i] -= value


_RETURNS = re.compile(r"\(returns\s+([^)]*)\)")
_INITPLAN_NUMBER = re.compile(r"^InitPlan\s+(\d+)")
#: What every pattern of :func:`_initplan_reference` needs: ``$n`` or ``InitPlan n``.
_ANY_REFERENCE = re.compile(r"\$\d|\bInitPlan \d")
_NOT_EXPRESSIONS = frozenset(
    {
        "Node Type",
        "Parent Relationship",
        "Subplan Name",
        "Remote SQL",
        "Relation Name",
        "Schema",
        "Alias",
        "Index Name",
        "CTE Name",
        "Function Name",
    }
)


def _initplan_consumer(
    parent: PlanNode,
    initplan: PlanNode,
    room: Callable[[PlanNode], float],
    need: float,
    referring: list[PlanNode],
    mentions: dict[str, list[PlanNode]],
) -> PlanNode:
    """The node whose own time holds the InitPlan's (rules in the module docstring).

    ``referring``: the nodes under ``parent``, in pre-order, that mention any parameter or
    InitPlan (:data:`_ANY_REFERENCE`); the candidates are among them. ``mentions`` caches,
    per reference pattern, the nodes that match it (InitPlans of one name share it)."""
    if parent.node_type in _GATHER_TYPES:
        return parent
    pattern = _initplan_reference(initplan.subplan_name)
    if pattern is None:
        return parent
    own = {id(n) for n in initplan.walk()}
    if pattern.pattern not in mentions:
        mentions[pattern.pattern] = [
            n for n in referring if any(pattern.search(text) for text in _expressions(n))
        ]
    tolerance = max(0.005, 0.01 * need)
    fullest: PlanNode | None = None  # the first of those with the most room
    for candidate in mentions[pattern.pattern]:
        if id(candidate) in own:
            continue
        if room(candidate) >= need - tolerance:
            return candidate
        if fullest is None or room(candidate) > room(fullest):
            fullest = candidate
    return parent if fullest is None else fullest


def _initplan_reference(subplan_name: str | None) -> re.Pattern[str] | None:
    """A regex matching how other nodes refer to this InitPlan's output.

    Up to PostgreSQL 16 the name says "InitPlan 1 (returns $0,$1)" and users print ``$0``;
    from 17 it is "InitPlan 1" and users print ``(InitPlan 1).col1``.
    """
    if not subplan_name:
        return None
    alternatives: list[str] = []
    returns = _RETURNS.search(subplan_name)
    if returns:
        for param in re.findall(r"\$\d+", returns.group(1)):
            alternatives.append(re.escape(param) + r"(?!\d)")
    number = _INITPLAN_NUMBER.match(subplan_name)
    if number:
        alternatives.append(rf"\bInitPlan {number.group(1)}(?!\d)")
    if not alternatives:
        return None
    return re.compile("|".join(alternatives))


def _expressions(node: PlanNode) -> Iterator[str]:
    """The texts of a node that can mention a parameter: conditions, keys, output lists."""
    for key, value in node.raw.items():
        if key in _NOT_EXPRESSIONS:
            continue
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, str))
