"""Read EXPLAIN output in TEXT format (what people paste from psql) into the JSON document.

:func:`text_to_document` returns the dict ``EXPLAIN (FORMAT JSON)`` would have printed for the
same plan (same keys, same "Node Type" values, same units), so that
:func:`explainer.plan.parse.plan_from_document` builds the tree and does the arithmetic for
every input format alike. Frames and quotes added by psql or pgAdmin are removed before this
module is called (:mod:`explainer.plan.source`); what is left may still carry noise.

How it works
------------

1. *Logical lines* (:func:`_logical_lines`). Lines before the first plan node (prompts, the
   statement, ``SET``, headers) are skipped; the plan ends at a psql footer such as
   ``(8 rows)`` / ``(8 lignes)`` or at a second root node. A line that starts nothing
   (not a node, not a ``SubPlan``/``InitPlan``/``CTE`` header, not a ``Worker N:`` line,
   not a ``Key: value`` property) is the rest of the previous line, cut by a terminal or a
   mail client at a fixed width, and is glued back on as is (terminal wrapping keeps every
   character, so no space is added). A ``Key:`` line also continues the previous one when
   that line still has an open parenthesis, unless the key is one we know.
2. *Tree* (:class:`_Builder`). Indentation gives the structure: a node line
   (``->  Hash Join  (cost=...) (actual ...)``) hangs under the nearest node or header that
   is less indented. A node right under a header gets "Parent Relationship" InitPlan /
   SubPlan and "Subplan Name" (CTEs are InitPlans named "CTE name", as in JSON); the other
   children are Outer then Inner, or Member under Append / Merge Append / BitmapAnd /
   BitmapOr, Subquery under Subquery Scan. The node name is decoded with the
   :data:`_NAME_PATTERNS` table into "Node Type" and its attributes.
3. *Properties*. An indented ``Key: value`` line belongs to the last node (PostgreSQL prints
   all of a node's properties before its children), or to the innermost open section
   (``Worker 0:``, ``JIT:``, ``Planning:``, ``Serialization:``) that is less indented. Known
   keys are converted by the :data:`_NODE_PARSERS` table (numbers, lists, buffers, sort and
   hash details...); unknown keys are kept as strings under their own name. Plan-level
   lines (``Planning Time``, ``Execution Time``, ``Total runtime`` (before 9.4, stored as
   "Execution Time"), ``Trigger ...``, ``JIT:``, ``Settings:``, ``Query Identifier``) are
   recognised by name wherever they are indented.

Where JSON and text differ, the JSON form is produced: "Original Hash Buckets/Batches" are
filled even when text leaves out an unchanged "(originally N)"; JIT "Generation" becomes
``{"Deform": x, "Total": y}`` when text shows ``(Deform x ms)`` (PostgreSQL 17+);
planning "Memory Used"/"Memory Allocated" are in bytes like JSON, from the kB the text shows
(rounded up by PostgreSQL); a never-executed node gets zero actuals. What text does not say
is left out rather than invented: "Trigger Name" of ``Trigger for constraint x`` (printed
without VERBOSE), "Schema" without VERBOSE. ModifyTable's ``Update on t2`` target lines
become "Target Tables". A line that is not ``Key: value`` and cannot be a wrapped tail (it
follows a blank line) is kept under the node's "Unparsed Lines": nothing is silently lost.

pev2's ``fromText`` (plan-service.ts) was the reference for the line shapes and for
attaching properties by indentation. Deliberate differences: the node name is decoded into
JSON's "Node Type" plus attributes here rather than later, figures keep JSON's types (a
float for ``rows=0.50``), a wrapped line is glued back before any matching rather than
being dropped or mis-read, and unknown lines are kept rather than skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from explainer.errors import PlanParseError

_NOT_A_PLAN = "not a PostgreSQL text plan"

JsonDict = dict[str, Any]

# --------------------------------------------------------------------------------------
# Line shapes

_NUM = r"\d+(?:\.\d+)?"
_COST = re.compile(
    rf"\(cost=(?P<startup>{_NUM})\.\.(?P<total>{_NUM})\s+rows=(?P<rows>{_NUM})"
    rf"\s+width=(?P<width>\d+)\)"
)
_ACTUAL = re.compile(
    rf"\(actual\s+(?:time=(?P<start>{_NUM})\.\.(?P<end>{_NUM})\s+)?"
    rf"rows=(?P<rows>{_NUM})\s+loops=(?P<loops>\d+)\)"
)
_NEVER = re.compile(r"\(never\s+executed\)")
#: Where the figures of a node line begin.
# (?<!\s): tried once per run of spaces, not from each space (quadratic on long runs).
_FIGURES_START = re.compile(r"(?<!\s)\s*\((?:cost=|actual[\s)]|never\s+executed\))")
_ARROW = re.compile(r"^(\s*)->\s*")
#: A root node line: a name then its figures (possibly cut by wrapping).
_ROOT_START = re.compile(r"^\s*[A-Z][^:]*?\s*\((?:cost=|actual[\s)=]|never\s)")
_HEADER = re.compile(
    r"^(?P<kind>InitPlan|SubPlan)(?:\s+\d+)?(?:\s*\(returns\s[^)]*\))?\s*$|^CTE\s+\S+\s*$"
)
_WORKER = re.compile(r"^Worker\s+(?P<number>\d+):\s*(?P<rest>.*)$")
_TRIGGER = re.compile(
    rf"^Trigger\s+(?P<what>.*?):\s+time=(?P<time>{_NUM})\s+calls=(?P<calls>\d+)\s*$"
)
_TARGET_TABLE = re.compile(r"^(?:Insert|Update|Delete|Merge)\s+on\s+\S")
_KEY = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9 /_()-]*?):(?:\s+(?P<value>.*))?$")
_FOOTER = re.compile(r"^\s*\(\d+\s+[^\W\d]+\)\s*$")
_TIMING_NOISE = re.compile(r"^\s*[^\W\d]+\s?:\s*[\d.,]+\s*ms\s*$")
_PROMPT = re.compile(r"^\S+[=(~-][#>]\s")
_COMMAND_TAG = re.compile(r"^[A-Z]+(?: [A-Z]+)*(?: \d+)*;?$")
#: Two or more spaces before "Key:" separate the parts of a compound line.
_SEGMENT_SPLIT = re.compile(r"(?<!\s)\s{2,}(?=[A-Z][A-Za-z -]*:)")


def _number(text: str) -> int | float:
    """An int when PostgreSQL printed no decimals, else a float (``rows=0.50`` in 18)."""
    return float(text) if "." in text else int(text)


def _kilobytes(text: str) -> int | float:
    match = re.search(rf"({_NUM})\s*kB", text) or re.search(rf"({_NUM})", text)
    return _number(match.group(1)) if match else 0


def _split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split at ``separator`` outside parentheses, brackets and quotes (Output, Sort Key)."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    last = "".join(current).strip()
    if last or parts:
        parts.append(last)
    return parts


def _scan_parens(text: str, start: int, depth: int, quote: str | None) -> tuple[int, str | None]:
    """The parentheses left open (and the quote left open) after ``text[start:]``, from the
    state before it; quoted parentheses are ignored (for wrapped lines)."""
    for char in text[start:]:
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
    return depth, quote


# --------------------------------------------------------------------------------------
# Node names -> "Node Type" and attributes

_IDENT = r'(?:"(?:[^"]|"")+"|[^\s."]+)'
_TARGET = rf"(?P<target>(?:{_IDENT}\.)?{_IDENT})(?:\s+(?P<alias>{_IDENT}))?"

_JOIN_TYPES = r"Left|Right|Full|Semi|Anti|Right Semi|Right Anti"


def _unquote(identifier: str) -> str:
    if len(identifier) >= 2 and identifier[0] == identifier[-1] == '"':
        return identifier[1:-1].replace('""', '"')
    return identifier


def _split_target(target: str) -> tuple[str | None, str]:
    """``public.t`` -> ("public", "t"); quoted identifiers are unquoted."""
    match = re.fullmatch(rf"(?:(?P<schema>{_IDENT})\.)?(?P<name>{_IDENT})", target)
    if match is None:
        return None, target
    schema = match.group("schema")
    return (_unquote(schema) if schema else None), _unquote(match.group("name"))


def _target_attributes(match: re.Match[str], name_key: str | None) -> JsonDict:
    """Relation/function/CTE name, schema and alias of ``... on [schema.]name [alias]``."""
    attrs: JsonDict = {}
    target = match.groupdict().get("target")
    if not target:
        return attrs
    schema, name = _split_target(target)
    alias = match.groupdict().get("alias")
    if name_key is None:  # Subquery Scan, Values Scan: the name printed is the alias
        attrs["Alias"] = name
        return attrs
    attrs[name_key] = name
    if schema is not None:
        attrs["Schema"] = schema
    attrs["Alias"] = _unquote(alias) if alias else name
    return attrs


def _scan(node_type: str, name_key: str | None) -> Callable[[re.Match[str]], JsonDict]:
    def build(match: re.Match[str]) -> JsonDict:
        return {"Node Type": node_type, **_target_attributes(match, name_key)}

    return build


def _join(match: re.Match[str]) -> JsonDict:
    kind = match.group("kind")
    node_type = "Nested Loop" if kind == "Nested Loop" else f"{kind} Join"
    return {"Node Type": node_type, "Join Type": match.group("jointype") or "Inner"}


_AGG_STRATEGY = {
    "Aggregate": "Plain",
    "GroupAggregate": "Sorted",
    "HashAggregate": "Hashed",
    "MixedAggregate": "Mixed",
}


def _aggregate(match: re.Match[str]) -> JsonDict:
    return {"Node Type": "Aggregate", "Strategy": _AGG_STRATEGY[match.group(1)]}


def _setop(match: re.Match[str]) -> JsonDict:
    attrs: JsonDict = {
        "Node Type": "SetOp",
        "Strategy": "Hashed" if match.group(1) == "HashSetOp" else "Sorted",
    }
    if match.group("command"):
        attrs["Command"] = match.group("command")
    return attrs


def _index_scan(match: re.Match[str]) -> JsonDict:
    attrs: JsonDict = {
        "Node Type": match.group("kind"),
        "Scan Direction": "Backward" if match.group("backward") else "Forward",
        "Index Name": _unquote(match.group("index")),
    }
    attrs.update(_target_attributes(match, "Relation Name"))
    return attrs


def _bitmap_index_scan(match: re.Match[str]) -> JsonDict:
    return {"Node Type": "Bitmap Index Scan", "Index Name": _unquote(match.group("index"))}


def _modify(match: re.Match[str]) -> JsonDict:
    attrs: JsonDict = {"Node Type": "ModifyTable", "Operation": match.group("operation")}
    attrs.update(_target_attributes(match, "Relation Name"))
    return attrs


def _foreign(match: re.Match[str]) -> JsonDict:
    operation = match.group("operation")
    attrs: JsonDict = {"Node Type": "Foreign Scan", "Operation": operation or "Select"}
    attrs.update(_target_attributes(match, "Relation Name"))
    return attrs


def _custom(match: re.Match[str]) -> JsonDict:
    attrs: JsonDict = {"Node Type": "Custom Scan", "Custom Plan Provider": match.group("provider")}
    attrs.update(_target_attributes(match, "Relation Name"))
    return attrs


def _plain(match: re.Match[str]) -> JsonDict:
    return {"Node Type": match.group(0)}


_PLAIN_NAMES = (
    "Result|ProjectSet|Append|Merge Append|Recursive Union|BitmapAnd|BitmapOr|Gather Merge|"
    "Gather|Materialize|Memoize|Incremental Sort|Sort|Group|WindowAgg|Unique|LockRows|Limit|"
    "Hash"
)

#: Printed node name (after the "Parallel"/"Async"/"Partial"/"Finalize" prefixes) -> JSON
#: attributes. First match wins; an unknown name is kept as its own "Node Type".
_NAME_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], JsonDict]], ...] = (
    (re.compile(rf"(?P<kind>Nested Loop)(?: (?P<jointype>{_JOIN_TYPES}) Join)?"), _join),
    (re.compile(rf"(?P<kind>Hash|Merge)(?: (?P<jointype>{_JOIN_TYPES}))? Join"), _join),
    (re.compile(r"(Aggregate|GroupAggregate|HashAggregate|MixedAggregate)"), _aggregate),
    (
        re.compile(r"(SetOp|HashSetOp)(?: (?P<command>(?:Intersect|Except|Union)(?: All)?))?"),
        _setop,
    ),
    (
        re.compile(
            rf"(?P<kind>Index Only Scan|Index Scan)(?P<backward> Backward)?"
            rf" using (?P<index>{_IDENT}) on {_TARGET}"
        ),
        _index_scan,
    ),
    (re.compile(rf"Bitmap Index Scan on (?P<index>{_IDENT})"), _bitmap_index_scan),
    (re.compile(rf"(?P<operation>Insert|Update|Delete|Merge) on {_TARGET}"), _modify),
    (re.compile(rf"Seq Scan on {_TARGET}"), _scan("Seq Scan", "Relation Name")),
    (re.compile(rf"Bitmap Heap Scan on {_TARGET}"), _scan("Bitmap Heap Scan", "Relation Name")),
    (re.compile(rf"Sample Scan on {_TARGET}"), _scan("Sample Scan", "Relation Name")),
    (re.compile(rf"Tid Scan on {_TARGET}"), _scan("Tid Scan", "Relation Name")),
    (re.compile(rf"Tid Range Scan on {_TARGET}"), _scan("Tid Range Scan", "Relation Name")),
    (re.compile(rf"Function Scan on {_TARGET}"), _scan("Function Scan", "Function Name")),
    (
        re.compile(rf"Table Function Scan on {_TARGET}"),
        _scan("Table Function Scan", "Table Function Name"),
    ),
    (re.compile(rf"CTE Scan on {_TARGET}"), _scan("CTE Scan", "CTE Name")),
    (re.compile(rf"WorkTable Scan on {_TARGET}"), _scan("WorkTable Scan", "CTE Name")),
    (
        re.compile(rf"Named Tuplestore Scan on {_TARGET}"),
        _scan("Named Tuplestore Scan", "Tuplestore Name"),
    ),
    # Before 8.4 or so: "Subquery Scan alias", without "on".
    (re.compile(rf"Subquery Scan(?: on)? {_TARGET}"), _scan("Subquery Scan", None)),
    (re.compile(rf"Values Scan(?: on {_TARGET})?"), _scan("Values Scan", None)),
    (
        re.compile(rf"Foreign (?:Scan|(?P<operation>Insert|Update|Delete))(?: on {_TARGET})?"),
        _foreign,
    ),
    (re.compile(rf"Custom Scan \((?P<provider>[^)]*)\)(?: on {_TARGET})?"), _custom),
    (re.compile(_PLAIN_NAMES), _plain),
)

_PREFIXES = re.compile(
    r"^(?:(?P<parallel>Parallel )|(?P<async>Async ))?(?P<mode>Partial |Finalize )?"
)


def node_attributes(name: str) -> JsonDict | None:
    """JSON attributes of a printed node name, or None when the name is not one we know.

    ``"Parallel Seq Scan on t x"`` -> ``{"Node Type": "Seq Scan", "Parallel Aware": True,
    "Relation Name": "t", "Alias": "x"}``.
    """
    prefixes = _PREFIXES.match(name)
    assert prefixes is not None  # every group is optional
    core = name[prefixes.end() :].strip()
    for pattern, build in _NAME_PATTERNS:
        match = pattern.fullmatch(core)
        if match is None:
            continue
        attrs = build(match)
        attrs["Parallel Aware"] = prefixes.group("parallel") is not None
        if prefixes.group("async"):
            attrs["Async Capable"] = True
        if attrs["Node Type"] == "Aggregate":
            mode = prefixes.group("mode")
            attrs["Partial Mode"] = mode.strip() if mode else "Simple"
        elif prefixes.group("mode"):
            continue  # "Partial" only qualifies aggregates
        return attrs
    return None


# --------------------------------------------------------------------------------------
# Property parsers: (target, key, value, node type) -> sets JSON keys on target

Parser = Callable[[JsonDict, str, str, str], None]


def _text(target: JsonDict, key: str, value: str, node_type: str) -> None:
    target[key] = value


def _count(target: JsonDict, key: str, value: str, node_type: str) -> None:
    target[key] = _number(value) if re.fullmatch(rf"-?{_NUM}", value) else value


def _flag(target: JsonDict, key: str, value: str, node_type: str) -> None:
    target[key] = value == "true" if value in ("true", "false") else value


def _list(target: JsonDict, key: str, value: str, node_type: str) -> None:
    items = _split_top_level(value)
    existing = target.get(key)
    if isinstance(existing, list):  # grouping sets print "Group Key" once per set
        existing.extend(items)
    else:
        target[key] = items


def _renamed(new_key: str, convert: Callable[[str], Any] = _number) -> Parser:
    def parse(target: JsonDict, key: str, value: str, node_type: str) -> None:
        target[new_key] = convert(value)

    return parse


def _buffers(target: JsonDict, key: str, value: str, node_type: str) -> None:
    """``shared hit=1 read=2, local hit=3, temp read=4 written=5`` -> "Shared Hit Blocks"..."""
    for group in value.split(","):
        words = group.split()
        if not words:
            continue
        scope = words[0].title()
        for word in words[1:]:
            name, _, count = word.partition("=")
            if count.isdecimal():  # not isdigit(): int() refuses "²"
                target[f"{scope} {name.title()} Blocks"] = int(count)


_IO_SCOPES = {"": "I/O", "shared/local": "I/O", "shared": "Shared I/O", "local": "Local I/O"}


def _io_timings(target: JsonDict, key: str, value: str, node_type: str) -> None:
    """``read=1.2 write=3.4`` (up to 14), ``shared/local read=..., temp read=...`` (15, 16),
    ``shared read=..., local write=..., temp read=...`` (17+)."""
    for group in value.split(","):
        words = group.split()
        scope = "" if not words or "=" in words[0] else words.pop(0)
        prefix = _IO_SCOPES.get(scope, f"{scope.title()} I/O")
        for word in words:
            name, _, amount = word.partition("=")
            if name in ("read", "write") and re.fullmatch(_NUM, amount):
                target[f"{prefix} {name.title()} Time"] = float(amount)


_WAL_KEYS = {
    "records": "WAL Records",
    "fpi": "WAL FPI",
    "bytes": "WAL Bytes",
    "buffers full": "WAL Buffers Full",
}


def _wal(target: JsonDict, key: str, value: str, node_type: str) -> None:
    for name, amount in re.findall(r"(records|fpi|bytes|buffers full)=(\d+)", value):
        target[_WAL_KEYS[name]] = int(amount)


def _heap_blocks(target: JsonDict, key: str, value: str, node_type: str) -> None:
    for kind, amount in re.findall(r"(exact|lossy)=(\d+)", value):
        target[f"{kind.title()} Heap Blocks"] = int(amount)


def _tuples(target: JsonDict, key: str, value: str, node_type: str) -> None:
    """MERGE: ``Tuples: inserted=1 updated=2 deleted=3 skipped=4``."""
    for kind, amount in re.findall(r"(\w+)=(\d+)", value):
        target[f"Tuples {kind.title()}"] = int(amount)


def _sort_space(space_type: str) -> Parser:
    def parse(target: JsonDict, key: str, value: str, node_type: str) -> None:
        target["Sort Space Used"] = _kilobytes(value)
        target["Sort Space Type"] = space_type

    return parse


def _with_original(current_key: str, original_key: str) -> Parser:
    """``2048 (originally 8)``; JSON always has both, text only when they differ."""

    def parse(target: JsonDict, key: str, value: str, node_type: str) -> None:
        match = re.match(r"(\d+)(?:\s*\(originally\s+(\d+)\))?", value)
        if match is None:
            target[current_key] = value
            return
        target[current_key] = int(match.group(1))
        target[original_key] = int(match.group(2) or match.group(1))

    return parse


_hash_batches = _with_original("Hash Batches", "Original Hash Batches")


def _batches(target: JsonDict, key: str, value: str, node_type: str) -> None:
    """The "Batches" of a Hash node, or of a HashAggregate that spilled (13+)."""
    if node_type == "Hash":
        _hash_batches(target, key, value, node_type)
    else:
        target["HashAgg Batches"] = _number(value) if value.isdecimal() else value


_GROUP_SPACE = re.compile(rf"(Average|Peak) (Memory|Disk): ({_NUM})kB")


def _sort_groups(target: JsonDict, key: str, value: str, node_type: str) -> None:
    """Incremental Sort: ``Full-sort Groups: 2  Sort Method: quicksort  Average Memory: 26kB
    Peak Memory: 26kB`` -> {"Group Count", "Sort Methods Used", "Sort Space Memory": {...}}."""
    group: JsonDict = {}
    count = re.match(r"\d+", value)
    if count:
        group["Group Count"] = int(count.group(0))
    methods = re.search(r"Sort Methods?: (.*?)(?:\s{2,}|$)", value)
    if methods:
        group["Sort Methods Used"] = [m.strip() for m in methods.group(1).split(",")]
    for which, space, amount in _GROUP_SPACE.findall(value):
        space_group = group.setdefault(f"Sort Space {space}", {})
        space_group[f"{which} Sort Space Used"] = _number(amount)
    target[key] = group


_NODE_PARSERS: dict[str, Parser] = {
    **dict.fromkeys(
        (
            "Output",
            "Sort Key",
            "Group Key",
            "Presorted Key",
            "Hash Key",
            "Partition Key",
        ),
        _list,
    ),
    **dict.fromkeys(
        (
            "Rows Removed by Filter",
            "Rows Removed by Join Filter",
            "Rows Removed by Index Recheck",
            "Rows Removed by Conflict Filter",
            "Heap Fetches",
            "Workers Planned",
            "Workers Launched",
            "Index Searches",
            "Subplans Removed",
            "Tuples Inserted",
            "Conflicting Tuples",
            "Planned Partitions",
        ),
        _count,
    ),
    **dict.fromkeys(("Inner Unique", "Single Copy", "Disabled", "Async Capable"), _flag),
    "Buffers": _buffers,
    "I/O Timings": _io_timings,
    "WAL": _wal,
    "Heap Blocks": _heap_blocks,
    "Tuples": _tuples,
    "Disk": _sort_space("Disk"),
    "Memory": _sort_space("Memory"),
    "Buckets": _with_original("Hash Buckets", "Original Hash Buckets"),
    "Batches": _batches,
    "Memory Usage": _renamed("Peak Memory Usage", _kilobytes),
    "Disk Usage": _renamed("Disk Usage", _kilobytes),
    "Hits": _renamed("Cache Hits"),
    "Misses": _renamed("Cache Misses"),
    "Evictions": _renamed("Cache Evictions"),
    "Overflows": _renamed("Cache Overflows"),
    "Maximum Storage": _renamed("Maximum Storage", _kilobytes),
    "Full-sort Groups": _sort_groups,
    "Pre-sorted Groups": _sort_groups,
}

#: Keys that open a line of several "Key: value" parts separated by two spaces.
_COMPOUND_KEYS = frozenset(
    {"Sort Method", "Buckets", "Batches", "Planned Partitions", "Hits", "Storage"}
)


#: Keys the builder fills with lists of its own: a "Plans: x" line (garbage: PostgreSQL
#: prints no such line) must not set them to text, which the next child would not fit.
_STRUCTURE_KEYS = frozenset({"Plans", "Workers", "Target Tables", "Unparsed Lines"})


def _split_key(text: str) -> tuple[str, str] | None:
    match = _KEY.match(text)
    if match is None:
        return None
    return match.group("key"), (match.group("value") or "").strip()


def _apply_node_line(target: JsonDict, text: str, node_type: str) -> bool:
    """Apply one ``Key: value`` line to a node (or a worker); False when it is not one."""
    pair = _split_key(text)
    if pair is None:
        return False
    key, value = pair
    if key in _STRUCTURE_KEYS:
        return False
    if key in _COMPOUND_KEYS:
        for segment in _SEGMENT_SPLIT.split(text):
            part = _split_key(segment.strip())
            if part is not None and part[0] not in _STRUCTURE_KEYS:
                _NODE_PARSERS.get(part[0], _text)(target, part[0], part[1], node_type)
        return True
    _NODE_PARSERS.get(key, _text)(target, key, value, node_type)
    return True


# --------------------------------------------------------------------------------------
# Plan-level sections: JIT, Planning, Serialization, Settings, Triggers

# (?<!\w): tried once per word, not from each of its characters (quadratic on long ones).
_JIT_TIMING = re.compile(rf"(?<!\w)(\w+) ({_NUM}) ms(?: \(Deform ({_NUM}) ms\))?")


def _apply_jit_line(jit: JsonDict, text: str) -> None:
    pair = _split_key(text)
    if pair is None:
        return
    key, value = pair
    if key == "Functions":
        _count(jit, key, value, "")
    elif key == "Options":
        jit["Options"] = {
            name: flag == "true" for name, flag in re.findall(r"(\w+) (true|false)", value)
        }
    elif key == "Timing":
        timing: JsonDict = {}
        for name, amount, deform in _JIT_TIMING.findall(value):
            # 17+ JSON: "Generation": {"Deform": x, "Total": y}
            timing[name] = (
                {"Deform": float(deform), "Total": float(amount)} if deform else float(amount)
            )
        jit["Timing"] = timing
    else:
        jit[key] = value


def _apply_section_line(section: JsonDict, text: str) -> None:
    """A line under ``Planning:`` or ``Serialization:``."""
    pair = _split_key(text)
    if pair is None:
        return
    key, value = pair
    if key == "Memory":
        for name, amount in re.findall(r"(used|allocated)=(\d+)kB", value):
            # JSON prints bytes; text the kB rounded up.
            section[f"Memory {name.title()}"] = int(amount) * 1024
    else:
        _NODE_PARSERS.get(key, _text)(section, key, value, "")


def _serialization(value: str) -> JsonDict:
    """``time=4.690 ms  output=31251kB  format=text`` (17+)."""
    result: JsonDict = {}
    time = re.search(rf"time=({_NUM}) ms", value)
    if time:
        result["Time"] = float(time.group(1))
    output = re.search(r"output=(\d+)kB", value)
    if output:
        result["Output Volume"] = int(output.group(1))
    fmt = re.search(r"format=(\S+)", value)
    if fmt:
        result["Format"] = fmt.group(1)
    return result


def _settings(value: str) -> dict[str, str]:
    """``jit = 'off', work_mem = '1MB'`` -> {"jit": "off", "work_mem": "1MB"}."""
    return {
        name: setting.replace("''", "'")
        for name, setting in re.findall(r"([\w.]+) = '((?:[^']|'')*)'", value)
    }


def _trigger(match: re.Match[str]) -> JsonDict:
    """``Trigger [name] [for constraint c] [on rel]: time=.. calls=..``."""
    what = match.group("what")
    trigger: JsonDict = {}
    relation = re.search(r"\s+on\s+(\S+)$", what)
    if relation:
        trigger["Relation"] = _unquote(relation.group(1))
        what = what[: relation.start()]
    constraint = re.search(r"(?:^|\s+)for constraint\s+(\S+)$", what)
    if constraint:
        trigger["Constraint Name"] = _unquote(constraint.group(1))
        what = what[: constraint.start()]
    if what.strip():
        trigger["Trigger Name"] = _unquote(what.strip())
    trigger["Time"] = float(match.group("time"))
    trigger["Calls"] = int(match.group("calls"))
    return dict(sorted(trigger.items(), key=lambda item: _TRIGGER_ORDER.index(item[0])))


_TRIGGER_ORDER = ("Trigger Name", "Constraint Name", "Relation", "Time", "Calls")


def _milliseconds(value: str) -> float | str:
    match = re.match(_NUM, value)
    return float(match.group(0)) if match else value


_EXECUTION_KEYS = frozenset({"Execution Time", "Execution time", "Total runtime"})
_PLANNING_KEYS = frozenset({"Planning Time", "Planning time"})
_SECTION_KEYS = frozenset({"Planning", "JIT", "Serialization"})
_TIME_KEYS = _EXECUTION_KEYS | _PLANNING_KEYS
_DOCUMENT_KEYS = _EXECUTION_KEYS | _PLANNING_KEYS | _SECTION_KEYS | {"Settings", "Query Identifier"}


# --------------------------------------------------------------------------------------
# Step 1: raw text -> logical lines


@dataclass(slots=True)
class _Line:
    indent: int
    text: str  # stripped; a wrapped line's pieces glued back together
    # The open parentheses and quote after text[:_scanned]: the text only grows (pieces are
    # glued on), so each piece is scanned once, not the whole line again per piece (a paste
    # of a thousand pieces inside an unclosed quote took 27 s).
    _depth: int = 0
    _quote: str | None = None
    _scanned: int = 0

    def open_parens(self) -> int:
        """How many parentheses the text leaves open, quotes ignored."""
        if self._scanned < len(self.text):
            self._depth, self._quote = _scan_parens(
                self.text, self._scanned, self._depth, self._quote
            )
            self._scanned = len(self.text)
        return self._depth


def _is_root_line(line: str) -> bool:
    """Whether a line can be the first line of a plan (its root node)."""
    stripped = line.strip()
    if _ROOT_START.match(line) or (_ARROW.match(line) and _FIGURES_START.search(line)):
        return True
    # COSTS OFF without ANALYZE: a bare known node name ("Hash Join", "Seq Scan on t").
    return bool(stripped) and ":" not in stripped and node_attributes(stripped) is not None


def _starts_something(stripped: str) -> bool:
    """Lines that always begin a new logical line, even after an open parenthesis."""
    if stripped.startswith("->") or _HEADER.match(stripped) or _WORKER.match(stripped):
        return True
    if _TRIGGER.match(stripped) or _TARGET_TABLE.match(stripped):
        return True
    pair = _split_key(stripped)
    if pair is None:
        return False
    key = pair[0]
    return key in _NODE_PARSERS or key in _DOCUMENT_KEYS or key in _KNOWN_TEXT_KEYS


#: Node properties kept as text, listed so a wrapped line cannot swallow them.
_KNOWN_TEXT_KEYS = frozenset(
    {
        "Filter",
        "Index Cond",
        "Recheck Cond",
        "Join Filter",
        "Hash Cond",
        "Merge Cond",
        "One-Time Filter",
        "TID Cond",
        "Order By",
        "Function Call",
        "Table Function Call",
        "Cache Key",
        "Cache Mode",
        "Sort Method",
        "Storage",
        "Run Condition",
        "Remote SQL",
        "Relations",
        "Sampling",
        "Conflict Resolution",
        "Conflict Arbiter Indexes",
        "Conflict Filter",
        "Functions",
        "Options",
        "Timing",
    }
)


def _is_noise(stripped: str) -> bool:
    """psql prompts, ``\\timing`` lines and command tags (``SET``, ``INSERT 0 1``)."""
    return bool(
        _PROMPT.match(stripped) or _TIMING_NOISE.match(stripped) or _COMMAND_TAG.match(stripped)
    )


def _ends_plan(lines: list[_Line], indent: int, timed: bool) -> bool:
    """Whether a root-like line (a name and figures, no arrow) starts another plan.

    It does after the plan's ``Planning/Execution Time`` (``timed``), or when it is no
    deeper than the first root and the line before it is complete (a wrapped node line's
    tail can look like a root too, but then the line before is a node line cut before its
    figures).
    """
    if timed:
        return True
    previous = lines[-1].text
    cut_node = previous.startswith("->") and not _FIGURES_START.search(previous)
    return indent <= lines[0].indent and not cut_node and lines[-1].open_parens() <= 0


def _is_time_line(text: str) -> bool:
    pair = _split_key(text)
    return pair is not None and pair[0] in _TIME_KEYS


def _logical_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    can_continue = False  # False after a blank line: nothing to glue onto
    timed = False  # a Planning/Execution Time line was seen
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.expandtabs().rstrip().lstrip("\ufeff")
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not lines:
            if _is_root_line(line):
                lines.append(_Line(indent, stripped))
                can_continue = True
            continue
        if not stripped:
            can_continue = False
            continue
        if _FOOTER.match(line):
            break
        previous = lines[-1]
        timed = timed or _is_time_line(previous.text)
        if _ROOT_START.match(line) and _ends_plan(lines, indent, timed):
            break  # the root of a second plan pasted after this one
        if _starts_something(stripped):
            lines.append(_Line(indent, stripped))
            can_continue = True
        elif can_continue and previous.open_parens() > 0:
            previous.text += line  # cut inside "(...)": glue back as printed
        elif _is_noise(stripped):
            can_continue = False
        elif _split_key(stripped) is not None or not can_continue:
            lines.append(_Line(indent, stripped))
            can_continue = True
        else:
            previous.text += line
    return lines


# --------------------------------------------------------------------------------------
# Step 2: logical lines -> document


def _node_from_line(text: str) -> tuple[JsonDict, bool, bool]:
    """The JSON node of a node line (arrow removed), whether it never ran, whether it was
    timed."""
    figures_at = _FIGURES_START.search(text)
    name = (text[: figures_at.start()] if figures_at else text).strip()
    figures = text[figures_at.start() :] if figures_at else ""
    attrs = node_attributes(name)
    if attrs is None:
        prefixes = _PREFIXES.match(name)
        parallel = bool(prefixes and prefixes.group("parallel"))
        attrs = {"Node Type": name.removeprefix("Parallel ").strip(), "Parallel Aware": parallel}
    cost = _COST.search(figures)
    if cost:
        attrs["Startup Cost"] = float(cost.group("startup"))
        attrs["Total Cost"] = float(cost.group("total"))
        attrs["Plan Rows"] = _number(cost.group("rows"))
        attrs["Plan Width"] = int(cost.group("width"))
    never = bool(_NEVER.search(figures))
    timed = False
    actual = _ACTUAL.search(figures)
    if never:
        attrs["Actual Rows"] = 0
        attrs["Actual Loops"] = 0
    elif actual:
        if actual.group("start") is not None:
            attrs["Actual Startup Time"] = float(actual.group("start"))
            attrs["Actual Total Time"] = float(actual.group("end"))
            timed = True
        attrs["Actual Rows"] = _number(actual.group("rows"))
        attrs["Actual Loops"] = int(actual.group("loops"))
    return attrs, never, timed


_WORKER_ACTUAL = re.compile(
    rf"^actual\s+(?:time=(?P<start>{_NUM})\.\.(?P<end>{_NUM})\s+)?"
    rf"rows=(?P<rows>{_NUM})\s+loops=(?P<loops>\d+)\s*(?P<rest>.*)$"
)

_MEMBER_PARENTS = frozenset({"Append", "Merge Append", "BitmapAnd", "BitmapOr"})


def _child_relationship(parent: JsonDict, index: int) -> str:
    """Parent Relationship of the ``index``-th ordinary (non-subplan) child, as JSON says."""
    node_type = parent.get("Node Type")
    if node_type in _MEMBER_PARENTS:
        return "Member"
    if node_type == "Subquery Scan":
        return "Subquery"
    return "Outer" if index == 0 else "Inner"


@dataclass(slots=True)
class _Context:
    """Where indented property lines go: a node, a worker, or a JIT/Planning section."""

    indent: int
    target: JsonDict
    kind: str  # "node", "worker", "jit", "section"
    node_type: str = ""


@dataclass(slots=True)
class _Builder:
    document: JsonDict = field(default_factory=dict)
    root: JsonDict | None = None
    #: Open nodes and headers, by indentation: (indent, node or None, header name or None).
    tree: list[tuple[int, JsonDict | None, str | None]] = field(default_factory=list)
    contexts: list[_Context] = field(default_factory=list)
    in_trailer: bool = False
    never_executed: list[JsonDict] = field(default_factory=list)
    timed: bool = False

    def feed(self, line: _Line) -> None:
        text = line.text
        arrow = _ARROW.match(text)
        if self.root is None or arrow:
            self._add_node(line.indent, text[arrow.end() :] if arrow else text)
        elif _HEADER.match(text):
            self._add_header(line.indent, " ".join(text.split()))
        elif trigger := _TRIGGER.match(text):
            self.document.setdefault("Triggers", []).append(_trigger(trigger))
        else:
            self._add_property(line.indent, text)

    def finish(self) -> JsonDict:
        if self.root is None:
            raise PlanParseError(
                f"{_NOT_A_PLAN}: no plan node found (expected a line such as "
                "'Seq Scan on t  (cost=0.00..1.01 rows=1 width=4)')"
            )
        if self.timed:  # JSON gives never-executed nodes zero times when timing is on
            for node in self.never_executed:
                node["Actual Startup Time"] = 0.0
                node["Actual Total Time"] = 0.0
        return {"Plan": self.root, **self.document}

    # -- structure

    def _add_node(self, indent: int, text: str) -> None:
        node, never, timed = _node_from_line(text)
        if never:
            self.never_executed.append(node)
        self.timed = self.timed or timed
        self.in_trailer = False
        if self.root is None:
            self.root = node
        else:
            while len(self.tree) > 1 and self.tree[-1][0] >= indent:
                self.tree.pop()
            self._attach(node)
        self.tree.append((indent, node, None))
        self.contexts = [_Context(indent, node, "node", node["Node Type"])]

    def _attach(self, node: JsonDict) -> None:
        header = self.tree[-1][2]
        parent = next(entry[1] for entry in reversed(self.tree) if entry[1] is not None)
        children: list[JsonDict] = parent.setdefault("Plans", [])
        first: JsonDict = {"Node Type": node.pop("Node Type")}  # keys in PostgreSQL's order
        if header is not None:
            first["Parent Relationship"] = "SubPlan" if header.startswith("SubPlan") else "InitPlan"
            first["Subplan Name"] = header
        else:
            # any(), not a count: only "first ordinary child or not" matters, and counting
            # made a node with thousands of children (partitions) quadratic.
            ordinary = any(
                c.get("Parent Relationship") not in ("InitPlan", "SubPlan") for c in children
            )
            first["Parent Relationship"] = _child_relationship(parent, int(ordinary))
        rest = dict(node)
        node.clear()
        node.update(first)
        node.update(rest)
        children.append(node)

    def _add_header(self, indent: int, name: str) -> None:
        while len(self.tree) > 1 and self.tree[-1][0] >= indent:
            self.tree.pop()
        self.tree.append((indent, None, name))

    # -- properties

    def _add_property(self, indent: int, text: str) -> None:
        pair = _split_key(text)
        key = pair[0] if pair else ""
        while len(self.contexts) > 1 and self.contexts[-1].indent >= indent:
            self.contexts.pop()
        top = self.contexts[-1] if self.contexts else None
        if key == "JIT" and top is not None and top.kind == "worker" and not self.in_trailer:
            jit: JsonDict = {}
            top.target["JIT"] = jit
            self.contexts.append(_Context(indent, jit, "jit"))
            return
        if key in _DOCUMENT_KEYS and pair is not None:
            self._add_document_line(indent, key, pair[1])
            return
        if top is None:
            return
        if self.in_trailer and top.indent >= indent:
            if pair is not None:
                self.document[key] = pair[1]
            return
        self._apply(top, indent, text)

    def _apply(self, context: _Context, indent: int, text: str) -> None:
        if context.kind == "jit":
            _apply_jit_line(context.target, text)
            return
        if context.kind == "section":
            _apply_section_line(context.target, text)
            return
        worker = _WORKER.match(text)
        if worker and context.kind == "node":
            self._add_worker(context, indent, int(worker.group("number")), worker.group("rest"))
            return
        if _TARGET_TABLE.match(text) and context.target.get("Node Type") == "ModifyTable":
            target = node_attributes(text) or {}
            context.target.setdefault("Target Tables", []).append(
                {k: v for k, v in target.items() if k in ("Relation Name", "Schema", "Alias")}
            )
            return
        if not _apply_node_line(context.target, text, context.node_type):
            context.target.setdefault("Unparsed Lines", []).append(text)

    def _add_worker(self, node: _Context, indent: int, number: int, rest: str) -> None:
        workers: list[JsonDict] = node.target.setdefault("Workers", [])
        worker = next((w for w in workers if w.get("Worker Number") == number), None)
        if worker is None:
            worker = {"Worker Number": number}
            workers.append(worker)
        self.contexts.append(_Context(indent, worker, "worker", node.node_type))
        actual = _WORKER_ACTUAL.match(rest)
        if actual:
            if actual.group("start") is not None:
                worker["Actual Startup Time"] = float(actual.group("start"))
                worker["Actual Total Time"] = float(actual.group("end"))
            worker["Actual Rows"] = _number(actual.group("rows"))
            worker["Actual Loops"] = int(actual.group("loops"))
            rest = actual.group("rest")
        elif rest.startswith("never executed"):
            worker["Actual Rows"] = 0
            worker["Actual Loops"] = 0
            rest = rest.removeprefix("never executed").strip()
        if rest:
            _apply_node_line(worker, rest, node.node_type)

    def _add_document_line(self, indent: int, key: str, value: str) -> None:
        self.in_trailer = True
        self.contexts = []
        doc = self.document
        if key in _EXECUTION_KEYS:
            doc["Execution Time"] = _milliseconds(value)
        elif key in _PLANNING_KEYS:
            doc["Planning Time"] = _milliseconds(value)
        elif key == "Settings":
            doc["Settings"] = _settings(value)
        elif key == "Query Identifier":
            _count(doc, key, value, "")
        elif key == "JIT":
            doc["JIT"] = {}
            self.contexts = [_Context(indent, doc["JIT"], "jit")]
        else:  # Planning, Serialization
            section = _serialization(value) if key == "Serialization" else {}
            doc[key] = section
            self.contexts = [_Context(indent, section, "section")]


def text_to_document(text: str) -> JsonDict:
    """The JSON-shaped document of an EXPLAIN plan printed in TEXT format.

    Noise before the first node and after the psql footer is ignored; wrapped lines are
    joined back. Raises :class:`PlanParseError` when the text holds no plan node.
    """
    builder = _Builder()
    for line in _logical_lines(text):
        try:
            builder.feed(line)
        except ValueError as exc:
            # A figure no PostgreSQL prints: int() refuses 4300+ digits, float() "1.2.3".
            shown = line.text if len(line.text) <= 60 else line.text[:57] + "..."
            raise PlanParseError(f"{_NOT_A_PLAN}: a figure cannot be read in {shown!r}") from exc
    return builder.finish()


__all__ = ["node_attributes", "text_to_document"]
