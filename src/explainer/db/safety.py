"""What explainer agrees to run, decided by PostgreSQL's own parser before anything is sent.

The decision is made on pglast's parse tree, not on the text: a ``DELETE`` hidden in a
writable CTE, a second statement after a comment, or ``SELECT ... INTO`` (which creates a
table) are all visible there and easy to miss with a regular expression. Anything that is
not a plain query or a DML statement is refused: explainer explains queries, it does not
run scripts. The tree also names the functions a statement calls, so that one whose effect
outlives the rollback (:data:`IRREVERSIBLE_FUNCTIONS`) is explained without being run.
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
    #: Functions it calls whose effect a ROLLBACK does not undo (``nextval``,
    #: ``pg_terminate_backend``...; :data:`IRREVERSIBLE_FUNCTIONS`): such a statement is
    #: explained without being executed.
    irreversible: tuple[str, ...] = ()


_WRITE_NODES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)

#: Functions whose effect outlives the transaction explainer rolls back, or reaches past
#: it: READ ONLY stops only some of them (nextval, setval, lo_import), and none is undone by
#: ROLLBACK. A statement that calls one by name is explained but not executed. (A function
#: that calls one inside its body cannot be seen from the statement: READ ONLY and the
#: rollback are then the only guards.)
IRREVERSIBLE_FUNCTIONS = frozenset(
    {
        # sequences: a rollback does not give the numbers back
        "nextval",
        "setval",
        # other sessions and the server
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_promote",
        "pg_log_backend_memory_contexts",
        "pg_wal_replay_pause",
        "pg_wal_replay_resume",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_start_backup",
        "pg_stop_backup",
        # session-level advisory locks outlive the transaction
        "pg_advisory_lock",
        "pg_advisory_lock_shared",
        "pg_try_advisory_lock",
        "pg_try_advisory_lock_shared",
        "pg_advisory_unlock",
        "pg_advisory_unlock_shared",
        "pg_advisory_unlock_all",
        # statistics resets are not transactional
        "pg_stat_reset",
        "pg_stat_reset_shared",
        "pg_stat_reset_single_table_counters",
        "pg_stat_reset_single_function_counters",
        "pg_stat_reset_slru",
        "pg_stat_reset_replication_slot",
        "pg_stat_reset_subscription_stats",
        "pg_stat_statements_reset",
        # replication slots and origins, logical messages
        "pg_create_physical_replication_slot",
        "pg_create_logical_replication_slot",
        "pg_copy_physical_replication_slot",
        "pg_copy_logical_replication_slot",
        "pg_drop_replication_slot",
        "pg_replication_slot_advance",
        "pg_replication_origin_create",
        "pg_replication_origin_drop",
        "pg_logical_emit_message",
        # other databases and the server's files
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "dblink_connect_u",
        "dblink_send_query",
        "dblink_open",
        "lo_export",
        "lo_import",
        "pg_file_write",
        "pg_file_rename",
        "pg_file_unlink",
        "pg_file_sync",
        # hypothetical indexes live in the backend: they would skew explainer's own checks
        "hypopg_create_index",
        "hypopg_drop_index",
        "hypopg_reset",
        "hypopg_hide_index",
    }
)

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


#: SET ROLE / SET SESSION AUTHORIZATION (and their RESET): refused with their own reason.
_ROLE_SETTINGS = frozenset({"role", "session_authorization"})


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
    nodes = ast_nodes(node)
    count = max((n.number or 0 for n in nodes if isinstance(n, ast.ParamRef)), default=0)
    return CheckedStatement(
        checked.sql, checked.kind, checked.node, count, _irreversible_calls(nodes)
    )


def _irreversible_calls(nodes: list[ast.Node]) -> tuple[str, ...]:
    """The :data:`IRREVERSIBLE_FUNCTIONS` called, by name (any schema: a look-alike in
    another schema is taken for the real one, which only costs a measurement)."""
    called = (
        (n.funcname[-1].sval or "").lower()
        for n in nodes
        if isinstance(n, ast.FuncCall) and n.funcname and isinstance(n.funcname[-1], ast.String)
    )
    return tuple(sorted({name for name in called if name in IRREVERSIBLE_FUNCTIONS}))


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
    if isinstance(node, ast.VariableSetStmt) and node.name in _ROLE_SETTINGS:
        hint = "explainer runs as the role it connects as: connect as that role instead"
        if node.name == "session_authorization":
            hint = f"SET SESSION AUTHORIZATION is not explained; {hint}"
        else:
            hint = f"SET ROLE is not explained; {hint}"
    verb = _statement_verb(node)
    raise UnsafeStatementError(
        f"{verb} refused: " + (hint or "only queries and INSERT/UPDATE/DELETE/MERGE are explained")
    )


def _has_writable_cte(node: ast.SelectStmt) -> bool:
    """A data-modifying CTE anywhere in the statement makes it a write."""
    for sub in ast_nodes(node):
        if isinstance(sub, ast.CommonTableExpr) and isinstance(sub.ctequery, _WRITE_NODES):
            return True
    return False


def ast_nodes(node: ast.Node) -> list[ast.Node]:
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


#: Statements whose parse-tree name does not read as their SQL ("CheckPointStmt").
_VERBS = {
    "CheckPointStmt": "CHECKPOINT",
    "VariableShowStmt": "SHOW",
    "IndexStmt": "CREATE INDEX",
    "ViewStmt": "CREATE VIEW",
    "CreateTrigStmt": "CREATE TRIGGER",
    "RuleStmt": "CREATE RULE",
    "ClosePortalStmt": "CLOSE",
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
}


def _statement_verb(node: ast.Node) -> str:
    """A readable name for a refused statement: 'CreateStmt' -> 'CREATE statement'."""
    if type(node).__name__ in _VERBS:
        return f"{_VERBS[type(node).__name__]} statement"
    name = type(node).__name__.removesuffix("Stmt")
    words = re.findall(r"[A-Z][a-z]*", name)
    if isinstance(node, ast.TransactionStmt):
        return "transaction control"
    if isinstance(node, ast.VariableSetStmt):
        return "SET"
    return (" ".join(words).upper() or "this") + " statement"
