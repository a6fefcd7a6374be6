"""What explainer agrees to run, decided by PostgreSQL's own parser before anything is sent.

The decision is made on pglast's parse tree, not on the text: a ``DELETE`` hidden in a
writable CTE, a second statement after a comment, or ``SELECT ... INTO`` (which creates a
table) are all visible there and easy to miss with a regular expression. Anything that is
not a plain query or a DML statement is refused: explainer explains queries, it does not
run scripts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from pglast import ast, parse_sql
from pglast.parser import ParseError

from explainer.errors import InputError, UnsafeStatementError


class StatementKind(Enum):
    """How a statement may be explained."""

    #: A query that only reads: runs in a READ ONLY transaction.
    READ = "read"
    #: SELECT ... FOR UPDATE/SHARE: reads, but takes row locks, so it cannot run READ ONLY.
    LOCKING_READ = "locking_read"
    #: INSERT/UPDATE/DELETE/MERGE, or a query with a writable CTE: executed only on request.
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class CheckedStatement:
    sql: str
    kind: StatementKind
    #: The parse tree's node name, for messages ("UpdateStmt").
    node: str
    #: The highest ``$n`` placeholder (0 for none): statements from pg_stat_statements or
    #: the extended protocol need that many values, or a generic plan.
    parameter_count: int = 0


_WRITE_NODES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)

_PLAN_LIKE = re.compile(
    r"(QUERY PLAN|\(cost=\d|\bactual time=|^\s*->\s|\"Plan\"\s*:|"
    r"^\s*(Seq Scan|Index Scan|Hash Join|Nested Loop|Aggregate|Sort|Limit)\b)",
    re.MULTILINE,
)

_REFUSED_HINTS: dict[type[ast.Node], str] = {
    ast.TransactionStmt: "transaction control is explainer's job: pass the statement alone",
    ast.ExplainStmt: "it is already an EXPLAIN: pass the statement alone",
    ast.CopyStmt: "COPY is not explained",
    ast.DoStmt: "DO blocks are not explained",
    ast.VariableSetStmt: "SET is not explained; explainer sets its own timeouts",
}


def _parse_error_line(sql: str, error: ParseError) -> str:
    message = str(error.args[0]) if error.args else str(error)
    position = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else None
    if position is not None:
        line = sql.count("\n", 0, position) + 1
        return f"{message} (line {line})"
    return message


def check_statement(sql: str) -> CheckedStatement:
    """Parse one input item and say how it may run, or raise an error that says why not."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise InputError("empty statement: nothing to explain")
    try:
        statements = parse_sql(text)
    except ParseError as exc:
        if _PLAN_LIKE.search(text):
            raise InputError(
                "this looks like an EXPLAIN plan, not SQL: pass the query itself"
            ) from None
        raise InputError(f"not valid SQL: {_parse_error_line(text, exc)}") from None
    if not statements:
        raise InputError("no statement found: the input holds only comments")
    if len(statements) > 1:
        raise UnsafeStatementError(
            f"{len(statements)} statements in one item: explainer explains one statement "
            "at a time (pass them as a file with --sql, which splits them)"
        )
    node = statements[0].stmt
    if node is None:
        raise InputError("no statement found: the input holds only comments")
    checked = _check_node(text, node)
    count = max((n.number or 0 for n in _walk(node) if isinstance(n, ast.ParamRef)), default=0)
    return CheckedStatement(checked.sql, checked.kind, checked.node, count)


def _check_node(text: str, node: ast.Node) -> CheckedStatement:
    name = type(node).__name__
    if isinstance(node, ast.SelectStmt):
        if node.intoClause is not None:
            raise UnsafeStatementError("SELECT ... INTO creates a table: refused")
        if _has_writable_cte(node):
            return CheckedStatement(text, StatementKind.WRITE, name)
        if node.lockingClause:
            return CheckedStatement(text, StatementKind.LOCKING_READ, name)
        return CheckedStatement(text, StatementKind.READ, name)
    if isinstance(node, _WRITE_NODES):
        return CheckedStatement(text, StatementKind.WRITE, name)
    hint = next((h for t, h in _REFUSED_HINTS.items() if isinstance(node, t)), None)
    verb = _statement_verb(node)
    raise UnsafeStatementError(
        f"{verb} refused: " + (hint or "only queries and INSERT/UPDATE/DELETE/MERGE are explained")
    )


def _has_writable_cte(node: ast.SelectStmt) -> bool:
    """A data-modifying CTE anywhere in the statement makes it a write."""
    for sub in _walk(node):
        if isinstance(sub, ast.CommonTableExpr) and isinstance(sub.ctequery, _WRITE_NODES):
            return True
    return False


def _walk(node: ast.Node) -> list[ast.Node]:
    """All AST nodes below ``node`` (pglast's nodes have no generic traversal)."""
    found: list[ast.Node] = []
    stack: list[object] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            found.append(item)
            stack.extend(getattr(item, attr) for attr in item)
        elif isinstance(item, tuple | list):
            stack.extend(item)
    return found


def _statement_verb(node: ast.Node) -> str:
    """A readable name for a refused statement: 'CreateStmt' -> 'CREATE statement'."""
    name = type(node).__name__.removesuffix("Stmt")
    words = re.findall(r"[A-Z][a-z]*", name)
    if isinstance(node, ast.TransactionStmt):
        return "transaction control"
    if isinstance(node, ast.VariableSetStmt):
        return "SET"
    return (" ".join(words).upper() or "this") + " statement"
