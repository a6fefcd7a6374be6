"""``--redact``: a copy of a report (or a workload) with the captured data replaced.

Captured logs hold customer data: the literals of each statement (``WHERE email =
'ann@example.com'``) and the parameter values the server logged (``DETAIL: parameters:
$1 = '4711'``). A report is pasted into pull requests and tickets, so with ``--redact``
the CLI hands the renderers and the export this copy instead of the report; they never
know, and nothing of the analysis changes (it ran on the real values).

What is replaced:

* each statement's SQL, its literals numbered ``$1``, ``$2``... after its own
  parameters, as pg_stat_statements shows a query (PostgreSQL's own lexer and parser,
  via pglast, find them; SQL they reject falls back to a scanner that writes ``?``);
* logged parameter values, each by ``?`` (SQL NULL stays ``None``);
* the literals inside plans: every expression a plan node prints (``Filter``, ``Index
  Cond``, ``Recheck Cond``, ``Join Filter``, ``Hash Cond``, ``Output``, ``Sort Key``...)
  keeps its column, index and function names, its quoted strings become ``'?'`` and its
  numbers ``?``; the findings' details that quote those expressions alike;
* free text that may echo a value (a statement's error, finding messages, notes, the ORM
  rewrites' code): quoted strings, and every literal or parameter value of 4 characters
  or more found in the workload wherever it appears (shorter ones would blank out the
  figures of a message; they are still replaced in SQL and plans).

What is kept: the index suggestions' DDL, a partial index's predicate constant included
(``WHERE status = 'pending'`` is the index's definition, and a redacted one would build
another index), the existing indexes' definitions (schema, not data), table, column and
index names, figures, and comments in SQL (only their quoted strings are replaced).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any

import pglast
from pglast.parser import parse_sql_json, scan

from explainer.advise.pooling import redact_pooling
from explainer.capture.model import CapturedQuery
from explainer.lint.rules import without_values
from explainer.orm.nplus1 import NPlusOne
from explainer.orm.patterns import OrmFinding
from explainer.plan import Plan
from explainer.report import OrmReport, QueryReport, Report
from explainer.rules import Finding
from explainer.workload import QueryGroup, Workload

#: What a logged parameter value, a literal in a plan or in free text becomes.
PLACEHOLDER = "?"
#: Values shorter than this are not searched for in free text (see the module docstring).
MIN_SCRUBBED_LENGTH = 4

_STRING_TOKENS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST"})
_NUMBER_TOKENS = frozenset({"ICONST", "FCONST"})
_MINUS = "ASCII_45"

# A quoted string in free text or in a comment: not right after a letter, so the
# apostrophe of "the query's" does not open one.
_QUOTED = re.compile(r"(?<![\w'])'(?:[^']|'')*'")

# The fallback scanner for SQL PostgreSQL's parser rejects (truncated, another dialect).
_FALLBACK = re.compile(
    r"(?P<keep>\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/)"
    r"|(?P<dollar>\$(?P<tag>[^\W\d]\w*)?\$.*?(?:\$(?P=tag)?\$|\Z))"
    r"|(?P<string>'(?:[^']|'')*(?:'|\Z))"
    r"|(?P<number>(?<![\w$.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.]))",
    re.DOTALL,
)

# Expressions as EXPLAIN prints them: quoted names, SubPlan/InitPlan numbers and $n
# parameters stay; strings and numbers go.
_EXPRESSION = re.compile(
    r"(?P<keep>\"(?:[^\"]|\"\")*\"|\b(?:SubPlan|InitPlan) \d+)"
    r"|(?P<string>'(?:[^']|'')*(?:'|\Z))"
    r"|(?P<number>(?<![\w$.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.]))"
)

#: Plan node fields that hold names, never values: kept as printed.
_NAME_FIELDS = frozenset(
    {
        "Node Type",
        "Parent Relationship",
        "Subplan Name",
        "Relation Name",
        "Schema",
        "Alias",
        "Index Name",
        "CTE Name",
        "Function Name",
        "Join Type",
        "Strategy",
        "Partial Mode",
        "Operation",
        "Scan Direction",
        "Command",
        "Sort Method",
        "Sort Space Type",
        "Trigger Name",
        "Constraint Name",
        "Relation",
        "Conflict Resolution",
        "Conflict Arbiter Indexes",
        "Storage",
    }
)


# -- SQL --------------------------------------------------------------------------------


def redact_sql(sql: str) -> str:
    """``sql`` with each literal replaced by the next ``$n``, as pg_stat_statements
    normalises a query; ``?`` for each literal of text PostgreSQL's parser rejects."""
    try:
        return _redact_parsed(sql)
    except (pglast.Error, ValueError, RecursionError):
        return _FALLBACK.sub(_fallback_replacement, sql)


