"""Identifiers as SQL text: quoted only when PostgreSQL needs it.

Upper case, odd characters and reserved words need quotes; anything else is written bare,
so the SQL a user copies reads like SQL they would write. Used by every layer that writes
SQL for the user to run (the advisor's DDL, the rules' fixes, the schema lint).
"""

from __future__ import annotations

import re

from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

_BARE = re.compile(r"^[a-z_][a-z0-9_$]*$")
_KEYWORDS = frozenset(RESERVED_KEYWORDS | COL_NAME_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS)


def quote_ident(name: str) -> str:
    """Quote an identifier only when it would not survive unquoted."""
    if _BARE.match(name) and name not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified_name(schema: str, name: str) -> str:
    """``name``, schema-qualified outside ``public``, quoted where needed."""
    if schema == "public":
        return quote_ident(name)
    return f"{quote_ident(schema)}.{quote_ident(name)}"
