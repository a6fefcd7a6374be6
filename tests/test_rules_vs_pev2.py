"""explainer against pev2 and explain.depesz.com on the corpus plans they flag.

pev2 paints a node red when a filter or join filter removes more than 90% of the rows it
read (``floor(removed / (removed + rows) * 100) > 90``, per loop) and when its row
estimate is off by more than 100x, and it shows sorts on disk and lossy bitmaps;
explain.depesz.com colours the same things. (pev2 also counts rows removed by an index
recheck: on the corpus that is plan 41's lossy bitmap, listed with the lossy bitmaps.)

Each flag is listed below with the finding explainer raises for it or, for the flags
explainer deliberately does not raise, the reason. The last test recomputes pev2's flags
from the plans with pev2's formula, so that the lists cannot silently miss one.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import pytest

from explainer.plan import Plan, parse_plan
from explainer.rules import Finding, run_rules

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "plans"


@cache
def _plan(number: str) -> Plan:
    (path,) = CORPUS.glob(f"{number}_*")
    return parse_plan(path.read_bytes())


@cache
def _findings(number: str) -> tuple[Finding, ...]:
    return tuple(run_rules(_plan(number)))


# (plan, node, rule explainer raises on that node)
SAME_NODE: list[tuple[str, str, str]] = [
    # Sorts on disk.
    ("07", "0.0", "sort-spills-to-disk"),
    ("12", "0.0.0", "sort-spills-to-disk"),
    ("12", "0.2.0", "sort-spills-to-disk"),
    ("13", "0.0.0.0.0", "sort-spills-to-disk"),
    ("15", "0.1", "sort-spills-to-disk"),
    ("15", "0.2.0", "sort-spills-to-disk"),
    ("15", "0.2.1.0", "sort-spills-to-disk"),
    ("33", "0", "sort-spills-to-disk"),
    ("40", "0.0.0.0", "sort-spills-to-disk"),
    ("40", "0.1.0", "sort-spills-to-disk"),
    ("46", "0.0.0.0.1", "sort-spills-to-disk"),
    ("54", "0.0.0", "sort-spills-to-disk"),
    # Lossy bitmap (and its 14.7M rows removed by recheck).
    ("41", "0.0.0", "bitmap-lossy"),
    # Rows removed by a filter, over 90%.
    ("04", "0.0.1.0.0.0.0", "filter-removes-most-rows"),  # join filter: 190,165 of 190,687
    ("04", "0.1.0.0.0.0.0.0", "filter-removes-most-rows"),  # join filter: 70,345 of 70,445
    ("11", "0.1", "seq-scan-selective"),
    ("13", "0.0.0.0.0.0.0", "seq-scan-selective"),
    ("16", "0.0.2.0", "index-filter-removes-rows"),
    ("19", "0.0.0.0.0.1", "index-filter-removes-rows"),
    ("19", "0.0.0.1", "index-filter-removes-rows"),
    ("21", "0.0.0.0.0.0.1.0", "seq-scan-selective"),
    ("35", "0.1", "index-filter-removes-rows"),
    ("44", "0.1", "seq-scan-selective"),
    ("49", "0", "index-filter-removes-rows"),
    # 227M row pairs, 99% thrown away by the join filter: the nested loop's inner side.
    ("52", "0.0.0.0", "nested-loop-inner-scan"),
    ("52", "0.0.0.0.1.0.0.0", "seq-scan-selective"),
    ("53", "0.0.1.0.1.0.1.0.0.0", "seq-scan-selective"),
    ("56", "0.0.0.1.0.0.0.0", "seq-scan-selective"),
    ("59", "0.3.0", "seq-scan-selective"),
]

# pev2 flags explainer deliberately leaves out: a filter that removes most of a few rows
# in well under a millisecond is not worth a reader's time (docs/rules.md, "worth
# reporting": at least 10,000 rows read, or at least 10% of the query and 1 ms).
SMALL_FILTERS: list[tuple[str, str]] = [
    ("02", "0.0.0.0"),  # 57 rows, 0.02 ms
    ("02", "0.0.0.1"),  # 36 rows, 0.01 ms
    ("02", "0.0.1.1.0"),  # 2,700 rows, 0.98 ms
    ("04", "0.0.1.0.0.0.0.1.0.0"),  # 5,740 row pairs, 4 ms of 232 ms
    ("05", "0.0"),  # 3,947 rows, 0.74 ms
    ("11", "0.0"),  # 1,232 rows, 0.08 ms
    ("12", "0.1.0.0.0"),  # 39 rows, 0.04 ms
    ("16", "0.0.0.0.1"),  # 16 rows, 0.07 ms
    ("16", "0.0.3.0"),  # 510 rows, 0.87 ms
    ("25", "0.1.0"),  # 25 rows, 0.01 ms
    ("44", "0.0"),  # 1,232 rows, 0.08 ms
    ("52", "0.0.0.0.1.0.0.1.0"),  # 36 rows, 0.03 ms
    ("53", "0.0.1.0.1.0.1.0.0.1.0"),  # 36 rows, 0.02 ms
    ("56", "0.0.0"),  # 518 row pairs; its time is the flagged seq scan below it
    ("56", "0.0.0.1.0"),  # 591 row pairs; same
    ("56", "0.0.0.1.0.1.0"),  # 533 rows, 0.13 ms
    ("56", "0.0.1"),  # 25 rows, 0.004 ms
    ("57", "0.0.0.0"),  # 533 rows, 0.15 ms
    ("57", "0.0.0.2.0.0.1.0.1.0"),  # 4,296 rows, 0.48 ms
    ("58", "0.0.0.0"),  # 572 rows, 0.11 ms
    ("58", "0.2.1.0"),  # 50 rows, 0.25 ms
    ("59", "0.1"),  # 14 rows, 0.03 ms
]

# Plans where pev2 shows a misestimate of 100x or more: explainer raises row-misestimate
# on the node where the error was made (often below the nodes pev2 colours, which only
# carry the error upwards), so the comparison is per plan.
MISESTIMATED_PLANS = [
    "04", "12", "15", "19", "32", "35", "39", "40", "41", "43", "45", "46", "52", "53", "54", "60",
]  # fmt: skip
# pev2's 100x flags that are not estimation errors.
NOT_MISESTIMATES = {
    # The Delete returns no rows (no RETURNING); the Index Only Scan's 2.78M estimate is
    # for the whole index, read by a LIMIT 5000 that stopped early.
    "14": "ModifyTable rows and a LIMIT stop",
    # Every 100x node sits under a Limit, a semi join or an EXISTS that stopped at its
    # first row: the estimate is for the whole result, the executor legitimately read less.
    "22": "early stop",
    "47": "early stop under LIMIT 1",
    "59": "CTEs read only to their first row",
    # Estimated 1 row per loop, got 0 per loop over 537 loops: pev2 compares 537 planned
    # rows with 0 actual ones; per loop, both are "one row or fewer".
    "56": "loops artefact",
}


@pytest.mark.parametrize(("number", "node", "rule"), SAME_NODE)
def test_explainer_raises_the_finding_on_the_node_pev2_flags(
    number: str, node: str, rule: str
) -> None:
    assert (rule, node) in {(f.rule, f.node_path) for f in _findings(number)}


#: The rules that speak of rows a filter threw away.
FILTER_RULES = frozenset(
    {
        "seq-scan-selective",
        "index-filter-removes-rows",
        "filter-removes-most-rows",
        "cte-scan-filter",
        "nested-loop-inner-scan",
    }
)


@pytest.mark.parametrize(("number", "node"), SMALL_FILTERS)
def test_small_filters_are_left_out(number: str, node: str) -> None:
    assert not [f for f in _findings(number) if f.node_path == node and f.rule in FILTER_RULES]


@pytest.mark.parametrize("number", MISESTIMATED_PLANS)
def test_misestimated_plans_get_a_misestimate_finding(number: str) -> None:
    assert any(f.rule == "row-misestimate" for f in _findings(number))


@pytest.mark.parametrize("number", sorted(NOT_MISESTIMATES))
def test_early_stops_are_not_misestimates(number: str) -> None:
    assert not any(f.rule == "row-misestimate" for f in _findings(number))


def _pev2_flags(plan: Plan) -> tuple[set[str], set[str], bool]:
    """Nodes pev2 flags for removed rows and for disk sorts/lossy bitmaps, and whether it
    shows a 100x estimate anywhere (its factor: planned and actual rows over all loops)."""
    removed: set[str] = set()
    memory: set[str] = set()
    estimate = False
    for node in plan.walk():
        raw = node.raw
        rows = node.actual_rows
        for key in ("Rows Removed by Filter", "Rows Removed by Join Filter"):
            gone = raw.get(key)
            share = gone / (gone + rows) if gone is not None and rows is not None and gone else 0
            if math.floor(share * 100) > 90:
                removed.add(node.path)
        workers = raw.get("Workers") or []
        if raw.get("Sort Space Type") == "Disk" or any(
            isinstance(w, dict) and w.get("Sort Space Type") == "Disk" for w in workers
        ):
            memory.add(node.path)
        if (raw.get("Lossy Heap Blocks") or 0) > 0:
            memory.add(node.path)
        if node.actual_loops and rows is not None and "Plan Rows" in raw:
            actual = max(rows * node.actual_loops, 1)
            planned = max(node.plan_rows * node.actual_loops, 1)
            if max(actual / planned, planned / actual) > 100:
                estimate = True
    return removed, memory, estimate


def test_the_lists_cover_every_pev2_flag_on_the_corpus() -> None:
    listed_removed = {(n, p) for n, p, r in SAME_NODE if not r.startswith(("sort", "bitmap"))}
    listed_removed |= set(SMALL_FILTERS)
    listed_memory = {(n, p) for n, p, r in SAME_NODE if r.startswith(("sort", "bitmap"))}
    listed_estimates = set(MISESTIMATED_PLANS) | set(NOT_MISESTIMATES)
    seen_removed: set[tuple[str, str]] = set()
    seen_memory: set[tuple[str, str]] = set()
    seen_estimates: set[str] = set()
    for path in sorted(CORPUS.glob("[0-9][0-9]_*")):
        number = path.name[:2]
        removed, memory, estimate = _pev2_flags(_plan(number))
        seen_removed |= {(number, p) for p in removed}
        seen_memory |= {(number, p) for p in memory}
        if estimate:
            seen_estimates.add(number)
    assert seen_removed == listed_removed
    assert seen_memory == listed_memory
    assert seen_estimates == listed_estimates
