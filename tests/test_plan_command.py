"""`explainer plan FILE` and `explainer rules`: a plan analyzed with no database at all."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from explainer.cli import main
from explainer.rules import RULES

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "plans"
THREE_JOINS = CORPUS / "02_pev2_three-joins-missing-index.json"
PARALLEL = CORPUS / "06_pev2_parallel_workers-launched-lt-planned.json"
NO_ANALYZE = CORPUS / "09_pev2_json-oneline_no-analyze.json"

# An Aggregate over a Seq Scan that reads 100,000 rows to keep 120: 80 of the 80.5 ms are
# the scan's, and seq-scan-selective fires on it.
SEQ_SCAN_PLAN: list[dict[str, Any]] = [
    {
        "Plan": {
            "Node Type": "Aggregate",
            "Strategy": "Plain",
            "Startup Cost": 2000.0,
            "Total Cost": 2000.01,
            "Plan Rows": 1,
            "Plan Width": 8,
            "Actual Startup Time": 80.5,
            "Actual Total Time": 80.5,
            "Actual Rows": 1,
            "Actual Loops": 1,
            "Shared Hit Blocks": 100,
            "Shared Read Blocks": 1000,
            "Plans": [
                {
                    "Node Type": "Seq Scan",
                    "Parent Relationship": "Outer",
                    "Relation Name": "orders",
                    "Alias": "orders",
                    "Startup Cost": 0.0,
                    "Total Cost": 1990.0,
                    "Plan Rows": 100,
                    "Plan Width": 0,
                    "Actual Startup Time": 0.02,
                    "Actual Total Time": 80.0,
                    "Actual Rows": 120,
                    "Actual Loops": 1,
                    "Filter": "(customer_id = 42)",
                    "Rows Removed by Filter": 99880,
                    "Shared Hit Blocks": 100,
                    "Shared Read Blocks": 1000,
                }
            ],
        },
        "Planning Time": 0.2,
        "Execution Time": 80.6,
    }
]

TRIVIAL_PLAN = [
    {
        "Plan": {
            "Node Type": "Result",
            "Startup Cost": 0.0,
            "Total Cost": 0.01,
            "Plan Rows": 1,
            "Plan Width": 4,
            "Actual Startup Time": 0.001,
            "Actual Total Time": 0.002,
            "Actual Rows": 1,
            "Actual Loops": 1,
        },
        "Planning Time": 0.01,
        "Execution Time": 0.01,
    }
]


def write_plan(tmp_path: Path, document: Any, name: str = "plan.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["plan", *args, "--format", "json"]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def nodes(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every node of a plan JSON tree by path."""
    found = {tree["path"]: tree}
    for child in tree["children"]:
        found.update(nodes(child))
    return found


def assert_one_line_error(capsys: pytest.CaptureFixture[str], code: int, expected: str) -> str:
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("explainer: error: ")
    assert expected in lines[0], lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""
    return lines[0]


# -- JSON --------------------------------------------------------------------------------


def test_json_header_tree_and_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(capsys, write_plan(tmp_path, SEQ_SCAN_PLAN))
    assert document["format"] == "explainer-plan"
    assert document["version"] == 1
    assert document["execution_ms"] == 80.6
    assert document["planning_ms"] == 0.2
    assert document["node_count"] == 2
    root = document["plan"]
    assert (root["path"], root["node_type"], root["relation"]) == ("0", "Aggregate", None)
    assert root["inclusive_ms"] == 80.5
    assert root["exclusive_ms"] == 0.5  # 80.5 - 80.0
    scan = root["children"][0]
    assert scan["path"] == "0.0"
    assert scan["relation"] == "orders"
    assert scan["children"] == []
    assert (scan["rows"], scan["loops"], scan["total_rows"], scan["planned_rows"]) == (
        120,
        1,
        120,
        100,
    )
    assert scan["estimate_factor"] == 1.2  # 120 actual / 100 planned
    assert scan["exclusive_ms"] == 80.0
    assert scan["share_of_total"] == round(80.0 / 80.6, 4)
    assert scan["rows_removed_by_filter"] == 99880
    # Only non-zero counters; the scan did all the reading, so the Aggregate's own is {}.
    assert scan["buffers"] == {"shared_hit": 100, "shared_read": 1000}
    assert scan["exclusive_buffers"] == {"shared_hit": 100, "shared_read": 1000}
    assert root["buffers"] == {"shared_hit": 100, "shared_read": 1000}
    assert root["exclusive_buffers"] == {}
    # The finding is listed with the plan and under the node it points at, and only there.
    rules = [f["rule"] for f in document["findings"]]
    assert "seq-scan-selective" in rules
    assert [f["rule"] for f in scan["findings"]].count("seq-scan-selective") == 1
    assert all(f["node"] == "0.0" for f in scan["findings"])
    assert "seq-scan-selective" not in [f["rule"] for f in root["findings"]]


