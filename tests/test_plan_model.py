"""Tests of the plan model and the JSON plan parser.

The timing cases are small plans written by hand as tables of input -> expected, each figure
worked out in the comment beside it, so that a wrong rule shows up as a wrong number rather
than as a changed snapshot. Corpus plans are checked the same way, with figures read from
the files by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from explainer.errors import InputError, PlanParseError
from explainer.plan import Buffers, Plan, PlanNode, compute_metrics, parse_json_plan, parse_plan

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "plans"
CORPUS_JSON = sorted(CORPUS.glob("*.json"))


_KEY_SPELLING = {"One_Time_Filter": "One-Time Filter"}


def node(
    node_type: str,
    time: float | None = None,
    loops: float | None = 1,
    rows: float = 1,
    plan_rows: float = 1,
    plans: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A plan node as EXPLAIN (ANALYZE, FORMAT JSON) prints it; time=None leaves out actuals."""
    obj: dict[str, Any] = {
        "Node Type": node_type,
        "Startup Cost": 0.0,
        "Total Cost": 100.0,
        "Plan Rows": plan_rows,
        "Plan Width": 8,
    }
    if time is not None:
        obj.update(
            {
                "Actual Startup Time": 0.0,
                "Actual Total Time": time,
                "Actual Rows": rows,
                "Actual Loops": loops,
            }
        )
    for key, value in extra.items():
        obj[_KEY_SPELLING.get(key, key.replace("_", " "))] = value
    if plans:
        obj["Plans"] = plans
    return obj