def _constant_locations(sql: str) -> set[int]:
    """Character offsets of the parse tree's constants (not the typmods of a type name,
    ``varchar(20)``, which pg_stat_statements keeps too)."""
    tree = json.loads(parse_sql_json(sql))
    found: set[int] = set()
    stack: list[object] = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "typmods":
                    continue
                if key == "A_Const" and isinstance(value, dict):
                    found.add(int(value.get("location", -1)))
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    if sql.isascii():
        return found
    # The parser counts bytes, the scanner characters.
    char_of: dict[int, int] = {}
    position = 0
    for index, char in enumerate(sql):
        char_of[position] = index
        position += len(char.encode("utf-8"))
    return {char_of[b] for b in found if b in char_of}


def _redact_parsed(sql: str) -> str:
    constants = _constant_locations(sql)
    tokens = scan(sql)
    numbers = [int(sql[t.start + 1 : t.end + 1]) for t in tokens if t.name == "PARAM"]
    next_number = max(numbers, default=0) + 1
    pieces: list[str] = []
    last = 0
    index = 0
    while index < len(tokens):
        token = tokens[index]
        start, end = token.start, token.end + 1
        literal = token.name in _STRING_TOKENS
        if token.start in constants:
            if token.name == _MINUS and index + 1 < len(tokens):
                # A negative number: the constant starts at its sign.
                index += 1
                end = tokens[index].end + 1
                literal = True
            elif token.name in _NUMBER_TOKENS:
                literal = True
        if literal:
            pieces.append(_QUOTED.sub("'?'", sql[last:start]))  # comments between tokens
            pieces.append(f"${next_number}")
            next_number += 1
            last = end
        index += 1
    pieces.append(_QUOTED.sub("'?'", sql[last:]))
    return "".join(pieces)


def _fallback_replacement(match: re.Match[str]) -> str:
    if match.group("keep") is not None:
        return match.group()
    return PLACEHOLDER


def literal_values(sql: str) -> list[str]:
    """The literal values written in ``sql``: what free text may echo (an error message
    quoting the value it could not read)."""
    values: list[str] = []
    try:
        tokens = scan(sql)
    except (pglast.Error, ValueError, RecursionError):
        for match in _FALLBACK.finditer(sql):
            if match.group("string") is not None:
                values.append(match.group("string").strip("'").replace("''", "'"))
            elif match.group("number") is not None:
                values.append(match.group("number"))
        return values
    for token in tokens:
        text = sql[token.start : token.end + 1]
        if token.name in _NUMBER_TOKENS:
            values.append(text)
        elif token.name in _STRING_TOKENS:
            if text.startswith("$"):  # $$...$$ or $tag$...$tag$
                values.append(text[text.index("$", 1) + 1 : text.rindex("$", 0, -1)])
            else:
                values.append(text[text.index("'") + 1 : -1].replace("''", "'"))
    return values


# -- plans ------------------------------------------------------------------------------


def redact_expression(text: str) -> str:
    """An expression as EXPLAIN prints it with its strings (``'?'``) and numbers (``?``)
    replaced: ``((email)::text = 'ann@example.com'::text)`` -> ``((email)::text =
    '?'::text)``. Names, quoted identifiers, ``$n`` and ``SubPlan 1`` stay."""
    return _EXPRESSION.sub(_expression_replacement, text)


