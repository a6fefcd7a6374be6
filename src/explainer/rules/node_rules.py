"""The node-level rules (issue 4): each points at one plan node and says what to do.

The checks live in topic modules (:mod:`~explainer.rules.scans`, :mod:`~explainer.rules.joins`,
:mod:`~explainer.rules.estimates`, :mod:`~explainer.rules.memory`,
:mod:`~explainer.rules.sql_shape`); this module registers them in the order ``explainer
rules`` lists them. docs/rules.md documents every id, threshold and time figure.
"""

from __future__ import annotations

from explainer.rules import estimates, joins, memory, scans, sql_shape
from explainer.rules.model import Rule

RULES: tuple[Rule, ...] = (
    Rule(
        id=scans.INDEX_FILTER_ID,
        title="Index scan whose filter discards most of the rows the index found",
        check=scans.check_index_filter,
        trigger=(
            "Index/Index Only/Bitmap Heap Scan whose Filter removes >= 90% of the rows fetched, "
            "reading >= 10,000 rows or >= 10% (and >= 1 ms) of the query's time"
        ),
    ),
    Rule(
        id=estimates.RULE_ID,
        title="Row estimate off by 10x or more where the planner chose a strategy from it",
        check=estimates.check,
        trigger=(
            "actual vs estimated rows per loop >= 10x on an input of a join, Sort or Hash or a "
            "hash aggregate's groups (>= 100x anywhere, low), rows differing by >= 100"
        ),
    ),
    Rule(
        id=joins.RULE_ID,
        title="Nested loop re-scanning an input that is not an index lookup",
        check=joins.check,
        trigger=(
            "Nested Loop whose inner side is a scan (Seq, Materialize, Function, CTE, lossy "
            "Bitmap Heap ...) run >= 1,000 times, reading >= 10,000 rows or >= 10% of the time"
        ),
    ),
    Rule(
        id=memory.SORT_ID,
        title="Sort spilled to disk",
        check=memory.check_sort,
        trigger="Sort or Incremental Sort with Sort Space Type Disk in any process",
    ),
    Rule(
        id=memory.HASH_ID,
        title="Hash table spilled to disk",
        check=memory.check_hash,
        trigger="Hash with > 1 batch; hashed Aggregate/SetOp with > 1 batch or Disk Usage",
    ),
    Rule(
        id=memory.LOSSY_ID,
        title="Bitmap heap scan went lossy",
        check=memory.check_lossy,
        trigger="Bitmap Heap Scan with Lossy Heap Blocks > 0",
    ),
    Rule(
        id=scans.HEAP_FETCHES_ID,
        title="Index-only scan fetching heap pages (stale visibility map)",
        check=scans.check_heap_fetches,
        trigger="Index Only Scan with >= 1,000 Heap Fetches and >= 10% of the index rows",
    ),
    Rule(
        id=sql_shape.OFFSET_ID,
        title="Large OFFSET: rows produced only to be skipped",
        check=sql_shape.check_offset,
        trigger=(
            "Limit whose input produced >= 1,000 more rows than it returned and >= 10x as many "
            "(not raised when the known SQL has no OFFSET)"
        ),
    ),
    Rule(
        id=scans.CTE_FILTER_ID,
        title="Filter on a materialized CTE that could have been pushed into it",
        check=scans.check_cte_filter,
        trigger=(
            "CTE Scan whose Filter removes >= 90% of the CTE's rows, reading >= 10,000 rows or "
            ">= 10% (and >= 1 ms) of the query's time"
        ),
    ),
    Rule(
        id=sql_shape.COUNT_ID,
        title="count(*) compared with zero: an existence check that counts everything",
        check=sql_shape.check_count,
        trigger=(
            "SQL compares a count with 0 (count(*) > 0, = 0, >= 1 ...) and a plain Aggregate "
            "returning one row read >= 10,000 rows"
        ),
    ),
    Rule(
        id=scans.FILTER_ID,
        title="Filter or join filter removing most rows",
        check=scans.check_filters,
        trigger=(
            "Filter or Join Filter removing >= 90% of rows on a node no other rule covers, "
            "reading >= 10,000 rows or >= 10% (and >= 1 ms) of the query's time"
        ),
    ),
)