def test_json_figures_of_a_corpus_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """Figures checked by hand against 02_pev2_three-joins-missing-index.json."""
    document = run_json(capsys, str(THREE_JOINS))
    assert document["execution_ms"] == 6.248
    assert document["planning_ms"] == 1.206
    assert document["node_count"] == 9
    by_path = nodes(document["plan"])
    assert list(by_path) == [
        "0",
        "0.0",
        "0.0.0",
        "0.0.0.0",
        "0.0.0.1",
        "0.0.1",
        "0.0.1.0",
        "0.0.1.1",
        "0.0.1.1.0",
    ]
    sort = by_path["0"]
    assert sort["node_type"] == "Sort"
    assert sort["exclusive_ms"] == 0.512  # 6.088 - 5.576 (the Nested Loop)
    assert sort["exclusive_buffers"] == {"shared_hit": 3}  # 363 - 360
    join = by_path["0.0.1"]
    assert join["node_type"] == "Hash Join"
    assert join["label"] == "Hash Right Join"
    assert join["inclusive_ms"] == 5.42
    assert join["exclusive_ms"] == 2.433  # 5.42 - 1.962 (Seq Scan answer) - 1.025 (Hash)
    assert join["share_of_total"] == round(2.433 / 6.248, 4)
    question = by_path["0.0.1.1.0"]
    assert question["relation"] == "question"
    assert (question["rows"], question["planned_rows"]) == (63, 75)
    assert question["estimate_factor"] == 0.84  # 63 / 75: over-estimated
    assert question["rows_removed_by_filter"] == 2637
    assert question["buffers"] == {"shared_hit": 194}
    assert by_path["0.0.1.1"]["exclusive_buffers"] == {}  # the Hash read nothing itself


def test_json_parallel_plan_divides_by_processes(capsys: pytest.CaptureFixture[str]) -> None:
    """06: Gather with 2 workers launched; the Parallel Seq Scan ran in 3 processes."""
    by_path = nodes(run_json(capsys, str(PARALLEL))["plan"])
    scan = by_path["0.0.0.0"]
    assert scan["label"] == "Parallel Seq Scan on lineitem"
    assert (scan["rows"], scan["loops"]) == (1962085, 3)
    assert scan["total_rows"] == 1962085 * 3
    assert scan["parallel_processes"] == 3
    assert scan["inclusive_ms"] == 344.447  # 344.447 x 3 loops / 3 processes
    assert by_path["0.0.0"]["exclusive_ms"] == 137.943  # 482.39 - 344.447
    assert by_path["0.0"]["exclusive_ms"] == 4.038  # Gather: 486.428 - 482.39


@pytest.mark.parametrize(
    ("name", "node_count", "execution_ms", "root"),
    [
        # Figures read off the files: the root line and the Execution Time / Total Runtime.
        ("44_pev2_text-in-psql-unicode-frame.txt", 3, 1.922, "Nested Loop"),
        (
            "49_pgexplain_yaml_index-only-scan_1.7M-filtered.yaml.txt",
            1,
            469.079,
            "Index Only Scan",
        ),
        ("50_pgexplain_xml_three-nodes.xml", 3, 0.126, "Index Scan"),
    ],
)
def test_text_yaml_and_xml_plans(
    capsys: pytest.CaptureFixture[str], name: str, node_count: int, execution_ms: float, root: str
) -> None:
    document = run_json(capsys, str(CORPUS / name))
    assert document["node_count"] == node_count
    assert document["execution_ms"] == execution_ms
    assert document["plan"]["node_type"] == root


def test_json_plan_without_analyze(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(capsys, str(NO_ANALYZE))
    assert document["analyzed"] is False
    assert document["execution_ms"] is None
    root = document["plan"]
    assert root["rows"] is None and root["estimate_factor"] is None
    assert root["exclusive_ms"] is None and root["share_of_total"] is None
    assert root["planned_rows"] == 121


def test_never_executed_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    """01: the inner Materialize/Index Scan of the Nested Loop never ran (loops 0)."""
    by_path = nodes(
        run_json(capsys, str(CORPUS / "01_pev2_simple-join_verbose-buffers.json"))["plan"]
    )
    never = [path for path, node in by_path.items() if node["never_executed"]]
    assert never == ["0.1", "0.1.0"]
    assert by_path["0.1"]["estimate_factor"] is None


# -- text, Markdown, output file ---------------------------------------------------------


def test_text_is_the_tree_in_explain_order_with_findings_under_nodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(THREE_JOINS)]) == 0
    out = capsys.readouterr().out
    # The heaviest node is named in the summary, then the tree follows EXPLAIN's order.
    assert "slowest node: Hash Right Join (0.0.1)" in out
    labels = [
        "Sort",
        "Nested Loop Left Join",
        "Seq Scan on rel_users_exams",
        "Seq Scan on exam exam_1",
        "Hash Right Join",
        "Seq Scan on answer answer_1",
        "Seq Scan on question question_1",
    ]
    tree = out[out.index("exclusive") :]
    positions = [tree.index(label) for label in labels]
    assert positions == sorted(positions)
    assert "2.433 ms" in out and "39%" in out  # the join's own time and share

    assert main(["plan", write_plan(tmp_path, SEQ_SCAN_PLAN)]) == 0
    lines = capsys.readouterr().out.splitlines()
    scan_line = next(i for i, line in enumerate(lines) if "→ Seq Scan on orders" in line)
    assert "80.0 ms" in lines[scan_line] and "120 x 1" in lines[scan_line]
    assert "seq-scan-selective" in "\n".join(lines[scan_line + 1 :])
    assert not any("seq-scan-selective" in line for line in lines[: scan_line + 1])


