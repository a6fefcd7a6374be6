"""Plan comparison: which nodes of two plans of one query correspond, and what changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from explainer.cli import main
from explainer.plan import Plan, plan_from_document
from explainer.plan.compare import changed_nodes, compare_plans

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "plans"
NESTLOOP = CORPUS / "52_qg_job10a_federated_nestloop_foreign-scans.json"
NO_NESTLOOP = CORPUS / "53_qg_job10a_federated_no-nestloop.json"


def node(
    node_type: str, ms: float, rows: float, *children: dict[str, Any], **keys: Any
) -> dict[str, Any]:
    """A node of an analyzed JSON plan: ``ms`` is Actual Total Time, one loop."""
    obj: dict[str, Any] = {
        "Node Type": node_type,
        "Startup Cost": 0.0,
        "Total Cost": 100.0,
        "Plan Rows": rows,
        "Plan Width": 8,
        "Actual Startup Time": 0.01,
        "Actual Total Time": ms,
        "Actual Rows": rows,
        "Actual Loops": 1,
        **keys,
    }
    if children:
        obj["Plans"] = list(children)
    return obj


def plan(root: dict[str, Any], execution_ms: float | None = None) -> Plan:
    document: dict[str, Any] = {"Plan": root, "Planning Time": 0.1}
    if execution_ms is not None:
        document["Execution Time"] = execution_ms
    return plan_from_document(document)


# The example: an index turns the 80 ms Seq Scan under the Aggregate into a
# 0.1 ms Index Scan.
BEFORE = node(
    "Aggregate",
    80.5,
    1,
    node(
        "Seq Scan",
        80.0,
        120,
        **{
            "Relation Name": "orders",
            "Alias": "orders",
            "Rows Removed by Filter": 99880,
            "Filter": "(customer_id = 42)",
        },
    ),
    Strategy="Plain",
)
AFTER = node(
    "Aggregate",
    0.15,
    1,
    node(
        "Index Scan",
        0.1,
        120,
        **{
            "Relation Name": "orders",
            "Alias": "orders",
            "Index Name": "orders_customer_id_idx",
            "Scan Direction": "Forward",
        },
    ),
    Strategy="Plain",
)


def pairs(before: Plan, after: Plan) -> dict[str, str | None]:
    """before path -> after path (None when removed), plus "+path" -> None for added."""
    found: dict[str, str | None] = {}
    for change in compare_plans(before, after).changes:
        if change.before is not None:
            found[change.before.path] = None if change.after is None else change.after.path
        else:
            found["+" + change.node.path] = None
    return found


def test_seq_scan_to_index_scan() -> None:
    comparison = compare_plans(plan(BEFORE, 80.6), plan(AFTER, 0.2))
    assert [c.kind for c in comparison.changes] == ["matched", "matched"]
    aggregate, scan = comparison.changes
    assert aggregate.matched_by == "path" and not aggregate.operation_changed
    assert scan.matched_by == "similarity"  # the type changed, the relation did not
    assert scan.operation_changed
    assert scan.before is not None and scan.after is not None
    assert (scan.before.node_type, scan.after.node_type) == ("Seq Scan", "Index Scan")
    assert scan.exclusive_change_ms == pytest.approx(0.1 - 80.0)
    assert aggregate.exclusive_change_ms == pytest.approx(0.05 - 0.5)
    assert comparison.operation_changes == [scan]
    assert comparison.explaining is scan
    # Node time went from 80.5 to 0.15 ms; the scan accounts for 79.9 of the 80.35.
    assert comparison.node_change_ms == pytest.approx(0.15 - 80.5)
    assert comparison.explained_share == pytest.approx(79.9 / 80.35)
    assert (comparison.before_ms, comparison.after_ms) == (80.6, 0.2)
    assert comparison.speedup == pytest.approx(403)
    assert comparison.related


def test_same_plan_has_no_change() -> None:
    path = NESTLOOP
    before = plan_from_document(json.loads(path.read_text())[0])
    after = plan_from_document(json.loads(path.read_text())[0])
    comparison = compare_plans(before, after)
    assert len(comparison.matched) == len(list(before.walk())) == 16
    assert all(c.matched_by == "path" for c in comparison.changes)
    assert comparison.removed == [] and comparison.added == []
    assert comparison.operation_changes == []
    assert comparison.node_change_ms == 0
    assert comparison.explaining is None
    assert list(changed_nodes(comparison)) == []


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # Self-join: the two scans of orders swapped sides; the aliases pair them.
        (
            node(
                "Hash Join",
                5,
                10,
                node("Seq Scan", 2, 10, **{"Relation Name": "orders", "Alias": "a"}),
                node(
                    "Hash",
                    1,
                    10,
                    node("Seq Scan", 1, 10, **{"Relation Name": "orders", "Alias": "b"}),
                ),
            ),
            node(
                "Hash Join",
                5,
                10,
                node("Seq Scan", 2, 10, **{"Relation Name": "orders", "Alias": "b"}),
                node(
                    "Hash",
                    1,
                    10,
                    node("Seq Scan", 1, 10, **{"Relation Name": "orders", "Alias": "a"}),
                ),
            ),
            {"0": "0", "0.0": "0.1.0", "0.1": "0.1", "0.1.0": "0.0"},
        ),
        # Nested Loop -> Hash Join: the scans pair by relation, the join through them;
        # the new Hash is added.
        (
            node(
                "Nested Loop",
                50,
                10,
                node("Seq Scan", 1, 100, **{"Relation Name": "customers", "Alias": "c"}),
                node(
                    "Index Scan",
                    40,
                    10,
                    **{"Relation Name": "orders", "Alias": "o", "Index Name": "o_pk"},
                ),
            ),
            node(
                "Hash Join",
                9,
                10,
                node("Seq Scan", 5, 1000, **{"Relation Name": "orders", "Alias": "o"}),
                node(
                    "Hash",
                    2,
                    100,
                    node("Seq Scan", 1, 100, **{"Relation Name": "customers", "Alias": "c"}),
                ),
            ),
            {"0": "0", "0.0": "0.1.0", "0.1": "0.0", "+0.1": None},
        ),
        # Seq Scan -> Bitmap Heap Scan over a new Bitmap Index Scan.
        (
            node("Seq Scan", 30, 5, **{"Relation Name": "t", "Alias": "t"}),
            node(
                "Bitmap Heap Scan",
                1,
                5,
                node("Bitmap Index Scan", 0.5, 5, **{"Index Name": "t_x_idx"}),
                **{"Relation Name": "t", "Alias": "t"},
            ),
            {"0": "0", "+0.0": None},
        ),
        # A Sort that the new plan no longer needs is removed, its child still pairs.
        (
            node(
                "Limit",
                20,
                10,
                node("Sort", 19, 10, node("Seq Scan", 10, 1000, **{"Relation Name": "t"})),
            ),
            node(
                "Limit",
                0.5,
                10,
                node("Index Scan", 0.4, 10, **{"Relation Name": "t", "Index Name": "t_ts"}),
            ),
            {"0": "0", "0.0": None, "0.0.0": "0.0"},
        ),
    ],
    ids=["self-join", "nested-loop-to-hash-join", "bitmap-scan", "sort-removed"],
)
def test_matching(
    before: dict[str, Any], after: dict[str, Any], expected: dict[str, str | None]
) -> None:
    assert pairs(plan(before), plan(after)) == expected


def test_removed_node_can_explain_the_change() -> None:
    comparison = compare_plans(
        plan(
            node(
                "Limit",
                20,
                10,
                node("Sort", 19, 10, node("Seq Scan", 10, 1000, **{"Relation Name": "t"})),
            )
        ),
        plan(
            node(
                "Limit",
                0.5,
                10,
                node("Index Scan", 0.4, 10, **{"Relation Name": "t", "Index Name": "t_ts"}),
            )
        ),
    )
    # Sort: 9 ms of its own, gone; Seq Scan 10 -> Index Scan 0.4 (-9.6 ms): the scan wins.
    explaining = comparison.explaining
    assert explaining is not None and explaining.before is not None
    assert explaining.before.node_type == "Seq Scan"
    assert [c.node.node_type for c in comparison.removed] == ["Sort"]
    assert comparison.removed[0].exclusive_change_ms == pytest.approx(-9.0)


def test_unrelated_plans_are_not_related() -> None:
    one = plan(node("Seq Scan", 1, 1, **{"Relation Name": "orders"}))
    other = plan(node("Seq Scan", 1, 1, **{"Relation Name": "customers"}))
    assert not compare_plans(one, other).related
    assert compare_plans(one, one).related


def test_corpus_pair_nested_loop_off() -> None:
    """52 and 53: one JOB query with enable_nestloop on (27.3 s) and off (4.1 s)."""
    before = plan_from_document(json.loads(NESTLOOP.read_text())[0])
    after = plan_from_document(json.loads(NO_NESTLOOP.read_text())[0])
    comparison = compare_plans(before, after)
    assert (comparison.before_ms, comparison.after_ms) == (27251.175, 4122.725)
    assert comparison.related
    # Every node reading a relation in both plans is paired with the same relation.
    for change in comparison.matched:
        assert change.before is not None and change.after is not None
        assert change.before.relation == change.after.relation
    cast_info = next(c for c in comparison.matched if c.node.relation == "cast_info")
    assert cast_info.after is not None and cast_info.after.relation == "cast_info"
    assert not cast_info.operation_changed
    # The 13.86 s the Nested Loop at 0.0.0.0 spent itself (rescanning a Materialize 8,790
    # times) is what the second plan no longer does.
    explaining = comparison.explaining
    assert explaining is not None and explaining.before is not None
    assert explaining.before.path == "0.0.0.0"
    assert explaining.before.node_type == "Nested Loop"
    assert explaining.exclusive_change_ms < -13_000


# -- the command ---------------------------------------------------------------------------


def write(tmp_path: Path, name: str, root: dict[str, Any], execution_ms: float) -> str:
    path = tmp_path / name
    path.write_text(
        json.dumps([{"Plan": root, "Planning Time": 0.1, "Execution Time": execution_ms}])
    )
    return str(path)


def test_compare_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = write(tmp_path, "before.json", BEFORE, 80.6)
    after = write(tmp_path, "after.json", AFTER, 0.2)
    assert main(["plan", "--compare", before, after, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["format"] == "explainer-plan-comparison"
    assert document["version"] == 1
    assert (document["before"]["execution_ms"], document["after"]["execution_ms"]) == (80.6, 0.2)
    assert (document["before"]["source"], document["after"]["source"]) == (before, after)
    assert document["change_ms"] == -80.4
    assert document["counts"] == {"matched": 2, "operation_changed": 1, "removed": 0, "added": 0}
    explaining = document["explaining"]
    assert explaining["before"]["node_type"] == "Seq Scan"
    assert explaining["after"]["node_type"] == "Index Scan"
    assert explaining["after"]["index_name"] == "orders_customer_id_idx"
    assert explaining["exclusive_change_ms"] == -79.9
    assert explaining["share"] == round(79.9 / 80.35, 4)
    kinds = [(c["kind"], c["before"]["path"], c["after"]["path"]) for c in document["changes"]]
    assert kinds == [("matched", "0", "0"), ("matched", "0.0", "0.0")]


def test_compare_text_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = write(tmp_path, "before.json", BEFORE, 80.6)
    after = write(tmp_path, "after.json", AFTER, 0.2)
    assert main(["plan", "--compare", before, after]) == 0
    out = capsys.readouterr().out
    assert "80.6 ms → 0.200 ms" in out
    assert "explained by: Seq Scan on orders → Index Scan using" in out
    assert main(["plan", "--compare", before, after, "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Plan comparison")
    assert "| Seq Scan on orders → Index Scan using orders_customer_id_idx on orders |" in out


def test_compare_same_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = write(tmp_path, "before.json", BEFORE, 80.6)
    assert main(["plan", "--compare", before, before, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["change_ms"] == 0
    assert document["explaining"] is None
    assert all(c["exclusive_change_ms"] == 0 for c in document["changes"])
    assert main(["plan", "--compare", before, before]) == 0
    assert "the plans are the same" in capsys.readouterr().out


def test_compare_unrelated_plans_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = write(tmp_path, "before.json", BEFORE, 80.6)
    code = main(
        ["plan", "--compare", before, str(CORPUS / "02_pev2_three-joins-missing-index.json")]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "different queries" in lines[0]


def test_compare_bad_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = write(tmp_path, "before.json", BEFORE, 80.6)
    junk = tmp_path / "junk.txt"
    junk.write_text("not a plan\n")
    assert main(["plan", "--compare", before, str(junk)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(junk) in err[0]


def test_compare_fail_on_reads_the_second_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = write(tmp_path, "before.json", BEFORE, 80.6)
    after = write(tmp_path, "after.json", AFTER, 0.2)
    # The first plan has a high seq-scan-selective finding: comparing towards it fails.
    assert main(["plan", "--compare", after, before, "--fail-on", "high", "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert "seq-scan-selective" in [f["rule"] for f in document["findings"]]
