"""CREATE INDEX text for a candidate: the one builder for verification and for output.

Identifiers are quoted only when PostgreSQL needs it (upper case, odd characters,
reserved words), so the SQL a user copies reads like SQL they would write, and the
statement explainer verifies is the one it suggests.
"""

from __future__ import annotations

import re

from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

from explainer.advise.model import IndexCandidate

_BARE = re.compile(r"^[a-z_][a-z0-9_$]*$")
_KEYWORDS = frozenset(RESERVED_KEYWORDS | COL_NAME_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS)


def quote_ident(name: str) -> str:
    """Quote an identifier only when it would not survive unquoted."""
    if _BARE.match(name) and name not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _key(column: str) -> str:
    if column.endswith(" DESC"):
        return f"{quote_ident(column.removesuffix(' DESC'))} DESC"
    return quote_ident(column)


def create_index_sql(
    candidate: IndexCandidate,
    *,
    name: str | None = None,
    concurrently: bool = False,
    if_not_exists: bool = False,
) -> str:
    """The CREATE INDEX statement for a candidate (no trailing semicolon)."""
    table = quote_ident(candidate.table)
    if candidate.schema != "public":
        table = f"{quote_ident(candidate.schema)}.{table}"
    parts = ["CREATE INDEX"]
    if concurrently:
        parts.append("CONCURRENTLY")
    if if_not_exists:
        parts.append("IF NOT EXISTS")
    parts.append(quote_ident(name or candidate.name))
    parts.append(f"ON {table}")
    if candidate.using != "btree":
        parts.append(f"USING {candidate.using}")
    parts.append("(" + ", ".join(_key(c) for c in candidate.columns) + ")")
    if candidate.include:
        parts.append("INCLUDE (" + ", ".join(quote_ident(c) for c in candidate.include) + ")")
    if candidate.where:
        parts.append(f"WHERE {candidate.where}")
    return " ".join(parts)
