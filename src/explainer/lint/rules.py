"""The schema lint rules: small functions from catalog facts to findings.

Each rule reads :class:`LintFacts` only (never the server), so that what it decides is
plain to test; ``explainer.lint.facts`` reads the facts. Every rule is documented in
docs/rules.md, section "Schema lint".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from explainer.advise.ddl import qualified_name, quote_ident
from explainer.advise.model import IndexCandidate, IndexKey
from explainer.advise.removals import IndexRemoval
from explainer.db.catalog import SchemaTable, TextColumn
from explainer.lint.model import LINT_RULES, LintFacts, LintFinding
from explainer.lint.values import FAMILY, TypedValues, TypeKind, classify
from explainer.orm.reflect import class_name
from explainer.render.sql import index_sql, partitioned_index_statements
from explainer.render.sqlalchemy import imports, index_declaration
from explainer.rules.model import Severity

#: Referencing-table sizes (rows) from which an unindexed foreign key is medium, then high.
FK_MEDIUM_ROWS = 10_000
FK_HIGH_ROWS = 1_000_000
#: Live rows from which a never-analyzed table is high rather than medium.
NEVER_ANALYZED_HIGH_ROWS = 10_000

LintRule = Callable[[LintFacts], Iterator[LintFinding]]


def _rows(table: SchemaTable | None) -> float:
    """The planner's row count (reltuples); the statistics counters' when never counted."""
    if table is None:
        return 0.0
    return table.reltuples if table.reltuples >= 0 else max(table.live_rows, 0.0)


def _tables(facts: LintFacts) -> dict[tuple[str, str], SchemaTable]:
    return {(t.schema, t.name): t for t in facts.tables}


# --- lint-fk-unindexed ---------------------------------------------------------------------


def fk_unindexed(facts: LintFacts) -> Iterator[LintFinding]:
    """A foreign key whose columns lead no btree index of the referencing table."""
    tables = _tables(facts)
    for fk in facts.foreign_keys:
        if fk.index is not None:
            continue
        table = tables.get((fk.schema, fk.table))
        rows = _rows(table)
        severity = (
            Severity.HIGH
            if rows >= FK_HIGH_ROWS
            else Severity.MEDIUM
            if rows >= FK_MEDIUM_ROWS
            else Severity.LOW
        )
        candidate = IndexCandidate(fk.schema, fk.table, tuple(IndexKey(c) for c in fk.columns))
        partitions = facts.partitions.get((fk.schema, fk.table), ())
        if table is not None and table.kind == "p":
            statements = partitioned_index_statements(candidate, partitions)
        else:
            statements = [index_sql(candidate)]
        columns = ", ".join(fk.columns)
        named = (
            f"{fk.qualified}.{columns}" if len(fk.columns) == 1 else f"{fk.qualified} ({columns})"
        )
        yield LintFinding(
            rule="lint-fk-unindexed",
            severity=severity,
            schema=fk.schema,
            table=fk.table,
            column=columns,
            message=(
                f"{named} references {fk.referenced_qualified} but no "
                f"index starts with it: every delete or key update on "
                f"{fk.referenced_qualified} scans {fk.qualified} (~{rows:,.0f} rows), and "
                "joins on it cannot use an index."
            ),
            sql="\n".join(statements),
            model=_fk_model(candidate),
            details={
                "constraint": fk.name,
                "columns": list(fk.columns),
                "referenced_table": fk.referenced_qualified,
                "referenced_columns": list(fk.referenced_columns),
                "rows": rows,
                "index": candidate.name,
            },
        )


def _fk_model(candidate: IndexCandidate) -> str:
    model = class_name(candidate.table)
    lines = [imports(candidate), "", f"# after class {model}:", index_declaration(candidate)]
    if len(candidate.keys) == 1:
        column = candidate.keys[0].text
        lines.append(f"# or, in class {model}: index=True on the mapped_column of {column}")
    return "\n".join(lines)


# --- lint-no-primary-key -------------------------------------------------------------------


def no_primary_key(facts: LintFacts) -> Iterator[LintFinding]:
    """A table (not a partition: its partitioned table is judged) without a primary key."""
    for table in facts.tables:
        if table.kind not in ("r", "p") or table.is_partition or table.has_primary_key:
            continue
        name = qualified_name(table.schema, table.name)
        model = class_name(table.name)
        if table.unique_index is not None and table.kind == "r":
            columns = ", ".join(quote_ident(c) for c in table.unique_columns)
            constraint = quote_ident(f"{table.name}_pkey")
            sql_text = (
                f"ALTER TABLE {name} ADD CONSTRAINT {constraint} "
                f"PRIMARY KEY USING INDEX {quote_ident(table.unique_index)};"
            )
            how = f"its unique index {table.unique_index} ({columns}) can become it"
            model_text = (
                f"# in class {model}: primary_key=True on the mapped_column of "
                + ", ".join(table.unique_columns)
            )
        elif table.kind == "p":
            sql_text = (
                f"-- a partitioned table's primary key must include its partition key:\n"
                f"ALTER TABLE {name} ADD PRIMARY KEY (<partition key columns>, ...);"
            )
            how = "its primary key must include the partition key"
            model_text = f"# in class {model}: primary_key=True on the key's mapped_columns"
        else:
            column = _new_key_name(table)
            sql_text = (
                f"-- rewrites the table under an ACCESS EXCLUSIVE lock: plan a window\n"
                f"ALTER TABLE {name} ADD COLUMN {quote_ident(column)} bigint "
                "GENERATED ALWAYS AS IDENTITY PRIMARY KEY;"
            )
            how = f"an identity column {column} can be added"
            model_text = (
                "from sqlalchemy import BigInteger, Identity\n\n"
                f"class {model}(Base):\n"
                f"    {column}: Mapped[int] = mapped_column(\n"
                "        BigInteger, Identity(always=True), primary_key=True\n"
                "    )"
            )
        yield LintFinding(
            rule="lint-no-primary-key",
            severity=Severity.MEDIUM,
            schema=table.schema,
            table=table.name,
            column=None,
            message=(
                f"{table.qualified} (~{_rows(table):,.0f} rows) has no primary key: rows "
                "cannot be told apart (duplicates, ORM identity), and logical replication "
                f"cannot replicate its updates and deletes; {how}."
            ),
            sql=sql_text,
            model=model_text,
            details={"rows": _rows(table), "unique_index": table.unique_index},
        )


def _new_key_name(table: SchemaTable) -> str:
    """``id``, or ``<table>_id``, or with ``_`` appended until it names no column."""
    for name in ("id", f"{table.name}_id"):
        if name not in table.columns:
            return name
    name = f"{table.name}_id"
    while name in table.columns:
        name += "_"
    return name


# --- lint-text-typed-dates, -booleans, -numbers ------------------------------------------

#: For each suggested type: the SQL type, SQLAlchemy's type, the Python annotation and
#: the import the annotation needs.
_TYPES: dict[TypeKind, tuple[str, str, str, str | None]] = {
    "date": ("date", "Date", "date", "from datetime import date"),
    "timestamp": ("timestamp", "DateTime", "datetime", "from datetime import datetime"),
    "timestamptz": (
        "timestamptz",
        "DateTime(timezone=True)",
        "datetime",
        "from datetime import datetime",
    ),
    "boolean": ("boolean", "Boolean", "bool", None),
    "integer": ("integer", "Integer", "int", None),
    "bigint": ("bigint", "BigInteger", "int", None),
    "numeric": ("numeric", "Numeric", "Decimal", "from decimal import Decimal"),
}

_WHY = {
    "dates": "range filters and ORDER BY compare them as strings, nothing checks they are "
    "dates, and date arithmetic needs a cast on every row",
    "booleans": "nothing keeps other spellings out, and every filter compares strings",
    "numbers": "they sort and compare as strings ('10' < '9'), nothing checks they are "
    "numbers, and arithmetic needs a cast on every row",
}


def text_typed(facts: LintFacts) -> Iterator[LintFinding]:
    """A text or varchar column whose every known value is a date, boolean or number.

    Columns of a foreign key (either side) are left alone: their type must change with
    the other side's, which is another migration.
    """
    in_keys = {(fk.schema, fk.table, c) for fk in facts.foreign_keys for c in fk.columns} | {
        (fk.referenced_schema, fk.referenced_table, c)
        for fk in facts.foreign_keys
        for c in fk.referenced_columns
    }
    for column in facts.text_columns:
        key = (column.schema, column.table, column.name)
        if key in in_keys:
            continue
        if column.analyzed:
            values, source = column.values, "pg_stats"
        else:
            values, source = facts.samples.get(key, ()), "sample"
        typed = classify(values)
        if typed is None:
            continue
        yield _text_typed_finding(column, typed, source)


def _text_typed_finding(column: TextColumn, typed: TypedValues, source: str) -> LintFinding:
    family = FAMILY[typed.type]
    sql_type, sa_type, annotation, python_import = _TYPES[typed.type]
    name = quote_ident(column.name)
    value = f"btrim({name})" if column.not_null else f"NULLIF(btrim({name}), '')"
    sql_text = (
        "-- rewrites the table under an ACCESS EXCLUSIVE lock: plan a window\n"
        f"ALTER TABLE {qualified_name(column.schema, column.table)} "
        f"ALTER COLUMN {name} TYPE {sql_type} USING {value}::{sql_type};"
    )
    examples = ", ".join(repr(v) for v in typed.examples)
    where = "pg_stats" if source == "pg_stats" else "a sample"
    return LintFinding(
        rule=f"lint-text-typed-{family}",
        severity=Severity.LOW,
        schema=column.schema,
        table=column.table,
        column=column.name,
        message=(
            f"{column.qualified_table}.{column.name} is {column.type} but all "
            f"{typed.values} values {where} holds are {family} ({examples}): "
            f"{_WHY[family]}; {sql_type} fits."
        ),
        sql=sql_text,
        model=_column_model(column, sa_type, annotation, python_import),
        details={
            "type": column.type,
            "suggested_type": sql_type,
            "values_read": typed.values,
            "examples": list(typed.examples),
            "source": source,
        },
    )


def _column_model(
    column: TextColumn, sa_type: str, annotation: str, python_import: str | None
) -> str:
    sa_name = sa_type.split("(")[0]
    head = [line for line in (python_import, f"from sqlalchemy import {sa_name}") if line]
    optional = "" if column.not_null else " | None"
    typed = f"Mapped[{annotation}{optional}]"
    if column.name.isidentifier():
        declaration = f"{column.name}: {typed} = mapped_column({sa_type})"
    else:
        words = "".join(ch if ch.isalnum() else "_" for ch in column.name.lower()).split("_")
        attribute = "_".join(w for w in words if w) or "value"
        declaration = f'{attribute}: {typed} = mapped_column("{column.name}", {sa_type})'
    return "\n".join([*head, "", f"class {class_name(column.table)}(Base):", f"    {declaration}"])


def without_values(finding: LintFinding) -> LintFinding:
    """The finding with the column values it quotes (a text-typed column's examples, read
    from pg_stats or a sample: the table's data) replaced by ``?``, for ``--redact``."""
    examples = finding.details.get("examples")
    if not examples:
        return finding
    message = finding.message
    for value in examples:
        message = message.replace(repr(value), "'?'")
    details = {**finding.details, "examples": ["?" for _ in examples]}
    return replace(finding, message=message, details=details)


# --- lint-never-analyzed -------------------------------------------------------------------


def never_analyzed(facts: LintFacts) -> Iterator[LintFinding]:
    """A table with rows written that neither ANALYZE nor autovacuum has ever analyzed.

    Partitioned tables are left out (autovacuum never analyzes them; their partitions
    are judged), and so are tables no row was ever written to (nothing to analyze).
    """
    for table in facts.tables:
        if table.kind not in ("r", "m") or table.last_analyzed is not None:
            continue
        if table.reltuples >= 0 or table.heap_bytes == 0:
            continue
        severity = Severity.HIGH if table.live_rows >= NEVER_ANALYZED_HIGH_ROWS else Severity.MEDIUM
        yield LintFinding(
            rule="lint-never-analyzed",
            severity=severity,
            schema=table.schema,
            table=table.name,
            column=None,
            message=(
                f"{table.qualified} has never been analyzed (~{table.live_rows:,.0f} live "
                "rows by the statistics counters, no pg_stats): the planner guesses its size "
                "and every selectivity, which leads to bad join orders and scans."
            ),
            sql=f"ANALYZE {qualified_name(table.schema, table.name)};",
            details={"live_rows": table.live_rows, "heap_bytes": table.heap_bytes},
        )


# --- lint-duplicate-index, lint-unused-index -----------------------------------------------


def removable_indexes(facts: LintFacts) -> Iterator[LintFinding]:
    """The index advisor's removals (explainer.advise.removals) of the linted tables.

    An unused index that is the one serving a foreign key (or a partition's copy of it)
    is kept out: parent deletes
    need it even when none happened while scans were counted, and dropping it would be a
    ``lint-fk-unindexed`` finding at once.
    """
    linted = {(t.schema, t.name) for t in facts.tables}
    serving = {
        (fk.schema, fk.index)
        for fk in (*facts.foreign_keys, *facts.partition_foreign_keys)
        if fk.index is not None
    }
    for removal in facts.removals:
        if (removal.schema, removal.table) not in linted:
            continue
        if removal.reason == "unused" and (removal.schema, removal.index) in serving:
            continue
        yield _removal_finding(removal)


def _removal_finding(removal: IndexRemoval) -> LintFinding:
    unused = removal.reason == "unused"
    model = class_name(removal.table)
    return LintFinding(
        rule="lint-unused-index" if unused else "lint-duplicate-index",
        severity=Severity.LOW if unused else Severity.MEDIUM,
        schema=removal.schema,
        table=removal.table,
        column=None,
        message=(
            f"index {removal.index} on {removal.qualified_table} ({removal.size_bytes:,} "
            f"bytes) is {'never used' if unused else 'redundant'}: {removal.detail}; it "
            "slows every write to the table for nothing."
        ),
        sql=removal.sql,
        model=(
            f'# in class {model}: remove Index("{removal.index}", ...) from its '
            "__table_args__ or after the class (or the index=True that creates it)"
        ),
        details={
            "index": removal.index,
            "reason": removal.reason,
            "covered_by": removal.covered_by,
            "size_bytes": removal.size_bytes,
            "idx_scan": removal.idx_scan,
            "definition": removal.definition,
        },
    )


LINT_CHECKS: tuple[LintRule, ...] = (
    fk_unindexed,
    no_primary_key,
    text_typed,
    never_analyzed,
    removable_indexes,
)

_SEVERITY_ORDER = {s: n for n, s in enumerate(reversed(list(Severity)))}


def run_lint_rules(facts: LintFacts) -> list[LintFinding]:
    """Every finding, most severe first, then by rule (docs order), table and column."""
    findings = [finding for check in LINT_CHECKS for finding in check(facts)]
    return sorted(
        findings,
        key=lambda f: (
            _SEVERITY_ORDER[f.severity],
            LINT_RULES.index(f.rule),
            f.schema,
            f.table,
            f.column or "",
        ),
    )