def doc(root: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    """The list EXPLAIN (FORMAT JSON) returns around a root node."""
    return [{"Plan": root, "Planning Time": 0.1, "Triggers": [], **extra}]


# --------------------------------------------------------------------------------------
# Hand-checked timing cases: plan -> {path: (inclusive_ms, exclusive_ms)}

TIMING_CASES: list[tuple[str, list[dict[str, Any]], dict[str, tuple[float, float]]]] = [
    (
        "nested loop, inner index scan 1000 loops",
        doc(
            node(
                "Nested Loop",
                25.0,
                rows=1000,
                plans=[
                    node("Seq Scan", 1.5, rows=1000, Parent_Relationship="Outer"),
                    node("Index Scan", 0.02, loops=1000, Parent_Relationship="Inner"),
                ],
            )
        ),
        {
            "0": (25.0, 3.5),  # 25 - 1.5 - 20
            "0.0": (1.5, 1.5),
            "0.1": (20.0, 20.0),  # 0.02 ms per loop * 1000 loops
        },
    ),
    (
        "parallel: Gather with 2 of 4 planned workers launched",
        doc(
            node(
                "Aggregate",
                50.5,
                plans=[
                    node(
                        "Gather",
                        50.0,
                        rows=3,
                        Parent_Relationship="Outer",
                        Workers_Planned=4,
                        Workers_Launched=2,
                        plans=[
                            node(
                                "Nested Loop",
                                45.0,
                                loops=3,
                                rows=100,
                                Parent_Relationship="Outer",
                                plans=[
                                    node(
                                        "Seq Scan",
                                        30.0,
                                        loops=3,
                                        rows=100,
                                        Parent_Relationship="Outer",
                                        Parallel_Aware=True,
                                    ),
                                    node(
                                        "Index Scan",
                                        0.1,
                                        loops=300,
                                        Parent_Relationship="Inner",
                                    ),
                                ],
                            )
                        ],
                    )
                ],
            )
        ),
        {
            "0": (50.5, 0.5),
            "0.0": (50.0, 5.0),  # the Gather runs in the leader only: not divided
            "0.0.0": (45.0, 5.0),  # 45 * 3 loops / (2 launched + leader) = 45; 45 - 30 - 10
            "0.0.0.0": (30.0, 30.0),  # 30 * 3 / 3
            "0.0.0.1": (10.0, 10.0),  # 0.1 * 300 / 3 (with planned workers: / 5 = 6, wrong)
        },
    ),
    (
        "InitPlan used by the node it hangs under (Result one-time filter)",
        doc(
            node(
                "Result",
                10.0,
                One_Time_Filter="($0 > 5)",
                plans=[
                    node(
                        "Aggregate",
                        4.0,
                        Parent_Relationship="InitPlan",
                        Subplan_Name="InitPlan 1 (returns $0)",
                        plans=[node("Seq Scan", 3.0, Parent_Relationship="Outer")],
                    ),
                    node("Seq Scan", 5.0, Parent_Relationship="Outer"),
                ],
            )
        ),
        {
            "0": (10.0, 1.0),  # 10 - 5 - 4: the Result evaluated $0 itself
            "0.0": (4.0, 1.0),
            "0.0.0": (3.0, 3.0),
            "0.1": (5.0, 5.0),
        },
    ),
    (
        "InitPlan used by a scan below the node it hangs under",
        doc(
            node(
                "Hash Join",
                30.0,
                plans=[
                    node(
                        "Aggregate",
                        12.0,
                        Parent_Relationship="InitPlan",
                        Subplan_Name="InitPlan 1 (returns $0)",
                        plans=[node("Seq Scan", 10.0, Parent_Relationship="Outer")],
                    ),
                    # 25 ms includes the 12 ms of InitPlan 1, run when the filter needed $0.
                    node("Seq Scan", 25.0, Parent_Relationship="Outer", Filter="(id < $0)"),
                    node(
                        "Hash",
                        2.0,
                        Parent_Relationship="Inner",
                        plans=[node("Seq Scan", 1.5, Parent_Relationship="Outer")],
                    ),
                ],
            )
        ),
        {
            "0": (30.0, 3.0),  # 30 - 25 - 2 (the InitPlan is inside the 25)
            "0.0": (12.0, 2.0),
            "0.0.0": (10.0, 10.0),
            "0.1": (25.0, 13.0),  # 25 - 12
            "0.2": (2.0, 0.5),
            "0.2.0": (1.5, 1.5),
        },
    ),
    (
        "InitPlan, PostgreSQL 17 naming: (InitPlan 1).col1",
        doc(
            node(
                "Nested Loop",
                8.0,
                plans=[
                    node(
                        "Result",
                        3.0,
                        Parent_Relationship="InitPlan",
                        Subplan_Name="InitPlan 1",
                    ),
                    node("Seq Scan", 2.0, Parent_Relationship="Outer"),
                    node(
                        "Index Scan",
                        5.5,
                        Parent_Relationship="Inner",
                        Index_Cond="(id = (InitPlan 1).col1)",
                    ),
                ],
            )
        ),
        {
            "0": (8.0, 0.5),  # 8 - 2 - 5.5
            "0.0": (3.0, 3.0),
            "0.1": (2.0, 2.0),
            "0.2": (5.5, 2.5),  # 5.5 - 3
        },
    ),
    (
        "SubPlan executed once per row",
        doc(
            node(
                "Seq Scan",
                60.0,
                rows=100,
                Filter="(x > (SubPlan 1))",
                plans=[
                    node(
                        "Aggregate",
                        0.5,
                        loops=100,
                        Parent_Relationship="SubPlan",
                        Subplan_Name="SubPlan 1",
                        plans=[node("Index Scan", 0.4, loops=100, Parent_Relationship="Outer")],
                    )
                ],
            )
        ),
        {
            "0": (60.0, 10.0),  # 60 - 50
            "0.0": (50.0, 10.0),  # 0.5 * 100 - 40
            "0.0.0": (40.0, 40.0),  # 0.4 * 100
        },
    ),
    (
        "CTE run by one CTE Scan, read again by another",
        doc(
            node(
                "Hash Join",
                50.0,
                plans=[
                    node(
                        "HashAggregate",
                        40.0,
                        Parent_Relationship="InitPlan",
                        Subplan_Name="CTE x",
                        plans=[node("Seq Scan", 30.0, Parent_Relationship="Outer")],
                    ),
                    node("CTE Scan", 42.0, Parent_Relationship="Outer", CTE_Name="x"),
                    node(
                        "Hash",
                        5.0,
                        Parent_Relationship="Inner",
                        plans=[node("CTE Scan", 0.5, Parent_Relationship="Outer", CTE_Name="x")],
                    ),
                ],
            )
        ),
        {
            "0": (50.0, 3.0),  # 50 - 42 - 5: the CTE is not subtracted from its parent
            "0.0": (40.0, 10.0),
            "0.0.0": (30.0, 30.0),
            "0.1": (42.0, 2.0),  # 42 - 40: this scan ran the CTE
            "0.2": (5.0, 4.5),
            "0.2.0": (0.5, 0.5),  # read the stored rows: keeps its own time
        },
    ),
    (
        "CTE split between two scans: fullest scan first",
        doc(
            node(
                "Append",
                46.0,
                plans=[
                    node(
                        "Seq Scan",
                        40.0,
                        Parent_Relationship="InitPlan",
                        Subplan_Name="CTE y",
                    ),
                    node("CTE Scan", 20.0, Parent_Relationship="Member", CTE_Name="y"),
                    node("CTE Scan", 25.0, Parent_Relationship="Member", CTE_Name="y"),
                ],
            )
        ),
        {
            "0": (46.0, 1.0),
            "0.0": (40.0, 40.0),
            "0.1": (20.0, 5.0),  # takes the 40 - 25 left
            "0.2": (25.0, 0.0),  # takes 25 of the CTE's 40 first
        },
    ),
    (
        "never-executed inner side",
        doc(
            node(
                "Nested Loop",
                0.05,
                rows=0,
                plans=[
                    node("Seq Scan", 0.04, rows=0, Parent_Relationship="Outer"),
                    node("Index Scan", 0.0, loops=0, rows=0, Parent_Relationship="Inner"),
                ],
            )
        ),
        {"0": (0.05, 0.01), "0.0": (0.04, 0.04), "0.1": (0.0, 0.0)},
    ),
    (
        "not analyzed",
        doc(
            node(
                "Hash Join",
                plan_rows=500,
                plans=[
                    node("Seq Scan", Parent_Relationship="Outer"),
                    node(
                        "Hash",
                        Parent_Relationship="Inner",
                        plans=[node("Seq Scan", Parent_Relationship="Outer")],
                    ),
                ],
            )
        ),
        {"0": (0.0, 0.0), "0.0": (0.0, 0.0), "0.1": (0.0, 0.0), "0.1.0": (0.0, 0.0)},
    ),
    (
        "parallel_leader_participation = off: only the workers ran the scan",
        doc(
            node(
                "Gather",
                21.0,
                Workers_Planned=2,
                Workers_Launched=2,
                plans=[node("Seq Scan", 20.0, loops=2, Parent_Relationship="Outer")],
            ),
            Settings={"parallel_leader_participation": "off"},
        ),
        {"0": (21.0, 1.0), "0.0": (20.0, 20.0)},  # 20 * 2 loops / 2 workers
    ),
    (
        "leader did not run the child (loops = workers launched), no Settings",
        doc(
            node(
                "Gather",
                21.0,
                Workers_Planned=2,
                Workers_Launched=2,
                plans=[node("Seq Scan", 20.0, loops=2, Parent_Relationship="Outer")],
            )
        ),
        {"0": (21.0, 1.0), "0.0": (20.0, 20.0)},  # / 2 rather than / 3 (13.33)
    ),
    (
        "Single Copy Gather: one process runs the child",
        doc(
            node(
                "Gather",
                11.0,
                Workers_Planned=1,
                Workers_Launched=1,
                Single_Copy=True,
                plans=[node("Seq Scan", 10.0, Parent_Relationship="Outer")],
            )
        ),
        {"0": (11.0, 1.0), "0.0": (10.0, 10.0)},
    ),
    (
        "per-loop rounding: Materialize 1000 loops at 0.010 ms holds a 10.3 ms scan",
        doc(
            node(
                "Materialize",
                0.010,
                loops=1000,
                plans=[node("Seq Scan", 10.3, Parent_Relationship="Outer")],
            )
        ),
        # 0.010 * 1000 = 10.0, but printed per-loop times are rounded to 0.001 ms, so the
        # true figure is anywhere in 10.0 +/- 0.5: the child's 10.3 is taken.
        {"0": (10.3, 0.0), "0.0": (10.3, 10.3)},
    ),
    (
        "beyond rounding: a node is never shorter than the children timed inside it",
        doc(
            node(
                "Aggregate",
                10.0,
                plans=[node("Gather", 11.0, Parent_Relationship="Outer", Workers_Launched=0)],
            )
        ),
        {"0": (11.0, 0.0), "0.0": (11.0, 11.0)},  # raised from the printed 10.0
    ),
]


@pytest.mark.parametrize(
    ("source", "expected"),
    [(case[1], case[2]) for case in TIMING_CASES],
    ids=[case[0] for case in TIMING_CASES],
)
def test_timing(source: list[dict[str, Any]], expected: dict[str, tuple[float, float]]) -> None:
    plan = parse_json_plan(source)
    got = {n.path: (n.inclusive_ms, n.exclusive_ms) for n in plan.walk()}
    assert set(got) == set(expected)
    for path, (inclusive, exclusive) in expected.items():
        assert got[path] == pytest.approx((inclusive, exclusive)), path


def test_parallel_processes_and_rows() -> None:
    plan = parse_json_plan(TIMING_CASES[1][1])
    assert [n.parallel_processes for n in plan.walk()] == [1, 1, 3, 3, 3]
    scan = plan.node("0.0.0.0")
    assert scan.parallel_aware
    assert scan.total_rows == 300  # 100 rows per loop * 3 processes
    assert plan.node("0.0.0.1").total_rows == 300


def test_never_executed_node() -> None:
    plan = parse_json_plan(TIMING_CASES[8][1])
    inner = plan.node("0.1")
    assert inner.never_executed
    assert not plan.node("0.0").never_executed
    assert inner.total_rows == 0
    assert inner.estimate_factor is None  # no evidence either way


def test_not_analyzed_plan() -> None:
    plan = parse_json_plan(TIMING_CASES[9][1])
    assert not plan.analyzed
    assert not plan.has_timing
    assert plan.total_ms is None
    root = plan.root
    assert root.actual_total_ms is None and root.actual_loops is None
    assert not root.never_executed
    assert root.total_rows is None
    assert root.estimate_factor is None
    assert root.rows_removed_by_filter_total is None
    assert root.plan_rows == 500


def test_timing_off_attributes_initplan_buffers_to_its_user() -> None:
    # EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) on PostgreSQL 15 (shape of a real run, trimmed):
    # without times, the InitPlan's user is found by its blocks.
    def buffered(obj: dict[str, Any], hit: int, read: int) -> dict[str, Any]:
        obj.update({"Shared Hit Blocks": hit, "Shared Read Blocks": read})
        for key in ("Actual Startup Time", "Actual Total Time"):
            obj.pop(key, None)
        return obj

    source = doc(
        buffered(
            node(
                "Aggregate",
                0,
                plans=[
                    buffered(
                        node(
                            "Aggregate",
                            0,
                            Parent_Relationship="InitPlan",
                            Subplan_Name="InitPlan 1 (returns $0)",
                            plans=[
                                buffered(
                                    node("Seq Scan", 0, Parent_Relationship="Outer"), 16279, 2413
                                )
                            ],
                        ),
                        16279,
                        2413,
                    ),
                    buffered(
                        node(
                            "Hash Join",
                            0,
                            Parent_Relationship="Outer",
                            plans=[
                                buffered(
                                    node(
                                        "Seq Scan",
                                        0,
                                        Parent_Relationship="Outer",
                                        Filter="(id < $0)",
                                    ),
                                    32585,
                                    4799,
                                ),
                                buffered(node("Hash", 0, Parent_Relationship="Inner"), 5, 0),
                            ],
                        ),
                        32590,
                        4799,
                    ),
                ],
            ),
            32590,
            4799,
        ),
        **{"Execution Time": 293.347},
    )
    plan = parse_json_plan(source)
    assert plan.analyzed and not plan.has_timing
    assert plan.total_ms == 293.347
    assert all(n.inclusive_ms == 0 and n.exclusive_ms == 0 for n in plan.walk())
    exclusive = {
        n.path: (n.exclusive_buffers.shared_hit, n.exclusive_buffers.shared_read)
        for n in plan.walk()
    }
    assert exclusive == {
        "0": (0, 0),  # 32590 - 32590 (the InitPlan's blocks are inside the Hash Join's)
        "0.0": (0, 0),
        "0.0.0": (16279, 2413),
        "0.1": (0, 0),  # 32590 - 32585 - 5
        "0.1.0": (16306, 2386),  # 32585 - 16279, 4799 - 2413
        "0.1.1": (5, 0),
    }


# --------------------------------------------------------------------------------------
# Buffers


def test_buffers_arithmetic() -> None:
    a = Buffers(shared_hit=10, shared_read=5, temp_read=3, temp_written=4)
    b = Buffers(shared_hit=4, shared_read=7, local_hit=1)
    assert a + b == Buffers(shared_hit=14, shared_read=12, local_hit=1, temp_read=3, temp_written=4)
    assert a - b == Buffers(shared_hit=6, shared_read=0, temp_read=3, temp_written=4)  # clamped
    assert a.total_read == 8  # shared 5 + temp 3
    assert a.total_hit == 10
    assert a.total_written == 4
    assert a.temp_total == 7
    assert a.total == 22
    assert a.hit_ratio == pytest.approx(10 / 15)
    assert Buffers().hit_ratio is None
    assert not Buffers() and a


def test_exclusive_buffers_subtract_children_and_clamp() -> None:
    def blocks(obj: dict[str, Any], hit: int, read: int, temp: int = 0) -> dict[str, Any]:
        obj.update({"Shared Hit Blocks": hit, "Shared Read Blocks": read, "Temp Read Blocks": temp})
        return obj

    plan = parse_json_plan(
        doc(
            blocks(
                node(
                    "Sort",
                    5.0,
                    plans=[
                        blocks(
                            node(
                                "Hash Join",
                                4.0,
                                Parent_Relationship="Outer",
                                plans=[
                                    blocks(
                                        node("Seq Scan", 1.0, Parent_Relationship="Outer"), 60, 40
                                    ),
                                    blocks(node("Hash", 1.0, Parent_Relationship="Inner"), 25, 0),
                                ],
                            ),
                            80,
                            40,
                        )
                    ],
                ),
                80,
                40,
                temp=12,
            )
        )
    )
    assert plan.node("0").exclusive_buffers == Buffers(temp_read=12)  # the sort spilled
    assert plan.node("0.0").exclusive_buffers == Buffers()  # 80 - 60 - 25 < 0: clamped
    assert plan.node("0.0.0").exclusive_buffers == Buffers(shared_hit=60, shared_read=40)
    assert plan.node("0.0.0").buffers.total_read == 40


# --------------------------------------------------------------------------------------
# Node properties


@pytest.mark.parametrize(
    ("rows", "loops", "plan_rows", "factor"),
    [
        (1000, 1, 10, 100.0),  # under-estimate
        (10, 1, 1000, 0.01),  # over-estimate
        (1, 1000, 1, 1.0),  # per-loop figures on both sides
        (0, 1, 50, 0.02),  # no rows counts as one: 1 / 50
        (0, 1, 1, 1.0),
        (0.4, 10, 1, 1.0),  # PostgreSQL 18 fractional rows: under one row per loop, as planned
        (0, 537, 1, 1.0),  # 537 empty loops of a 1-row estimate are no error (pev2: 537x)
        (30, 100, 2, 15.0),  # per loop: 30 / 2
    ],
)
def test_estimate_factor(rows: float, loops: float, plan_rows: float, factor: float) -> None:
    plan = parse_json_plan(doc(node("Seq Scan", 1.0, loops=loops, rows=rows, plan_rows=plan_rows)))
    assert plan.root.estimate_factor == pytest.approx(factor)


def test_node_fields_and_per_loop_totals() -> None:
    raw = node(
        "Index Scan",
        0.02,
        loops=1000,
        rows=3,
        Relation_Name="orders",
        Schema="public",
        Alias="o",
        Index_Name="orders_customer_idx",
        Index_Cond="(customer_id = c.id)",
        Filter="(status = 'open'::text)",
        Rows_Removed_by_Filter=2.5,
        Rows_Removed_by_Index_Recheck=0,
        Sort_Key=["o.created_at"],
    )
    root = parse_json_plan(doc(raw)).root
    assert (root.relation, root.schema, root.alias) == ("orders", "public", "o")
    assert root.index_name == "orders_customer_idx"
    assert root.index_cond == "(customer_id = c.id)"
    assert root.filter == "(status = 'open'::text)"
    assert root.sort_key == ["o.created_at"]
    assert root.total_rows == 3000
    assert root.rows_removed_by_filter == 2.5  # per loop, as printed
    assert root.rows_removed_by_filter_total == 2500
    assert root.rows_removed_by_index_recheck_total == 0
    assert root.raw["Index Name"] == "orders_customer_idx" and "Plans" not in root.raw


def test_plan_navigation() -> None:
    plan = parse_json_plan(TIMING_CASES[3][1])
    assert [n.path for n in plan.walk()] == ["0", "0.0", "0.0.0", "0.1", "0.2", "0.2.0"]
    assert plan.node("0.2.0").node_type == "Seq Scan"
    assert plan.node("0.2.0").depth == 2
    assert plan.parent(plan.node("0.2.0")) is plan.node("0.2")
    assert plan.parent(plan.root) is None
    for bad in ("0.3", "1", "", "0.x"):
        with pytest.raises(KeyError):
            plan.node(bad)


def test_hand_built_tree_gets_metrics() -> None:
    scan = PlanNode("Seq Scan", "0.0", actual_total_ms=2.0, actual_loops=3, actual_rows=1)
    root = PlanNode("Nested Loop", "0", actual_total_ms=7.0, actual_loops=1, children=[scan])
    plan = Plan(root=root, analyzed=True)
    compute_metrics(plan)
    assert (root.inclusive_ms, root.exclusive_ms) == (7.0, 1.0)
    assert plan.total_ms == 7.0


# --------------------------------------------------------------------------------------
# Input forms


def test_accepted_input_forms() -> None:
    source = doc(node("Seq Scan", 1.25), **{"Execution Time": 1.5})
    text = json.dumps(source, indent=2)
    forms: list[Any] = [
        source,
        source[0],
        text,
        "\n\n  " + text + "  \n",
        json.dumps(source[0]),
        text.encode(),
        b"\xef\xbb\xbf" + text.encode(),  # UTF-8 BOM, as some editors save files
    ]
    for form in forms:
        plan = parse_json_plan(form)
        assert plan.root.node_type == "Seq Scan"
        assert plan.root.inclusive_ms == 1.25
        assert plan.execution_ms == 1.5
        assert plan.planning_ms == 0.1
        assert plan.analyzed


def test_bare_node_object_is_accepted() -> None:
    # The inside of "Plan", as copied out of a larger document: no plan-level figures.
    plan = parse_json_plan(json.dumps(node("Seq Scan", 1.25)))
    assert plan.root.inclusive_ms == 1.25
    assert plan.execution_ms is None and plan.total_ms == 1.25


def test_costs_off_has_no_estimate_factor() -> None:
    raw = node("Seq Scan", 1.0, rows=10)
    for key in ("Startup Cost", "Total Cost", "Plan Rows", "Plan Width"):
        del raw[key]
    root = parse_json_plan(doc(raw)).root
    assert (root.total_cost, root.plan_rows) == (0.0, 0.0)
    assert root.estimate_factor is None


def test_duplicated_workers_key_is_merged() -> None:
    # Some servers print "Workers" twice on one node under VERBOSE (seen by pev2).
    text = """[{"Plan": {"Node Type": "Sort", "Actual Total Time": 2000.0, "Actual Loops": 3,
      "Workers": [{"Worker Number": 0, "Sort Method": "external merge"}],
      "Workers": [{"Worker Number": 0, "Actual Total Time": 1996.879}]}}]"""
    workers = parse_json_plan(text).root.raw["Workers"]
    assert workers == [
        {"Worker Number": 0, "Sort Method": "external merge", "Actual Total Time": 1996.879}
    ]


def test_old_total_runtime_and_plan_extras() -> None:
    source = [
        {
            "Plan": node("Result", 0.01),
            "Total Runtime": 0.5,
            "Settings": {"work_mem": "1MB", "jit": "off"},
            "JIT": {"Functions": 3},
            "Triggers": [{"Trigger Name": "t", "Relation": "x", "Time": 1.5, "Calls": 2}],
        }
    ]
    plan = parse_json_plan(source)
    assert plan.execution_ms == 0.5
    assert plan.settings == {"work_mem": "1MB", "jit": "off"}
    assert plan.jit == {"Functions": 3}
    assert plan.trigger_ms == 1.5
    assert "Plan" not in plan.raw and plan.raw["Total Runtime"] == 0.5


# --------------------------------------------------------------------------------------
# Errors: one clear line each


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "not a PostgreSQL JSON plan: the input is empty"),
        ("   \n\t ", "not a PostgreSQL JSON plan: the input is empty"),
        (b"", "not a PostgreSQL JSON plan: the input is empty"),
        (
            "Seq Scan on x",
            "not a PostgreSQL JSON plan: input starts with 'Seq Scan on x', not '[' or '{' "
            "(run EXPLAIN with FORMAT JSON)",
        ),
        (
            "QUERY PLAN\n-----\n Seq Scan on x  (cost=0.00..35.50 rows=2550 width=4)\n",
            "not a PostgreSQL JSON plan: input starts with 'QUERY PLAN', not '[' or '{' "
            "(run EXPLAIN with FORMAT JSON)",
        ),
        (
            "Seq Scan on x  (cost=0.00..35.50 rows=2550 width=4)",
            "not a PostgreSQL JSON plan: input starts with "
            "'Seq Scan on x  (cost=0.00..35.50 rows...', not '[' or '{' "
            "(run EXPLAIN with FORMAT JSON)",
        ),
        (
            '{"Query": "select 1"}',
            "not a PostgreSQL JSON plan: expected a list with an object holding 'Plan' "
            "(got an object with 'Query')",
        ),
        (
            "[]",
            "not a PostgreSQL JSON plan: expected a list with an object holding 'Plan' "
            "(got an empty list)",
        ),
        (
            '["QUERY PLAN"]',
            "not a PostgreSQL JSON plan: expected a list with an object holding 'Plan' "
            "(got a list of a string)",
        ),
        (
            '[{"Plan": {"Node Type": "Seq Scan",}}]',
            "not a PostgreSQL JSON plan: invalid JSON at line 1 column 36: "
            "Expecting property name enclosed in double quotes",
        ),
        (
            '[{"Plan": {"Node Type": "Seq Scan"',
            "not a PostgreSQL JSON plan: invalid JSON at line 1 column 35: Expecting ',' delimiter",
        ),
        (b"\xff\xfe[", "not a PostgreSQL JSON plan: input is not UTF-8 text (invalid start byte)"),
        (
            [{"Plan": {"Plans": []}}],
            "not a PostgreSQL JSON plan: node 0 has no 'Node Type'",
        ),
        (
            [{"Plan": {"Node Type": "Limit", "Plans": [{"Node Type": "Sort", "Plan Rows": "x"}]}}],
            "not a PostgreSQL JSON plan: 'Plan Rows' of node 0.0 is 'x', not a number",
        ),
        (
            [{"Plan": {"Node Type": "Limit", "Plans": {"Node Type": "Sort"}}}],
            "not a PostgreSQL JSON plan: 'Plans' of node 0 is an object, not a list",
        ),
        (
            [{"Plan": "Seq Scan"}],
            "not a PostgreSQL JSON plan: 'Plan' is a string, not an object",
        ),
    ],
    ids=[
        "empty",
        "whitespace",
        "empty-bytes",
        "text-plan",
        "psql-text-output",
        "long-text-line",
        "object-without-plan",
        "empty-list",
        "list-of-strings",
        "malformed-trailing-comma",
        "malformed-truncated",
        "not-utf8",
        "node-without-type",
        "non-numeric-field",
        "plans-not-a-list",
        "plan-not-an-object",
    ],
)
def test_parse_errors(source: Any, message: str) -> None:
    with pytest.raises(PlanParseError) as info:
        parse_json_plan(source)
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    assert isinstance(info.value, InputError)  # the CLI reports it as one line, exit 2


