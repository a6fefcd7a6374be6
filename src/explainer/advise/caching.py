"""Caching candidates: read-only queries an application cache would answer, found in the log.

What is a candidate (rule ``cache-candidate``, docs/rules.md "Caching candidates")
    A shape of the workload that

    * is a plain read: a SELECT (or WITH ... SELECT) that
      :func:`explainer.db.safety.check_statement` calls a READ: no ``FOR UPDATE``/``FOR
      SHARE`` (a locking read belongs to a transaction about to write), no
      data-modifying CTE;
    * calls no function whose answer changes with the same values: the volatile and
      time- or session-dependent ones of :data:`UNCACHEABLE_FUNCTIONS` and the SQL value
      functions (``CURRENT_TIMESTAMP``, ``CURRENT_DATE``, ``CURRENT_USER``...), decided on
      pglast's parse tree; when connected, also any function the server declares
      ``VOLATILE`` (``pg_proc.provolatile``);
    * reads at least one table, none of them a catalog (``pg_catalog``,
      ``information_schema``, ``pg_*``);
    * ran at least :attr:`Thresholds.min_calls` (10) times, at least
      :attr:`Thresholds.min_shared_hits` (5) of them with values already run in *another
      context*, and with an expected hit rate of at least :attr:`Thresholds.min_hit_rate`
      (50%);
    * when connected, reads only tables written rarely: at most
      :attr:`Thresholds.max_write_ratio` (5) rows written (``n_tup_ins + n_tup_upd +
      n_tup_del``) per 100 rows read (``seq_tup_read + idx_tup_fetch``), as
      ``pg_stat_user_tables`` counts them since its last reset (the initial load counts as
      writes too). Without a connection the write rate is unknown, and the candidate says so.

Contexts
    What a shared cache serves that the code could not just reuse: the request, when the
    in-app capture gave a request id (``SessionTrace.request_of``); otherwise a *request
    window*: a transaction, or outside transactions a run of statements of one session none
    of which follows the one before by more than 1 s (``explainer.orm.nplus1.segments``,
    the windows the N+1 detector uses). A value set run several times within one context
    only is the ``repeated-query`` ORM finding's business (reuse the result), not a cache's.

The figures, over the statements whose order was kept (the traces)
    ``calls``: executions of the shape; ``distinct_values``: distinct value sets (logged
    parameters, or the literals of the text: :func:`explainer.workload.model.value_identity`).
    ``hit_rate`` = 1 - distinct_values / calls: what an unbounded cache, empty when the
    capture began, would have answered (every execution after the first of its value set).
    ``shared_hits``: executions whose value set had already run in another context (each
    (value set, context) pair counted once). ``ttl_hit_rate``: the hit rate of a cache whose
    entries expire :attr:`Thresholds.ttl_s` (300) s after they were filled, replayed in
    time order over the executions with a time (None when the log has no times).
    ``saved_ms`` = hit_rate x the shape's total time in the log: the database time the
    cache would have saved (the cache's own lookups cost is not subtracted).
    More than :data:`MAX_VALUES` distinct value sets of one shape are not remembered
    (memory): their repeats count as misses, the figures are lower bounds, and
    ``approximate`` says so.

What invalidates
    Any INSERT, UPDATE or DELETE on the tables the query reads (named in each candidate):
    delete the entry (or clear the function's cache) where the application writes them;
    the TTL bounds how long a write made elsewhere (another service, psql) goes unseen.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pglast import ast, parse_sql
from pglast.parser import ParseError

from explainer.db.catalog import TableActivity, resolve_table, table_activity, volatile_functions
from explainer.db.safety import StatementKind, ast_nodes, check_statement
from explainer.errors import ExplainerError
from explainer.orm.models import table_key
from explainer.orm.nplus1 import segments
from explainer.workload.model import NO_TIME, QueryGroup, Workload

__all__ = [
    "CACHING_RULES",
    "MAX_VALUES",
    "UNCACHEABLE_FUNCTIONS",
    "CachingCandidate",
    "CachingRefusal",
    "CachingResult",
    "CachingRule",
    "CodeSketch",
    "TableUse",
    "Thresholds",
    "find_caching",
    "find_caching_connected",
]

RULE_ID = "cache-candidate"


@dataclass(frozen=True, slots=True)
class CachingRule:
    """One line of ``explainer rules``."""

    id: str
    title: str
    trigger: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What makes a shape worth caching (the defaults are documented in docs/rules.md)."""

    min_calls: int = 10
    min_shared_hits: int = 5
    min_hit_rate: float = 0.5
    max_write_ratio: float = 0.05
    ttl_s: int = 300
    max_gap_ms: int = 1000


