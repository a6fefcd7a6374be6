"""N+1 lazy loads, found in the order a session ran its statements (no application hooks).

What is flagged
    Within one session and one transaction, a *burst*: at least ``min_count`` (5)
    executions of one *lookup* shape with at least that many different values, after a
    *source* query that read the rows whose attribute was then loaded one by one. That is
    what a lazy ``relationship()`` does in a loop: ``for a in authors: a.books`` runs
    ``SELECT ... FROM books WHERE $1 = books.author_id`` once per author.

A lookup shape
    Decided from the SQL (sqlglot): a SELECT from one table, no join, subquery, set
    operation, aggregate or GROUP BY, whose WHERE is ``col = value`` (or several such,
    ANDed), the value a ``$n`` parameter or a literal, either side, cast or not. Whether
    the columns are a foreign key (one-to-many: ``books.author_id = $1``) or a primary key
    (many-to-one: ``authors.id = $1``) is read from the models when given: the
    ``RelationshipInfo`` whose target table is the looked-up table and whose remote
    columns are the compared ones names the relationship and its direction. Without
    models, or when no relationship matches, from the column names (``id`` is a primary
    key, ``*_id`` a foreign key), and the finding says it was named from the SQL. Catalog
    tables (``pg_catalog``, ``information_schema``, ``pg_*``) are never lookups, and
    INSERTs (psycopg 3 logs each row of an executemany), ``FETCH`` from a server-side
    cursor or ``SHOW`` are not SELECTs of a table, so they never form bursts.

Where a burst may lie
    Within one transaction of one session. Outside transactions (autocommit), within a
    *request window*: consecutive statements of the session none of which follows the one
    before by more than ``max_gap_ms`` (1 s) — a lazy load follows its predecessor by
    microseconds to milliseconds, a new web request by much more; at the one-second
    resolution of ``%t`` log prefixes a tick of exactly 1 s does not cut. Statements
    without a time never cut a window. SQLAlchemy's echo log knows no connection, so all
    its statements are one session (``Engine``): its transactions still separate bursts.

The source
    The nearest preceding statement of the burst's segment of another shape that reads a
    table, preferring one that reads the parent table when that is known (the class that
    owns the relationship). A burst with no such statement (the parent rows were loaded
    in an earlier transaction) is not flagged. A later execution of a source that is not
    itself a lookup ends the burst: the loop runs again, a new occurrence begins. When the
    source is itself a burst (authors -> books -> reviews), the finding is *nested*: its
    loader option is chained after its parent's.

Where in the application
    With the in-app capture (``explainer.capture.install``), every statement carries the
    application line that ran it: a finding's :attr:`NPlusOne.location` is the line most
    of its lookups ran from (the loop touching the relationship) and
    :attr:`NPlusOne.source_location` the line that ran the source query (where the loader
    option goes). From logs both are None.

Not flagged
    Runs of one value repeated (the same query with the same parameters: a different
    pattern, reuse the result), fewer than ``min_count`` different values, and the
    statements above that are not lookups.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from explainer.orm.loaders import LoaderRewrite, LoaderStep, Strategy, rewrite
from explainer.orm.models import MappedClass, ModelMap, RelationshipInfo, table_key
from explainer.workload.model import QueryGroup, SessionTrace, Workload

__all__ = [
    "DEFAULT_MAX_GAP_MS",
    "DEFAULT_MIN_COUNT",
    "Burst",
    "Lookup",
    "NPlusOne",
    "detect",
    "lookup_of",
]

DEFAULT_MIN_COUNT = 5
DEFAULT_MAX_GAP_MS = 1000

Kind = Literal["collection", "many-to-one"]
NamedFrom = Literal["models", "reflected", "sql"]


@dataclass(frozen=True)
class Lookup:
    """A single-table SELECT by equality: the shape an ORM lazy load has."""

    table: str
    """As :func:`explainer.orm.models.table_key` writes it (``schema.t`` outside public)."""
    key_columns: tuple[str, ...]
    """The compared columns, sorted, as bare column names."""


@dataclass(frozen=True)
class _Read:
    """What a statement reads: its tables, the first one, and its joined tables."""

    tables: frozenset[str]
    root: str
    joined: tuple[tuple[str, str], ...]
    """(table, join kind) for each JOIN: ``LEFT`` for joinedload's ``LEFT OUTER JOIN``."""


