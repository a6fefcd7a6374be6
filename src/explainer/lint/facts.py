"""Read the catalog facts the schema lint judges, once per run."""

from __future__ import annotations

from typing import Any

import psycopg

from explainer.advise.removals import find_removals
from explainer.db.catalog import (
    index_usage,
    partition_tree,
    sample_values,
    schema_foreign_keys,
    schema_tables,
    stats_since,
    text_columns,
)
from explainer.lint.model import LintFacts

#: Rows a sample of a column pg_stats knows nothing of reads at most.
SAMPLE_ROWS = 1000


def read_facts(conn: psycopg.Connection[Any], schema: str | None = None) -> LintFacts:
    """The tables, foreign keys, text columns (sampled where never analyzed) and index
    removals of ``schema`` (every user schema when None)."""
    tables = tuple(schema_tables(conn, schema))
    columns = tuple(text_columns(conn, schema))
    unanalyzed: dict[tuple[str, str], list[str]] = {}
    for column in columns:
        if not column.analyzed:
            unanalyzed.setdefault((column.schema, column.table), []).append(column.name)
    samples: dict[tuple[str, str, str], tuple[str, ...]] = {}
    for (table_schema, table), names in unanalyzed.items():
        found = sample_values(conn, table_schema, table, names, limit=SAMPLE_ROWS)
        for name, values in found.items():
            samples[(table_schema, table, name)] = tuple(values)
    partitions = {
        (t.schema, t.name): partition_tree(conn, t.schema, t.name) for t in tables if t.kind == "p"
    }
    return LintFacts(
        tables=tables,
        foreign_keys=tuple(schema_foreign_keys(conn, schema)),
        partition_foreign_keys=tuple(schema_foreign_keys(conn, schema, clones=True)),
        text_columns=columns,
        samples=samples,
        removals=tuple(find_removals(index_usage(conn), stats_since(conn))),
        partitions=partitions,
    )