DEFAULT_THRESHOLDS = Thresholds()

CACHING_RULES: tuple[CachingRule, ...] = (
    CachingRule(
        id=RULE_ID,
        title="Read-only query repeated with the same values across requests",
        trigger=(
            f"a SELECT without locks or volatile functions run >= {DEFAULT_THRESHOLDS.min_calls}"
            f" times, >= {DEFAULT_THRESHOLDS.min_shared_hits} with values another request ran,"
            f" hit rate >= {DEFAULT_THRESHOLDS.min_hit_rate:.0%}, its tables written <= "
            f"{DEFAULT_THRESHOLDS.max_write_ratio * 100:g} rows per 100 read"
        ),
    ),
)

#: Distinct value sets remembered per shape (a dict entry each): beyond, repeats of new
#: value sets count as misses and the candidate is ``approximate``.
MAX_VALUES = 200_000

#: Functions whose answer may change between two runs with the same values: volatile
#: (random, sequences, the clock) or depending on the session (user, settings, backend).
UNCACHEABLE_FUNCTIONS = frozenset(
    {
        "random",
        "random_normal",
        "setseed",
        "nextval",
        "currval",
        "lastval",
        "setval",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "now",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "timeofday",
        "txid_current",
        "txid_current_if_assigned",
        "pg_current_xact_id",
        "pg_backend_pid",
        "current_setting",
        "inet_client_addr",
        "inet_client_port",
        "pg_sleep",
        "age",  # age(x) is measured from the current date
    }
)

_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")
_CATALOG = re.compile(r"pg_|information_schema$", re.IGNORECASE)

ContextKind = Literal["request", "request window"]


@dataclass(frozen=True, slots=True)
class TableUse:
    """A table the query reads, and how often it is written (when connected)."""

    name: str
    """As :func:`explainer.orm.models.table_key` writes it (``schema.t`` outside public)."""
    activity: TableActivity | None = None
    """``pg_stat_user_tables`` counters; None when not connected or unknown to them."""
    hours: float | None = None
    """How long the counters have counted (since the statistics reset), when known."""

    @property
    def rows_written(self) -> int | None:
        return None if self.activity is None else self.activity.rows_written

    @property
    def rows_read(self) -> int | None:
        return None if self.activity is None else self.activity.rows_read

    @property
    def write_ratio(self) -> float | None:
        """Rows written per row read; None when unknown (or nothing was read)."""
        if self.activity is None or self.activity.rows_read == 0:
            return None
        return self.activity.rows_written / self.activity.rows_read

    @property
    def writes_per_hour(self) -> float | None:
        if self.activity is None or not self.hours:
            return None
        return self.activity.rows_written / self.hours


@dataclass(frozen=True, slots=True)
class CodeSketch:
    """One way to cache it, as code to adapt."""

    title: str
    language: str
    code: str


@dataclass(slots=True)
class CachingCandidate:
    """A shape an application cache would answer, with the figures that say how well."""

    group: QueryGroup
    calls: int
    distinct_values: int
    shared_hits: int
    contexts: int
    """Distinct contexts (requests or request windows) that ran the shape."""
    context_kind: ContextKind
    hit_rate: float
    ttl_hit_rate: float | None
    ttl_s: int
    saved_ms: float | None
    tables: tuple[TableUse, ...]
    writes_known: bool
    """Whether every table's write counters were read (connected)."""
    sites: tuple[str, ...] = ()
    """Call sites (``path:line``) that ran it, most calls first (in-app capture only)."""
    approximate: bool = False
    sketches: tuple[CodeSketch, ...] = ()
    invalidation: str = ""
    function: str = ""
    """The name the sketches give the cached function."""
    parameters: tuple[str, ...] = ()
    """The sketches' parameter names, one per ``$n``."""

    @property
    def site(self) -> str | None:
        return self.sites[0] if self.sites else None

    @property
    def rule(self) -> str:
        return RULE_ID


@dataclass(frozen=True, slots=True)
class CachingRefusal:
    """A shape repeated enough to cache, refused, and why (one line)."""

    group: QueryGroup
    reason: str


