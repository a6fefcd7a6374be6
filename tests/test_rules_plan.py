"""Plan-wide rules on small hand-written plans and on the shared corpus.

Each table row is a JSON plan document cut down to the keys a rule reads, with the figures
worked out by hand in the comment or the expected values; the rows just under a threshold
must stay silent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from explainer.plan import parse_json_plan, parse_plan, plan_from_document
from explainer.rules import (
    RULES,
    Finding,
    RuleContext,
    Severity,
    TableFacts,
    plan_rules,
    rule_by_id,
)
from explainer.rules.model import ForeignKeyFacts

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "plans"

PLAN_RULE_IDS = {r.id for r in plan_rules.RULES}


def scan(
    relation: str = "t",
    *,
    ms: float | None = 10.0,
    rows: float = 100,
    loops: float = 1,
    node_type: str = "Seq Scan",
    keys: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An analyzed scan node plus ``keys``; ``ms=None`` gives the TIMING OFF shape (no times)."""
    node: dict[str, Any] = {
        "Node Type": node_type,
        "Relation Name": relation,
        "Plan Rows": rows,
        "Actual Rows": rows,
        "Actual Loops": loops,
        **(keys or {}),
    }
    if ms is not None:
        node["Actual Startup Time"] = 0.0
        node["Actual Total Time"] = ms
    return node