# --------------------------------------------------------------------------------------
# Corpus: real plans


def corpus_plan(name: str) -> Plan:
    return parse_plan((CORPUS / name).read_bytes())


def test_corpus_is_present() -> None:
    assert len(CORPUS_JSON) >= 18, f"expected the JSON plans of {CORPUS}"


@pytest.mark.parametrize("path", CORPUS_JSON, ids=[p.name for p in CORPUS_JSON])
def test_corpus_exclusive_times_add_up_to_root(path: Path) -> None:
    plan = parse_json_plan(path.read_text())
    total = sum(n.exclusive_ms for n in plan.walk())
    root = plan.root.inclusive_ms
    assert total == pytest.approx(root, abs=max(0.05, 0.01 * root))
    for n in plan.walk():
        assert 0 <= n.exclusive_ms <= n.inclusive_ms + 1e-9, n.path
        assert n.exclusive_buffers.total <= n.buffers.total, n.path
    if path.name.startswith("06_"):
        return  # explained in test_corpus_06_parallel
    # No clamping happened: every node's time was subtracted exactly once.
    assert total == pytest.approx(root, abs=1e-6)


def test_corpus_02_three_joins() -> None:
    plan = corpus_plan("02_pev2_three-joins-missing-index.json")
    expected = {
        "0": (6.088, 0.512),  # Sort: 6.088 - 5.576
        "0.0": (5.576, 0.123),  # Nested Loop: 5.576 - 0.033 - 5.420
        "0.0.0": (0.033, 0.003),  # 0.033 - 0.021 - 0.009
        "0.0.0.0": (0.021, 0.021),
        "0.0.0.1": (0.009, 0.009),
        "0.0.1": (5.420, 2.433),  # Hash Join: 5.420 - 1.962 - 1.025
        "0.0.1.0": (1.962, 1.962),
        "0.0.1.1": (1.025, 0.041),  # Hash: 1.025 - 0.984
        "0.0.1.1.0": (0.984, 0.984),
    }
    for path, (inclusive, exclusive) in expected.items():
        n = plan.node(path)
        assert (n.inclusive_ms, n.exclusive_ms) == pytest.approx((inclusive, exclusive)), path
    question = plan.node("0.0.1.1.0")
    assert question.relation == "question" and question.alias == "question_1"
    assert question.rows_removed_by_filter_total == 2637
    assert question.estimate_factor == pytest.approx(63 / 75)
    assert plan.node("0").exclusive_buffers == Buffers(shared_hit=3)  # 363 - 360
    assert plan.node("0.0.1").exclusive_buffers == Buffers()  # 358 - 164 - 194
    assert plan.total_ms == 6.248 and plan.planning_ms == 1.206


