"""The schema lint inside ``explainer analyze``: the tables the analyzed workload touches.

``explainer lint`` judges a whole database; an analysis reports only what concerns the
statements it explained, so its lint is limited to a *scope* read from their plans:

* every table a plan reads or writes (a partition brings its partitioned table along,
  where its primary key, its text columns and its foreign keys are judged);
* for ``lint-fk-unindexed`` also the foreign keys *into* a table the workload deletes
  from: each deleted row runs the key's check on the referencing table, which the plan
  does not name (the check is a trigger), and that scan is what an unindexed key costs.
  A table only read or updated brings no children along: a read never touches them, and
  an update runs the check only when it changes the key itself.

``lint-duplicate-index`` and ``lint-unused-index`` are never run here: the analysis
already lists the same indexes, database-wide, in ``Report.removals`` (the index
advisor's own removals, which these two rules merely re-word), so they appear once.

A ``lint-fk-unindexed`` finding is also left out when one of the analysis's index
suggestions starts with the key's columns: building that suggestion fixes it, and the
suggestion carries the evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from explainer.advise.model import IndexSuggestion
from explainer.db.catalog import TableInfo, schema_foreign_keys
from explainer.lint.facts import read_facts
from explainer.lint.model import LINT_RULES, LintFinding
from explainer.lint.rules import run_lint_rules
from explainer.plan import Plan

TableKey = tuple[str, str]

#: The rules an analysis runs: all but the index removals, which the report holds already.
WORKLOAD_LINT_RULES = tuple(
    rule for rule in LINT_RULES if rule not in ("lint-duplicate-index", "lint-unused-index")
)


@dataclass(frozen=True, slots=True)
class LintScope:
    """What an analysis lints: the tables its plans touch, and the ones it deletes from."""

    #: Every table (schema, name) a plan reads or writes, with partitions' roots.
    tables: frozenset[TableKey]
    #: Tables a plan deletes from: the foreign keys into them are judged too.
    deleted_from: frozenset[TableKey] = frozenset()


def _key(schema: str | None, relation: str) -> str:
    """A plan node's table as the analysis's table cache names it."""
    return f"{schema}.{relation}" if schema and schema != "public" else relation


def _with_root(info: TableInfo) -> set[TableKey]:
    keys = {(info.schema, info.name)}
    if info.partition_root is not None:
        keys.add(info.partition_root)
    return keys


def plan_scope(
    plans: Iterable[Plan], tables_of: Callable[[Plan], Mapping[str, TableInfo]]
) -> LintScope:
    """The scope of the explained statements' plans. ``tables_of`` resolves a plan's
    relations to catalog tables (the pipeline's table cache, keyed like :func:`_key`)."""
    tables: set[TableKey] = set()
    deleted: set[TableKey] = set()
    for plan in plans:
        known = tables_of(plan)
        for info in known.values():
            tables |= _with_root(info)
        for node in plan.walk():
            if node.operation != "Delete" or node.relation is None:
                continue
            target = known.get(_key(node.schema, node.relation))
            if target is not None:
                deleted |= _with_root(target)
    return LintScope(frozenset(tables), frozenset(deleted))


def _served(finding: LintFinding, suggestions: Iterable[IndexSuggestion]) -> bool:
    """Whether a suggested index starts with the foreign key's columns (in any order)."""
    columns = set(finding.details.get("columns", ()))
    for suggestion in suggestions:
        candidate = suggestion.candidate
        if (candidate.schema, candidate.table) != (finding.schema, finding.table):
            continue
        if candidate.using != "btree" or candidate.where is not None:
            continue
        leading = [key.column for key in candidate.keys[: len(columns)]]
        if len(leading) == len(columns) and set(leading) == columns:
            return True
    return False


def lint_scope(
    conn: psycopg.Connection[Any],
    scope: LintScope,
    suggestions: Iterable[IndexSuggestion] = (),
) -> list[LintFinding]:
    """The lint findings of ``scope``, most severe first (as ``explainer lint`` orders
    them), without the removals and without the foreign keys a suggestion serves."""
    if not scope.tables:
        return []
    keys = schema_foreign_keys(conn)
    into_deleted = {
        (fk.schema, fk.table, fk.name)
        for fk in keys
        if (fk.referenced_schema, fk.referenced_table) in scope.deleted_from
    }
    children = {(schema, table) for schema, table, _name in into_deleted}
    facts = read_facts(conn, only=scope.tables | children, removals=False, foreign_keys=keys)
    chosen = list(suggestions)
    kept: list[LintFinding] = []
    for finding in run_lint_rules(facts):
        if finding.rule not in WORKLOAD_LINT_RULES:
            continue
        if finding.rule == "lint-fk-unindexed":
            constraint = str(finding.details.get("constraint"))
            in_scope = (finding.schema, finding.table) in scope.tables or (
                finding.schema,
                finding.table,
                constraint,
            ) in into_deleted
            if in_scope and not _served(finding, chosen):
                kept.append(finding)
        elif (finding.schema, finding.table) in scope.tables:
            kept.append(finding)
    return kept
