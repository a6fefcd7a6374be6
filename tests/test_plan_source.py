"""Tests of the plan entry point: cleaning pasted plans, detecting the format, and reading
JSON, YAML, XML and TEXT plans into the same figures.

Expected outputs are written by hand from the inputs beside them; corpus figures were read
from the files (cited by number, see shared/corpus/plans/SOURCES.md). The PG15_* strings are
psql's own output of one small query in the four formats (PostgreSQL 15, TIMING OFF so that
every figure is the same in each run), pasted with psql's frame and a ``SET`` before it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from explainer.plan import (
    Plan,
    PlanFormat,
    PlanParseError,
    clean_plan_text,
    detect_format,
    parse_json_plan,
    parse_plan,
)

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "plans"
CORPUS_FILES = sorted(CORPUS.glob("[0-9][0-9]_*"))


def corpus(number: int) -> Path:
    (path,) = CORPUS.glob(f"{number:02d}_*")
    return path


PG15_TEXT = """\
SET
                                             QUERY PLAN
----------------------------------------------------------------------------------------------------
 Sort  (cost=0.27..0.29 rows=9 width=4) (actual rows=9 loops=1)
   Sort Key: g DESC
   Sort Method: quicksort  Memory: 25kB
   ->  Function Scan on generate_series g  (cost=0.00..0.13 rows=9 width=4) (actual rows=9 loops=1)
         Filter: (g <> 7)
         Rows Removed by Filter: 1
 Settings: work_mem = '8MB'
(7 rows)

"""

PG15_JSON = """\
SET
                  QUERY PLAN
-----------------------------------------------
 [                                            +
   {                                          +
     "Plan": {                                +
       "Node Type": "Sort",                   +
       "Parallel Aware": false,               +
       "Async Capable": false,                +
       "Startup Cost": 0.27,                  +
       "Total Cost": 0.29,                    +
       "Plan Rows": 9,                        +
       "Plan Width": 4,                       +
       "Actual Rows": 9,                      +
       "Actual Loops": 1,                     +
       "Sort Key": ["g DESC"],                +
       "Sort Method": "quicksort",            +
       "Sort Space Used": 25,                 +
       "Sort Space Type": "Memory",           +
       "Plans": [                             +
         {                                    +
           "Node Type": "Function Scan",      +
           "Parent Relationship": "Outer",    +
           "Parallel Aware": false,           +
           "Async Capable": false,            +
           "Function Name": "generate_series",+
           "Alias": "g",                      +
           "Startup Cost": 0.00,              +
           "Total Cost": 0.13,                +
           "Plan Rows": 9,                    +
           "Plan Width": 4,                   +
           "Actual Rows": 9,                  +
           "Actual Loops": 1,                 +
           "Filter": "(g <> 7)",              +
           "Rows Removed by Filter": 1        +
         }                                    +
       ]                                      +
     },                                       +
     "Settings": {                            +
       "work_mem": "8MB"                      +
     },                                       +
     "Triggers": [                            +
     ]                                        +
   }                                          +
 ]
(1 row)

"""

PG15_YAML = """\
SET
                QUERY PLAN
------------------------------------------
 - Plan:                                 +
     Node Type: "Sort"                   +
     Parallel Aware: false               +
     Async Capable: false                +
     Startup Cost: 0.27                  +
     Total Cost: 0.29                    +
     Plan Rows: 9                        +
     Plan Width: 4                       +
     Actual Rows: 9                      +
     Actual Loops: 1                     +
     Sort Key:                           +
       - "g DESC"                        +
     Sort Method: "quicksort"            +
     Sort Space Used: 25                 +
     Sort Space Type: "Memory"           +
     Plans:                              +
       - Node Type: "Function Scan"      +
         Parent Relationship: "Outer"    +
         Parallel Aware: false           +
         Async Capable: false            +
         Function Name: "generate_series"+
         Alias: "g"                      +
         Startup Cost: 0.00              +
         Total Cost: 0.13                +
         Plan Rows: 9                    +
         Plan Width: 4                   +
         Actual Rows: 9                  +
         Actual Loops: 1                 +
         Filter: "(g <> 7)"              +
         Rows Removed by Filter: 1       +
   Settings:                             +
     work_mem: "8MB"                     +
   Triggers:
(1 row)

"""

PG15_XML = """\
SET
                          QUERY PLAN
--------------------------------------------------------------
 <explain xmlns="http://www.postgresql.org/2009/explain">    +
   <Query>                                                   +
     <Plan>                                                  +
       <Node-Type>Sort</Node-Type>                           +
       <Parallel-Aware>false</Parallel-Aware>                +
       <Async-Capable>false</Async-Capable>                  +
       <Startup-Cost>0.27</Startup-Cost>                     +
       <Total-Cost>0.29</Total-Cost>                         +
       <Plan-Rows>9</Plan-Rows>                              +
       <Plan-Width>4</Plan-Width>                            +
       <Actual-Rows>9</Actual-Rows>                          +
       <Actual-Loops>1</Actual-Loops>                        +
       <Sort-Key>                                            +
         <Item>g DESC</Item>                                 +
       </Sort-Key>                                           +
       <Sort-Method>quicksort</Sort-Method>                  +
       <Sort-Space-Used>25</Sort-Space-Used>                 +
       <Sort-Space-Type>Memory</Sort-Space-Type>             +
       <Plans>                                               +
         <Plan>                                              +
           <Node-Type>Function Scan</Node-Type>              +
           <Parent-Relationship>Outer</Parent-Relationship>  +
           <Parallel-Aware>false</Parallel-Aware>            +
           <Async-Capable>false</Async-Capable>              +
           <Function-Name>generate_series</Function-Name>    +
           <Alias>g</Alias>                                  +
           <Startup-Cost>0.00</Startup-Cost>                 +
           <Total-Cost>0.13</Total-Cost>                     +
           <Plan-Rows>9</Plan-Rows>                          +
           <Plan-Width>4</Plan-Width>                        +
           <Actual-Rows>9</Actual-Rows>                      +
           <Actual-Loops>1</Actual-Loops>                    +
           <Filter>(g &lt;&gt; 7)</Filter>                   +
           <Rows-Removed-by-Filter>1</Rows-Removed-by-Filter>+
         </Plan>                                             +
       </Plans>                                              +
     </Plan>                                                 +
     <Settings>                                              +
       <work_mem>8MB</work_mem>                              +
     </Settings>                                             +
     <Triggers>                                              +
     </Triggers>                                             +
   </Query>                                                  +
 </explain>
(1 row)

