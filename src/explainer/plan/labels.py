"""Names of plan nodes as EXPLAIN's text format prints them, for every renderer.

JSON plans name a node by parts ("Node Type": "Aggregate", "Strategy": "Hashed"); people
read the text format's names ("HashAggregate"), so every output uses these.
"""

from __future__ import annotations

from explainer.plan.model import PlanNode

_AGGREGATE_NAMES = {
    "Hashed": "HashAggregate",
    "Sorted": "GroupAggregate",
    "Mixed": "MixedAggregate",
}
_SETOP_NAMES = {"Hashed": "HashSetOp"}
_JOINS = {"Nested Loop", "Hash Join", "Merge Join"}


def operation_name(node: PlanNode) -> str:
    """The node's name as EXPLAIN's text format prints it: ``Parallel Seq Scan``,
    ``Hash Left Join``, ``HashAggregate``, ``Index Scan Backward``, ``Insert``."""
    strategy = node.raw.get("Strategy")
    name = node.node_type
    if name == "Aggregate" and isinstance(strategy, str):
        name = _AGGREGATE_NAMES.get(strategy, name)
    elif name == "SetOp" and isinstance(strategy, str):
        name = _SETOP_NAMES.get(strategy, name)
    elif name == "ModifyTable" and node.operation:
        name = node.operation
    if name in _JOINS and node.join_type and node.join_type != "Inner":
        stem = name.removesuffix(" Join")
        name = f"{stem} {node.join_type} Join"
    if node.raw.get("Scan Direction") == "Backward":
        name += " Backward"
    if node.parallel_aware:
        name = f"Parallel {name}"
    return name


def node_label(node: PlanNode) -> str:
    """One line naming the node and what it reads, as EXPLAIN's text format does:
    ``Index Scan using orders_pkey on orders o``, ``CTE Scan on totals t``."""
    label = operation_name(node)
    if node.index_name and node.node_type == "Bitmap Index Scan":
        label += f" on {node.index_name}"
    elif node.index_name:
        label += f" using {node.index_name}"
    target = node.relation or node.cte_name
    function = node.raw.get("Function Name")
    if target is None and isinstance(function, str):
        target = function
    if target is not None:
        if node.relation and node.schema and node.schema != "public":
            target = f"{node.schema}.{target}"
        label += f" on {target}"
        if node.alias and node.alias != (node.relation or node.cte_name or function):
            label += f" {node.alias}"
    elif node.alias and node.node_type.endswith("Scan"):
        label += f" on {node.alias}"
    if node.subplan_name:
        label = f"{node.subplan_name}: {label}"
    return label


def short_label(node: PlanNode) -> str:
    """How a sentence names a node: ``Seq Scan on orders``, ``CTE Scan on q``,
    ``HashAggregate``, ``Delete on emails`` (no index, alias or schema)."""
    name = operation_name(node)
    target = node.relation or node.cte_name
    if node.node_type == "ModifyTable" and node.relation:
        return f"{name} on {node.relation}"
    return f"{name} on {target}" if target else name