@dataclass(frozen=True)
class Burst:
    """One occurrence: a source query and the run of lookups that followed it."""

    session: str
    transaction: str | None
    source_step: int
    first_step: int
    last_step: int
    executions: int
    distinct_values: int
    span_ms: int | None
    """From the source's log time to the last lookup's, when the log has times: the
    wall-clock cost of the loop, round trips included (what a user waits for)."""
    location: str | None = None
    """The application line (``path:line``) that ran most of the lookups, when the input
    has call sites (the in-app capture): the loop."""
    source_location: str | None = None
    """The application line that ran the source query."""


@dataclass
class NPlusOne:
    """One N+1 pattern: a repeated lookup after a source query, and how to load it instead."""

    source: QueryGroup
    repeated: QueryGroup
    lookup: Lookup
    kind: Kind
    owner_class: str
    """The class holding the relationship (``Author`` for ``Author.books``)."""
    attribute: str
    target_class: str
    relationship: RelationshipInfo | None
    """From the models; None when named from the SQL."""
    named_from: NamedFrom
    strategy: Strategy
    path: tuple[LoaderStep, ...]
    """From the root query's class down to this relationship: one step, or several for a
    nested burst (``selectinload(Author.books).selectinload(Book.reviews)``)."""
    root_source: QueryGroup
    """The query of the root class (the source of the first step of :attr:`path`)."""
    bursts: list[Burst] = field(default_factory=list)
    nested: list[NPlusOne] = field(default_factory=list)
    """Bursts whose source is this one's repeated query (loaded per loaded row)."""
    rewrite: LoaderRewrite | None = None
    """The fix as code, for this relationship and every nested one below it."""

    @property
    def occurrences(self) -> int:
        """How many times the pattern occurred in the log."""
        return len(self.bursts)

    @property
    def executions(self) -> int:
        """Lookups run by all occurrences together."""
        return sum(b.executions for b in self.bursts)

    @property
    def max_count(self) -> int:
        return max((b.executions for b in self.bursts), default=0)

    @property
    def span_ms(self) -> int | None:
        """Wall-clock time of all occurrences together, when the log has times."""
        spans = [b.span_ms for b in self.bursts if b.span_ms is not None]
        return sum(spans) if spans else None

    @property
    def database_ms(self) -> float | None:
        """Server time of the lookups, estimated as executions x the shape's mean (the
        trace keeps no per-statement duration); None when the log has no durations."""
        mean = self.repeated.mean_ms
        return None if mean is None else mean * self.executions

    @property
    def location(self) -> str | None:
        """The loop: the call site of most of the lookups, over all occurrences (``path:line``,
        from the in-app capture; None from logs)."""
        return _most_common([(b.location, b.executions) for b in self.bursts]) or (
            self.repeated.location
        )

    @property
    def source_location(self) -> str | None:
        """Where the parent rows were read: the source query's call site, when captured."""
        return _most_common([(b.source_location, 1) for b in self.bursts]) or (self.source.location)

    @property
    def option(self) -> str:
        """The loader option, chained for nested bursts: ``selectinload(Author.books)``."""
        return ".".join(step.option for step in self.path)

    @property
    def relationship_name(self) -> str:
        return f"{self.owner_class}.{self.attribute}"


def detect(
    workload: Workload,
    models: ModelMap | None = None,
    *,
    min_count: int = DEFAULT_MIN_COUNT,
    max_gap_ms: int = DEFAULT_MAX_GAP_MS,
) -> list[NPlusOne]:
    """The N+1 patterns of a workload built with ``keep_order=True``, most lookups first.

    Every finding carries its rewrite (:mod:`explainer.orm.loaders`); a nested finding is
    listed too, and also under its parent's :attr:`NPlusOne.nested`.
    """
    if min_count < 2:
        raise ValueError("min_count must be at least 2")
    shapes = _Shapes(workload)
    found: dict[tuple[int, int], list[Burst]] = {}
    for trace in workload.traces.values():
        for start, end, transaction in segments(trace, max_gap_ms):
            for shape, source, burst in _bursts(trace, start, end, transaction, shapes, min_count):
                found.setdefault((shape, source), []).append(burst)
    findings: dict[tuple[int, int], NPlusOne] = {}
    for (shape, source), bursts in found.items():
        finding = _name(shape, source, bursts, shapes, models)
        if finding is not None:
            findings[(shape, source)] = finding
    _chain(findings)
    lazy_sql = {f.path: f.repeated.example.sql for f in findings.values()}
    for finding in findings.values():
        finding.rewrite = rewrite(
            finding.root_source.example.sql,
            [leaf.path for leaf in _leaves(finding)],
            queries_before=1 + sum(f.max_count for f in _subtree(finding)),
            models=models,
            repeated_sql=lazy_sql,
        )
    return sorted(findings.values(), key=lambda f: (-f.executions, f.relationship_name))