def upper(
    node_type: str,
    children: list[dict[str, Any]],
    *,
    ms: float | None,
    keys: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An analyzed node above ``children``, plus ``keys``."""
    node: dict[str, Any] = {
        "Node Type": node_type,
        "Plan Rows": 1,
        "Actual Rows": 1,
        "Actual Loops": 1,
        "Plans": children,
        **(keys or {}),
    }
    if ms is not None:
        node["Actual Startup Time"] = 0.0
        node["Actual Total Time"] = ms
    return node


def findings(
    rule_id: str, document: dict[str, Any], context: RuleContext | None = None
) -> list[Finding]:
    plan = plan_from_document(document)
    return list(rule_by_id(rule_id).check(plan, context or RuleContext()))


def test_every_plan_rule_is_registered_and_documented() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text()
    assert {
        "slow-reads",
        "workers-not-launched",
        "jit-overhead",
        "slow-planning",
        "slow-fk-trigger",
        "slow-triggers",
        "stale-statistics",
        "distinct-underestimate",
    } == PLAN_RULE_IDS
    plan_section = docs.split("## Plan-wide rules", 1)[1]
    for rule in plan_rules.RULES:
        assert f"### `{rule.id}`" in plan_section, rule.id
        assert rule.title and rule.trigger


# --------------------------------------------------------------------------------------
# slow-reads


def _io_plan(read_ms: float, execution_ms: float, *, key: str = "I/O Read Time") -> dict[str, Any]:
    """Aggregate over a Seq Scan that read 10,000 blocks and hit 2,500."""
    io = {key: read_ms, "Shared Read Blocks": 10_000, "Shared Hit Blocks": 2_500}
    return {
        "Plan": upper(
            "Aggregate", [scan("orders", ms=execution_ms - 1, keys=io)], ms=execution_ms, keys=io
        ),
        "Execution Time": execution_ms,
    }


@pytest.mark.parametrize(
    ("read_ms", "execution_ms", "severity"),
    [
        (60.0, 100.0, Severity.HIGH),  # 60% of the query
        (10.0, 100.0, Severity.MEDIUM),  # exactly the thresholds: 10 ms and 10%
        (10.0, 100.2, None),  # 9.98% of the query
        (9.99, 12.0, None),  # 83% but under 10 ms
    ],
)
def test_slow_reads_thresholds(
    read_ms: float, execution_ms: float, severity: Severity | None
) -> None:
    found = findings("slow-reads", _io_plan(read_ms, execution_ms))
    if severity is None:
        assert found == []
        return
    [finding] = found
    assert finding.severity is severity
    assert finding.node_path == "0.0"  # the scan, not the Aggregate that holds the same reads
    assert finding.table == "orders"
    assert finding.potential_ms == pytest.approx(read_ms)
    assert finding.details["blocks_read"] == 10_000
    assert finding.details["hit_ratio"] == pytest.approx(0.2)  # 2,500 / 12,500
    assert finding.details["node_read_ms"] == pytest.approx(read_ms)
    assert "10,000 blocks (78.1 MB)" in finding.message
    assert "cache hit ratio 20%" in finding.message


def test_slow_reads_pg17_keys_add_shared_and_local_but_not_temp() -> None:
    node = scan(
        "t",
        ms=99,
        keys={
            "Shared I/O Read Time": 30.0,
            "Local I/O Read Time": 10.0,
            "Temp I/O Read Time": 500.0,  # a spill: the work_mem rules' business
            "Shared Read Blocks": 4_000,
        },
    )
    [finding] = findings("slow-reads", {"Plan": node, "Execution Time": 100.0})
    assert finding.details["read_ms"] == pytest.approx(40.0)
    assert finding.severity is Severity.MEDIUM  # 40%


def test_slow_reads_points_at_the_scan_with_most_read_time() -> None:
    small = scan("a", ms=10, keys={"I/O Read Time": 5.0, "Shared Read Blocks": 100})
    big = scan("b", ms=60, keys={"I/O Read Time": 45.0, "Shared Read Blocks": 9_000})
    join = upper(
        "Hash Join", [small, big], ms=80, keys={"I/O Read Time": 50.0, "Shared Read Blocks": 9_100}
    )
    [finding] = findings("slow-reads", {"Plan": join, "Execution Time": 80.0})
    assert finding.node_path == "0.1"
    assert finding.details["read_ms"] == pytest.approx(50.0)
    assert finding.details["node_read_ms"] == pytest.approx(45.0)


def test_slow_reads_works_with_timing_off() -> None:
    node = scan("t", ms=None, keys={"I/O Read Time": 50.0, "Shared Read Blocks": 4_000})
    [finding] = findings("slow-reads", {"Plan": node, "Execution Time": 100.0})
    assert finding.details["share_of_total"] == pytest.approx(0.5)


def test_slow_reads_is_silent_without_io_timing_or_analyze() -> None:
    # A million blocks read and no I/O timing: they may all have come from the OS cache.
    node = scan("t", ms=900, keys={"Shared Read Blocks": 1_000_000})
    assert findings("slow-reads", {"Plan": node, "Execution Time": 1000.0}) == []
    plain = {"Node Type": "Seq Scan", "Relation Name": "t", "Plan Rows": 10, "I/O Read Time": 50.0}
    assert findings("slow-reads", {"Plan": plain}) == []


# --------------------------------------------------------------------------------------
# workers-not-launched


def _gather(
    planned: int,
    launched: int | None,
    *,
    ms: float | None = 100.0,
    loops: float = 1,
    leader: bool = True,
    **top: Any,
) -> dict[str, Any]:
    """A Gather over a Parallel Seq Scan run by the launched workers (and the leader)."""
    processes = (launched or 0) + (1 if leader else 0)
    gather: dict[str, Any] = upper(
        "Gather",
        [scan("big", ms=ms and ms - 1, loops=processes, keys={"Parallel Aware": True})],
        ms=ms,
        keys={"Workers Planned": planned},
    )
    gather["Actual Loops"] = loops
    if launched is not None:
        gather["Workers Launched"] = launched
    return {"Plan": gather, "Execution Time": 100.0, **top}


@pytest.mark.parametrize(
    ("document", "potential", "severity"),
    [
        # 3 of 5 processes ran: 100 ms x (1 - 3/5) = 40 ms could be saved (40%).
        (_gather(4, 2), 40.0, Severity.MEDIUM),
        # No worker at all: the leader alone, 1 of 3 processes: 100 x 2/3.
        (_gather(2, 0), 200 / 3, Severity.HIGH),
        # Leader not participating: 2 of 4 processes.
        (
            _gather(4, 2, leader=False, Settings={"parallel_leader_participation": "off"}),
            50.0,
            Severity.HIGH,
        ),
        # TIMING OFF: still said, without a time.
        (_gather(4, 2, ms=None), 0.0, Severity.LOW),
    ],
)
def test_workers_not_launched(
    document: dict[str, Any], potential: float, severity: Severity
) -> None:
    [finding] = findings("workers-not-launched", document)
    assert finding.node_path == "0"
    assert finding.potential_ms == pytest.approx(potential)
    assert finding.severity is severity
    gather = document["Plan"]
    assert finding.details["workers_planned"] == gather["Workers Planned"]
    assert finding.details["workers_launched"] == gather["Workers Launched"]
    assert f"planned {gather['Workers Planned']} workers but launched" in finding.message


@pytest.mark.parametrize(
    "document",
    [
        _gather(4, 4),  # all launched
        _gather(4, 0, loops=0),  # never executed: Launched 0 means nothing
        _gather(4, None, ms=None),  # plain EXPLAIN prints only Workers Planned
    ],
)
def test_workers_all_launched_or_unknown(document: dict[str, Any]) -> None:
    if "Workers Launched" not in document["Plan"]:
        for key in ("Actual Rows", "Actual Loops"):
            document["Plan"].pop(key)
            document["Plan"]["Plans"][0].pop(key)
        document.pop("Execution Time")
    assert findings("workers-not-launched", document) == []


# --------------------------------------------------------------------------------------
# jit-overhead

#: Corpus 34 (PostgreSQL 11-16 shape): a 2.6 ms query with jit_above_cost lowered to 10.
JIT_PG16 = {
    "Functions": 3,
    "Options": {"Inlining": False, "Optimization": False, "Expressions": True, "Deforming": True},
    "Timing": {
        "Generation": 0.340,
        "Inlining": 0.0,
        "Optimization": 0.168,
        "Emission": 1.907,
        "Total": 2.414,
    },
}
#: PostgreSQL 17+: Generation is an object.
JIT_PG17 = {
    "Functions": 829,
    "Options": {"Inlining": True, "Optimization": True, "Expressions": True, "Deforming": True},
    "Timing": {
        "Generation": {"Deform": 10.0, "Total": 113.965},
        "Inlining": 706.405,
        "Optimization": 7838.603,
        "Emission": 7380.843,
        "Total": 16039.815,
    },
}


def _jit_doc(jit: dict[str, Any], execution_ms: float) -> dict[str, Any]:
    return {
        "Plan": upper("Aggregate", [scan(ms=1)], ms=execution_ms - 0.1),
        "JIT": jit,
        "Execution Time": execution_ms,
    }


def _total(value: float) -> dict[str, Any]:
    return {
        "Functions": 1,
        "Timing": {
            "Generation": 0.0,
            "Inlining": 0.0,
            "Optimization": 0.0,
            "Emission": value,
            "Total": value,
        },
    }


@pytest.mark.parametrize(
    ("jit", "execution_ms", "jit_ms", "severity"),
    [
        (JIT_PG16, 2.625, 2.414, Severity.HIGH),  # 92%
        (JIT_PG17, 127241.780, 16039.815, Severity.MEDIUM),  # corpus 24: 12.6%
        (_total(10.0), 100.0, 10.0, Severity.MEDIUM),  # exactly 10%
        (_total(9.99), 100.0, None, None),  # 9.99%
        (_total(0.99), 1.0, None, None),  # 99% but under 1 ms
    ],
)
def test_jit_overhead(
    jit: dict[str, Any], execution_ms: float, jit_ms: float | None, severity: Severity | None
) -> None:
    found = findings("jit-overhead", _jit_doc(jit, execution_ms))
    if jit_ms is None:
        assert found == []
        return
    [finding] = found
    assert finding.node_path is None
    assert finding.details["jit_ms"] == pytest.approx(jit_ms)
    assert finding.potential_ms == pytest.approx(jit_ms)
    assert finding.severity is severity


def test_jit_pg17_generation_object_and_missing_total() -> None:
    jit = {
        "Functions": 4,
        "Timing": {
            "Generation": {"Deform": 1.0, "Total": 5.0},
            "Inlining": 0.0,
            "Optimization": 10.0,
            "Emission": 5.0,
        },
    }
    [finding] = findings("jit-overhead", _jit_doc(jit, 40.0))
    assert finding.details["jit_ms"] == pytest.approx(20.0)
    assert finding.details["phases_ms"]["Generation"] == pytest.approx(5.0)
    assert "inlining" not in finding.message  # neither expensive pass ran


def test_jit_advice_names_the_expensive_passes() -> None:
    [finding] = findings("jit-overhead", _jit_doc(JIT_PG17, 127241.780))
    assert "inlining and optimization ran" in finding.message
    assert "829 functions" in finding.message


def test_jit_without_timing_is_silent() -> None:
    no_timing = {"Functions": 3, "Options": JIT_PG16["Options"]}  # TIMING OFF or no ANALYZE
    assert findings("jit-overhead", _jit_doc(no_timing, 2.0)) == []


# --------------------------------------------------------------------------------------
# slow-planning


@pytest.mark.parametrize(
    ("planning", "execution", "severity"),
    [
        (12.0, 3.0, Severity.MEDIUM),
        (150.0, 20.0, Severity.HIGH),
        (5.0, 4.99, Severity.MEDIUM),  # exactly 5 ms, just above execution
        (4.99, 1.0, None),  # under 5 ms
        (10.0, 10.0, None),  # not longer than execution
    ],
)
def test_slow_planning(planning: float, execution: float, severity: Severity | None) -> None:
    document = {"Plan": scan(ms=execution), "Planning Time": planning, "Execution Time": execution}
    found = findings("slow-planning", document)
    if severity is None:
        assert found == []
        return
    [finding] = found
    assert finding.severity is severity
    assert finding.potential_ms == planning
    assert finding.details["planning_ms"] == planning
    assert finding.details["execution_ms"] == execution
    assert finding.node_path is None


def test_slow_planning_hints_from_the_plan() -> None:
    nine = [scan(f"t{i}", ms=0.1) for i in range(9)]
    document = {
        "Plan": upper("Append", nine, ms=1.0),
        "Planning Time": 30.0,
        "Execution Time": 1.0,
        "Planning": {"Shared Hit Blocks": 200, "Shared Read Blocks": 12},
    }
    [finding] = findings("slow-planning", document)
    assert finding.details["relations"] == 9
    assert "join_collapse_limit" in finding.message
    assert "read 12 catalog blocks" in finding.message


def test_slow_planning_works_with_timing_off() -> None:
    document = {"Plan": scan(ms=None), "Planning Time": 8.0, "Execution Time": 2.0}
    [finding] = findings("slow-planning", document)
    assert finding.potential_ms == 8.0


def test_slow_planning_needs_execution_time() -> None:
    plain = {
        "Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Plan Rows": 1},
        "Planning Time": 50.0,
    }
    assert findings("slow-planning", plain) == []


# --------------------------------------------------------------------------------------
# slow-fk-trigger and slow-triggers


def _delete(
    triggers: list[dict[str, Any]], execution_ms: float, operation: str = "Delete"
) -> dict[str, Any]:
    modify = upper(
        "ModifyTable",
        [scan("emailmessages", ms=4576.0, node_type="Index Scan")],
        ms=4600.0,
        keys={"Operation": operation, "Relation Name": "emailmessages"},
    )
    return {"Plan": modify, "Triggers": triggers, "Execution Time": execution_ms}


#: Corpus 14 as text EXPLAIN prints it (no trigger names, no relation).
CORPUS_14_TRIGGERS = [
    {"Constraint Name": "headeremessageref", "Time": 4038.247, "Calls": 5000},
    {"Constraint Name": "formdataemessageref", "Time": 81.415, "Calls": 5000},
    {"Constraint Name": "attachemessageref", "Time": 158945.774, "Calls": 5000},
    {"Constraint Name": "outgoingemessageref", "Time": 332.316, "Calls": 5000},
]


def test_fk_trigger_from_text_style_triggers() -> None:
    # Only attachemessageref passes 10%: 158,945.8 / 381,072.2 = 41.7%; headeremessageref is 1.1%.
    [finding] = findings("slow-fk-trigger", _delete(CORPUS_14_TRIGGERS, 381072.164))
    assert finding.node_path == "0"
    assert finding.severity is Severity.MEDIUM
    assert finding.potential_ms == pytest.approx(158945.774)
    assert finding.details["constraint"] == "attachemessageref"
    assert finding.details["relation"] == "emailmessages"  # from the Delete node
    assert finding.details["side"] == "referenced"  # a DELETE fires action triggers only
    assert finding.details["calls"] == 5000
    assert finding.details["share_of_total"] == pytest.approx(158945.774 / 381072.164)
    assert "158,945.8 ms over 5,000 calls (31.789 ms per call), 42%" in finding.message
    assert "index on its referencing columns" in finding.message


FK = ForeignKeyFacts(
    name="attachemessageref",
    table="attachments",
    columns=("emailmessageid",),
    referenced_table="emailmessages",
    referenced_columns=("emailmessageid",),
)


@pytest.mark.parametrize(
    ("fk", "expected"),
    [
        (
            FK,
            "searches attachments (emailmessageid), which has no index starting with those "
            "columns: CREATE INDEX ON attachments (emailmessageid)",
        ),
        (
            dataclasses.replace(FK, index="attachments_msg"),
            "attachments (emailmessageid) is indexed by attachments_msg",
        ),
    ],
)
def test_fk_trigger_with_catalog_facts(fk: ForeignKeyFacts, expected: str) -> None:
    triggers = [
        {
            "Trigger Name": "RI_ConstraintTrigger_a_16444",
            "Constraint Name": "attachemessageref",
            "Relation": "emailmessages",
            "Time": 500.0,
            "Calls": 50,
        }
    ]
    context = RuleContext(foreign_keys={"attachemessageref": fk})
    [finding] = findings("slow-fk-trigger", _delete(triggers, 1000.0), context)
    assert expected in finding.message
    assert finding.table == "attachments"
    assert finding.details["existing_index"] == fk.index
    assert finding.details["index_ddl"] == (
        None if fk.index else "CREATE INDEX ON attachments (emailmessageid)"
    )


def test_fk_check_trigger_on_insert() -> None:
    triggers = [
        {
            "Trigger Name": "RI_ConstraintTrigger_c_9",
            "Constraint Name": "fk",
            "Relation": "emailmessages",
            "Time": 300.0,
            "Calls": 10000,
        }
    ]
    [finding] = findings("slow-fk-trigger", _delete(triggers, 1000.0, operation="Insert"))
    assert finding.details["side"] == "referencing"
    assert "looks its key up in the referenced table" in finding.message


@pytest.mark.parametrize(
    ("time_ms", "execution_ms"),
    [
        (9.99, 15.0),  # 67% but under 10 ms
        (10.0, 100.1),  # 9.99%
    ],
)
def test_fk_trigger_under_thresholds(time_ms: float, execution_ms: float) -> None:
    triggers = [{"Constraint Name": "fk", "Time": time_ms, "Calls": 1}]
    assert findings("slow-fk-trigger", _delete(triggers, execution_ms)) == []


def test_triggers_without_time_are_silent() -> None:
    # TIMING OFF prints calls only.
    triggers = [{"Constraint Name": "fk", "Calls": 5000}, {"Trigger Name": "audit", "Calls": 5000}]
    document = _delete(triggers, 1000.0)
    assert findings("slow-fk-trigger", document) == []
    assert findings("slow-triggers", document) == []


def test_user_triggers_are_summed() -> None:
    triggers = [
        {"Trigger Name": "audit", "Relation": "emailmessages", "Time": 20.0, "Calls": 100},
        {"Trigger Name": "touch", "Relation": "emailmessages", "Time": 30.0, "Calls": 100},
        {"Constraint Name": "fk", "Relation": "emailmessages", "Time": 40.0, "Calls": 100},
    ]
    [finding] = findings("slow-triggers", _delete(triggers, 100.0))
    assert finding.details["time_ms"] == pytest.approx(50.0)  # the constraint trigger is not summed
    assert [t["name"] for t in finding.details["triggers"]] == ["touch", "audit"]
    assert finding.severity is Severity.HIGH  # 50%
    assert finding.node_path == "0"
    assert (
        "touch on emailmessages 30.0 ms (100 calls), audit on emailmessages 20.0 ms"
        in finding.message
    )


# --------------------------------------------------------------------------------------
# stale-statistics (catalog facts given by hand; tests/test_rules_stats.py reads real ones)

ANALYZED_AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def _facts(
    reltuples: float, live: float | None, mod: float = 0, *, stats: bool = True
) -> TableFacts:
    return TableFacts(
        estimated_rows=reltuples,
        total_bytes=8192,
        live_rows=live,
        mod_since_analyze=mod,
        last_analyzed=ANALYZED_AT if stats else None,
        has_column_stats=stats,
    )


def _scan_doc(
    rows: float, removed: float = 0, *, analyzed: bool = True, parallel_loops: int = 0
) -> dict[str, Any]:
    if not analyzed:
        return {"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Plan Rows": rows}}
    extra: dict[str, Any] = {}
    if removed:
        extra = {"Filter": "(v = 1)", "Rows Removed by Filter": removed}
    if parallel_loops:
        extra["Parallel Aware"] = True
    return {
        "Plan": scan("t", ms=5, rows=rows, loops=parallel_loops or 1, keys=extra),
        "Execution Time": 5.0,
    }


@pytest.mark.parametrize(
    ("document", "facts", "severity", "reason"),
    [
        # The plan read 10x what the planner counts.
        (
            _scan_doc(10_000),
            _facts(1_000, 1_000),
            Severity.HIGH,
            "counts 1,000 rows but the plan read 10,000 (10x)",
        ),
        # ... kept + removed by the filter both count as read.
        (
            _scan_doc(4_000, 6_000),
            _facts(1_000, 1_000),
            Severity.HIGH,
            "the plan read 10,000 (10x)",
        ),
        # A Parallel Seq Scan: 2,500 per process x 4 processes.
        (
            _scan_doc(2_500, parallel_loops=4),
            _facts(1_000, 1_000),
            Severity.HIGH,
            "the plan read 10,000",
        ),
        # Live rows 10x the planner's count (here the plan did not read the table).
        (
            _scan_doc(5, analyzed=False),
            _facts(2_000, 20_000),
            Severity.HIGH,
            "has 20,000 live rows (10x)",
        ),
        # ... or a tenth of it (mass delete).
        (
            _scan_doc(5, analyzed=False),
            _facts(20_000, 2_000),
            Severity.HIGH,
            "has 2,000 live rows (10x)",
        ),
        # 20% of the rows changed since ANALYZE.
        (
            _scan_doc(10_000),
            _facts(10_000, 10_000, 2_000),
            Severity.MEDIUM,
            "2,000 rows changed since the last ANALYZE (20% of 10,000 live rows; "
            "last analyzed 2025-03-01 12:30 UTC)",
        ),
        # Never analyzed.
        (_scan_doc(1_000), _facts(-1, 1_000, 1_000, stats=False), Severity.HIGH, "never analyzed"),
    ],
)
def test_stale_statistics(
    document: dict[str, Any], facts: TableFacts, severity: Severity, reason: str
) -> None:
    [finding] = findings("stale-statistics", document, RuleContext(tables={"t": facts}))
    assert finding.table == "t"
    assert finding.node_path == "0"
    assert finding.severity is severity
    assert reason in finding.message
    assert "ANALYZE t" in finding.message
    assert finding.details["reltuples"] == facts.estimated_rows


@pytest.mark.parametrize(
    ("document", "facts"),
    [
        (_scan_doc(9_990), _facts(1_000, 1_000)),  # 9.99x
        (_scan_doc(10_000), _facts(10_000, 10_000, 1_999)),  # 19.99% changed
        (_scan_doc(100, analyzed=False), _facts(1_001, 10_000)),  # live 9.99x
        (_scan_doc(999), _facts(-1, 999, 999, stats=False)),  # never analyzed but 999 rows
        (_scan_doc(900), _facts(10, 20, 20)),  # a tiny table: 90x but under 1,000 rows
        (_scan_doc(10_000), TableFacts(1_000, 8192)),  # offline facts: no statistics known
    ],
)
def test_stale_statistics_silent(document: dict[str, Any], facts: TableFacts) -> None:
    assert findings("stale-statistics", document, RuleContext(tables={"t": facts})) == []


def test_stale_statistics_ignores_a_scan_that_read_fewer_rows() -> None:
    # Under a LIMIT a scan stops early: reading fewer rows than reltuples proves nothing.
    assert (
        findings(
            "stale-statistics", _scan_doc(10), RuleContext(tables={"t": _facts(100_000, 100_000)})
        )
        == []
    )


# --------------------------------------------------------------------------------------
# The corpus: every plan-wide rule over every JSON plan, checked by hand.

#: (rule, node) per corpus plan; plans not listed must have no plan-wide finding.
#: 06: Gather at 0.0 with Workers Planned 4 / Launched 2.
#: 03, 05, 60 carry I/O timing, but every "I/O Read Time" is 0.000: no time went to reads.
#: 08: two triggers, 0.435 + 0.207 ms: under 10 ms.
#: 52, 53: planning 1,258 / 1,254 ms, execution 27,251 / 4,123 ms: planning is shorter.
CORPUS_JSON_EXPECTED: dict[str, set[tuple[str, str | None]]] = {
    "06": {("workers-not-launched", "0.0")},
}

JSON_PLANS = sorted(CORPUS.glob("*.json")) if CORPUS.is_dir() else []


def _run_plan_rules(plan: Any) -> set[tuple[str, str | None]]:
    return {
        (f.rule, f.node_path) for rule in plan_rules.RULES for f in rule.check(plan, RuleContext())
    }


@pytest.mark.parametrize("path", JSON_PLANS, ids=[p.name[:2] for p in JSON_PLANS])
def test_corpus_json_plans(path: Path) -> None:
    plan = parse_json_plan(path.read_bytes())
    assert _run_plan_rules(plan) == CORPUS_JSON_EXPECTED.get(path.name[:2], set())


def test_corpus_06_figures() -> None:
    [path] = CORPUS.glob("06_*.json")
    plan = parse_json_plan(path.read_bytes())
    [finding] = [f for f in rule_by_id("workers-not-launched").check(plan, RuleContext())]
    gather = plan.node("0.0")
    # 3 of 5 processes: 2/5 of the Gather's time.
    assert finding.potential_ms == pytest.approx(gather.inclusive_ms * 2 / 5)
    assert (finding.details["workers_planned"], finding.details["workers_launched"]) == (4, 2)


#: The other corpus plans (text, YAML, XML, framed JSON), read with parse_plan.
#: 12: MERGE with RI_ConstraintTrigger_a_ triggers tc1_fkey on tb (4,399.3 ms, 23% of
#:     18,733.5) -> the Merge on tb at 0, and tc2_fkey on tc1 (6,000.0 ms, 32%), a cascade
#:     onto a table the plan does not write -> no node. Its JIT (149.6 ms) is 0.8%.
#: 14: attachemessageref 158,945.8 of 381,072.2 ms (42%) -> the Delete at 0; the other six
#:     constraints are at most 4,038.2 ms (1.1%).
#: 18: shared read 66.219 of 548.488 ms (12.1%); the Index Scan on pgbench_accounts_4 (0.2,
#:     33.874 ms) read longer than the Seq Scan (0.1, 32.345 ms).
#: 20: Gather (0.0) Workers Planned 24 / Launched 7.
#: 22: JIT Total 4,331.1 ms (leader + workers) over a 1,639.2 ms execution.
#: 24: JIT Total 16,039.8 of 127,241.8 ms (12.6%). 34: JIT 2.414 of 2.625 ms (92%).
#: 35: read 119.161 of 992.144 ms (12.0%); the events_event Index Scan (0.1) read 66.596 ms,
#:     the rest is under the Hash Join (52.565 ms, split among its scans).
#: 36: read 77,240.3 of 79,515.9 ms (97%), 72,694.6 ms in the Index Scan at 0.0.1.0.
#: 37: a one-node plan whose shared/local read (161,740 ms) exceeds its execution (23.8 ms):
#:     an edited test fixture, reported as printed.
#: 15, 29: JIT 245.0 / 4.4 ms, under 10%. 13, 19, 21, 43: every planned worker launched.
CORPUS_OTHER_EXPECTED: dict[str, set[tuple[str, str | None]]] = {
    "12": {("slow-fk-trigger", "0"), ("slow-fk-trigger", None)},
    "14": {("slow-fk-trigger", "0")},
    "18": {("slow-reads", "0.2")},
    "20": {("workers-not-launched", "0.0")},
    "22": {("jit-overhead", None)},
    "24": {("jit-overhead", None)},
    "34": {("jit-overhead", None)},
    "35": {("slow-reads", "0.1")},
    "36": {("slow-reads", "0.0.1.0")},
    "37": {("slow-reads", "0")},
}

OTHER_PLANS = (
    sorted(p for p in CORPUS.iterdir() if p.name[:2].isdigit() and p.suffix != ".json")
    if CORPUS.is_dir()
    else []
)


@pytest.mark.parametrize("path", OTHER_PLANS, ids=[p.name[:2] for p in OTHER_PLANS])
def test_corpus_other_plans(path: Path) -> None:
    plan = parse_plan(path.read_bytes())
    assert _run_plan_rules(plan) == CORPUS_OTHER_EXPECTED.get(path.name[:2], set())


def _corpus_plan(number: str) -> Any:
    [path] = CORPUS.glob(f"{number}_*")
    return parse_plan(path.read_bytes())


def test_corpus_14_fk_trigger_figures() -> None:
    [finding] = rule_by_id("slow-fk-trigger").check(_corpus_plan("14"), RuleContext())
    assert finding.details["constraint"] == "attachemessageref"
    assert finding.details["relation"] == "emailmessages"
    assert finding.details["time_ms"] == pytest.approx(158945.774)
    assert finding.details["calls"] == 5000
    assert finding.details["share_of_total"] == pytest.approx(158945.774 / 381072.164)


def test_corpus_20_workers_figures() -> None:
    plan = _corpus_plan("20")
    [finding] = rule_by_id("workers-not-launched").check(plan, RuleContext())
    assert (finding.details["workers_planned"], finding.details["workers_launched"]) == (24, 7)
    # 8 of 25 processes ran: 17/25 of the Gather's time.
    assert finding.potential_ms == pytest.approx(plan.node("0.0").inclusive_ms * 17 / 25)
    assert finding.severity is Severity.HIGH


def test_corpus_22_parallel_jit_is_capped() -> None:
    [finding] = rule_by_id("jit-overhead").check(_corpus_plan("22"), RuleContext())
    assert finding.details["jit_ms"] == pytest.approx(4331.083)
    assert finding.potential_ms == pytest.approx(1639.241)  # never more than the execution
    assert "summed over the parallel processes" in finding.message


def test_every_registered_rule_has_a_section_in_the_docs() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text()
    headings = {line.strip("# ").strip("`") for line in docs.splitlines() if line.startswith("#")}
    assert [rule.id for rule in RULES if rule.id not in headings] == []
    assert len({rule.id for rule in RULES}) == len(RULES)  # ids are unique