def _expression_replacement(match: re.Match[str]) -> str:
    if match.group("keep") is not None:
        return match.group()
    if match.group("string") is not None:
        return "'?'"
    return PLACEHOLDER


def _redact_raw(value: object) -> Any:
    """A node's raw EXPLAIN fields: every string but the names, at any depth."""
    if isinstance(value, str):
        return redact_expression(value)
    if isinstance(value, list):
        return [_redact_raw(item) for item in value]
    if isinstance(value, dict):
        return {
            key: item if key in _NAME_FIELDS else _redact_raw(item) for key, item in value.items()
        }
    return value


def _redact_plan(plan: Plan) -> None:
    """In place (on the report's copy)."""
    for node in plan.walk():
        node.filter = _maybe(redact_expression, node.filter)
        node.index_cond = _maybe(redact_expression, node.index_cond)
        node.recheck_cond = _maybe(redact_expression, node.recheck_cond)
        node.join_filter = _maybe(redact_expression, node.join_filter)
        node.hash_cond = _maybe(redact_expression, node.hash_cond)
        node.sort_key = [redact_expression(key) for key in node.sort_key]
        node.raw = _redact_raw(node.raw)
    if isinstance(plan.raw.get("Query Text"), str):  # auto_explain's
        plan.raw = {**plan.raw, "Query Text": redact_sql(plan.raw["Query Text"])}


def _maybe(function: Callable[[str], str], text: str | None) -> str | None:
    return None if text is None else function(text)


# -- free text --------------------------------------------------------------------------


#: Longer values are replaced with ``str.replace`` rather than through the pattern (whose
#: nesting grows with a value's length); they are few, and never part of a word.
_PATTERN_LENGTH = 100


class _Scrubber:
    """Replaces quoted strings and the workload's known values in free text.

    The values are compiled into one pattern shaped as a trie (``ab(?:c|d)?``), so each
    position of a text costs a step per character matched rather than one per value: a
    report of thousands of shapes holds tens of thousands of values.
    """

    def __init__(self, values: Iterable[str | None]) -> None:
        known = {v for v in values if v is not None and len(v.strip()) >= MIN_SCRUBBED_LENGTH}
        self._long = sorted((v for v in known if len(v) > _PATTERN_LENGTH), key=len, reverse=True)
        short = [v for v in known if len(v) <= _PATTERN_LENGTH]
        self._pattern = re.compile(_trie_pattern(short)) if short else None

    def __call__(self, text: str) -> str:
        text = _QUOTED.sub("'?'", text)
        for value in self._long:
            text = text.replace(value, PLACEHOLDER)
        if self._pattern is not None:
            text = self._pattern.sub(_whole_value, text)
        return text

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)


def _trie_pattern(values: Iterable[str]) -> str:
    """One regex matching any of ``values``, the longest where several start alike."""
    trie: dict[str, Any] = {}
    for value in values:
        node = trie
        for char in value:
            node = node.setdefault(char, {})
        node[""] = {}  # a value ends here

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + build(child) for char, child in node.items() if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a shorter value ends here: the rest is optional (tried first)
            return body + "?" if len(branches) == 1 and not branches[0][1:] else f"(?:{body})?"
        return body

    return build(trie)


def _whole_value(match: re.Match[str]) -> str:
    """The placeholder, unless the match is part of a longer word (``7781`` in ``77812``)."""
    text, start, end = match.string, match.start(), match.end()
    value = match.group()
    if _WORD.match(value[0]) and start > 0 and _WORD.match(text[start - 1]):
        return value
    if _WORD.match(value[-1]) and end < len(text) and _WORD.match(text[end]):
        return value
    return PLACEHOLDER


_WORD = re.compile(r"\w")


#: Finding details that quote a plan's expressions (or the query's): redacted as plans
#: are. Every other string of the details is free text.
_EXPRESSION_DETAILS = frozenset(
    {"filter", "index_cond", "recheck_cond", "join_filter", "hash_cond", "sort_key"}
)


