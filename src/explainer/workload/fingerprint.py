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

Speed: a large log holds millions of executions of a few hundred shapes, and pglast parses
each text anew (5-7 µs for a typical statement here). :func:`fingerprint` therefore caches
the fingerprint under a *shape key* (:func:`shape_key`): the text with each literal token
(number, string, ``$n``) replaced by a marker of its token kind, comments by a space, and
all else, identifiers, keywords, operators, casts and layout, kept verbatim; pglast then
runs about once per key. The comment above ``_SCAN`` says why two texts with one trusted
key always have one fingerprint; :func:`fingerprint_uncached` is the reference the cache
is tested against (tests/test_fingerprint_cache.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from typing import Final

import pglast
from pglast.ast import Node
from pglast.parser import fingerprint as pg_fingerprint
from pglast.parser import parse_sql, parse_sql_json
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

    Always equal to :func:`fingerprint_uncached`, only faster: a text seen recently is
    looked up as is (every execution of a prepared statement repeats its text), others by
    :func:`shape_key`, so pglast runs about once per shape. Long texts (bulk INSERTs)
    rarely repeat and would make the caches costly to hold.
    """
    if len(sql) > _CACHED_LENGTH:
        return _fingerprint(sql)
    return _recent_fingerprint(sql)


def _fingerprint_by_shape(sql: str) -> str:
    coarse = coarse_key(sql)
    if coarse is not None:
        known = _COARSE.get(coarse)
        if known is not None:
            return known
    key = shape_key(sql)
    if key is None:
        return _fingerprint(sql)
    cached = _SHAPES.get(key, "")
    if cached == "":  # not seen yet (a fingerprint is never empty)
        value = _learn_shape(sql, key)
        if coarse is not None and _SHAPES.get(key) is not None:
            _remember_coarse(coarse, value)
        return value
    if cached is None:  # a key whose literals are not all constants: no shortcut
        return _fingerprint(sql)
    if coarse is not None:
        _remember_coarse(coarse, cached)
    return cached


_recent_fingerprint = lru_cache(maxsize=2048)(_fingerprint_by_shape)


def fingerprint_uncached(sql: str) -> str:
    """pglast's fingerprint (or the text fallback) computed afresh: the cache's reference."""
    return _fingerprint(sql)


def clear_fingerprint_caches() -> None:
    """Forget every cached fingerprint (tests; a long-lived process between workloads)."""
    global _shapes_chars, _coarse_chars
    _recent_fingerprint.cache_clear()
    _SHAPES.clear()
    _shapes_chars = 0
    _COARSE.clear()
    _coarse_chars = 0


def _fingerprint(sql: str) -> str:
    try:
        return str(pg_fingerprint(sql))
    except pglast.Error:
        return text_fingerprint(sql)


# -- the shape-key cache ------------------------------------------------------------------
#
# Why one key means one fingerprint. pg_query's fingerprint skips constants (A_Const) and
# parameters (ParamRef) entirely: their values, and so the length of a list made only of
# them, never reach the hash. Two texts with one key are the same character for character
# except inside literal tokens that have the same *lexer token kind* (ICONST, FCONST,
# SCONST, PARAM), so PostgreSQL's grammar, which only sees token kinds, derives both the
# same way. What is left is grammar actions that look at a literal's value or keep it in
# a field that is not a constant node: ``float(p)`` picks float4 or float8, array bounds
# (``int[3]``), ``current_time(3)``, ``FETCH 10``, ``NOTIFY ch, 'x'``, sequence options,
# COPY file names... Rather than listing them, a key is only trusted after pglast parsed
# its first text and every replaced literal turned out to be an A_Const or ParamRef node
# at that literal's position (or a negated constant at the ``-`` before it); every folded
# list must be an ``IN (...)`` list or an ``ARRAY[...]`` of such nodes. Otherwise the key
# is remembered as unusable, and each of its texts goes to pglast.
#
# The scanner follows PostgreSQL's lexer where it matters: quoted identifiers are kept;
# E'' strings with a backslash, N'' strings, and what sits in a failing literal's place
# are kept verbatim; numbers are replaced only when they end where PostgreSQL's would
# (``1abc`` is "trailing junk"), and an integer beyond int32 is an FCONST there, so it is
# here; ``$n`` beyond int32 is an error there, so it is kept. Anything the scanner cannot
# follow exactly gives no key: nested or unterminated comments, unterminated strings or
# identifiers, dollar quotes, B''/X'' bit strings, U& escapes, NUL bytes and lone
# surrogates (pglast would see a different text).

_IDENT_CHAR = "A-Za-z0-9_$\x80-\U0010ffff"
_NOT_AFTER_NAME = rf"(?<![{_IDENT_CHAR}]"  # completed with the token's first character
_DIGITS = r"(?:_?\d)*+"
_EXPONENT = rf"(?:[eE][-+]?\d{_DIGITS})?"
_NUMBER_END = rf"(?![{_IDENT_CHAR}.])"
# Every branch starts with one literal character, so the regex engine skips straight to
# the few characters that can start a token of interest instead of trying each branch at
# every position. The group after that character names the token.
_SCAN = re.compile(
    "|".join(
        [
            r"-(?P<line_comment>-[^\n\r]*+)",
            r"/(?P<block_comment>\*(?>[^*/]++|\*(?!/)|/(?!\*))*+\*/)",
            r"/(?P<nested_or_unterminated_comment>\*)",
            r'"(?<=&")(?P<unicode_identifier>)',
            r'"(?P<quoted>[^"]*+(?:""[^"]*+)*+")',
            r'"(?P<unterminated_identifier>)',
            r"'(?<=&')(?P<unicode_string>)",
            rf"'(?<=[bBxX]'){_NOT_AFTER_NAME}[bBxX]')(?P<bit_string>)",
            rf"'(?<=[eE]'){_NOT_AFTER_NAME}[eE]')(?P<estring>(?>[^'\\]++|\\.|'')*+')",
            rf"'(?<=[eE]'){_NOT_AFTER_NAME}[eE]')(?P<unterminated_estring>)",
            rf"'(?<=[nN]'){_NOT_AFTER_NAME}[nN]')(?P<nstring>[^']*+(?:''[^']*+)*+')",
            r"'(?P<string>[^']*+(?:''[^']*+)*+')",
            r"'(?P<unterminated_string>)",
            rf"\${_NOT_AFTER_NAME}\$)(?P<param>\d++)(?![{_IDENT_CHAR}])",
            rf"\${_NOT_AFTER_NAME}\$)(?P<dollar_quote>(?:[^\W\d]\w*)?\$)",
            rf"0{_NOT_AFTER_NAME[:-1]}.]0)(?P<number0>"
            r"[xX](?:_?[0-9A-Fa-f])++|[oO](?:_?[0-7])++|[bB](?:_?[01])++"
            rf"|{_DIGITS}(?:\.(?:\d{_DIGITS})?)?{_EXPONENT}){_NUMBER_END}",
            *(
                rf"{digit}{_NOT_AFTER_NAME[:-1]}.]{digit})"
                rf"(?P<number{digit}>{_DIGITS}(?:\.(?:\d{_DIGITS})?)?{_EXPONENT}){_NUMBER_END}"
                for digit in "123456789"
            ),
            rf"\.{_NOT_AFTER_NAME[:-1]}.]\.)(?P<fraction>\d{_DIGITS}{_EXPONENT}){_NUMBER_END}",
        ]
    ),
    # ASCII: PostgreSQL's digits are 0-9; any other character is part of a name to it.
    re.DOTALL | re.ASCII,
)
_NUMBERS = frozenset(f"number{digit}" for digit in "0123456789") | {"fraction"}
# Built with chr(): mypyc (which can compile this module) rejects surrogates in literals.
_SURROGATES = re.compile(f"[{chr(0xD800)}-{chr(0xDFFF)}]")
# PostgreSQL's whitespace; Python's \s also matches characters its lexer reads as names.
_WS = r"[ \t\n\r\f\v]"
_INT32_MAX = 2**31 - 1
# Markers in keys: NUL never occurs in a text that has a key.
_MARK_INT, _MARK_FLOAT, _MARK_STRING, _MARK_PARAM = "\x00i", "\x00f", "\x00s", "\x00p"
_MARK_LIST = "\x00L"
_MARKS = (_MARK_INT, _MARK_FLOAT, _MARK_STRING, _MARK_PARAM)
_ELEMENT = rf"(?:-{_WS}*)?\x00[if]|\x00[sp]"
_ITEMS = rf"{_WS}*(?P<items>(?:{_ELEMENT})(?:{_WS}*,{_WS}*(?:{_ELEMENT}))+){_WS}*"
# Lists of two or more literals; _fold keeps those after the keyword IN or ARRAY.
_FOLDABLE = re.compile(rf"[(\[]{_ITEMS}[)\]]")
# A literal followed by a comma: what a foldable list needs, found fast (a literal prefix).
_LIST_START = re.compile(rf"\x00[ifsp]{_WS}*,")
_LIST_KEYWORD = re.compile(rf"(?<![{_IDENT_CHAR}\"])(?:in|array){_WS}*\Z", re.IGNORECASE)

_SHAPE_CACHE_ENTRIES = 16384
_SHAPE_CACHE_CHARS = 8_000_000
_SHAPES: OrderedDict[str, str | None] = OrderedDict()
_shapes_chars = 0


class _NoKey(Exception):
    """The text has something the scanner does not follow exactly: it gets no key."""


def _replacement(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "string":
        return _MARK_STRING
    if kind in _NUMBERS:
        text = match.group()
        if len(text) < 10 and text.isdigit():  # the common case: surely an int32
            return _MARK_INT
        return _number_kind(text)
    if kind == "param":
        text = match.group()
        return _MARK_PARAM if int(text[1:]) <= _INT32_MAX else text
    if kind == "line_comment" or kind == "block_comment":
        return " "
    if kind == "estring":  # the E before the match stays; escapes are kept as written
        text = match.group()
        return text if "\\" in text else _MARK_STRING
    if kind == "quoted" or kind == "nstring":
        return match.group()
    raise _NoKey


def _number_kind(text: str) -> str:
    if text[:2] in ("0x", "0X", "0o", "0O", "0b", "0B"):
        value = int(text[2:].replace("_", ""), {"x": 16, "o": 8, "b": 2}[text[1].lower()])
    elif "." in text or "e" in text or "E" in text:
        return _MARK_FLOAT
    else:
        value = int(text.replace("_", ""))
    return _MARK_INT if value <= _INT32_MAX else _MARK_FLOAT


def shape_key(sql: str) -> str | None:
    """``sql`` with literal values abstracted, or None when it cannot be done safely.

    Numbers become an integer or a float marker, strings and ``$n`` their own markers,
    comments a space, and lists of two or more literals after ``IN`` or ``ARRAY`` one list
    marker. Everything else is kept as written, case and layout included, so a key never
    covers two different names, operators or casts.
    """
    if "\x00" in sql or (not sql.isascii() and _SURROGATES.search(sql)):
        return None
    try:
        key = _SCAN.sub(_replacement, sql)
    except _NoKey:
        return None
    if _LIST_START.search(key) is not None:
        key = _FOLDABLE.sub(_fold, key)
    return key


def _fold(match: re.Match[str]) -> str:
    if not _is_list_after_keyword(match):
        return match.group()
    text = match.group()
    return text[0] + _MARK_LIST + text[-1]


def _is_list_after_keyword(match: re.Match[str]) -> bool:
    """``IN (...)`` or ``ARRAY[...]``: only those lists are folded."""
    before = match.string[max(0, match.start() - 32) : match.start()]
    keyword = _LIST_KEYWORD.search(before)
    if keyword is None:
        return False
    brackets = match.group()[0] + match.group()[-1]
    return brackets == ("()" if keyword.group()[0] in "iI" else "[]")


def _learn_shape(sql: str, key: str) -> str:
    """Fingerprint ``sql`` with pglast and remember it under ``key`` if the key is sound."""
    global _shapes_chars
    value = _fingerprint(sql)
    trusted = value if _key_is_sound(sql) else None
    _SHAPES[key] = trusted
    _shapes_chars += len(key)
    while len(_SHAPES) > _SHAPE_CACHE_ENTRIES or _shapes_chars > _SHAPE_CACHE_CHARS:
        old, _ = _SHAPES.popitem(last=False)
        _shapes_chars -= len(old)
    return value


def _key_is_sound(sql: str) -> bool:
    """Whether every literal :func:`shape_key` replaced or folded in ``sql`` is a constant.

    See the comment above ``_SCAN``: the first text of a key is parsed, and the key is
    only used for later texts if this holds for it.
    """
    try:
        tree = json.loads(parse_sql_json(sql))
    except (pglast.Error, ValueError, RecursionError):
        return False  # unparseable: every text of the key goes to pglast (and the fallback)
    constants: set[int] = set()
    lists: list[frozenset[int]] = []
    _collect_constants(tree, constants, lists)
    offset = _byte_offsets(sql)
    # Where each replaced literal's constant is, by the position of its marker in the
    # unfolded key.
    key_positions: dict[int, int] = {}
    key_length = 0
    last = 0
    for match in _SCAN.finditer(sql):
        key_length += match.start() - last
        last = match.end()
        try:
            replaced = _replacement(match)
        except _NoKey:
            return False
        if replaced.endswith(_MARKS) and replaced != match.group():
            location = _constant_location(sql, match, constants, offset)
            if location is None:
                return False
            key_positions[key_length + len(replaced) - 2] = location
        key_length += len(replaced)
    unfolded = _SCAN.sub(_replacement, sql)  # no _NoKey: the loop above saw every match
    for match in _FOLDABLE.finditer(unfolded):
        if not _is_list_after_keyword(match):
            continue
        items = {
            location
            for position, location in key_positions.items()
            if match.start("items") <= position < match.end("items")
        }
        if frozenset(items) not in lists:
            return False
    return True


def _constant_location(
    sql: str, match: re.Match[str], constants: set[int], offset: Callable[[int], int]
) -> int | None:
    """The location of the constant node a literal made, or None if it made none.

    PostgreSQL places a constant at its literal (an E'' string's at its E), except a
    negated number (``-1``, ``- 1``) that the grammar folds into one constant placed at
    the minus sign.
    """
    start = match.start() - (match.lastgroup == "estring")
    if offset(start) in constants:
        return offset(start)
    if match.lastgroup not in _NUMBERS:
        return None
    before = start
    while before > 0 and sql[before - 1] in " \t\n\r\f\v":
        before -= 1
    if before > 0 and sql[before - 1] == "-" and offset(before - 1) in constants:
        return offset(before - 1)
    return None


def _collect_constants(node: object, constants: set[int], lists: list[frozenset[int]]) -> None:
    """Locations of A_Const/ParamRef nodes, and of the IN/ARRAY lists made only of them."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for name, value in item.items():
                if name in ("A_Const", "ParamRef"):
                    constants.add(value.get("location", -1))
                elif name == "A_Expr" and value.get("kind") == "AEXPR_IN":
                    _collect_list(value.get("rexpr", {}).get("List", {}).get("items"), lists)
                elif name == "A_ArrayExpr":
                    _collect_list(value.get("elements"), lists)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _collect_list(items: object, lists: list[frozenset[int]]) -> None:
    if not isinstance(items, list):
        return
    locations = []
    for element in items:
        node = element.get("A_Const") or element.get("ParamRef")
        if node is None:
            return
        locations.append(node.get("location", -1))
    lists.append(frozenset(locations))


def _byte_offsets(sql: str) -> Callable[[int], int]:
    """Character offset -> UTF-8 byte offset, the unit of PostgreSQL's locations."""
    if sql.isascii():
        return lambda index: index
    return lambda index: len(sql[:index].encode("utf-8"))


# -- the coarse-key cache -----------------------------------------------------------------
#
# shape_key() costs a regex pass with a Python call per literal. Most texts of a log can be
# keyed more cheaply: :func:`coarse_key` replaces each plain string by ``''``, each integer
# of up to nine digits by ``0`` and each ``digits.digits`` by ``0.0``, in three passes with
# no Python call per literal (``str.find`` scans, a regex for decimals; the scans' regex
# equivalents are in tests/test_fingerprint_cache.py), and refuses any text where those
# passes could read tokens differently from ``_SCAN``: quoted identifiers, comments (but a
# single trailing ``/* ... */``, which the scanner too makes one space), dollar quotes,
# E/N/B/X/U& strings, unterminated strings, NUL. Each replacement is a token of the same
# lexer kind as the one it replaces, with the same first and last character class, so
# ``_SCAN`` reads the coarse key exactly as the text, literal for literal:
#
#     shape_key(coarse_key(sql)) == shape_key(sql)      whenever coarse_key(sql) is not None
#
# (tests/test_fingerprint_cache.py checks it). Two texts with one coarse key therefore have
# one shape key, and a coarse key is remembered only once its shape key is trusted. Every
# other literal (a ten-digit integer, ``1e5``, ``$1``...) stays as written, which only
# makes more coarse keys, never a wrong one.

_COARSE_DOLLAR = re.compile(r"\$(?!\d)")
_COARSE_INT = re.compile(rf"\d(?<![{_IDENT_CHAR}.]\d)\d{{0,8}}+(?![{_IDENT_CHAR}.])", re.ASCII)
_COARSE_FLOAT = re.compile(rf"\d(?<![{_IDENT_CHAR}.]\d)\d*+\.\d++(?![{_IDENT_CHAR}.])", re.ASCII)
_COARSE: OrderedDict[str, str] = OrderedDict()
_coarse_chars = 0


def coarse_key(sql: str) -> str | None:
    """``sql`` with plain literals replaced by ``''``, ``0`` and ``0.0``, or None when
    that cannot be done without a scanner; see the comment above."""
    if '"' in sql or "--" in sql or "\x00" in sql:
        return None
    tail = ""
    if "/*" in sql:
        start = sql.rfind("/*")
        if (
            not sql.endswith("*/")
            or sql.find("*/", start + 2) != len(sql) - 2
            or "/*" in sql[:start]
        ):
            return None
        sql, tail = sql[:start], " "
    if "$" in sql and _COARSE_DOLLAR.search(sql) is not None:
        return None
    is_ascii = sql.isascii()
    if not is_ascii and _SURROGATES.search(sql):
        return None
    key = _coarse_strings(sql)
    if key is None:
        return None
    key = _coarse_ints(key, is_ascii)
    if _has_decimal_point(key):
        key = _COARSE_FLOAT.sub("0.0", key)
    return key + tail


def _coarse_strings(sql: str) -> str | None:
    """``sql`` with each string replaced by ``''``, or None if one never ends or is not
    a plain string to ``_SCAN`` (one right after a lone E, N, B or X, or after ``&``).

    A string runs from a quote to the next quote that is not doubled (``''`` is a quote
    inside it). ``str.find`` jumps from quote to quote: cheaper than a regex pass, which
    costs a call into the regex engine per text (tests/test_fingerprint_cache.py keeps
    the regex this replaced, and checks that the two agree).
    """
    start = sql.find("'")
    if start < 0:
        return sql
    end = len(sql)
    pieces: list[str] = []
    last = 0
    while start >= 0:
        close = sql.find("'", start + 1)
        while close >= 0 and close + 1 < end and sql[close + 1] == "'":
            close = sql.find("'", close + 2)
        if close < 0 or (start > 0 and _is_prefixed(sql, start)):
            return None
        pieces.append(sql[last:start])
        pieces.append("''")
        last = close + 1
        start = sql.find("'", last)
    pieces.append(sql[last:])
    return "".join(pieces)


def _is_prefixed(sql: str, quote: int) -> bool:
    """Whether the string opening at ``quote`` (> 0) is an E, N, B, X or U& string."""
    before = sql[quote - 1]
    if before == "&":
        return True
    if before not in "bBxXeEnN":
        return False
    if quote == 1:
        return True
    before = sql[quote - 2]  # a name character there: the letter ends a name, not a prefix
    return before not in _ASCII_NAME_CHARS and before < "\x80"


# _IDENT_CHAR's ASCII part.
_ASCII_NAME_CHARS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$"


# ASCII classes for _coarse_ints: digits become "0", the characters an integer may not
# touch (a name character or ".") become "a", every other character stays itself.
_INT_CLASSES: Final = bytes.maketrans(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$.",
    b"0" * 10 + b"a" * 55,
)


def _coarse_ints(text: str, is_ascii: bool) -> str:
    """``_COARSE_INT.sub("0", text)``, without the regex pass; ``is_ascii``: the source text was.

    That pass was most of :func:`coarse_key`'s cost: the regex engine tests every
    character against its first character class. Here one ``translate`` maps the text to
    classes, ``str.find`` (a native call once compiled; ``bytes.find`` is not) jumps from
    one digit run to the next, and only the runs get looked at. The result is the same:
    each maximal run of one to nine ASCII digits with no name character or ``.`` on
    either side becomes ``0``. Non-ASCII text (rare, and where name characters are more
    than ASCII) keeps the regex.
    """
    if not is_ascii:
        return _COARSE_INT.sub("0", text)
    classes = text.encode("ascii").translate(_INT_CLASSES).decode("ascii")
    start = classes.find("0")
    if start < 0:
        return text
    end = len(classes)
    pieces: list[str] = []
    last = 0
    while start >= 0:  # the first digit of a run: find resumes after the previous run
        stop = start + 1
        while stop < end and classes[stop] == "0":
            stop += 1
        if (
            stop - start <= 9
            and (start == 0 or classes[start - 1] != "a")
            and (stop == end or classes[stop] != "a")
        ):
            pieces.append(text[last:start])
            pieces.append("0")
            last = stop
        start = classes.find("0", stop)
    if last == 0:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _has_decimal_point(text: str) -> bool:
    """Whether a digit, a point and a digit follow each other somewhere in ``text``: what
    every match of ``_COARSE_FLOAT`` holds. Most statements have points only in qualified
    names (``t.col``); looking at each point's neighbours costs a fraction of the regex
    pass (which scans every character), and ~96% of a log's texts need no pass at all."""
    end = len(text) - 1
    at = text.find(".", 1)
    while 0 < at < end:
        if text[at - 1] in _DECIMAL_DIGITS and text[at + 1] in _DECIMAL_DIGITS:
            return True
        at = text.find(".", at + 2)
    return False


_DECIMAL_DIGITS = "0123456789"


def _remember_coarse(coarse: str, value: str) -> None:
    global _coarse_chars
    _COARSE[coarse] = value
    _coarse_chars += len(coarse)
    while len(_COARSE) > _SHAPE_CACHE_ENTRIES or _coarse_chars > _SHAPE_CACHE_CHARS:
        old, _ = _COARSE.popitem(last=False)
        _coarse_chars -= len(old)


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