def test_corpus_06_parallel() -> None:
    plan = corpus_plan("06_pev2_parallel_workers-launched-lt-planned.json")
    gather = plan.node("0.0")
    assert (gather.workers_planned, gather.workers_launched) == (4, 2)
    assert [n.parallel_processes for n in plan.walk()] == [1, 1, 3, 3]
    scan = plan.node("0.0.0.0")
    assert scan.inclusive_ms == pytest.approx(344.447)  # 344.447 * 3 loops / (2 + 1)
    assert scan.exclusive_ms == pytest.approx(344.447)
    assert plan.node("0.0.0").exclusive_ms == pytest.approx(137.943)  # 482.390 - 344.447
    assert gather.exclusive_ms == pytest.approx(4.038)  # 486.428 - 482.390
    # The Gather (486.428) is timed beyond its parent Finalize Aggregate (484.970): its time
    # includes shutting the workers down after the parent's last call: the root is raised
    # to the Gather's time, keeps 0 of its own, and the exclusive times add up to it.
    assert plan.root.exclusive_ms == 0
    assert plan.root.inclusive_ms == pytest.approx(486.428)
    assert sum(n.exclusive_ms for n in plan.walk()) == pytest.approx(486.428)
    assert scan.total_rows == 1962085 * 3
    assert scan.rows_removed_by_filter_total == 38320 * 3
    assert scan.estimate_factor == pytest.approx(1962085 / 1470273)
    assert plan.total_ms == 486.495


