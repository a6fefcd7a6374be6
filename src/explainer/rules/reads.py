"""``slow-reads``: a large share of the query spent reading blocks from outside shared_buffers.

Judged only when the plan carries I/O timing (``track_io_timing = on``). Without it a block
"read" may have come from the operating system's page cache in microseconds, and a large
sequential scan always reads through a small ring buffer whatever the cache holds, so a low
hit ratio alone says little about time. Temp-file reads (sorts and hashes that spilled) are
left to the spill rules: more memory, not more cache, fixes those.
"""

from __future__ import annotations

from collections.abc import Iterator

from explainer.plan import Plan, PlanNode
from explainer.plan.labels import short_label
from explainer.rules.model import Finding, RuleContext, severity_for_share, table_name
from explainer.rules.plan_helpers import megabytes, raw_number, share

RULE_ID = "slow-reads"

#: Read time must reach this share of the query's time...
MIN_SHARE = 0.1
#: ...and this many milliseconds.
MIN_READ_MS = 10.0

#: Under this many ms per block, reads were served by the operating system's page cache...
FROM_OS_CACHE_MS = 0.01
#: ...from this many, by the disk.
FROM_DISK_MS = 0.1

#: Shared and local read time: one key up to PostgreSQL 16, split by scope from 17.
READ_TIME_KEYS = ("I/O Read Time", "Shared I/O Read Time", "Local I/O Read Time")


def read_ms(node: PlanNode) -> float | None:
    """The node's shared + local block read time in ms (inclusive of its children), or None
    when the plan has no I/O timing."""
    values = [v for key in READ_TIME_KEYS if (v := raw_number(node.raw, key)) is not None]
    return sum(values) if values else None


def _exclusive_read_ms(node: PlanNode) -> float:
    own = read_ms(node) or 0.0
    return max(0.0, own - sum(read_ms(child) or 0.0 for child in node.children))


def _speed(ms_per_block: float | None) -> str:
    """Where the reads likely came from: a page-cache copy takes microseconds, a disk read
    on SSD a tenth of a millisecond and more."""
    if ms_per_block is None:
        return ""
    where = ""
    if ms_per_block < FROM_OS_CACHE_MS:
        where = ": the OS page cache"
    elif ms_per_block >= FROM_DISK_MS:
        where = ": the disk"
    return f"; {ms_per_block:.3f} ms per block{where}"


def check(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    if not plan.analyzed:
        return
    timed = [(node, ms) for node in plan.walk() if (ms := read_ms(node)) is not None]
    if not timed:
        return
    # The root's counters hold every read of the statement; the maximum also covers servers
    # whose Gather counted only the leader's reads.
    top, total_read = max(timed, key=lambda pair: pair[1])
    total = plan.total_ms
    read_share = share(total_read, total)
    if total_read < MIN_READ_MS or read_share < MIN_SHARE:
        return
    target = max((node for node, _ in timed), key=_exclusive_read_ms)
    target_ms = _exclusive_read_ms(target)
    blocks_read = top.buffers.shared_read + top.buffers.local_read
    hit_ratio = top.buffers.hit_ratio
    target_blocks = target.exclusive_buffers.shared_read + target.exclusive_buffers.local_read
    ratio_text = f"; cache hit ratio {hit_ratio:.0%}" if hit_ratio is not None else ""
    share_text = (
        f"more than the query's {total:,.1f} ms"
        if total and total_read > total
        else f"{read_share:.0%} of the query"
    )
    per_block = total_read / blocks_read if blocks_read else None
    potential = min(total_read, total or total_read)
    yield Finding(
        rule=RULE_ID,
        severity=severity_for_share(read_share),
        message=(
            f"Reading {blocks_read:,} blocks ({megabytes(blocks_read)}) from outside "
            f"shared_buffers took {total_read:,.1f} ms ({share_text}{ratio_text}"
            f"{_speed(per_block)}), {target_ms:,.1f} ms of it in {short_label(target)} "
            f"({target_blocks:,} blocks): make the working set fit in shared_buffers, read "
            f"fewer blocks with an index, or warm the cache with pg_prewarm"
        ),
        node_path=target.path,
        table=table_name(target),
        potential_ms=potential,
        details={
            "read_ms": total_read,
            "share_of_total": read_share,
            "blocks_read": blocks_read,
            "blocks_hit": top.buffers.shared_hit + top.buffers.local_hit,
            "hit_ratio": hit_ratio,
            "node_read_ms": target_ms,
            "node_blocks_read": target_blocks,
            "ms_per_block": per_block,
        },
    )