def _redact_details(value: object, scrub: _Scrubber, expression: bool = False) -> Any:
    """A finding's details, at any depth."""
    if isinstance(value, str):
        return scrub(redact_expression(value) if expression else value)
    if isinstance(value, list | tuple):
        return type(value)(_redact_details(item, scrub, expression) for item in value)
    if isinstance(value, Mapping):
        return {
            key: _redact_details(item, scrub, expression or key in _EXPRESSION_DETAILS)
            for key, item in value.items()
        }
    return value


def _finding(finding: Finding, scrub: _Scrubber) -> Finding:
    return replace(
        finding,
        message=scrub(finding.message),
        details=_redact_details(finding.details, scrub),
    )


# -- captured queries and groups ---------------------------------------------------------


def redact_query(query: CapturedQuery) -> CapturedQuery:
    """A captured execution with its SQL redacted, its parameters replaced (NULL kept)
    and no observed plan (auto_explain's holds the values)."""
    return CapturedQuery(
        redact_sql(query.sql),
        duration_ms=query.duration_ms,
        source=query.source,
        line=query.line,
        session=query.session,
        timestamp=query.timestamp,
        user=query.user,
        database=query.database,
        parameters=tuple(None if p is None else PLACEHOLDER for p in query.parameters),
        replayable=query.replayable,
        calls=query.calls,
        transaction=query.transaction,
        application=query.application,
        observed_plan=None,
    )


def _redact_group_in_place(group: QueryGroup) -> None:
    group.example = redact_query(group.example)
    group.samples = [redact_query(sample) for sample in group.samples]


def group_values(group: QueryGroup) -> list[str]:
    """The literal and parameter values of a group's example and samples."""
    values: list[str] = []
    for query in (group.example, *group.samples):
        values += literal_values(query.sql)
        values += [p for p in query.parameters if p is not None]
    return values


def logged_values(workload: Workload, only: Collection[str] | None = None) -> list[str]:
    """Every literal and logged parameter value a workload's examples and samples hold
    (of the groups whose fingerprints are ``only``, when given): what :func:`redact_report`
    also looks for in free text."""
    values: list[str] = []
    for group in (*workload.groups, *workload.utility):
        if only is None or group.fingerprint in only:
            values += group_values(group)
    return values


def redact_workload(workload: Workload) -> Workload:
    """A copy of ``workload`` for ``explainer workload``'s tables and JSON: every group's
    example and samples redacted. The session traces are left out (they index values
    and nothing renders them); the ORM detectors run on the original beforehand."""

    def redacted(group: QueryGroup) -> QueryGroup:
        copied = replace(group)
        _redact_group_in_place(copied)
        return copied

    by_id = {id(g): redacted(g) for g in (*workload.groups, *workload.utility, *workload.shapes)}
    return Workload(
        groups=[by_id[id(g)] for g in workload.groups],
        utility=[by_id[id(g)] for g in workload.utility],
        shapes=[by_id[id(g)] for g in workload.shapes],
        traces={},
        untraced=workload.untraced,
    )


# -- the ORM section --------------------------------------------------------------------


def _orm_groups(orm: OrmReport) -> list[QueryGroup]:
    groups: list[QueryGroup] = []
    stack: list[NPlusOne] = list(orm.nplus1)
    while stack:
        finding = stack.pop()
        groups += [finding.source, finding.repeated, finding.root_source]
        stack.extend(finding.nested)
    for pattern in orm.patterns:
        groups += list(pattern.shapes)
    return groups


def _redact_orm_in_place(orm: OrmReport, scrub: _Scrubber) -> None:
    seen: set[int] = set()
    for group in _orm_groups(orm):
        if id(group) not in seen:
            seen.add(id(group))
            _redact_group_in_place(group)
    done: set[int] = set()
    stack = list(orm.nplus1)
    while stack:
        finding = stack.pop()
        stack.extend(finding.nested)
        if id(finding) in done or finding.rewrite is None:
            continue
        done.add(id(finding))
        rewrite = finding.rewrite
        finding.rewrite = replace(
            rewrite,
            before=scrub(rewrite.before),
            after=scrub(rewrite.after),
            sql_after=tuple(redact_sql(sql) for sql in rewrite.sql_after),
            alternatives=tuple(
                replace(a, code=scrub(a.code), note=scrub(a.note)) for a in rewrite.alternatives
            ),
        )
    orm.patterns = [_pattern(p, scrub) for p in orm.patterns]
    orm.notes = [scrub(note) for note in orm.notes]