def test_corpus_07_gather_merge() -> None:
    plan = corpus_plan("07_pev2_gather-merge_disk-sort-per-worker.json")
    assert plan.node("0.0").exclusive_ms == pytest.approx(1619.877)  # 2020.558 - 400.681
    assert plan.root.exclusive_ms == pytest.approx(1784.846)  # 3805.404 - 2020.558
    assert plan.node("0.0").raw["Sort Space Type"] == "Disk"


def test_corpus_55_parallel_inner_loops() -> None:
    plan = corpus_plan("55_qg_tpch13_local_nestloop_150k-loops.json")
    inner = plan.node("0.0.0.0.0.0.1")
    assert inner.actual_loops == 150000
    assert inner.inclusive_ms == pytest.approx(1450.0)  # 0.029 * 150000 / 3
    # Nested Loop: 1552.015 * 3 / 3 - 17.306 - 1450.0
    assert plan.node("0.0.0.0.0.0").exclusive_ms == pytest.approx(84.709)


def test_corpus_56_subplan_and_rounding() -> None:
    plan = corpus_plan("56_qg_tpch20_subplans_537-loops.json")
    subplan = plan.node("0.0.0.1.0.0.0")
    assert subplan.subplan_name == "SubPlan 1"
    assert subplan.inclusive_ms == pytest.approx(45.108)  # 0.084 * 537
    assert subplan.exclusive_ms == pytest.approx(0.537)  # 45.108 - 0.083 * 537
    assert plan.node("0.0.0.1.0.0").exclusive_ms == pytest.approx(0.288)  # 45.396 - 45.108
    # Materialize printed 0.088 ms * 518 loops = 45.584 < its child's 45.632: within the
    # +/- 0.0005 * 518 = 0.259 ms rounding band, so it takes the child's figure.
    materialize = plan.node("0.0.0.1")
    assert materialize.inclusive_ms == pytest.approx(45.632)
    assert materialize.exclusive_ms == 0


