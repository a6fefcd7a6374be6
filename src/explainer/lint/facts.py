"""Read the catalog facts the schema lint judges, once per run."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import psycopg

from explainer.advise.removals import find_removals
from explainer.db.catalog import (
    ForeignKey,
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


def read_facts(
    conn: psycopg.Connection[Any],
    schema: str | None = None,
    *,
    only: Collection[tuple[str, str]] | None = None,
    removals: bool = True,
    foreign_keys: Sequence[ForeignKey] | None = None,
) -> LintFacts:
    """The tables, foreign keys, text columns (sampled where never analyzed) and index
    removals of ``schema`` (every user schema when None).

    ``only`` limits the tables (and so the text columns sampled and the partition trees
    read) to those (schema, name): an analysis lints the tables its workload touches, and
    the catalog queries themselves filter, so a lock on another table (pg_relation_size
    waits for it) never holds the lint up.
    The foreign keys stay the whole schema's (a key's other side may be outside ``only``:
    the text-typed rule must still leave its columns alone); ``foreign_keys`` passes them
    when the caller read them already. ``removals`` False skips the index usage read.
    """
    tables = tuple(schema_tables(conn, schema, only))
    columns = tuple(text_columns(conn, schema, only))
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
    keys = tuple(schema_foreign_keys(conn, schema)) if foreign_keys is None else tuple(foreign_keys)
    return LintFacts(
        tables=tables,
        foreign_keys=keys,
        partition_foreign_keys=tuple(schema_foreign_keys(conn, schema, clones=True)),
        text_columns=columns,
        samples=samples,
        removals=tuple(find_removals(index_usage(conn), stats_since(conn))) if removals else (),
        partitions=partitions,
    )