# -- shapes -----------------------------------------------------------------------------

_CATALOG = re.compile(r"(?:pg_catalog|information_schema)\.|pg_", re.IGNORECASE)


class _Shapes:
    """What each shape of the workload is, parsed once (sqlglot) and only when needed."""

    def __init__(self, workload: Workload) -> None:
        self.groups = workload.shapes
        self._lookups: dict[int, Lookup | None] = {}
        self._reads: dict[int, _Read | None] = {}

    def lookup(self, shape: int) -> Lookup | None:
        if shape not in self._lookups:
            group = self.groups[shape]
            self._lookups[shape] = None if group.is_utility else lookup_of(group.example.sql)
        return self._lookups[shape]

    def read(self, shape: int) -> _Read | None:
        if shape not in self._reads:
            group = self.groups[shape]
            self._reads[shape] = None if group.is_utility else _read_of(group.example.sql)
        return self._reads[shape]


def _parse_select(sql: str) -> exp.Select | None:
    head = sql.lstrip()[:6].upper()
    if head not in ("SELECT", "WITH"):
        return None
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except (SqlglotError, ValueError):
        return None
    return tree if isinstance(tree, exp.Select) else None


def _table_name(table: exp.Table) -> str:
    return table_key(table.name, table.db or None)


def _is_catalog(table: exp.Table) -> bool:
    return bool(_CATALOG.match(f"{table.db}." if table.db else table.name))


def _read_of(sql: str) -> _Read | None:
    """The tables a SELECT reads; None for anything else and for catalog queries."""
    tree = _parse_select(sql)
    if tree is None:
        return None
    tables = list(tree.find_all(exp.Table))
    if not tables or any(_is_catalog(t) for t in tables):
        return None
    from_ = tree.args.get("from_") or tree.args.get("from")
    first = from_.find(exp.Table) if isinstance(from_, exp.From) else None
    root = _table_name(first) if first is not None else _table_name(tables[0])
    joined = tuple(
        (_table_name(join.this), str(join.side or join.kind or "").upper())
        for join in tree.args.get("joins") or ()
        if isinstance(join.this, exp.Table)
    )
    return _Read(frozenset(_table_name(t) for t in tables), root, joined)


def _is_value(node: exp.Expression) -> bool:
    while isinstance(node, exp.Cast | exp.Paren | exp.Neg):
        node = node.this
    return isinstance(node, exp.Parameter | exp.Placeholder | exp.Literal | exp.Boolean)


def lookup_of(sql: str) -> Lookup | None:
    """The table and key columns of a single-table equality SELECT; None otherwise.

    ``SELECT books.id, ... FROM books WHERE $1::INTEGER = books.author_id`` is
    ``Lookup("books", ("author_id",))``.
    """
    tree = _parse_select(sql)
    if tree is None or tree.args.get("joins") or tree.args.get("group") or tree.args.get("with"):
        return None
    if tree.args.get("distinct") or tree.find(exp.AggFunc, exp.Subquery, exp.Union) is not None:
        return None
    tables = list(tree.find_all(exp.Table))
    if len(tables) != 1 or _is_catalog(tables[0]):
        return None
    where = tree.args.get("where")
    if not isinstance(where, exp.Where):
        return None
    columns: list[str] = []
    for term in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        if not isinstance(term, exp.EQ):
            return None
        left, right = term.this, term.expression
        if isinstance(right, exp.Column) and _is_value(left):
            left, right = right, left
        if not (isinstance(left, exp.Column) and _is_value(right)):
            return None
        columns.append(left.name)
    return Lookup(_table_name(tables[0]), tuple(sorted(columns)))


# -- segments and bursts ----------------------------------------------------------------