def test_corpus_58_cte_and_initplan() -> None:
    plan = corpus_plan("58_qg_tpch15_cte-initplan.json")
    # InitPlan 2 (returns $1) is used by the CTE Scan's filter "total_revenue = $1", deep
    # under the Sort it hangs from; the CTE revenue (0.205) is run by its two scans.
    expected = {
        "0": 0.005,  # Sort: 0.378 - 0.373 (neither the CTE nor the InitPlan)
        "0.0": 0.070,  # CTE revenue: 0.205 - 0.135
        "0.1": 0.013,  # InitPlan 2: 0.094 - 0.081
        "0.1.0": 0.033,  # CTE Scan: 0.081 - (0.205 - 0.157) of the CTE
        "0.2": 0.062,  # Hash Join: 0.373 - 0.057 - 0.254
        "0.2.1": 0.003,
        "0.2.1.0": 0.0,  # CTE Scan: 0.251 - 0.094 (InitPlan 2) - 0.157 (CTE)
    }
    for path, exclusive in expected.items():
        assert plan.node(path).exclusive_ms == pytest.approx(exclusive), path


def test_corpus_05_cte_charged_to_the_scan_that_ran_it() -> None:
    plan = corpus_plan("05_pev2_many-ctes.json")
    assert plan.node("0.0").subplan_name == "CTE catalog_variants"
    # The catalog_variants CTE (0.740 ms) is scanned six times; the 0.915 ms scan ran it.
    assert plan.node("0.3.0.1.0.0").exclusive_ms == pytest.approx(0.175)  # 0.915 - 0.740
    assert plan.node("0.4.1.0.0.0").exclusive_ms == pytest.approx(0.059)  # untouched
    assert plan.node("0.4.0").exclusive_ms == pytest.approx(0.120)  # 6.157 - 6.037
    assert plan.root.exclusive_ms == pytest.approx(0.267)  # 13.793 - 13.526