def test_markdown_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.md"
    source = write_plan(tmp_path, SEQ_SCAN_PLAN)
    assert main(["plan", source, "--format", "markdown", "-o", str(target)]) == 0
    assert capsys.readouterr().out == ""
    text = target.read_text()
    assert text.startswith("# explainer plan")
    assert "| `0.0` " in text and "Seq Scan on orders" in text
    assert "`seq-scan-selective`" in text

    target = tmp_path / "out.txt"
    assert main(["plan", source, "-o", str(target)]) == 0
    assert "Seq Scan on orders" in target.read_text()


def test_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.dumps(SEQ_SCAN_PLAN).encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    document = run_json(capsys, "-")
    assert document["source"] == "<stdin>"
    assert document["plan"]["children"][0]["relation"] == "orders"


def test_gzip_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gzip

    path = tmp_path / "plan.json.gz"
    path.write_bytes(gzip.compress(json.dumps(SEQ_SCAN_PLAN).encode()))
    assert run_json(capsys, str(path))["execution_ms"] == 80.6


# -- exit codes --------------------------------------------------------------------------


def test_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = write_plan(tmp_path, SEQ_SCAN_PLAN)
    # The scan is 99% of the query: seq-scan-selective is high.
    assert main(["plan", seq, "--fail-on", "high", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["findings"]  # the report is still written
    assert main(["plan", seq, "--format", "json"]) == 0
    capsys.readouterr()
    trivial = write_plan(tmp_path, TRIVIAL_PLAN, "trivial.json")
    assert main(["plan", trivial, "--fail-on", "low", "--format", "json"]) == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("hello, this is not a plan\n", "not an EXPLAIN plan"),
        ("", "empty"),
        ('{"rows": [1, 2]}', "'Plan'"),
        ('[{"Plan": {"Node Type": "Seq Scan", "Plans": 3}}]', "'Plans'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    line = assert_one_line_error(capsys, main(["plan", str(path)]), expected)
    assert str(path) in line  # the line names the file


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["plan", "/no/such/plan.json"], "cannot read /no/such/plan.json: no such file"),
        (["plan"], "give a plan FILE"),
        (["plan", "a.json", "--compare", "b.json", "c.json"], "not both"),
        (["plan", "--compare", "-", "-"], "stdin"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str], expected: str) -> None:
    assert_one_line_error(capsys, main(args), expected)


def test_directory_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(capsys, main(["plan", str(tmp_path)]), "is a directory")


# -- explainer rules ---------------------------------------------------------------------


def test_rules_lists_every_rule_with_its_title(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for rule in RULES:
        line = next((ln for ln in lines if ln.startswith(rule.id + " ")), None)
        assert line is not None, rule.id
        assert rule.title in line
    assert f"{len(RULES)} plan rules" in lines[-1]


def test_rules_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in document["rules"]] == [r.id for r in RULES]
    assert [r["title"] for r in document["rules"]] == [r.title for r in RULES]
    assert [r["trigger"] for r in document["rules"]] == [r.trigger for r in RULES]
    assert "seq-scan-selective" in [r["id"] for r in document["rules"]]


def test_rules_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    for rule in RULES:
        assert f"| `{rule.id}` | {rule.title} |" in out


def test_json_io_timing_and_removed_rows(capsys: pytest.CaptureFixture[str]) -> None:
    # Corpus 33: the Sort and the Append show I/O Timings read=1116.067, the scans 39.730
    # and 1076.337: the reads are the scans' own.
    sort = run_json(capsys, str(CORPUS / "33_pev2_external-sort_work_mem-1MB_psql-noise.txt"))
    by_path = nodes(sort["plan"])
    assert (by_path["0"]["io_read_ms"], by_path["0"]["exclusive_io_read_ms"]) == (1116.067, 0.0)
    assert by_path["0.0.1"]["exclusive_io_read_ms"] == 1076.337
    # Corpus 41: the bitmap heap scan kept 124,468 rows and its recheck threw away
    # 14,687,029: 99.16% of the 14,811,497 rows it read.
    lossy = nodes(
        run_json(capsys, str(CORPUS / "41_pev2_initplan-lossy-bitmap_14M-rechecked.txt"))["plan"]
    )
    scan = lossy["0.0.0"]
    assert scan["rows_removed_by_index_recheck"] == 14_687_029
    assert scan["removed_share"] == round(14_687_029 / 14_811_497, 4)
    # 10 rows estimated, 124,468 found: a factor of 12,446.8, kept to 4 significant digits.
    assert lossy["0.1"]["estimate_factor"] == 12450.0