def _pattern(finding: OrmFinding, scrub: _Scrubber) -> OrmFinding:
    rewrite = finding.rewrite
    finding.message = scrub(finding.message)
    finding.caveat = scrub.optional(finding.caveat)
    finding.numbers = {
        key: scrub(value) if isinstance(value, str) else value
        for key, value in finding.numbers.items()
    }
    finding.alternatives = tuple(
        replace(a, code=scrub(a.code), note=scrub(a.note)) for a in finding.alternatives
    )
    finding.rewrite = replace(
        rewrite,
        before=scrub(rewrite.before),
        after=scrub(rewrite.after),
        sql_after=tuple(redact_sql(sql) for sql in rewrite.sql_after),
    )
    return finding


def redact_orm(orm: OrmReport, values: Iterable[str | None] = ()) -> OrmReport:
    """A redacted copy of an ORM report (``explainer workload`` prints one alone)."""
    copied = copy.deepcopy(orm)
    known = [*values]
    for group in _orm_groups(copied):
        known += group_values(group)
    _redact_orm_in_place(copied, _Scrubber(known))
    return copied


# -- the report -------------------------------------------------------------------------


def _query(query: QueryReport, scrub: _Scrubber, plans: set[int]) -> None:
    query.sql = redact_sql(query.sql)
    query.note = scrub.optional(query.note)
    query.error = scrub.optional(query.error)
    query.findings = [_finding(f, scrub) for f in query.findings]
    query.no_suggestion = [replace(n, detail=scrub(n.detail)) for n in query.no_suggestion]
    _plan_once(query.plan, plans)


def _plan_once(plan: Plan | None, plans: set[int]) -> None:
    if plan is not None and id(plan) not in plans:
        plans.add(id(plan))
        _redact_plan(plan)


def redact_report(report: Report, *, values: Iterable[str | None] = ()) -> Report:
    """A copy of ``report`` with the captured data replaced (see the module docstring);
    the original is left as it is.

    ``values`` are more values to look for in free text: the logged parameters of the
    workload (:func:`logged_values`), which the report itself does not keep.
    """
    redacted = copy.deepcopy(report)
    known: list[str | None] = [*values]
    for query in report.queries:
        known += literal_values(query.sql)
    for group in _orm_groups(redacted.orm):
        known += group_values(group)
    cached = [c.group for c in redacted.caching] + [r.group for r in redacted.caching_refused]
    for group in cached:
        known += group_values(group)
    scrub = _Scrubber(known)
    plans: set[int] = set()
    for query in redacted.queries:
        _query(query, scrub, plans)
    for suggestion in redacted.suggestions:
        for evidence in suggestion.evidence.values():
            _plan_once(evidence.before_plan, plans)
            _plan_once(evidence.after_plan, plans)
    consolidation = redacted.consolidation
    consolidation.regressions = [
        replace(r, reason=scrub(r.reason)) for r in consolidation.regressions
    ]
    consolidation.regression_notes = [scrub(n) for n in consolidation.regression_notes]
    redacted.notes = [scrub(note) for note in redacted.notes]
    _redact_orm_in_place(redacted.orm, scrub)
    # The schema lint quotes column values from pg_stats: data, like the log's values.
    redacted.lint = [without_values(finding) for finding in redacted.lint]
    # A statement left idle in transaction, and a cached query's sketches (their Redis key
    # is built from the values), hold the application's data too.
    if redacted.pooling is not None:
        redacted.pooling = redact_pooling(redacted.pooling, redact_sql)
    for group in {id(g): g for g in cached}.values():
        _redact_group_in_place(group)
    for candidate in redacted.caching:
        candidate.sketches = tuple(
            replace(sketch, code=scrub(sketch.code)) for sketch in candidate.sketches
        )
        candidate.invalidation = scrub(candidate.invalidation)
    return redacted
