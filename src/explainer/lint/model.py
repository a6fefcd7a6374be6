"""The schema lint's data: the catalog facts read once, and the findings made of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from explainer.advise.removals import IndexRemoval
from explainer.db.catalog import ForeignKey, Partition, SchemaTable, TextColumn
from explainer.rules.model import Severity

#: Every lint rule id, in the order docs/rules.md ("Schema lint") describes them.
LINT_RULES = (
    "lint-fk-unindexed",
    "lint-no-primary-key",
    "lint-text-typed-dates",
    "lint-text-typed-booleans",
    "lint-text-typed-numbers",
    "lint-never-analyzed",
    "lint-duplicate-index",
    "lint-unused-index",
)


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
