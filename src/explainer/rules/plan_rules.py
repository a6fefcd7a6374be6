"""Plan-wide rules: reads, parallel workers, JIT, planning, triggers and statistics.

These judge what surrounds the node tree (I/O timing, the JIT and trigger sections, planning
time, the server's statistics) rather than one node's own work; the node rules are in
``node_rules``. Every rule is documented in docs/rules.md ("Plan-wide rules").
"""

from __future__ import annotations

from explainer.rules import distinct, overheads, reads, statistics, triggers, workers
from explainer.rules.model import Rule

RULES: tuple[Rule, ...] = (
    Rule(
        id=reads.RULE_ID,
        title="Slow reads from outside shared_buffers",
        check=reads.check,
        trigger=("with I/O timing: shared+local block read time >= 10% of the query and >= 10 ms"),
    ),
    Rule(
        id=workers.RULE_ID,
        title="Parallel workers planned but not launched",
        check=workers.check,
        trigger="Gather / Gather Merge with Workers Launched < Workers Planned",
    ),
    Rule(
        id=overheads.JIT_ID,
        title="JIT compilation dominates the execution",
        check=overheads.check_jit,
        trigger="JIT Timing Total >= 10% of the execution time and >= 1 ms",
    ),
    Rule(
        id=overheads.PLANNING_ID,
        title="Planning takes longer than execution",
        check=overheads.check_planning,
        trigger="Planning Time > Execution Time and >= 5 ms (high from 100 ms)",
    ),
    Rule(
        id=triggers.FK_ID,
        title="Foreign key constraint trigger dominates (missing index on the referencing side)",
        check=triggers.check_fk,
        trigger="one constraint trigger >= 10% of the execution time and >= 10 ms",
    ),
    Rule(
        id=triggers.TRIGGERS_ID,
        title="Triggers dominate the execution",
        check=triggers.check_other,
        trigger="non-constraint triggers together >= 10% of the execution time and >= 10 ms",
    ),
    Rule(
        id=statistics.RULE_ID,
        title="Table statistics out of date",
        check=statistics.check,
        trigger=(
            "connected: reltuples off >= 10x from the rows read or live, never analyzed, or "
            "rows changed since ANALYZE >= 20% of live rows (tables >= 1,000 rows)"
        ),
    ),
    Rule(
        id=distinct.RULE_ID,
        title="GROUP BY found far more groups than pg_stats.n_distinct says",
        check=distinct.check,
        trigger=(
            "connected: an aggregate grouping one column of a table it reads whole finds "
            ">= 2x the column's n_distinct and >= 10,000 groups"
        ),
    ),
)
