"""Rules on operations that ran out of ``work_mem``: sorts and hashes that spilled to disk,
bitmaps that went lossy. Each finding says how much memory the operation needed and gives
the ``SET work_mem`` line to try in the session (never globally: work_mem is per operation
and per process, so a server-wide raise multiplies by every sort of every connection).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from explainer.plan import Plan, PlanNode
from explainer.plan.labels import short_label
from explainer.rules.model import Finding, RuleContext, severity_for_share, table_name
from explainer.rules.node_common import (
    as_number,
    executed_nodes,
    raw_number,
    share_of_query,
    work_mem_text,
)

SORT_ID = "sort-spills-to-disk"
HASH_ID = "hash-spills-to-disk"
LOSSY_ID = "bitmap-lossy"

#: An in-memory sort needs more than the space its runs took on disk: every tuple gets a
#: 24-byte SortTuple slot and a palloc chunk header that the tape format does not store.
#: Measured ratios run from about 1.3 to 2.5; 2 is the usual rule of thumb.
SORT_MEMORY_FACTOR = 2.0
#: Spilled hash aggregate tuples are stored compactly too: the same allowance applies.
HASHAGG_DISK_FACTOR = 2.0
#: Bytes a hash join's hash table spends per row beyond the row's width (a MinimalTuple
#: header and a HashJoinTuple header, aligned), used to bound the memory a skewed build side
#: needs when its batch count exploded.
HASH_ROW_OVERHEAD = 40
#: Bytes of work_mem one heap page takes in an exact TID bitmap (a PagetableEntry plus
#: hash table overhead, as tbm_calculate_entries counts it).
BITMAP_BYTES_PER_PAGE = 64


def _set_line(kb: float) -> str:
    return f"SET work_mem = '{work_mem_text(kb)}';"


def _sort_disk_kb(node: PlanNode) -> list[float]:
    """Disk space (kB) each process's sort used, for every process that spilled."""
    used: list[float] = []
    sources: list[Mapping[str, Any]] = [node.raw]
    workers = node.raw.get("Workers")
    if isinstance(workers, list):
        sources.extend(w for w in workers if isinstance(w, dict))
    for source in sources:
        if source.get("Sort Space Type") == "Disk":
            value = as_number(source.get("Sort Space Used"))
            if value is not None:
                used.append(value)
        for group in ("Full-sort Groups", "Pre-sorted Groups"):
            groups = source.get(group)
            if isinstance(groups, dict):
                disk = groups.get("Sort Space Disk")
                if isinstance(disk, dict):
                    value = as_number(disk.get("Peak Sort Space Used"))
                    if value is not None:
                        used.append(value)
    return used


