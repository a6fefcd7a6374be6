"""The schema lint's data: the catalog facts read once, and the findings made of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from explainer.advise.removals import IndexRemoval
from explainer.db.catalog import ForeignKey, Partition, SchemaTable, TextColumn
from explainer.rules.model import Severity


@dataclass(frozen=True, slots=True)
class LintRule:
    """A lint rule as ``explainer rules`` lists it (the details are in docs/rules.md)."""

    id: str
    title: str
    trigger: str


#: Every lint rule, in the order docs/rules.md ("Schema lint") describes them.
LINT_RULE_INFO: tuple[LintRule, ...] = (
    LintRule(
        "lint-fk-unindexed",
        "Foreign key without an index that starts with its columns",
        "no valid, non-partial btree index of the referencing table leads with the key's "
        "columns; medium from 10,000 rows, high from 1,000,000",
    ),
    LintRule(
        "lint-no-primary-key",
        "Table without a primary key",
        "a table or partitioned table (not a partition) with no primary key",
    ),
    LintRule(
        "lint-text-typed-dates",
        "Dates or timestamps stored as text",
        "every value pg_stats (or a bounded sample) holds of a text or varchar column is "
        "an ISO date or timestamp",
    ),
    LintRule(
        "lint-text-typed-booleans",
        "Booleans stored as text",
        "every known value of a text or varchar column is a boolean word (true/false, "
        "t/f, yes/no, on/off, with 1/0)",
    ),
    LintRule(
        "lint-text-typed-numbers",
        "Numbers stored as text",
        "every known value of a text or varchar column is an integer or decimal without "
        "a leading zero",
    ),
    LintRule(
        "lint-never-analyzed",
        "Table never analyzed",
        "rows were written but neither ANALYZE nor autovacuum ever analyzed it "
        "(reltuples = -1); high from 10,000 live rows",
    ),
    LintRule(
        "lint-duplicate-index",
        "Duplicate or prefix index",
        "another index of the table has the same keys, or a btree's keys lead another's",
    ),
    LintRule(
        "lint-unused-index",
        "Index never used",
        "idx_scan = 0 since the statistics began; never an index enforcing a constraint "
        "or serving a foreign key",
    ),
)

#: Every lint rule id, in the order docs/rules.md ("Schema lint") describes them.
LINT_RULES: tuple[str, ...] = tuple(rule.id for rule in LINT_RULE_INFO)


@dataclass(frozen=True, slots=True)
class LintFacts:
    """What the catalog says about a schema: read once, then judged by pure functions
    (which tests can also feed by hand)."""

    tables: tuple[SchemaTable, ...]
    foreign_keys: tuple[ForeignKey, ...]
    text_columns: tuple[TextColumn, ...]
    #: Values read by a bounded sample for text columns pg_stats knows nothing of, keyed by
    #: (schema, table, column).
    samples: Mapping[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)
    #: What the index advisor would remove (explainer.advise.removals), all schemas.
    removals: tuple[IndexRemoval, ...] = ()
    #: The partitions' copies of their partitioned tables' foreign keys: not findings of
    #: their own, but they name the partition indexes that serve a key.
    partition_foreign_keys: tuple[ForeignKey, ...] = ()
    #: The partitions under each partitioned table, keyed by (schema, table): an index
    #: on a partitioned table is built partition by partition.
    partitions: Mapping[tuple[str, str], tuple[Partition, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LintFinding:
    """One thing wrong with the schema, with the SQL that fixes it and the model change."""

    rule: str  # one of LINT_RULES, documented in docs/rules.md
    severity: Severity
    schema: str
    table: str
    #: The column (or the columns, comma-separated, of a foreign key); None for a table-
    #: or index-wide finding.
    column: str | None
    message: str  # one sentence with the numbers
    #: The statements that fix it, to run as they are (psql, a migration's op.execute).
    sql: str
    #: The SQLAlchemy model change, when there is one.
    model: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def qualified_table(self) -> str:
        return self.table if self.schema == "public" else f"{self.schema}.{self.table}"


@dataclass(frozen=True, slots=True)
class LintReport:
    """The lint of one database (or one schema of it)."""

    database: str
    server_version: str
    schema: str | None  # the --schema filter; None: every user schema
    tables: int  # tables looked at
    findings: tuple[LintFinding, ...]
    #: Since when the index usage counters count (for lint-unused-index), as a phrase:
    #: "since the statistics were reset (2026-01-01 10:00 UTC)".
    stats_since: str
    #: Tables whose text columns were read by a sample (pg_stats had nothing on them).
    sampled_tables: tuple[str, ...] = ()