def segments(trace: SessionTrace, max_gap_ms: int) -> Iterator[tuple[int, int, str | None]]:
    """(start, end, transaction) of each transaction, and of each request window between."""
    bounds = [*trace.transactions, (len(trace.steps), None)]
    for (start, transaction), (end, _) in pairwise(bounds):
        if transaction is not None:
            yield start, end, transaction
            continue
        window = start
        for step in range(start + 1, end):
            before, now = trace.time_of(step - 1), trace.time_of(step)
            if before is not None and now is not None and now - before > max_gap_ms:
                yield window, step, None
                window = step
        if window < end:
            yield window, end, None


def _bursts(
    trace: SessionTrace,
    start: int,
    end: int,
    transaction: str | None,
    shapes: _Shapes,
    min_count: int,
) -> Iterator[tuple[int, int, Burst]]:
    """(lookup shape, source shape, burst) for each burst of one segment."""
    steps = trace.steps
    positions: dict[int, list[int]] = {}
    for step in range(start, end):
        shape = steps[step]
        if shapes.lookup(shape) is not None:
            positions.setdefault(shape, []).append(step)
    for shape, where in positions.items():
        if len(where) < min_count:
            continue
        i = 0
        while i < len(where):
            first = where[i]
            source_step = _source_step(trace, start, first, shape, shapes)
            if source_step is None:
                i += 1
                continue
            source = steps[source_step]
            ends_run = shapes.lookup(source) is None  # a re-read of the parent rows
            j = i + 1
            while j < len(where) and not (
                ends_run and source in steps[where[j - 1] + 1 : where[j]]
            ):
                j += 1
            run = where[i:j]
            distinct = len({trace.values[s] for s in run})
            if distinct >= min_count:
                at_source, at_last = trace.time_of(source_step), trace.time_of(run[-1])
                span = None if at_source is None or at_last is None else at_last - at_source
                burst = Burst(
                    trace.session, transaction, source_step, run[0], run[-1], len(run),
                    distinct, span, _site(trace, run), trace.site_of(source_step),
                )  # fmt: skip
                yield shape, source, burst
            i = j


def _site(trace: SessionTrace, steps: list[int]) -> str | None:
    """The call site most of ``steps`` ran from (None without call sites)."""
    if trace.sites is None:
        return None
    return _most_common([(trace.site_of(step), 1) for step in steps])


def _most_common(weighted: list[tuple[str | None, int]]) -> str | None:
    """The value with the largest total weight, the first seen among equals; None if none."""
    totals: dict[str, int] = {}
    for value, weight in weighted:
        if value is not None:
            totals[value] = totals.get(value, 0) + weight
    return max(totals, key=lambda value: totals[value]) if totals else None


def _source_step(
    trace: SessionTrace, start: int, first: int, shape: int, shapes: _Shapes
) -> int | None:
    """The nearest step before ``first`` (in its segment) of another shape that reads a
    table other than the lookup's alone, or failing that any table."""
    lookup = shapes.lookup(shape)
    assert lookup is not None
    fallback: int | None = None
    for step in range(first - 1, start - 1, -1):
        other = trace.steps[step]
        if other == shape:
            continue
        read = shapes.read(other)
        if read is None:
            continue
        if read.tables != {lookup.table}:
            return step
        if fallback is None:
            fallback = step  # self-referential (employees.manager_id), same table
    return fallback


# -- naming -----------------------------------------------------------------------------


def _bare(name: str) -> str:
    return name.rpartition(".")[2]


def _same_table(a: str, b: str) -> bool:
    return a == b or (_bare(a) == _bare(b) and ("." not in a or "." not in b))


def _relationships(lookup: Lookup, models: ModelMap) -> list[tuple[MappedClass, RelationshipInfo]]:
    """Relationships whose lazy load is this lookup: target table and remote columns."""
    return [
        (owner, rel)
        for owner in models.classes.values()
        for rel in owner.relationships
        if rel.direction != "MANYTOMANY"
        and rel.secondary is None
        and _same_table(rel.target_table, lookup.table)
        and tuple(sorted(_bare(c) for c in rel.remote_columns)) == lookup.key_columns
    ]