def test_corpus_04_without_execution_time() -> None:
    plan = corpus_plan("04_pev2_very-large-plan_catalog.json")
    assert plan.execution_ms is None
    assert plan.total_ms == pytest.approx(232.217)  # the root's time
    assert len(list(plan.walk())) == 72


def test_corpus_08_insert_with_triggers() -> None:
    plan = corpus_plan("08_pev2_insert_modifytable_triggers.json")
    assert plan.root.node_type == "ModifyTable" and plan.root.operation == "Insert"
    assert [t["Trigger Name"] for t in plan.triggers] == [
        "foo_system_time_generated_always",
        "foo_system_time_write_history",
    ]
    assert plan.trigger_ms == pytest.approx(0.642)


def test_corpus_09_not_analyzed() -> None:
    plan = corpus_plan("09_pev2_json-oneline_no-analyze.json")
    assert not plan.analyzed
    assert plan.root.inclusive_ms == 0 and plan.root.estimate_factor is None
    assert plan.root.filter == "(relkind = ANY ('{r,p}'::\"char\"[]))"


def test_exclusive_io_timing_corpus_33() -> None:
    # Sort > Append > two Seq Scans; I/O Timings read= 1116.067 on the Sort and the Append,
    # 39.730 and 1076.337 on the scans: the reads happened in the scans (39.730 + 1076.337
    # = 1116.067), so the Sort and the Append read nothing themselves.
    plan = corpus_plan("33_pev2_external-sort_work_mem-1MB_psql-noise.txt")
    assert [n.io_read_ms for n in plan.walk()] == [1116.067, 1116.067, 39.73, 1076.337]
    assert [n.exclusive_io_read_ms for n in plan.walk()] == [0.0, 0.0, 39.73, 1076.337]


