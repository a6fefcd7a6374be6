"""CREATE INDEX text for a candidate: the one builder for verification and for output.

Identifiers are quoted only when PostgreSQL needs it (upper case, odd characters,
reserved words), so the SQL a user copies reads like SQL they would write, and the
statement explainer verifies is the one it suggests.
"""

from __future__ import annotations

import re

from explainer.advise.model import IndexCandidate, IndexKey
from explainer.db.names import qualified_name, quote_ident

__all__ = ["create_index_sql", "key_sql", "qualified_name", "quote_ident"]


def key_sql(key: IndexKey) -> str:
    """One key as CREATE INDEX wants it: a quoted column or a parenthesised expression,
    then the operator class, the direction and the NULLS order when not the default."""
    if key.expression:
        text = key.text if _parenthesised(key.text) or _is_call(key.text) else f"({key.text})"
    else:
        text = quote_ident(key.text)
    return " ".join([text, *_key_options(key)])


def _key_options(key: IndexKey) -> list[str]:
    parts = []
    if key.opclass:
        parts.append(key.opclass)
    if key.descending:
        parts.append("DESC")
    if key.nulls_first is True and not key.descending:
        parts.append("NULLS FIRST")
    elif key.nulls_first is False and key.descending:
        parts.append("NULLS LAST")
    return parts


_CALL = re.compile(r"^[a-z_][a-z0-9_.]*\(.*\)$", re.S)


def _is_call(text: str) -> bool:
    """``lower(email)``: a function call needs no extra parentheses in CREATE INDEX."""
    return bool(_CALL.match(text)) and _balanced_once(text[text.index("(") :])


def _parenthesised(text: str) -> bool:
    return text.startswith("(") and _balanced_once(text)


def _balanced_once(text: str) -> bool:
    """True when the opening parenthesis at ``text[0]`` closes at the very end."""
    depth = 0
    quoted = False
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False


def create_index_sql(
    candidate: IndexCandidate,
    *,
    name: str | None = None,
    concurrently: bool = False,
    if_not_exists: bool = False,
    only: bool = False,
) -> str:
    """The CREATE INDEX statement for a candidate (no trailing semicolon).

    ``only``: ``ON ONLY`` a partitioned table, the index of that table alone (invalid until
    an index of each partition is attached to it)."""
    parts = ["CREATE INDEX"]
    if concurrently:
        parts.append("CONCURRENTLY")
    if if_not_exists:
        parts.append("IF NOT EXISTS")
    parts.append(quote_ident(name or candidate.name))
    parts.append(
        f"ON ONLY {qualified_name(candidate.schema, candidate.table)}"
        if only
        else f"ON {qualified_name(candidate.schema, candidate.table)}"
    )
    if candidate.using != "btree":
        parts.append(f"USING {candidate.using}")
    parts.append("(" + ", ".join(key_sql(k) for k in candidate.keys) + ")")
    if candidate.include:
        parts.append("INCLUDE (" + ", ".join(quote_ident(c) for c in candidate.include) + ")")
    if candidate.where:
        parts.append(f"WHERE {candidate.where}")
    return " ".join(parts)
