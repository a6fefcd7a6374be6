"""Raw SQL for a suggestion, as it should run in production.

``CONCURRENTLY`` so the build does not block writes, ``IF NOT EXISTS`` so the script can
be re-run. (CONCURRENTLY cannot run inside a transaction block: run it on its own.)
"""

from __future__ import annotations

from dataclasses import replace

from explainer.advise.ddl import create_index_sql, qualified_name
from explainer.advise.model import IndexCandidate, IndexSuggestion
from explainer.advise.removals import IndexRemoval
from explainer.db.catalog import Partition
from explainer.render.phrases import evidence_phrase
from explainer.report import Report

# Re-exported: one_line lives in the light explainer.units (the workbench's first screen).
from explainer.units import one_line as one_line

#: How long a statement of an exported script waits for a lock before giving up: a
#: CONCURRENTLY build still waits for the transactions already running on its table, and
#: a script that queues behind a long one would queue every write behind itself too.
LOCK_TIMEOUT = "5s"


def index_sql(candidate: IndexCandidate) -> str:
    return create_index_sql(candidate, concurrently=True, if_not_exists=True) + ";"


def partition_candidate(candidate: IndexCandidate, partition: Partition) -> IndexCandidate:
    """The same index on one partition, named after it (``ix_events_2024_user_id``)."""
    return replace(candidate, schema=partition.schema, table=partition.name)


def _attach(parent: IndexCandidate, child: IndexCandidate) -> str:
    return (
        f"ALTER INDEX {qualified_name(parent.schema, parent.name)} "
        f"ATTACH PARTITION {qualified_name(child.schema, child.name)};"
    )


def partitioned_index_statements(
    candidate: IndexCandidate, partitions: tuple[Partition, ...]
) -> list[str]:
    """The recipe for an index on a partitioned table without locking out writes.

    ``CREATE INDEX CONCURRENTLY`` is refused on a partitioned table, and a plain
    ``CREATE INDEX`` there locks every partition for the whole build. So: the index ``ON
    ONLY`` each partitioned level (instant, invalid for now), then each leaf's index built
    CONCURRENTLY and attached to its parent's, then each sub-level's attached upward,
    deepest first. Once every partition's index is attached the parent's becomes valid.
    Every step is re-runnable: IF NOT EXISTS, and attaching an attached index does nothing.
    """
    root = (candidate.schema, candidate.table)
    index_of: dict[tuple[str, str], IndexCandidate] = {root: candidate}
    for partition in partitions:
        index_of[(partition.schema, partition.name)] = partition_candidate(candidate, partition)
    statements = [create_index_sql(candidate, if_not_exists=True, only=True) + ";"]
    levels = [p for p in partitions if p.partitioned]
    statements += [
        create_index_sql(index_of[(p.schema, p.name)], if_not_exists=True, only=True) + ";"
        for p in levels
    ]
    for leaf in (p for p in partitions if not p.partitioned):
        child = index_of[(leaf.schema, leaf.name)]
        statements.append(index_sql(child))
        statements.append(_attach(index_of[(leaf.parent_schema, leaf.parent_name)], child))
    for level in sorted(levels, key=lambda p: -p.level):
        statements.append(
            _attach(
                index_of[(level.parent_schema, level.parent_name)],
                index_of[(level.schema, level.name)],
            )
        )
    return statements


def suggestion_statements(suggestion: IndexSuggestion) -> list[str]:
    """The statements that build a suggestion in production: one CONCURRENTLY build, or
    the partitioned-table recipe."""
    if suggestion.partitions:
        return partitioned_index_statements(suggestion.candidate, suggestion.partitions)
    return [index_sql(suggestion.candidate)]


def suggestion_sql(suggestion: IndexSuggestion) -> str:
    return "\n".join(suggestion_statements(suggestion))


def partition_note(suggestion: IndexSuggestion) -> list[str]:
    """Why a partitioned table's index takes several statements (for the comments)."""
    if not suggestion.partitions:
        return []
    count = sum(1 for p in suggestion.partitions if not p.partitioned)
    return [
        f"{suggestion.candidate.qualified_table} is partitioned ({count} partitions), which "
        "refuses CONCURRENTLY: the index is",
        "created ON ONLY the parent, built CONCURRENTLY on each partition, attached to it; "
        "valid once all are",
    ]


def evidence_lines(suggestion: IndexSuggestion, report: Report) -> list[str]:
    """What the index is for, one line per query it serves (no comment marker): the same
    lines in the SQL script and the Alembic revision, so a reviewer sees why in both."""
    sql_of = {q.id: q.sql for q in report.queries}
    lines = [f"{suggestion.candidate.name} on {suggestion.candidate.qualified_table}"]
    if suggestion.rules:
        lines.append("rules: " + ", ".join(suggestion.rules))
    lines += partition_note(suggestion)
    for query_id, evidence in suggestion.evidence.items():
        lines.append(f"serves {query_id}: {evidence_phrase(evidence)}")
        if query_id in sql_of:
            lines.append(f"  {one_line(sql_of[query_id])}")
    return lines


def removal_lines(removal: IndexRemoval) -> list[str]:
    return [
        f"{removal.index} on {removal.qualified_table}: {removal.reason}, {removal.detail}",
        f"  was: {one_line(removal.definition, 200)}",
    ]


_HEADER = [
    "-- Generated by explainer. Run it with psql (not inside BEGIN ... COMMIT):",
    "-- CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction block.",
    "-- Safe to re-run: every statement is IF [NOT] EXISTS.",
]


def index_script(report: Report) -> str:
    """The suggestions as a plain script: lock_timeout, then one CONCURRENTLY build each.

    A CONCURRENTLY build that fails (lock timeout, cancel) leaves an INVALID index behind,
    and IF NOT EXISTS would then skip it: the header says how to find and drop one.
    """
    lines = [
        *_HEADER,
        "-- A build that fails leaves an INVALID index that IF NOT EXISTS would skip: find it",
        "-- with SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid; drop it, re-run.",
        "",
        f"SET lock_timeout = '{LOCK_TIMEOUT}';",
        "",
    ]
    for suggestion in report.suggestions:
        lines += [f"-- {line}" for line in evidence_lines(suggestion, report)]
        lines += [*suggestion_statements(suggestion), ""]
    return "\n".join(lines)


def removal_script(report: Report) -> str:
    """The removals as a script of their own (never mixed with the additions)."""
    lines = [*_HEADER, "", f"SET lock_timeout = '{LOCK_TIMEOUT}';", ""]
    for removal in report.removals:
        lines += [f"-- {line}" for line in removal_lines(removal)]
        lines += [removal.sql, ""]
    return "\n".join(lines)