def test_io_timing_of_every_buffer_kind_is_summed() -> None:
    # PG17 "I/O Timings: shared write=23.77, local write=25.997, temp read=324" (corpus 38).
    plan = corpus_plan("38_pev2_io-timings_pg17-split-scopes.txt")
    assert plan.root.io_read_ms == 324.0
    assert plan.root.io_write_ms == pytest.approx(23.77 + 25.997)


def test_io_timing_follows_an_initplan_to_its_consumer() -> None:
    # The Index Scan needs $0, so the InitPlan ran inside it: its 2.2 ms of reads hold the
    # InitPlan's 2.0 and 0.2 of its own; the Result's 2.5 hold the Index Scan's 2.2.
    scan = node(
        "Index Scan",
        2.5,
        Parent_Relationship="Outer",
        Index_Cond="(id = $0)",
        **{"I/O Read Time": 2.2},
    )
    initplan = node(
        "Seq Scan",
        2.0,
        Parent_Relationship="InitPlan",
        Subplan_Name="InitPlan 1 (returns $0)",
        **{"I/O Read Time": 2.0},
    )
    plan = parse_json_plan(
        doc(node("Result", 3.0, plans=[initplan, scan], **{"I/O Read Time": 2.5}))
    )
    assert plan.node("0.0").exclusive_io_read_ms == 2.0
    assert plan.node("0.1").exclusive_io_read_ms == pytest.approx(0.2)
    assert plan.root.exclusive_io_read_ms == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("fields", "removed", "share"),
    [
        ({"Rows_Removed_by_Filter": 90.0}, 900.0, 0.9),  # 90 of 100 per loop, 10 loops
        ({"Rows_Removed_by_Index_Recheck": 40.0}, 400.0, 0.8),
        ({"Rows_Removed_by_Filter": 5.0, "Rows_Removed_by_Join_Filter": 5.0}, 100.0, 0.5),
        ({}, None, None),
    ],
)
def test_rows_removed_share(
    fields: dict[str, float], removed: float | None, share: float | None
) -> None:
    source = doc(node("Seq Scan", 1.0, loops=10, rows=10, **fields))
    scan = parse_json_plan(source).root
    assert scan.rows_removed_total == removed
    assert scan.removed_share == (None if share is None else pytest.approx(share))