@dataclass(slots=True)
class CachingResult:
    candidates: list[CachingCandidate] = field(default_factory=list)
    refused: list[CachingRefusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- the SQL ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Statement:
    """What caching needs to know of a shape's SQL."""

    refusal: str | None
    tables: tuple[str, ...] = ()
    functions: frozenset[str] = frozenset()
    parameters: tuple[str, ...] = ()


def _statement(sql: str) -> _Statement | None:
    """None for what is not a table read at all (writes, catalog reads, ``SELECT 1``):
    those are not caching questions. Else the tables, and a refusal when it is not
    cacheable."""
    head = _FIRST_WORD.match(sql)
    if head is None or head.group(1).upper() not in ("SELECT", "WITH"):
        return None
    try:
        checked = check_statement(sql)
        root = parse_sql(checked.sql)[0].stmt
    except (ExplainerError, ParseError):
        return None
    if root is None:
        return None
    if checked.kind is StatementKind.WRITE:
        return _Statement("it writes (a data-modifying CTE)")
    nodes = ast_nodes(root)
    ctes = {n.ctename for n in nodes if isinstance(n, ast.CommonTableExpr)}
    tables: dict[str, None] = {}
    for node in nodes:
        if isinstance(node, ast.RangeVar) and node.relname:
            if node.schemaname is None and node.relname in ctes:
                continue
            if _CATALOG.match(node.schemaname or "") or _CATALOG.match(node.relname):
                return None
            tables[table_key(node.relname, node.schemaname)] = None
    if not tables:
        return None
    functions = frozenset(
        (n.funcname[-1].sval or "").lower()
        for n in nodes
        if isinstance(n, ast.FuncCall) and n.funcname and isinstance(n.funcname[-1], ast.String)
    )
    parameters = _parameter_names(nodes, checked.parameter_count)
    if checked.kind is StatementKind.LOCKING_READ:
        return _Statement("it locks rows (FOR UPDATE/SHARE)", tuple(tables), functions)
    fixed = sorted(functions & UNCACHEABLE_FUNCTIONS)
    if fixed:
        return _Statement(
            f"it calls {', '.join(f + '()' for f in fixed)}: the same values may give "
            "another answer",
            tuple(tables),
            functions,
        )
    value_functions = sorted(
        {
            n.op.name.removeprefix("SVFOP_")
            for n in nodes
            if isinstance(n, ast.SQLValueFunction) and n.op is not None
        }
    )
    if value_functions:
        return _Statement(
            f"it reads {', '.join(value_functions)}: the answer depends on the time or the session",
            tuple(tables),
            functions,
        )
    return _Statement(None, tuple(tables), functions, parameters)


def _unwrap(node: object) -> object:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


def _parameter_names(nodes: list[ast.Node], count: int) -> tuple[str, ...]:
    """A Python name per ``$n``: the column it is compared with when there is one
    (``code = $1`` -> ``code``), else ``value<n>``."""
    names: dict[int, str] = {}
    for node in nodes:
        if not (isinstance(node, ast.A_Expr) and node.name and len(node.name) == 1):
            continue
        left, right = _unwrap(node.lexpr), _unwrap(node.rexpr)
        if isinstance(left, ast.ParamRef):
            left, right = right, left
        if isinstance(right, ast.ParamRef) and isinstance(left, ast.ColumnRef):
            last = left.fields[-1] if left.fields else None
            number = right.number
            if number and isinstance(last, ast.String) and last.sval and last.sval.isidentifier():
                names.setdefault(number, last.sval.lower())
    result: list[str] = []
    for number in range(1, count + 1):
        name = names.get(number, f"value{number}")
        if name in result or name in ("self", "session", "key", "rows", "hit", "r", "text"):
            name = f"{name}_{number}"
        result.append(name)
    return tuple(result)


# -- counting ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    """One shape's executions over the traces."""

    calls: int = 0
    shared_hits: int = 0
    requests: int = 0
    """Executions whose context was a request (the rest: request windows)."""
    values: dict[int, int] = field(default_factory=dict)
    """Value identity -> the last context that ran it."""
    seen: dict[tuple[int, int], None] = field(default_factory=dict)
    """(value, context) pairs counted already, for values run in more than one context."""
    contexts: set[int] = field(default_factory=set)
    overflow: int = 0
    """Executions of value sets beyond :data:`MAX_VALUES`, each counted as a miss."""
    sites: Counter[int] = field(default_factory=Counter)


def _tally(workload: Workload, eligible: set[int], max_gap_ms: int) -> dict[int, _Tally]:
    tallies: dict[int, _Tally] = {}
    next_window = 0
    for trace in workload.traces.values():
        steps, values = trace.steps, trace.values
        requests, sites = trace.requests, trace.sites
        for start, end, _ in segments(trace, max_gap_ms):
            next_window += 1
            window = next_window
            for step in range(start, end):
                shape = steps[step]
                if shape not in eligible:
                    continue
                tally = tallies.get(shape)
                if tally is None:
                    tally = tallies[shape] = _Tally()
                tally.calls += 1
                request = requests[step] if requests is not None and step < len(requests) else 0
                if request:
                    context = -request
                    tally.requests += 1
                else:
                    context = window
                tally.contexts.add(context)
                site = sites[step] if sites is not None and step < len(sites) else 0
                if site:
                    tally.sites[site] += 1
                value = values[step]
                last = tally.values.get(value)
                if last is None:
                    if len(tally.values) < MAX_VALUES:
                        tally.values[value] = context
                    else:
                        tally.overflow += 1
                elif last != context:
                    # Another context runs a value set seen before: a shared cache's hit,
                    # once per (value set, context), however often that context repeats it
                    # (and not again when an earlier context comes back to it).
                    seen = tally.seen
                    seen.setdefault((value, last), None)
                    if (value, context) not in seen:
                        seen[value, context] = None
                        tally.shared_hits += 1
                    tally.values[value] = context
    return tallies


def _ttl_hit_rate(workload: Workload, shape: int, ttl_ms: int) -> float | None:
    """The hit rate of a cache whose entries live ``ttl_ms``, replayed in time order over
    the shape's executions that have a time (a second pass, for candidates only)."""
    calls: list[tuple[int, int]] = []
    for trace in workload.traces.values():
        if trace.start_ms is None:
            continue
        start = trace.start_ms
        for s, value, at in zip(trace.steps, trace.values, trace.at, strict=True):
            if s == shape and at != NO_TIME:
                calls.append((start + at, value))
    if not calls:
        return None
    calls.sort()
    filled: dict[int, int] = {}
    hits = 0
    for at, value in calls:
        since = filled.get(value)
        if since is not None and at - since <= ttl_ms:
            hits += 1
        else:
            filled[value] = at
    return hits / len(calls)


# -- the finding ------------------------------------------------------------------------


def find_caching(
    workload: Workload,
    *,
    activity: Mapping[str, TableActivity] | None = None,
    hours: float | None = None,
    volatile: frozenset[str] = frozenset(),
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> CachingResult:
    """The caching candidates of a workload built with ``keep_order=True``, most time
    saved first, and the shapes refused with their reason.

    ``activity`` (table key -> counters) is what :func:`find_caching_connected` reads; None
    means not connected: the write rates are unknown and each candidate says so.
    ``volatile``: further function names the server declares VOLATILE.
    """
    result = CachingResult()
    statements: dict[int, _Statement] = {}
    for index, group in enumerate(workload.shapes):
        if group.is_utility or group.calls < thresholds.min_calls:
            continue
        statement = _statement(group.example.sql)
        if statement is not None:
            statements[index] = statement
    tallies = _tally(workload, set(statements), thresholds.max_gap_ms)
    for shape, tally in tallies.items():
        group = workload.shapes[shape]
        distinct = len(tally.values) + tally.overflow
        hit_rate = 1 - distinct / tally.calls if tally.calls else 0.0
        if (
            tally.calls < thresholds.min_calls
            or tally.shared_hits < thresholds.min_shared_hits
            or hit_rate < thresholds.min_hit_rate
        ):
            continue
        statement = statements[shape]
        reason = statement.refusal
        if reason is None and statement.functions & volatile:
            names = ", ".join(f"{f}()" for f in sorted(statement.functions & volatile))
            reason = f"it calls {names}, which the server declares VOLATILE"
        uses = tuple(
            TableUse(t, None if activity is None else activity.get(t), hours)
            for t in statement.tables
        )
        if reason is None:
            busy = [
                u
                for u in uses
                if u.activity is not None
                and u.activity.rows_written > thresholds.max_write_ratio * u.activity.rows_read
            ]
            if busy:
                reason = "its tables are written often: " + "; ".join(
                    f"{u.name}: {u.activity.rows_written:,} rows written for "  # type: ignore[union-attr]
                    f"{u.activity.rows_read:,} read"  # type: ignore[union-attr]
                    for u in busy
                )
        if reason is not None:
            result.refused.append(CachingRefusal(group, reason))
            continue
        site_names = workload.sites
        sites = tuple(
            site_names[i - 1] for i, _ in tally.sites.most_common() if i <= len(site_names)
        )
        if not sites and group.example.location:
            sites = (group.example.location,)
        candidate = CachingCandidate(
            group=group,
            calls=tally.calls,
            distinct_values=distinct,
            shared_hits=tally.shared_hits,
            contexts=len(tally.contexts),
            context_kind="request" if tally.requests * 2 >= tally.calls else "request window",
            hit_rate=hit_rate,
            ttl_hit_rate=_ttl_hit_rate(workload, shape, thresholds.ttl_s * 1000),
            ttl_s=thresholds.ttl_s,
            saved_ms=None if group.total_ms is None else hit_rate * group.total_ms,
            tables=uses,
            writes_known=all(u.activity is not None for u in uses),
            sites=sites,
            approximate=tally.overflow > 0,
            parameters=statement.parameters,
        )
        _describe(candidate)
        result.candidates.append(candidate)
    result.candidates.sort(key=lambda c: (-(c.saved_ms or 0.0), -c.calls, c.group.fingerprint))
    result.refused.sort(key=lambda r: (-(r.group.total_ms or 0.0), r.group.fingerprint))
    return result


def find_caching_connected(
    conn: Any,
    workload: Workload,
    *,
    since: datetime | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> CachingResult:
    """:func:`find_caching` with the server's word on the tables (read and write counters)
    and on functions (``pg_proc.provolatile``). ``since``: when the counters started
    counting (``explainer.db.catalog.stats_since``), for writes per hour."""
    first = find_caching(workload, thresholds=thresholds)
    shapes = [c.group for c in first.candidates] + [r.group for r in first.refused]
    if not shapes:
        return first
    names: set[str] = set()
    functions: set[str] = set()
    for item in shapes:
        statement = _statement(item.example.sql)
        if statement is not None:
            names.update(statement.tables)
            functions.update(statement.functions)
    resolved: dict[tuple[str, str], str] = {}
    for name in sorted(names):
        schema, _, relation = name.rpartition(".")
        info = resolve_table(conn, relation, schema or None)
        if info is not None:
            resolved[(info.schema, info.name)] = name
    counters = table_activity(conn, resolved)
    activity = {resolved[key]: value for key, value in counters.items()}
    hours = None
    if since is not None:
        moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        hours = max((datetime.now(UTC) - moment).total_seconds() / 3600, 1 / 3600)
    return find_caching(
        workload,
        activity=activity,
        hours=hours,
        volatile=volatile_functions(conn, functions - UNCACHEABLE_FUNCTIONS),
        thresholds=thresholds,
    )


# -- words and code ---------------------------------------------------------------------


def _function_name(candidate: CachingCandidate) -> str:
    base = candidate.tables[0].name.rpartition(".")[2] if candidate.tables else "rows"
    base = re.sub(r"\W+", "_", base).strip("_").lower() or "rows"
    first = candidate.parameters[0] if candidate.parameters else None
    if first is not None and not first.startswith("value"):
        return f"{base}_by_{first}"
    return f"load_{base}"


def _python_sql(sql: str, parameters: tuple[str, ...]) -> str:
    """The statement with ``$n`` as SQLAlchemy ``text()``'s ``:name``."""
    return re.sub(r"\$(\d+)", lambda m: f":{parameters[int(m.group(1)) - 1]}", sql)


def invalidation_text(candidate: CachingCandidate) -> str:
    names = ", ".join(u.name for u in candidate.tables)
    return (
        f"Any INSERT, UPDATE or DELETE on {names} makes a cached result stale: clear the "
        f"entry where the application writes {'it' if len(candidate.tables) == 1 else 'them'}; "
        f"a TTL of {candidate.ttl_s} s bounds how long a write made elsewhere goes unseen."
    )


def _describe(candidate: CachingCandidate) -> None:
    candidate.function = _function_name(candidate)
    candidate.invalidation = invalidation_text(candidate)
    candidate.sketches = sketches(candidate)


def _python_string(text: str) -> str:
    """A Python literal of ``text``: triple-quoted when that is safe (readable), else repr."""
    if '"""' in text or "\\" in text or text.endswith('"'):
        return repr(text)
    return f'"""{text}"""'


def sketches(candidate: CachingCandidate) -> tuple[CodeSketch, ...]:
    """``cachetools.TTLCache`` / ``functools.lru_cache``, Flask-Caching and Redis, around a
    function that runs the query: in the application, the function at the call site."""
    fn = candidate.function
    params = candidate.parameters
    args = ", ".join(params)
    constant = f"{fn.upper()}_SQL"
    statement = _python_string(_python_sql(candidate.group.example.sql, params))
    binds = "{" + ", ".join(f'"{p}": {p}' for p in params) + "}"
    tables = ", ".join(u.name for u in candidate.tables)
    ttl = candidate.ttl_s
    where = f"the function at {candidate.site}" if candidate.site else "the function that runs it"
    head = (
        "from sqlalchemy import text\nfrom sqlalchemy.orm import Session\n\n"
        f"{constant} = text({statement})\n"
    )
    inlined = "" if params else "    # the log shows the values inlined: bind them as parameters\n"
    run = f"session.execute({constant}, {binds}).all()"
    body = (
        f"{inlined}    with Session(engine) as session:\n"
        f"        # plain tuples: never cache ORM objects bound to a closed session\n"
        f"        return [tuple(row) for row in {run}]\n"
    )
    cache_name = f"{fn}_cache"
    lru = (
        f"from cachetools import TTLCache, cached\n{head}\n"
        f"{cache_name} = TTLCache(maxsize=1024, ttl={ttl})\n\n\n"
        f"# {where}\n"
        f"@cached({cache_name})  # no expiry: @functools.lru_cache(maxsize=1024)\n"
        f"def {fn}({args}):\n{body}\n\n"
        f"# where the application writes {tables}, after the commit:\n"
        f"{cache_name}.clear()  # functools.lru_cache: {fn}.cache_clear()\n"
    )
    flask = (
        f"from flask_caching import Cache\n{head}\n"
        'cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})\n\n\n'
        f"# {where}\n"
        f"@cache.memoize(timeout={ttl})\n"
        f"def {fn}({args}):\n{body}\n\n"
        f"# where the application writes {tables}, after the commit:\n"
        f"cache.delete_memoized({fn})\n"
    )
    key_values = ":".join("{" + p + "}" for p in params)
    prefix = f"explainer:{candidate.group.fingerprint[:16]}"
    key = f'f"{prefix}:{key_values}"' if params else f'"{prefix}"'
    pattern = f"{prefix}:*" if params else prefix
    redis = (
        f"import json\n\nimport redis\n{head}\n"
        "r = redis.Redis()\n\n\n"
        f"# {where}\n"
        f"def {fn}({args}):\n"
        f"    key = {key}  # the shape, then its values\n"
        "    hit = r.get(key)\n"
        "    if hit is not None:\n"
        "        return json.loads(hit)\n"
        f"{inlined}"
        "    with Session(engine) as session:\n"
        f"        rows = [list(row) for row in {run}]\n"
        f"    r.setex(key, {ttl}, json.dumps(rows, default=str))\n"
        "    return rows\n\n\n"
        f"# where the application writes {tables}, after the commit:\n"
        f'for key in r.scan_iter("{pattern}"):\n'
        "    r.delete(key)\n"
    )
    return (
        CodeSketch("cachetools.TTLCache / functools.lru_cache", "python", lru),
        CodeSketch("Flask-Caching", "python", flask),
        CodeSketch("Redis", "python", redis),
    )


def describe(candidate: CachingCandidate) -> str:
    """One sentence with the numbers, for the terminal and Markdown reports."""
    contexts = "requests" if candidate.context_kind == "request" else "request windows"
    words = (
        f"{candidate.calls:,} calls with {candidate.distinct_values:,} distinct value set(s) "
        f"over {candidate.contexts:,} {contexts}; {candidate.shared_hits:,} repeat(s) "
        f"another context had run: hit rate {candidate.hit_rate:.0%}"
    )
    if candidate.approximate:
        words += " (a lower bound: too many value sets to remember)"
    if candidate.ttl_hit_rate is not None:
        words += f" ({candidate.ttl_hit_rate:.0%} with a {candidate.ttl_s} s TTL)"
    if candidate.saved_ms is not None:
        words += f", saving about {candidate.saved_ms:,.1f} ms of the log's database time"
    return words + "."


def tables_text(candidate: CachingCandidate) -> str:
    """The tables and their write rates, or why those are unknown."""
    parts = []
    for use in candidate.tables:
        if use.activity is None:
            parts.append(f"{use.name} (write rate unknown: not connected or no statistics)")
            continue
        written, read = use.activity.rows_written, use.activity.rows_read
        text = f"{use.name} ({written:,} rows written, {read:,} read"
        if use.writes_per_hour is not None:
            text += f", {use.writes_per_hour:,.1f} writes/hour"
        parts.append(text + ")")
    return ", ".join(parts)
