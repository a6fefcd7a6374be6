"""Statement shapes: which captured queries are "the same query", and which are noise.

:func:`fingerprint` is pg_query's fingerprint (via pglast): PostgreSQL's own parse tree
with constants, ``$n`` parameters and the length of ``IN (...)`` lists abstracted away,
and comments and layout ignored. That is the grouping pg_stat_statements users expect:
``WHERE id = 1`` and ``WHERE id = $1`` are one query, another column is another.

Text that pglast cannot parse still has to land in a group, or its calls and time would
silently vanish from the workload. Logs hold such text routinely: statements cut at
``track_activity_query_size``, syntax newer than pglast's grammar, psql ``:variables``,
other dialects. For those a hash of normalised text (lowercased, comments dropped,
literals and parameters replaced, lists folded, whitespace folded) stands in. It is
coarser than the parse tree, so odd spellings of one query may make a few groups instead
of one; it keeps every name, so it never merges different tables or columns.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import pglast
from pglast.ast import Node
from pglast.parser import fingerprint as pg_fingerprint
from pglast.parser import parse_sql
from pglast.visitors import referenced_relations

# PostgreSQL's split: these five are planned queries; every other statement is "utility"
# (transaction control, SET/SHOW, DDL, COPY, EXPLAIN...), which has no plan to improve.
_QUERY_NODES = frozenset({"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"})
_CATALOG_SCHEMAS = ("pg_catalog.", "information_schema.", "pg_toast.")
_QUERY_KEYWORDS = frozenset(
    {"select", "insert", "update", "delete", "merge", "with", "values", "table"}
)

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
# A string may be cut by truncation (track_activity_query_size): it then ends the text.
_STRING = re.compile(r"[eEbBxXnN]?'[^']*(?:''[^']*)*(?:'|\Z)")
_DOLLAR_STRING = re.compile(r"\$(?P<tag>[^\W\d]\w*)?\$.*?\$(?P=tag)?\$", re.DOTALL)
_PARAM = re.compile(r"\$\d+")
_NUMBER = re.compile(r"(?<![\w$])[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?\b")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
_LIST_OF_LISTS = re.compile(r"\(\?\)(?:\s*,\s*\(\?\))+")
_SPACE = re.compile(r"\s+")
_FIRST_WORD = re.compile(r"[^\W\d]\w*")

_CACHED_LENGTH = 4096


def fingerprint(sql: str) -> str:
    """The shape of ``sql`` as 16 hex digits; see the module docstring for the fallback.

    Short texts are cached: a log repeats them (every execution of a prepared statement).
    Long ones (bulk INSERTs) rarely repeat and would make the cache costly to hold.
    """
    if len(sql) <= _CACHED_LENGTH:
        return _cached_fingerprint(sql)
    return _fingerprint(sql)


def _fingerprint(sql: str) -> str:
    try:
        return str(pg_fingerprint(sql))
    except pglast.Error:
        return text_fingerprint(sql)


_cached_fingerprint = lru_cache(maxsize=16384)(_fingerprint)


def text_fingerprint(sql: str) -> str:
    """Fingerprint from normalised text, for SQL the parser rejects."""
    return hashlib.sha1(normalise_text(sql).encode("utf-8")).hexdigest()[:16]


def normalise_text(sql: str) -> str:
    """A rough query shape: literal values, list lengths, case and layout removed."""
    text = _COMMENT.sub(" ", sql)
    text = _DOLLAR_STRING.sub("?", text)
    text = _STRING.sub("?", text)
    text = _PARAM.sub("?", text)
    text = _NUMBER.sub("?", text.lower())
    text = _SPACE.sub(" ", text).strip().rstrip(";").strip()
    text = _LIST.sub("(?)", text)
    return _LIST_OF_LISTS.sub("(?)", text)


def is_utility(sql: str) -> bool:
    """Whether ``sql`` is noise for an index advisor, set aside rather than analysed.

    True for empty text, PostgreSQL utility statements (BEGIN, SET, SHOW, DEALLOCATE,
    DDL...) and queries that read no user table: catalog lookups that drivers and ORMs
    issue on connect (``pg_type``, ``pg_class``, ``information_schema``) and table-less
    ``SELECT version()``-style calls. There is nothing there an index could speed up.
    Text with several statements is utility only if all of them are.
    """
    try:
        statements = parse_sql(sql)
    except pglast.Error:
        return _looks_like_utility(sql)
    return all(_is_utility_node(raw.stmt) for raw in statements)


def _is_utility_node(node: Node | None) -> bool:
    if node is None or type(node).__name__ not in _QUERY_NODES:
        return True
    try:
        relations = referenced_relations(node)
    except RecursionError:  # absurdly nested SQL: assume it is a real query
        return False
    return all(_is_catalog(name) for name in relations)


def _is_catalog(relation: str) -> bool:
    """Schema-qualified catalog names, and unqualified ``pg_*``: pg_catalog is searched first."""
    if relation.startswith(_CATALOG_SCHEMAS):
        return True
    return "." not in relation and relation.startswith("pg_")


def _looks_like_utility(sql: str) -> bool:
    """Keyword test for unparseable text: only statements that start like a query count."""
    text = _COMMENT.sub(" ", sql).lstrip().lstrip("(")
    word = _FIRST_WORD.match(text)
    if word is None:
        return not text.strip()
    return word.group().lower() not in _QUERY_KEYWORDS