"""


# --------------------------------------------------------------------------------------
# detect_format on every corpus file

# Files whose format is not what their extension says: framed or quoted JSON, YAML, XML.
_CORPUS_FORMATS = {
    10: PlanFormat.JSON,  # pgAdmin CSV field, doubled quotes
    11: PlanFormat.JSON,  # psql unicode frame with ↵ marks
    49: PlanFormat.YAML,  # psql frame, + marks, CRLF, prompt before
    50: PlanFormat.XML,  # psql + marks
    51: PlanFormat.JSON,  # psql frame, + marks
}


def _expected_format(path: Path) -> PlanFormat:
    number = int(path.name[:2])
    if number in _CORPUS_FORMATS:
        return _CORPUS_FORMATS[number]
    return PlanFormat.JSON if path.suffix == ".json" else PlanFormat.TEXT


def test_corpus_is_all_there() -> None:
    assert len(CORPUS_FILES) == 60


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name[:2])
def test_detect_format_of_corpus(path: Path) -> None:
    assert detect_format(path.read_text(encoding="utf-8")) is _expected_format(path)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name[:2])
def test_cleaning_keeps_every_plan_line(path: Path) -> None:
    """Cleaning drops frames and noise, never a node: every ``->`` of the file survives
    (no corpus file has an arrow outside its plan), and cleaning twice changes nothing."""
    raw = path.read_text(encoding="utf-8")
    cleaned = clean_plan_text(raw)
    assert cleaned.count("->") == raw.count("->")
    assert clean_plan_text(cleaned) == cleaned


# --------------------------------------------------------------------------------------
# clean_plan_text on small hand-written pastes

_PLAIN = "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n  Filter: (a = 1)"

_CLEANING_CASES: list[tuple[str, str, str]] = [
    ("bare plan is unchanged", _PLAIN, _PLAIN),
    (
        "psql default: header, dashes, one-space padding, footer, prompt and timing",
        "db=> explain select * from t where a = 1;\n"
        "                       QUERY PLAN\n"
        "--------------------------------------------------\n"
        " Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n"
        "   Filter: (a = 1)\n"
        "(2 rows)\n"
        "\n"
        "Time: 0.512 ms\n"
        "db=> \n",
        _PLAIN,
    ),
    (
        "localized footer, CRLF, BOM",
        "\ufeff Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\r\n   Filter: (a = 1)\r\n"
        "(2 lignes)\r\n",
        _PLAIN,
    ),
    (
        "ASCII border 2: the frame goes, the || operator and a quoted | stay",
        "+--------------------------------------------------------+\n"
        "|                       QUERY PLAN                       |\n"
        "+--------------------------------------------------------+\n"
        "| Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)        |\n"
        "|   Filter: ((a || b) = 'x|y'::text)                     |\n"
        "+--------------------------------------------------------+\n"
        "(2 rows)\n",
        "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n  Filter: ((a || b) = 'x|y'::text)",
    ),
    (
        "a || operator without any frame is left alone",
        "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n  Filter: ((a || b) = 'ab'::text)",
        "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n  Filter: ((a || b) = 'ab'::text)",
    ),
    (
        "unicode border 2",
        "┌─────────────────────────────────────────────────┐\n"
        "│                   QUERY PLAN                    │\n"
        "├─────────────────────────────────────────────────┤\n"
        "│ Seq Scan on t  (cost=0.00..1.00 rows=1 width=4) │\n"
        "│   Filter: (a = 1)                               │\n"
        "└─────────────────────────────────────────────────┘\n"
        "(2 rows)\n",
        _PLAIN,
    ),
    (
        "expanded mode (\\x): one record per line",
        "-[ RECORD 1 ]------------------------------------------------\n"
        "QUERY PLAN | Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n"
        "-[ RECORD 2 ]------------------------------------------------\n"
        "QUERY PLAN |   Filter: (a = 1)\n",
        _PLAIN,
    ),
    (
        "every line in double quotes (pgAdmin), inner quotes doubled as CSV does",
        '"Seq Scan on ""T"" t  (cost=0.00..1.00 rows=1 width=4)"\n"  Filter: (a = \'x\'::text)"\n',
        "Seq Scan on \"T\" t  (cost=0.00..1.00 rows=1 width=4)\n  Filter: (a = 'x'::text)",
    ),
    (
        "every line in single quotes: the 'x'::text literal keeps its quotes",
        "'Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)'\n'  Filter: (a = 'x'::text)'\n",
        "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n  Filter: (a = 'x'::text)",
    ),
    (
        "a quoted literal ending one line is not a wrapper when other lines have none",
        "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n  Filter: (a = 'x'::text)\n  Output: 'y'",
        "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n  Filter: (a = 'x'::text)\n  Output: 'y'",
    ),
    (
        "stray quote at the end of the last line",
        'Result  (cost=0.00..0.01 rows=1 width=4)\nPlanning Time: 0.020 ms"\n',
        "Result  (cost=0.00..0.01 rows=1 width=4)\nPlanning Time: 0.020 ms",
    ),
    (
        "whole JSON document as one CSV field with doubled quotes",
        '"[\n  {""Plan"": {""Node Type"": ""Result""}}\n]"',
        '[\n  {"Plan": {"Node Type": "Result"}}\n]',
    ),
    (
        "JSON in a psql cell: + marks, the widest line has its + right after the text",
        "        QUERY PLAN\n"
        "--------------------------\n"
        " [                       +\n"
        '   {"Plan": {            +\n'
        '     "Node Type": "Result"+\n'
        "   }}                    +\n"
        " ]\n"
        "(1 row)\n",
        '[\n  {"Plan": {\n    "Node Type": "Result"\n  }}\n]',
    ),
    (
        "JSON with psql's unicode ↵ marks",
        '[                 ↵\n  {"Plan": {}}    ↵\n]\n',
        '[\n  {"Plan": {}}\n]',
    ),
    (
        "auto_explain TEXT entry in a stderr log: the tab-indented lines after plan:",
        "2024-01-01 00:00:00 UTC [1] LOG:  duration: 1.234 ms  plan:\n"
        "\tQuery Text: select * from t where a = 1\n"
        "\tSeq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n"
        "\t  Filter: (a = 1)\n"
        "2024-01-01 00:00:01 UTC [1] LOG:  statement: select 1\n",
        _PLAIN,
    ),
    (
        "auto_explain JSON entry keeps its Query Text key",
        "2024-01-01 00:00:00 UTC [1] LOG:  duration: 1.234 ms  plan:\n"
        "\t{\n"
        '\t  "Query Text": "select 1",\n'
        '\t  "Plan": {"Node Type": "Result"}\n'
        "\t}\n"
        "2024-01-01 00:00:01 UTC [1] LOG:  checkpoint starting: time\n",
        '{\n  "Query Text": "select 1",\n  "Plan": {"Node Type": "Result"}\n}',
    ),
    (
        "a terminal's hard wrap at 50 columns is joined back without adding a space",
        "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4) (a\n"
        "ctual time=0.010..0.020 rows=1 loops=1)\n"
        "  Filter: (a = 1)\n"
        "  Rows Removed by Filter: 12345678901234567890123\n",
        "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4) (actual time=0.010..0.020 rows=1 "
        "loops=1)\n  Filter: (a = 1)\n  Rows Removed by Filter: 12345678901234567890123",
    ),
    (
        "comments and SQL before a plan without header",
        "-- from the mailing list\n# note\n\n"
        "Seq Scan on t  (cost=0.00..1.00 rows=1 width=4)\n  Filter: (a = 1)\n\n",
        _PLAIN,
    ),
    (
        "COSTS OFF plan without ANALYZE: found by its node name",
        "postgres=# explain (costs off) select * from t where a = 1;\n"
        "Seq Scan on t\n  Filter: (a = 1)\n",
        "Seq Scan on t\n  Filter: (a = 1)",
    ),
]


@pytest.mark.parametrize(
    ("source", "expected"),
    [case[1:] for case in _CLEANING_CASES],
    ids=[case[0] for case in _CLEANING_CASES],
)
def test_clean_plan_text(source: str, expected: str) -> None:
    assert clean_plan_text(source) == expected


# --------------------------------------------------------------------------------------
# Corpus plans read fully (figures from the files)


def test_corpus_10_pgadmin_doubled_quotes() -> None:
    plan = parse_plan(corpus(10).read_bytes())
    nodes = list(plan.walk())
    assert [n.node_type for n in nodes] == ["ModifyTable", "Seq Scan"]
    root, scan = nodes
    assert root.operation == "Delete"
    assert root.relation == "toto123456789"
    assert root.total_cost == 72124.0
    assert scan.plan_rows == 5000000
    assert scan.raw["Output"] == ["ctid"]
    assert plan.planning_ms == 0.041
    assert plan.analyzed is False
    assert plan.settings == {}


def test_corpus_11_json_in_unicode_psql_frame() -> None:
    plan = parse_plan(corpus(11).read_text(encoding="utf-8"))
    nodes = list(plan.walk())
    assert [(n.node_type, n.relation) for n in nodes] == [
        ("Nested Loop", None),
        ("Seq Scan", "users"),
        ("Seq Scan", "part_0"),
    ]
    assert plan.root.actual_total_ms == 2.114
    assert plan.root.actual_rows == 15
    assert plan.execution_ms == 2.123
    assert plan.planning_ms == 0.042
    assert nodes[1].filter == "(username = 'depesz'::text)"
    assert nodes[1].rows_removed_by_filter == 1231
    assert nodes[2].rows_removed_by_filter == 13205
    # Nested Loop 2.114 - 0.078 - 2.034 = 0.002 ms of its own.
    assert plan.root.exclusive_ms == pytest.approx(0.002)


def test_corpus_49_yaml_in_psql_frame() -> None:
    plan = parse_plan(corpus(49).read_bytes())
    (node,) = plan.walk()
    assert node.node_type == "Index Only Scan"
    assert node.index_name == "proxies_pkey"
    assert node.total_cost == 84834.89
    assert node.plan_rows == 580011
    assert node.actual_total_ms == 468.509
    assert node.actual_rows == 6450
    assert node.index_cond == "(source = 'tor'::ip.proxysource)"
    assert node.filter == "upper_inf(active_in)"
    assert node.rows_removed_by_filter == 1733831
    assert node.raw["Heap Fetches"] == 0
    assert plan.execution_ms == 469.079  # "Total Runtime" before 9.4
    assert plan.triggers == []


# (file, node count, root type, root actual total ms, root actual rows, execution ms),
# read from the files: the node count is the number of "->" plus the root.
_TEXT_CORPUS = [
    (16, 12, "Limit", 2.544, 5, 2.9),  # every line in double quotes
    (24, 1, "Aggregate", 126980.072, 1, 127241.78),  # every line quoted
    (33, 4, "Sort", 21360.337, 11000000, 22103.138),  # psql session noise, "(23 lignes)"
    (43, 13, "Gather", 10499.144, 1000000, 13948.301),  # hard-wrapped at 83 columns
    (44, 3, "Nested Loop", 1.914, 15, 1.922),  # psql unicode frame
    (48, 5, "Sort", 102386.84, 24935, 102423.136),  # single quotes, "Total runtime"
]


@pytest.mark.parametrize(
    ("number", "count", "root_type", "root_ms", "root_rows", "execution_ms"), _TEXT_CORPUS
)
def test_text_corpus_pastes(
    number: int, count: int, root_type: str, root_ms: float, root_rows: float, execution_ms: float
) -> None:
    plan = parse_plan(corpus(number).read_bytes())
    assert len(list(plan.walk())) == count
    assert plan.root.node_type == root_type
    assert plan.root.actual_total_ms == root_ms
    assert plan.root.actual_rows == root_rows
    assert plan.execution_ms == execution_ms


def test_wrapped_figures_are_joined_back() -> None:
    """Corpus 43 breaks "(actual time=2.56" / "2..9958.864 rows=333333 loops=3)"."""
    plan = parse_plan(corpus(43).read_text(encoding="utf-8"))
    semi_join = plan.root.children[0]
    assert semi_join.join_type == "Semi"
    assert semi_join.actual_startup_ms == 2.562
    assert semi_join.actual_total_ms == 9958.864
    assert semi_join.actual_loops == 3


def test_single_quoted_lines_keep_literals() -> None:
    plan = parse_plan(corpus(48).read_text(encoding="utf-8"))
    scans = [n for n in plan.walk() if n.relation == "artikel_as"]
    assert [n.filter for n in scans] == ["((aas_ask)::text = 'PRE'::text)"]


def _shape(plan: Plan) -> list[tuple[Any, ...]]:
    return [
        (
            n.path,
            n.node_type,
            n.parent_relationship,
            n.subplan_name,
            n.index_name,
            n.startup_cost,
            n.total_cost,
            n.plan_rows,
            n.plan_width,
            n.index_cond,
        )
        for n in plan.walk()
    ]


def test_corpus_50_xml_and_51_json_are_the_same_plan() -> None:
    """Pg::Explain's samples 6.xml and 6.json: one query explained twice (costs equal,
    timings from two runs)."""
    xml_plan = parse_plan(corpus(50).read_text(encoding="utf-8"))
    json_plan = parse_plan(corpus(51).read_text(encoding="utf-8"))
    assert _shape(xml_plan) == _shape(json_plan)
    assert _shape(xml_plan) == [
        ("0", "Index Scan", None, None, "pg_class_oid_index", 8.27, 16.55, 1, 198, "(oid = $1)"),
        (
            "0.0",
            "Index Scan",
            "InitPlan",
            "InitPlan 2 (returns $1)",
            "pg_class_relname_nsp_index",
            0.0,
            8.27,
            1,
            4,
            "(relname = 'pg_class'::name)",
        ),
        ("0.1", "Result", "SubPlan", "SubPlan 1", None, 0.0, 0.01, 1, 0, None),
    ]
    assert [n.actual_total_ms for n in xml_plan.walk()] == [0.078, 0.016, 0.049]
    assert [n.actual_total_ms for n in json_plan.walk()] == [0.053, 0.013, 0.032]
    assert xml_plan.execution_ms == 0.126
    assert json_plan.execution_ms == 0.086
    assert xml_plan.raw["Triggers"] == json_plan.raw["Triggers"] == []
    assert isinstance(xml_plan.root.raw["Actual Loops"], int)


# --------------------------------------------------------------------------------------
# One plan in four formats (PostgreSQL 15's own output) gives one document


def test_json_yaml_xml_of_one_plan_give_the_same_document() -> None:
    plans = {
        name: parse_plan(text)
        for name, text in [("json", PG15_JSON), ("yaml", PG15_YAML), ("xml", PG15_XML)]
    }
    reference = plans["json"]
    assert [n.node_type for n in reference.walk()] == ["Sort", "Function Scan"]
    assert reference.root.raw["Sort Key"] == ["g DESC"]
    assert reference.settings == {"work_mem": "8MB"}
    for plan in plans.values():
        assert [n.raw for n in plan.walk()] == [n.raw for n in reference.walk()]
        assert plan.raw == reference.raw
        assert plan.settings == reference.settings


def test_text_of_the_same_plan_gives_the_same_figures() -> None:
    text_plan = parse_plan(PG15_TEXT)
    json_plan = parse_plan(PG15_JSON)
    fields = (
        "node_type",
        "startup_cost",
        "total_cost",
        "plan_rows",
        "plan_width",
        "actual_rows",
        "actual_loops",
        "filter",
        "rows_removed_by_filter",
        "sort_key",
    )
    for text_node, json_node in zip(text_plan.walk(), json_plan.walk(), strict=True):
        for field in fields:
            assert getattr(text_node, field) == getattr(json_node, field), field
    assert text_plan.settings == json_plan.settings == {"work_mem": "8MB"}


def test_json_path_matches_parse_json_plan() -> None:
    """For clean JSON the entry point is exactly the JSON parser."""
    for number in (1, 6, 8, 58):
        text = corpus(number).read_text(encoding="utf-8")
        assert [n.raw for n in parse_plan(text).walk()] == [
            n.raw for n in parse_json_plan(text).walk()
        ]


# --------------------------------------------------------------------------------------
# XML names and structures (explain.c: ExplainXMLTag, ExplainOpenGroup)

_XML_DETAILS = """\
<explain xmlns="http://www.postgresql.org/2009/explain">
  <Query>
    <Plan>
      <Node-Type>Incremental Sort</Node-Type>
      <Parallel-Aware>false</Parallel-Aware>
      <Startup-Cost>5.50</Startup-Cost>
      <Total-Cost>20.25</Total-Cost>
      <Plan-Rows>100</Plan-Rows>
      <Plan-Width>8</Plan-Width>
      <Actual-Startup-Time>0.100</Actual-Startup-Time>
      <Actual-Total-Time>2.000</Actual-Total-Time>
      <Actual-Rows>100</Actual-Rows>
      <Actual-Loops>1</Actual-Loops>
      <Sort-Key>
        <Item>a</Item>
        <Item>b DESC</Item>
      </Sort-Key>
      <Presorted-Key>
        <Item>a</Item>
      </Presorted-Key>
      <Incremental-Sort-Groups>
        <Group-Count>3</Group-Count>
        <Sort-Methods-Used>
          <Item>quicksort</Item>
        </Sort-Methods-Used>
        <Sort-Space>
          <Average-Sort-Space-Used>26</Average-Sort-Space-Used>
          <Peak-Sort-Space-Used>27</Peak-Sort-Space-Used>
        </Sort-Space>
      </Incremental-Sort-Groups>
      <Incremental-Sort-Groups>
        <Group-Count>1</Group-Count>
        <Sort-Methods-Used>
          <Item>top-N heapsort</Item>
        </Sort-Methods-Used>
        <Sort-Space>
          <Average-Sort-Space-Used>30</Average-Sort-Space-Used>
          <Peak-Sort-Space-Used>30</Peak-Sort-Space-Used>
        </Sort-Space>
      </Incremental-Sort-Groups>
      <Shared-Hit-Blocks>4</Shared-Hit-Blocks>
      <Shared-Read-Blocks>2</Shared-Read-Blocks>
      <I-O-Read-Time>0.250</I-O-Read-Time>
      <Shared-I-O-Write-Time>0.125</Shared-I-O-Write-Time>
      <Workers>
        <Worker>
          <Worker-Number>0</Worker-Number>
          <Actual-Rows>40</Actual-Rows>
        </Worker>
        <Worker>
          <Worker-Number>1</Worker-Number>
          <Actual-Rows>60</Actual-Rows>
        </Worker>
      </Workers>
    </Plan>
    <Planning>
      <Shared-Hit-Blocks>9</Shared-Hit-Blocks>
    </Planning>
    <Planning-Time>0.300</Planning-Time>
    <Triggers>
      <Trigger>
        <Trigger-Name>RI_ConstraintTrigger_a_1</Trigger-Name>
        <Constraint-Name>fk_b_a</Constraint-Name>
        <Relation>a</Relation>
        <Time>1.500</Time>
        <Calls>2</Calls>
      </Trigger>
    </Triggers>
    <JIT>
      <Functions>3</Functions>
      <Options>
        <Inlining>false</Inlining>
        <Optimization>false</Optimization>
      </Options>
      <Timing>
        <Generation>0.340</Generation>
        <Total>2.414</Total>
      </Timing>
    </JIT>
    <Settings>
      <random_page_cost>1.1</random_page_cost>
    </Settings>
    <Execution-Time>4.000</Execution-Time>
  </Query>
