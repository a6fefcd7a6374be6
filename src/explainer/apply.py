"""``explainer apply``: run an exported script on a development database and close the loop.

A suggestion is proven once more where it will land: the queries the script's indexes
serve are measured, the script runs, and the same queries are measured again, so the user
sees before -> after on their own copy of the data before a migration goes to review.

Which queries? The export's ``report.json`` (beside the script, or ``--report``) names,
for each suggested index, the queries it serves and their SQL. Without it the script
still runs, and the output says the queries were not re-run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast
import psycopg

from explainer.db.catalog import index_tree_names
from explainer.db.connection import connect
from explainer.db.explain import Connection, Execution, ExplainOptions, explain
from explainer.db.safety import check_statement
from explainer.errors import ExplainerError, InputError, QueryFailed
from explainer.plan import Plan


@dataclass(frozen=True, slots=True)
class AffectedQuery:
    """A query an index of the script serves, as the report recorded it."""

    id: str
    sql: str
    #: The indexes of the script that serve it, as (schema, name).
    indexes: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Measurement:
    """One query run before and after the script."""

    query: AffectedQuery
    before: Plan | None = None
    after: Plan | None = None
    #: Why it could not be measured (then before/after may be missing).
    error: str | None = None
    analyzed: bool = True

    @property
    def before_ms(self) -> float | None:
        return self.before.execution_ms if self.before and self.analyzed else None

    @property
    def after_ms(self) -> float | None:
        return self.after.execution_ms if self.after and self.analyzed else None

    #: The names a plan shows for the script's indexes (on a partitioned table, the
    #: partitions' indexes attached under the parent's), read once the script ran.
    index_names: tuple[str, ...] = ()

    @property
    def index_used(self) -> bool:
        """The plan after reads one of the script's indexes."""
        if self.after is None:
            return False
        return any(n.index_name in self.index_names for n in self.after.walk() if n.index_name)


@dataclass(slots=True)
class ApplyResult:
    statements: int = 0
    measurements: list[Measurement] = field(default_factory=list)
    #: Why the queries were not re-run (no report found), else None.
    not_rerun: str | None = None


def script_statements(path: Path) -> list[str]:
    """The statements of a SQL script, one string each, comments dropped (PostgreSQL's
    own parser splits them, so a semicolon inside a string or comment does not)."""
    if path.suffix.lower() != ".sql":
        raise InputError(
            f"{path}: explainer apply runs .sql scripts; run an Alembic revision with "
            "alembic upgrade head"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        raise InputError(f"cannot read {path}: {reason}") from exc
    try:
        statements = [str(s) for s in pglast.split(text)]
    except pglast.parser.ParseError as exc:
        raise InputError(f"{path}: not valid SQL: {exc}") from None
    if not statements:
        raise InputError(f"{path}: no statement to apply")
    return statements


def find_report(script: Path, report: Path | None) -> Path | None:
    """The report to read the affected queries from: the one named, else ``report.json``
    beside the script (where ``--export`` put it), else None."""
    if report is not None:
        if not report.is_file():
            raise InputError(f"--report {report}: no such file")
        return report
    beside = script.parent / "report.json"
    return beside if beside.is_file() else None


def affected_queries(report: Path, statements: Sequence[str]) -> list[AffectedQuery]:
    """The queries served by the indexes the script creates, from an explainer report."""
    try:
        document: Any = json.loads(report.read_text(encoding="utf-8"))
        queries = {str(q["id"]): str(q["sql"]) for q in document["queries"]}
        suggestions = [
            (_schema(str(s["table"])), str(s["name"]), [str(q) for q in s["queries"]])
            for s in document["suggestions"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{report}: not an explainer report.json ({exc})") from None
    script = "\n".join(statements)
    served: dict[str, list[tuple[str, str]]] = {}
    for schema, name, ids in suggestions:
        if name not in script:
            continue  # a suggestion the script does not build (an edited script)
        for query_id in ids:
            served.setdefault(query_id, []).append((schema, name))
    return [
        AffectedQuery(query_id, queries[query_id], tuple(names))
        for query_id, names in served.items()
        if query_id in queries
    ]


def _schema(table: str) -> str:
    """The report names a table schema-qualified only outside ``public``."""
    schema, _, _ = table.rpartition(".")
    return schema or "public"


def _measure(conn: Connection, query: AffectedQuery, options: ExplainOptions) -> tuple[Plan, bool]:
    outcome = explain(conn, Execution(check_statement(query.sql)), options)
    return outcome.plan, outcome.analyzed


def run_script(conn: Connection, statements: Sequence[str], echo: Callable[[str], None]) -> None:
    """Each statement in autocommit (CONCURRENTLY refuses a transaction block); a failure
    stops the script with how many ran (they are IF NOT EXISTS: run it again once fixed)."""
    for number, statement in enumerate(statements, start=1):
        try:
            conn.execute(statement.encode())
        except psycopg.Error as exc:
            text = str(exc).strip()
            reason = text.splitlines()[0] if text else type(exc).__name__
            raise QueryFailed(
                f"statement {number} of {len(statements)} failed ({reason}); "
                f"the {number - 1} before it were applied"
            ) from None
        echo(statement)


def apply_script(
    dsn: str,
    statements: Sequence[str],
    queries: Sequence[AffectedQuery],
    *,
    options: ExplainOptions | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> ApplyResult:
    """Measure ``queries``, run the script, measure them again."""
    options = options or ExplainOptions()
    result = ApplyResult(statements=len(statements))
    with connect(dsn, autocommit=True) as conn:
        for query in queries:
            measurement = Measurement(query)
            try:
                measurement.before, measurement.analyzed = _measure(conn, query, options)
            except ExplainerError as exc:
                measurement.error = str(exc)
            result.measurements.append(measurement)
        run_script(conn, statements, echo)
        for measurement in result.measurements:
            measurement.index_names = tuple(
                found
                for schema, name in measurement.query.indexes
                for found in (index_tree_names(conn, schema, name) or (name,))
            )
            if measurement.error is not None:
                continue
            try:
                measurement.after, analyzed = _measure(conn, measurement.query, options)
                measurement.analyzed = measurement.analyzed and analyzed
            except ExplainerError as exc:
                measurement.error = str(exc)
    return result


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f} ms" if value < 1 else f"{value:,.1f} ms"


def summary_lines(result: ApplyResult) -> list[str]:
    """Before -> after per affected query, as the user reads it after the script ran."""
    if result.not_rerun is not None:
        return [result.not_rerun]
    if not result.measurements:
        return ["no query in the report is served by the script's indexes: nothing re-run"]
    lines = ["before -> after, each query measured with EXPLAIN ANALYZE (rolled back):"]
    for m in result.measurements:
        head = f"  {m.query.id}: "
        if m.error is not None:
            lines.append(head + f"not measured: {m.error}")
            continue
        if m.before_ms is not None and m.after_ms is not None:
            change = m.before_ms / m.after_ms if m.after_ms > 0 else float("inf")
            figures = f"{_ms(m.before_ms)} -> {_ms(m.after_ms)} ({change:,.1f}x)"
        else:
            before = m.before.root.total_cost if m.before else None
            after = m.after.root.total_cost if m.after else None
            figures = f"cost {before or 0:,.1f} -> {after or 0:,.1f} (estimated, not run)"
        used = "index used" if m.index_used else "index NOT used"
        lines.append(head + f"{figures}, {used}")
        lines.append(f"      {' '.join(m.query.sql.split())[:100]}")
    return lines