def check_sort(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    for node in executed_nodes(plan):
        if node.node_type not in ("Sort", "Incremental Sort"):
            continue
        used = _sort_disk_kb(node)
        if not used:
            continue
        peak = max(used)
        needed = peak * SORT_MEMORY_FACTOR
        share = share_of_query(plan, node.exclusive_ms)
        processes = f" (the most of {len(used)} processes)" if len(used) > 1 else ""
        yield Finding(
            rule=SORT_ID,
            severity=severity_for_share(share),
            message=(
                f"{node.node_type} spilled {peak:,.0f} kB to disk{processes} in "
                f"{node.exclusive_ms:,.1f} ms ({share:.0%} of the query); sorting in memory "
                f"needs about {work_mem_text(needed)} of work_mem: {_set_line(needed)}"
            ),
            node_path=node.path,
            potential_ms=node.exclusive_ms,
            details={
                "disk_kb": peak,
                "disk_kb_per_process": used,
                "needed_kb": needed,
                "work_mem": work_mem_text(needed),
                "set_work_mem": _set_line(needed),
                "sort_method": node.raw.get("Sort Method"),
                "time_ms": node.exclusive_ms,
                "share_of_total": share,
            },
        )


def _hash_mem_multiplier(plan: Plan) -> float:
    try:
        value = float(plan.settings.get("hash_mem_multiplier", "1"))
    except ValueError:
        return 1.0
    return value if value > 0 else 1.0


def _max_over_workers(node: PlanNode, key: str) -> float | None:
    values = [raw_number(node, key)]
    workers = node.raw.get("Workers")
    if isinstance(workers, list):
        values.extend(as_number(w.get(key)) for w in workers if isinstance(w, dict))
    present = [v for v in values if v is not None]
    return max(present) if present else None


def check_hash(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    multiplier = _hash_mem_multiplier(plan)
    for node in executed_nodes(plan):
        if node.node_type == "Hash":
            finding = _hash_join_spill(plan, node, multiplier)
        elif node.node_type in ("Aggregate", "SetOp") and node.raw.get("Strategy") in (
            "Hashed",
            "Mixed",
        ):
            finding = _hashagg_spill(plan, node, multiplier)
        else:
            continue
        if finding is not None:
            yield finding


def _hash_join_spill(plan: Plan, node: PlanNode, multiplier: float) -> Finding | None:
    batches = raw_number(node, "Hash Batches") or 0.0
    if batches <= 1:
        return None
    original = raw_number(node, "Original Hash Batches") or batches
    peak = _max_over_workers(node, "Peak Memory Usage") or 0.0
    needed = peak * batches
    if node.plan_width > 0 and node.total_rows:
        # Batches double whenever one batch overflows; with a skewed key they explode and
        # peak x batches overshoots the whole build side, which bounds what is needed.
        whole = node.total_rows * (node.plan_width + HASH_ROW_OVERHEAD) / 1024
        needed = max(peak, min(needed, whole))
    needed /= multiplier
    parent = plan.parent(node)
    saved = node.exclusive_ms + (parent.exclusive_ms if parent is not None else 0.0)
    share = share_of_query(plan, saved)
    grew = (
        f" (planned {original:,.0f}: the build side was under-estimated)"
        if original < batches
        else ""
    )
    return Finding(
        rule=HASH_ID,
        severity=severity_for_share(share),
        message=(
            f"Hash split into {batches:,.0f} batches{grew}, writing both join inputs to temp "
            f"files, with {peak:,.0f} kB in memory per batch; the whole hash table needs about "
            f"{work_mem_text(needed)} of work_mem: {_set_line(needed)}"
        ),
        node_path=node.path,
        potential_ms=saved,
        details={
            "batches": batches,
            "original_batches": original,
            "peak_memory_kb": peak,
            "needed_kb": needed,
            "hash_mem_multiplier": multiplier,
            "work_mem": work_mem_text(needed),
            "set_work_mem": _set_line(needed),
            "temp_blocks": node.exclusive_buffers.temp_total
            + (parent.exclusive_buffers.temp_total if parent is not None else 0),
            "time_ms": saved,
            "share_of_total": share,
        },
    )


def _hashagg_spill(plan: Plan, node: PlanNode, multiplier: float) -> Finding | None:
    batches = _max_over_workers(node, "HashAgg Batches") or 0.0
    disk = _max_over_workers(node, "Disk Usage") or 0.0
    if batches <= 1 and disk <= 0:
        return None
    peak = _max_over_workers(node, "Peak Memory Usage") or 0.0
    needed = (peak + disk * HASHAGG_DISK_FACTOR) / multiplier
    share = share_of_query(plan, node.exclusive_ms)
    return Finding(
        rule=HASH_ID,
        severity=severity_for_share(share),
        message=(
            f"{short_label(node)} (hashed) spilled {disk:,.0f} kB to disk in {batches:,.0f} "
            f"batches after using {peak:,.0f} kB of memory; it needs about "
            f"{work_mem_text(needed)} of work_mem: {_set_line(needed)}"
        ),
        node_path=node.path,
        potential_ms=node.exclusive_ms,
        details={
            "batches": batches,
            "planned_partitions": raw_number(node, "Planned Partitions"),
            "disk_kb": disk,
            "peak_memory_kb": peak,
            "needed_kb": needed,
            "hash_mem_multiplier": multiplier,
            "work_mem": work_mem_text(needed),
            "set_work_mem": _set_line(needed),
            "time_ms": node.exclusive_ms,
            "share_of_total": share,
        },
    )


def check_lossy(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    for node in executed_nodes(plan):
        if node.node_type != "Bitmap Heap Scan":
            continue
        lossy = raw_number(node, "Lossy Heap Blocks") or 0.0
        if lossy <= 0:
            continue
        exact = raw_number(node, "Exact Heap Blocks") or 0.0
        loops = node.actual_loops or 1.0
        needed = (exact + lossy) / loops * BITMAP_BYTES_PER_PAGE / 1024
        rechecked = node.rows_removed_by_index_recheck_total or 0.0
        read = rechecked + (node.total_rows or 0.0) + (node.rows_removed_by_filter_total or 0.0)
        wasted_share = rechecked / read if read > 0 else 0.0
        saved = node.exclusive_ms * wasted_share
        share = share_of_query(plan, saved)
        yield Finding(
            rule=LOSSY_ID,
            severity=severity_for_share(share),
            message=(
                f"{short_label(node)} went lossy on {lossy:,.0f} of {exact + lossy:,.0f} heap "
                f"pages and rechecked {rechecked:,.0f} rows it then discarded; an exact bitmap "
                f"needs about {work_mem_text(needed)} of work_mem: {_set_line(needed)}"
            ),
            node_path=node.path,
            table=table_name(node),
            potential_ms=saved,
            details={
                "lossy_pages": lossy,
                "exact_pages": exact,
                "rows_removed_by_recheck": rechecked,
                "recheck_share": wasted_share,
                "needed_kb": needed,
                "work_mem": work_mem_text(needed),
                "set_work_mem": _set_line(needed),
                "time_ms": node.exclusive_ms,
                "share_of_total": share,
            },
        )