</explain>
"""


def test_xml_names_lists_and_groups() -> None:
    plan = parse_plan(_XML_DETAILS)
    raw = plan.root.raw
    assert raw["Sort Key"] == ["a", "b DESC"]
    assert raw["Presorted Key"] == ["a"]
    assert raw["Full-sort Groups"] == {
        "Group Count": 3,
        "Sort Methods Used": ["quicksort"],
        "Sort Space Memory": {"Average Sort Space Used": 26, "Peak Sort Space Used": 27},
    }
    assert raw["Pre-sorted Groups"]["Sort Methods Used"] == ["top-N heapsort"]
    assert raw["I/O Read Time"] == 0.25
    assert raw["Shared I/O Write Time"] == 0.125
    assert raw["Workers"] == [
        {"Worker Number": 0, "Actual Rows": 40},
        {"Worker Number": 1, "Actual Rows": 60},
    ]
    assert raw["Parallel Aware"] is False
    assert plan.root.buffers.shared_hit == 4
    assert plan.root.buffers.shared_read == 2
    assert plan.triggers == [
        {
            "Trigger Name": "RI_ConstraintTrigger_a_1",
            "Constraint Name": "fk_b_a",
            "Relation": "a",
            "Time": 1.5,
            "Calls": 2,
        }
    ]
    assert plan.jit == {
        "Functions": 3,
        "Options": {"Inlining": False, "Optimization": False},
        "Timing": {"Generation": 0.34, "Total": 2.414},
    }
    assert plan.raw["Planning"] == {"Shared Hit Blocks": 9}
    # Setting names and values are kept as PostgreSQL printed them.
    assert plan.settings == {"random_page_cost": "1.1"}
    assert plan.planning_ms == 0.3
    assert plan.execution_ms == 4.0


def test_yaml_numbers_and_empty_groups() -> None:
    plan = parse_plan(
        "- Plan:\n"
        '    Node Type: "Seq Scan"\n'
        '    Relation Name: "t"\n'
        "    Startup Cost: 0.00\n"
        "    Total Cost: 35.50\n"
        "    Plan Rows: 2550\n"
        "    Plan Width: 4\n"
        "  Settings:\n"
        "  Triggers:\n"
    )
    assert plan.root.total_cost == 35.5
    assert plan.root.plan_rows == 2550
    assert plan.raw["Triggers"] == []
    assert plan.raw["Settings"] == {}


# --------------------------------------------------------------------------------------
# Inputs that are not plans

_BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n<explain><Query><Plan>'
    "<Node-Type>&lol2;</Node-Type></Plan></Query></explain>"
)

_BAD_INPUTS: list[tuple[str, str | bytes, str]] = [
    ("empty", "", "not an EXPLAIN plan: the input is empty"),
    ("empty bytes", b"", "not an EXPLAIN plan: the input is empty"),
    ("blank", "  \n\t\n", "not an EXPLAIN plan: the input is empty"),
    ("only a psql frame", "   QUERY PLAN\n-----------\n(0 rows)\n", "the input is empty"),
    (
        "SQL",
        "SELECT * FROM orders WHERE customer_id = 42",
        "not an EXPLAIN plan: the input looks like SQL; run it with `explainer analyze",
    ),
    ("EXPLAIN statement", "explain analyze\nselect 1;", "the input looks like SQL"),
    (
        "prose",
        "hello world\nthis is not a plan",
        "not an EXPLAIN plan: the input starts with 'hello world' and holds no plan node",
    ),
    ("not UTF-8", b"Seq Scan on caf\xe9", "not an EXPLAIN plan: the input is not UTF-8 text"),
    ("binary", "\x00\x01\x02PK\x03\x04 garbage", "the input is binary data, not text"),
    ("XML with a DTD", _BILLION_LAUGHS, "the XML declares a DOCTYPE or entities"),
    ("truncated JSON", '[{"Plan": {"Node Type": "Seq Scan",', "invalid JSON at line 1"),
    (
        "JSON that is no plan",
        '[{"name": "x"}]',
        "expected a list with an object holding 'Plan' (got an object with 'name')",
    ),
    (
        "truncated XML",
        '<explain xmlns="http://www.postgresql.org/2009/explain">\n  <Query>\n    <Plan>',
        "invalid XML at line",
    ),
    ("XML without a plan", "<explain><Query></Query></explain>", "the XML has no <Plan>"),
    (
        "YAML with an alias",
        '- Plan: &p\n    Node Type: "Result"\n    Plans:\n      - *p\n',
        "the YAML uses aliases",
    ),
    (
        "invalid YAML",
        '- Plan:\n    Node Type: "Result\n',
        "invalid YAML at line",
    ),
]


@pytest.mark.parametrize(
    ("source", "message"),
    [case[1:] for case in _BAD_INPUTS],
    ids=[case[0] for case in _BAD_INPUTS],
)
def test_bad_inputs(source: str | bytes, message: str) -> None:
    with pytest.raises(PlanParseError) as info:
        parse_plan(source)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_detect_format_refuses_what_is_no_plan() -> None:
    with pytest.raises(PlanParseError, match="looks like SQL"):
        detect_format("WITH x AS (SELECT 1) SELECT * FROM x")


def test_bytes_with_bom_are_read() -> None:
    data = "\ufeff" + json.dumps([{"Plan": {"Node Type": "Result", "Total Cost": 0.01}}])
    assert parse_plan(data.encode("utf-8")).root.total_cost == 0.01