def _name(
    shape: int, source: int, bursts: list[Burst], shapes: _Shapes, models: ModelMap | None
) -> NPlusOne | None:
    lookup = shapes.lookup(shape)
    read = shapes.read(source)
    assert lookup is not None and read is not None
    repeated, source_group = shapes.groups[shape], shapes.groups[source]
    source_lookup = shapes.lookup(source)
    source_tables = {source_lookup.table} if source_lookup is not None else read.tables
    owner_table = source_lookup.table if source_lookup is not None else read.root
    if models is not None:
        matches = _relationships(lookup, models)
        preferred = [
            (o, r)
            for o, r in matches
            if any(_same_table(o.qualified_table, t) for t in source_tables)
        ]
        if preferred or len(matches) == 1:
            owner, rel = (preferred or matches)[0]
            kind: Kind = "many-to-one" if rel.direction == "MANYTOONE" else "collection"
            strategy = _strategy(kind, read, owner, models)
            step = LoaderStep(
                owner.name, rel.attribute, strategy, kind, owner.qualified_table,
                lookup.table, rel.target_class, rel.local_columns, rel.remote_columns,
            )  # fmt: skip
            return NPlusOne(
                source_group, repeated, lookup, kind, owner.name, rel.attribute,
                rel.target_class, rel, models.source, strategy, (step,), source_group, bursts,
            )  # fmt: skip
    # From the SQL alone: ``id`` is a primary key, ``*_id`` a foreign key.
    if lookup.key_columns == ("id",):
        kind = "many-to-one"
        attribute = _singular(_bare(lookup.table))
        local: tuple[str, ...] = (f"{attribute}_id",)
    elif all(c.endswith("_id") for c in lookup.key_columns):
        kind = "collection"
        attribute = _bare(lookup.table)
        local = ("id",)
    else:
        return None
    owner_class = class_name(owner_table)
    strategy = _strategy(kind, read, None, models)
    step = LoaderStep(
        owner_class, attribute, strategy, kind, owner_table, lookup.table,
        class_name(lookup.table), local, lookup.key_columns,
    )  # fmt: skip
    return NPlusOne(
        source_group, repeated, lookup, kind, owner_class, attribute, class_name(lookup.table),
        None, "sql", strategy, (step,), source_group, bursts,
    )  # fmt: skip


def _strategy(
    kind: Kind, read: _Read, owner: MappedClass | None, models: ModelMap | None
) -> Strategy:
    """selectinload for collections; joinedload for many-to-one, unless the source already
    joins a collection (rows multiplied by it would be multiplied again)."""
    if kind == "collection":
        return "selectinload"
    if owner is not None and models is not None:
        root = models.for_table(read.root)
        collections = {r.target_table for r in (root.relationships if root else []) if r.uselist}
        if any(any(_same_table(t, c) for c in collections) for t, _ in read.joined):
            return "selectinload"
        return "joinedload"
    return "selectinload" if any(side == "LEFT" for _, side in read.joined) else "joinedload"


def _chain(findings: dict[tuple[int, int], NPlusOne]) -> None:
    """Hang nested bursts under the burst that loaded their parent rows; chain their path."""
    by_repeated: dict[int, NPlusOne] = {}
    for (shape, _), finding in findings.items():
        by_repeated.setdefault(shape, finding)
    parents: dict[int, NPlusOne] = {}
    for (_, source), finding in findings.items():
        parent = by_repeated.get(source)
        ancestor = parent
        while ancestor is not None and ancestor is not finding:  # no cycles
            ancestor = parents.get(id(ancestor))
        if parent is not None and ancestor is None:
            parents[id(finding)] = parent
            parent.nested.append(finding)

    def resolve(finding: NPlusOne) -> None:
        parent = parents.get(id(finding))
        if parent is not None:
            resolve(parent)
            finding.path = (*parent.path, finding.path[-1])
            finding.root_source = parent.root_source

    for finding in findings.values():
        resolve(finding)


def _subtree(finding: NPlusOne) -> Iterator[NPlusOne]:
    yield finding
    for child in finding.nested:
        yield from _subtree(child)


def _leaves(finding: NPlusOne) -> Iterator[NPlusOne]:
    if not finding.nested:
        yield finding
    for child in finding.nested:
        yield from _leaves(child)


# -- names from table names (no models) ---------------------------------------------------


def _singular(word: str) -> str:
    """English singular of a table name, as inflect would give for the common cases."""
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if lower.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith("ss"):
        return word[:-1]
    return word


def class_name(table: str) -> str:
    """The class sqlacodegen would name for a table: ``order_items`` -> ``OrderItem``."""
    return "".join(part[:1].upper() + part[1:] for part in _singular(_bare(table)).split("_"))
