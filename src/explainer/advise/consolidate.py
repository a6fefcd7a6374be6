"""Workload consolidation: from per-query suggestions to the set of indexes worth creating.

Each statement is advised on its own (``indexes.py``), so two queries can each get an index
where one would serve both, and a workload can get more indexes than a table should carry.
This module turns the verified suggestions of a whole workload into one set:

1. **Prefix merge.** A btree candidate whose keys lead another's on the same table (same
   predicate, its INCLUDE columns covered) is folded into the longer one when the longer
   one is proven for the shorter one's queries too: ``(customer_id)`` and
   ``(customer_id, created_at)`` become ``(customer_id, created_at)`` serving both
   queries. Proof means evidence: the longer index's own evidence for that query, or a
   new verification through the same functions that verified it (``reverify``), judged by
   the same rule (``verify.helps``). Without that proof both are kept and the report says
   why (``kept_apart``). A longer index only ever replaces a shorter one; the two are
   never combined into a third candidate nobody verified.

   **INCLUDE variants** (:func:`merge_includes`) come first: candidates with the same
   keys, predicate and method that differ only in their INCLUDE columns (a covering index
   per query: ``lineitem (l_shipdate) INCLUDE (...)`` three times for TPC-H Q6, Q14 and
   Q15, 232 MB each at scale 1) are replaced by one index with the union of their INCLUDE
   columns, when that one is verified (``reverify``, the same functions and rule) for
   every query of every variant. A wider covering index is a few bytes more per row, not
   a second copy of the keys. Unverified, the variants stay as they are.
2. **Savings.** What an index saves is, per query it serves, calls x saving per call. The
   saving per call is the measured ``before_ms - after_ms``; when only planner costs are
   known (HypoPG, a write that was not executed) the share of cost saved is applied to the
   query's measured time; with no time at all the whole choice is in cost units
   (``unit``). Unverified suggestions (``--verify none``) count the query's whole cost, an
   upper bound: nothing better is known.
3. **Choice under limits** (``--max-indexes``, ``--max-size``): a greedy choice, twice.
   Once by saving per byte, once by saving alone; each time an index's saving is its
   *marginal* saving (per query, what it saves beyond the best index already chosen on
   the same table for that query, so two indexes serving one query are not counted
   twice). The run that saves more in all wins. Saving-per-byte greedy is the classic
   approximation of this knapsack; comparing it with saving-alone greedy covers its
   known weak case (one large index worth more than several small ones), which is also
   exactly what ``--max-indexes 1`` asks for. Without limits every suggestion is kept.
4. **Size** of each index: HypoPG's ``hypopg_relation_size`` when HypoPG is installed,
   the built index's size when verification recorded one, else an estimate (rows x
   (key widths from ``pg_stats.avg_width`` + 8-byte index tuple header, which holds the
   heap tid, + 4-byte line pointer) / 90% btree fill factor, in 8 kB pages: see
   :func:`estimate_index_bytes`). Deduplication (PostgreSQL 13+) can make a btree on a
   low-cardinality column smaller than that: the estimate errs on the large side.
5. **Write overhead**: index bytes written per table byte written, weighted by the
   table's inserts, updates and deletes since its statistics began
   (``pg_stat_user_tables``). An insert writes a heap row and an index tuple; an update
   writes a new heap row and, unless it is a HOT update, an index tuple; a delete writes
   no new tuple in either (VACUUM removes the index entries later). HOT updates stay HOT
   only while the index covers no updated column: an index on a column the workload's
   UPDATEs set turns them into non-HOT updates that write every index of the table. That
   case gets ``hot_update_warning`` when the column is *frequently* updated: the
   workload runs an UPDATE that sets it, and updates are at least
   :data:`FREQUENT_UPDATE_SHARE` of the table's row writes (or the counters show no
   writes at all, and the workload alone says so).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import pglast
from pglast import ast
from pglast.visitors import Visitor

from explainer.advise.model import Evidence, IndexCandidate, IndexKey, IndexSuggestion
from explainer.advise.verify import as_fast, figures, helps
from explainer.db.catalog import TableWrites

if TYPE_CHECKING:
    from explainer.advise.regressions import Regression

#: Updates at least this share of a table's row writes make its updated columns
#: "frequently updated" for the HOT warning.
FREQUENT_UPDATE_SHARE = 0.1

#: Bytes of a PostgreSQL page, and what a btree leaf page holds after its 24-byte header
#: and 16-byte special space.
PAGE_BYTES = 8192
_LEAF_USABLE = PAGE_BYTES - 24 - 16
#: CREATE INDEX fills btree leaf pages to 90% (the default fillfactor).
BTREE_FILL = 0.9
#: Index tuple header (6-byte heap tid + 2 bytes of flags and size) and line pointer.
INDEX_TUPLE_OVERHEAD = 8 + 4
#: Width assumed for a key without statistics (an expression, a never analyzed column).
DEFAULT_KEY_WIDTH = 16

SizeSource = Literal["hypopg", "built", "estimate"]
SavingUnit = Literal["ms", "cost"]

#: Re-verifies a candidate for query ids (at once: by rollback the index is built once for
#: all of them): per query, new evidence or why there is none.
Reverify = Callable[[Sequence[str], IndexCandidate], "Mapping[str, Evidence | str]"]


# --- prefix merge ------------------------------------------------------------------------


def leads(short: IndexCandidate, long: IndexCandidate) -> bool:
    """Whether ``long`` serves every lookup ``short`` serves: both btree on the same table
    with the same predicate, ``short``'s keys lead ``long``'s (same direction, operator
    class and NULLS order), and ``short``'s INCLUDE columns are in ``long``."""
    if short == long or (short.schema, short.table) != (long.schema, long.table):
        return False
    if short.using != "btree" or long.using != "btree" or short.where != long.where:
        return False
    if len(short.keys) > len(long.keys) or long.keys[: len(short.keys)] != short.keys:
        return False
    available = {k.text for k in long.keys if not k.expression} | set(long.include)
    return set(short.include) <= available


@dataclass(frozen=True, slots=True)
class Merge:
    """``absorbed`` is not suggested: ``into`` serves its queries, with evidence for each."""

    absorbed: IndexCandidate
    into: IndexCandidate
    queries: tuple[str, ...]
    #: Queries whose evidence for ``into`` was measured anew for the merge.
    reverified: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeptApart:
    """``short`` leads ``long`` but both are suggested: why one does not serve both."""

    short: IndexCandidate
    long: IndexCandidate
    reason: str


def merge_prefixes(
    suggestions: Iterable[IndexSuggestion], reverify: Reverify, min_gain: float
) -> tuple[list[IndexSuggestion], list[Merge], list[KeptApart]]:
    """Fold each suggestion into the longest suggestion it leads that is proven for all of
    its queries; the others stay, each with the reason."""
    remaining = list(suggestions)
    merges: list[Merge] = []
    kept_apart: list[KeptApart] = []
    # Shortest first, so that (a) and (a, b) both go into (a, b, c) when it serves them.
    for short in sorted(remaining, key=lambda s: len(s.candidate.keys)):
        targets = sorted(
            (s for s in remaining if leads(short.candidate, s.candidate)),
            key=lambda s: (-len(s.candidate.keys), s.candidate.name),
        )
        reasons: list[tuple[IndexSuggestion, str]] = []
        for target in targets:
            found, why = _evidence_for(short, target, reverify, min_gain)
            if found is None:
                reasons.append((target, why))
                continue
            reverified = tuple(q for q in found if q not in target.evidence)
            target.evidence.update(found)
            for rule in short.rules:
                if rule not in target.rules:
                    target.rules.append(rule)
            merges.append(
                Merge(short.candidate, target.candidate, tuple(short.evidence), reverified)
            )
            remaining.remove(short)
            break
        else:
            kept_apart += [KeptApart(short.candidate, t.candidate, why) for t, why in reasons]
    return remaining, merges, kept_apart


def _variant_key(c: IndexCandidate) -> tuple[object, ...]:
    return (c.schema, c.table, c.keys, c.where, c.using)


def merge_includes(
    suggestions: Iterable[IndexSuggestion], reverify: Reverify, min_gain: float
) -> tuple[list[IndexSuggestion], list[Merge], list[KeptApart]]:
    """Replace btree suggestions that differ only in their INCLUDE columns by one with the
    union of them, when it is proven (``reverify``, judged by ``verify.helps``) for every
    query of every variant; otherwise they stay apart, with the reason."""
    items = list(suggestions)
    groups: dict[tuple[object, ...], list[IndexSuggestion]] = {}
    for s in items:
        if s.candidate.using == "btree":
            groups.setdefault(_variant_key(s.candidate), []).append(s)
    merges: list[Merge] = []
    kept_apart: list[KeptApart] = []
    for variants in groups.values():
        if len(variants) < 2 or not any(v.candidate.include for v in variants):
            continue
        include = tuple(dict.fromkeys(c for v in variants for c in v.candidate.include))
        union = replace(variants[0].candidate, include=include)
        if any(v.candidate == union for v in variants):
            continue  # one of them already covers the others: the prefix merge folds them
        merged = IndexSuggestion(union, {})
        why = ""
        fetched = reverify([q for v in variants for q in v.evidence], union)
        for variant in variants:
            found, why = _evidence_for(variant, merged, reverify, min_gain, fetched)
            if found is None:
                break
            merged.evidence.update(found)
        else:
            for variant in variants:
                for rule in variant.rules:
                    if rule not in merged.rules:
                        merged.rules.append(rule)
                queries = tuple(variant.evidence)
                merges.append(Merge(variant.candidate, union, queries, queries))
                items.remove(variant)
            items.append(merged)
            continue
        kept_apart += [KeptApart(v.candidate, union, why) for v in variants]
    return items, merges, kept_apart


def _evidence_for(
    short: IndexSuggestion,
    target: IndexSuggestion,
    reverify: Reverify,
    min_gain: float,
    fetched: Mapping[str, Evidence | str] | None = None,
) -> tuple[dict[str, Evidence] | None, str]:
    """Evidence that ``target`` helps every query of ``short``, or why there is none
    (``fetched``: what ``reverify`` already gave for ``target``)."""
    known = dict(fetched or {})
    missing = [q for q in short.evidence if q not in target.evidence and q not in known]
    if missing:
        known.update(reverify(missing, target.candidate))
    found: dict[str, Evidence] = {}
    for query_id in short.evidence:
        evidence = target.evidence.get(query_id)
        if evidence is None:
            result = known[query_id]
            if isinstance(result, str):
                return (
                    None,
                    f"{target.candidate.name} could not be verified for {query_id}: {result}",
                )
            evidence = result
        if evidence.method == "estimate":
            return None, f"{target.candidate.name} is not verified for {query_id}"
        if not helps(evidence, min_gain) and not _as_fast_as_own(
            evidence, short.evidence.get(query_id)
        ):
            if not evidence.index_used:
                return (
                    None,
                    f"{target.candidate.name} is not used by the planner for query {query_id}",
                )
            return (
                None,
                f"{target.candidate.name} saves too little for query {query_id} "
                f"({figures(evidence)}; its own index: {figures(short.evidence[query_id])})",
            )
        found[query_id] = evidence
    return found, ""


def _as_fast_as_own(evidence: Evidence, own: Evidence | None) -> bool:
    """The replacing index serves the query as fast as the one it replaces, within a run's
    noise (``verify.as_fast``), though short of ``--min-gain`` by that noise: the question
    is one index or two, and the query keeps what it had (TPC-H at scale 1, on a busy
    machine: one slow re-run of Q15 with the union left Q6's, Q14's and Q15's ``lineitem
    (l_shipdate) INCLUDE (...)`` apart, three indexes of ~280 MB where one serves all)."""
    return (
        own is not None
        and evidence.index_used
        and evidence.after_ms is not None
        and own.after_ms is not None
        and as_fast(evidence.after_ms, own.after_ms)
    )


# --- widening for the queries that use an index ------------------------------------------

#: A chosen index is widened to cover the other queries that use it up to this many
#: INCLUDE columns in all (a per-query covering candidate has at most 3: see candidates.py;
#: one index serving several queries earns a few more bytes per row).
WIDEN_MAX_INCLUDE = 5
#: ... and only when, measured, those queries run in all at least this share faster with
#: the wider index than with the chosen one (less is within a run's noise).
WIDEN_MIN_GAIN = 0.1
#: No query that uses it may run slower than this with the wider index than with the
#: chosen one.
WIDEN_MAX_SLOWDOWN = 1.1


@dataclass(frozen=True, slots=True)
class Widening:
    """``narrow`` is replaced by ``wide``: the same keys, with the columns that other
    queries using ``narrow`` read from the table as INCLUDE (index-only scans for them)."""

    narrow: IndexCandidate
    wide: IndexCandidate
    #: The queries it was widened for, with their time with ``narrow`` (the workload
    #: check's run with the whole set) and with ``wide`` (measured alone).
    users: tuple[tuple[str, float, float], ...]


#: The columns a query reads from a candidate's table, or None when no index can cover
#: it there (``*``, a write, a table whose visibility map makes index-only scans rare).
ColumnsRead = Callable[[str, IndexCandidate], "frozenset[str] | None"]


def widen_for_users(
    chosen: Iterable[IndexSuggestion],
    users: Mapping[IndexCandidate, Iterable[tuple[str, float]]],
    columns: ColumnsRead,
    reverify: Reverify,
    min_gain: float,
) -> tuple[list[IndexSuggestion], list[Widening], list[str]]:
    """Widen each chosen btree index by the columns of the queries that use it beyond the
    ones it was verified for (``users``: query and its time with the chosen set, from the
    workload check), as many of them as :data:`WIDEN_MAX_INCLUDE` allows, the heaviest
    first. An index chosen for one query is often picked by others the planner
    sends through it, which then visit the heap for every row it finds (TPC-H: Q20's
    ``lineitem (l_partkey, l_suppkey)`` carries Q8's and Q9's joins). The wider index is
    kept only with evidence: it still helps each of its own queries by the usual rule
    (``verify.helps``), and its users, measured with it, run at least
    :data:`WIDEN_MIN_GAIN` faster in all than with the chosen index, none more than
    :data:`WIDEN_MAX_SLOWDOWN` slower. Otherwise the chosen index stays, and the notes say
    why."""
    result: list[IndexSuggestion] = []
    widenings: list[Widening] = []
    notes: list[str] = []
    for suggestion in chosen:
        narrow = suggestion.candidate
        others = [(q, ms) for q, ms in users.get(narrow, ()) if q not in suggestion.evidence]
        wide, measured, why = _wider(narrow, others, columns)
        if wide is None:
            if why:
                notes.append(f"{narrow.name} not widened: {why}")
            result.append(suggestion)
            continue
        widened = IndexSuggestion(wide, {}, list(suggestion.rules), suggestion.partitions)
        fetched = reverify([*suggestion.evidence, *(q for q, _ in measured)], wide)
        found, why = _evidence_for(suggestion, widened, reverify, min_gain, fetched)
        figures: list[tuple[str, float, float]] = []
        if found is not None:
            widened.evidence.update(found)
            for query_id, narrow_ms in measured:
                evidence = fetched[query_id]
                if isinstance(evidence, str) or evidence.after_ms is None:
                    reason = evidence if isinstance(evidence, str) else "no measured time"
                    why = f"{wide.name} could not be measured for {query_id}: {reason}"
                    break
                figures.append((query_id, narrow_ms, evidence.after_ms))
                if (
                    evidence.index_used
                    and evidence.before_ms is not None
                    and evidence.after_ms < evidence.before_ms
                ):
                    widened.evidence[query_id] = evidence
            else:
                why = _widening_refused(wide, figures)
        if why:
            notes.append(f"{narrow.name} not widened: {why}")
            result.append(suggestion)
            continue
        widenings.append(Widening(narrow, wide, tuple(figures)))
        result.append(widened)
    return result, widenings, notes


def _wider(
    narrow: IndexCandidate, measured: list[tuple[str, float]], columns: ColumnsRead
) -> tuple[IndexCandidate | None, list[tuple[str, float]], str]:
    """The candidate widened for as many of ``measured``'s queries as fit, the heaviest
    first (their time with the chosen set), and those queries; or None and why (nothing
    to say when there is nothing to widen)."""
    if narrow.using != "btree" or not measured:
        return None, [], ""
    keyed = {k.text for k in narrow.keys if not k.expression}
    extra: set[str] = set()
    covered: list[tuple[str, float]] = []
    left: list[str] = []
    for query_id, narrow_ms in sorted(measured, key=lambda m: -m[1]):
        read = columns(query_id, narrow)
        if read is None:
            left.append(f"{query_id} (no index can cover it there)")
            continue
        wanted = extra | (read - keyed - set(narrow.include))
        if len(narrow.include) + len(wanted) > WIDEN_MAX_INCLUDE:
            left.append(f"{query_id} (more than {WIDEN_MAX_INCLUDE} INCLUDE columns in all)")
            continue
        extra = wanted
        covered.append((query_id, narrow_ms))
    if not extra:
        why = f"its other users cannot be covered: {', '.join(left)}" if left else ""
        return None, [], why
    return replace(narrow, include=(*narrow.include, *sorted(extra))), covered, ""


def _widening_refused(wide: IndexCandidate, figures: list[tuple[str, float, float]]) -> str:
    """Why the measured figures do not earn ``wide`` its place ("" when they do)."""
    narrow_total = sum(n for _, n, _ in figures)
    wide_total = sum(w for _, _, w in figures)
    for query_id, narrow_ms, wide_ms in figures:
        if wide_ms > narrow_ms * WIDEN_MAX_SLOWDOWN:
            return f"{wide.name} runs {query_id} slower ({narrow_ms:,.1f} -> {wide_ms:,.1f} ms)"
    if wide_total > narrow_total * (1 - WIDEN_MIN_GAIN):
        return (
            f"{wide.name} saves less than {WIDEN_MIN_GAIN:.0%} on the queries that use the "
            f"narrower index ({narrow_total:,.1f} -> {wide_total:,.1f} ms)"
        )
    return ""


# --- savings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuerySaving:
    """What an index saves one query: per call, and over all its calls."""

    query: str
    calls: int
    #: Saving per call in ``unit`` (ms measured or derived from the cost share; cost units).
    per_call: float
    unit: SavingUnit

    @property
    def total(self) -> float:
        return self.calls * self.per_call


def saving_ms(evidence: Evidence, execution_ms: float | None) -> float | None:
    """Milliseconds saved per call: measured, else the cost share saved applied to the
    query's measured time; None when no time is known."""
    if evidence.before_ms is not None and evidence.after_ms is not None:
        return evidence.before_ms - evidence.after_ms
    if execution_ms is None or evidence.before_cost <= 0:
        return None
    if evidence.after_cost is None:
        return execution_ms if evidence.method == "estimate" else None
    return execution_ms * (1 - evidence.after_cost / evidence.before_cost)


def saving_cost(evidence: Evidence) -> float:
    """Planner cost saved per call (the whole cost for an unverified suggestion)."""
    if evidence.after_cost is None:
        return evidence.before_cost
    return evidence.before_cost - evidence.after_cost


def query_savings(
    suggestions: Iterable[IndexSuggestion],
    calls: Mapping[str, int],
    execution_ms: Mapping[str, float | None],
) -> tuple[dict[IndexCandidate, list[QuerySaving]], SavingUnit]:
    """Savings per suggestion and query, all in one unit: ms when every saving has a time,
    else planner cost (mixing the two would rank by accident)."""
    items = list(suggestions)
    in_ms: dict[IndexCandidate, list[tuple[str, float | None]]] = {
        s.candidate: [(q, saving_ms(e, execution_ms.get(q))) for q, e in s.evidence.items()]
        for s in items
    }
    unit: SavingUnit = (
        "ms" if all(v is not None for rows in in_ms.values() for _, v in rows) else "cost"
    )
    result: dict[IndexCandidate, list[QuerySaving]] = {}
    for s in items:
        rows: list[QuerySaving] = []
        for query_id, evidence in s.evidence.items():
            value = dict(in_ms[s.candidate])[query_id] if unit == "ms" else saving_cost(evidence)
            rows.append(QuerySaving(query_id, calls.get(query_id, 1), value or 0.0, unit))
        result[s.candidate] = sorted(rows, key=lambda r: -r.total)
    return result, unit


# --- choice under limits -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Option:
    """One index to choose or not: its table, its size, and its saving per query."""

    key: IndexCandidate
    table: tuple[str, str]
    size_bytes: int
    savings: Mapping[str, float]


def _marginal(option: Option, best: Mapping[tuple[tuple[str, str], str], float]) -> float:
    return sum(max(0.0, s - best.get((option.table, q), 0.0)) for q, s in option.savings.items())


def _greedy(
    options: list[Option],
    max_indexes: int | None,
    max_size: int | None,
    per_byte: bool,
) -> tuple[list[Option], float]:
    chosen: list[Option] = []
    best: dict[tuple[tuple[str, str], str], float] = {}
    size = 0
    total = 0.0
    left = list(options)
    while left and (max_indexes is None or len(chosen) < max_indexes):
        fitting = [o for o in left if max_size is None or size + o.size_bytes <= max_size]
        if not fitting:
            break

        def score(o: Option) -> tuple[float, float, str]:
            gain = _marginal(o, best)
            value = gain / max(o.size_bytes, 1) if per_byte else gain
            return (value, gain, o.key.name)

        pick = max(fitting, key=score)
        gain = _marginal(pick, best)
        if gain <= 0 and chosen:
            break
        chosen.append(pick)
        left.remove(pick)
        size += pick.size_bytes
        total += gain
        for q, s in pick.savings.items():
            best[(pick.table, q)] = max(best.get((pick.table, q), 0.0), s)
    return chosen, total


def choose(
    options: list[Option], max_indexes: int | None = None, max_size: int | None = None
) -> list[Option]:
    """The indexes to suggest: all of them without limits; under limits, the better of the
    greedy choice by saving per byte and the greedy choice by saving (module docstring)."""
    if max_indexes is None and max_size is None:
        return list(options)
    by_byte, saved_by_byte = _greedy(options, max_indexes, max_size, per_byte=True)
    by_gain, saved_by_gain = _greedy(options, max_indexes, max_size, per_byte=False)
    return by_gain if saved_by_gain > saved_by_byte else by_byte


# --- size and writes ---------------------------------------------------------------------


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _key_width(key: IndexKey, widths: Mapping[str, int]) -> float:
    if not key.expression:
        return widths.get(key.text, DEFAULT_KEY_WIDTH)
    # An expression is about as wide as the columns it reads (lower(email) ~ email),
    # capped: (payload ->> 'kind') is far narrower than the whole document.
    mentioned = [widths[w] for w in set(_WORD.findall(key.text)) if w in widths]
    return min(sum(mentioned), 64) if mentioned else DEFAULT_KEY_WIDTH


def _maxalign(n: float) -> float:
    return math.ceil(n / 8) * 8


def index_tuple_bytes(candidate: IndexCandidate, widths: Mapping[str, int]) -> float:
    """Bytes one row takes in the index: header, MAXALIGNed key and INCLUDE data, line
    pointer."""
    data = sum(_key_width(k, widths) for k in candidate.keys)
    data += sum(widths.get(c, DEFAULT_KEY_WIDTH) for c in candidate.include)
    return INDEX_TUPLE_OVERHEAD + _maxalign(data)


def estimate_index_bytes(candidate: IndexCandidate, rows: float, widths: Mapping[str, int]) -> int:
    """An index's size without building it: leaf pages filled to the fill factor, plus
    one inner page per ~300 leaves and the metapage."""
    per_page = _LEAF_USABLE * (BTREE_FILL if candidate.using == "btree" else 1.0)
    leaves = math.ceil(max(rows, 0.0) * index_tuple_bytes(candidate, widths) / per_page)
    pages = 1 + max(leaves, 1) + math.ceil(leaves / 300)
    return pages * PAGE_BYTES


@dataclass(frozen=True, slots=True)
class WriteOverhead:
    """What an index adds to its table's writes, from the table's counters."""

    index_tuple_bytes: float
    table_row_bytes: float
    inserts: int
    updates: int
    hot_updates: int
    deletes: int
    #: Index bytes written for each table byte written, over the counted writes (for a
    #: table with no counted writes: per inserted row).
    index_bytes_per_table_byte: float | None
    #: Index bytes the counted writes would have written to this index.
    index_bytes_written: float


def write_overhead(
    candidate: IndexCandidate, writes: TableWrites, breaks_hot: bool
) -> WriteOverhead:
    """Index bytes per table byte: inserts and non-HOT updates write an index tuple each;
    every update writes a heap row; HOT updates stop being HOT when ``breaks_hot``."""
    tuple_bytes = index_tuple_bytes(candidate, writes.column_widths)
    row_bytes = writes.row_bytes
    index_updates = writes.updates if breaks_hot else writes.updates - writes.hot_updates
    index_written = tuple_bytes * (writes.inserts + index_updates)
    table_written = row_bytes * (writes.inserts + writes.updates)
    if table_written > 0:
        ratio: float | None = index_written / table_written
    else:
        ratio = tuple_bytes / row_bytes if row_bytes > 0 else None
    return WriteOverhead(
        index_tuple_bytes=tuple_bytes,
        table_row_bytes=row_bytes,
        inserts=writes.inserts,
        updates=writes.updates,
        hot_updates=writes.hot_updates,
        deletes=writes.deletes,
        index_bytes_per_table_byte=ratio,
        index_bytes_written=index_written,
    )


def index_columns(candidate: IndexCandidate, table_columns: Iterable[str]) -> set[str]:
    """The table columns an index reads: keys, expressions' columns, INCLUDE, predicate.
    A change to any of them makes an update non-HOT."""
    known = set(table_columns)
    texts = [k.text for k in candidate.keys] + list(candidate.include)
    if candidate.where:
        texts.append(candidate.where)
    return {w for text in texts for w in _WORD.findall(text) if w in known}


def hot_update_warning(
    candidate: IndexCandidate,
    writes: TableWrites | None,
    updated: Mapping[str, int],
    table_columns: Iterable[str],
) -> tuple[str | None, tuple[str, ...]]:
    """The warning (and the columns) when the index covers a frequently updated column.

    ``updated`` maps a column of the index's table to the calls of the workload's UPDATEs
    that set it.
    """
    columns = tuple(sorted(c for c in index_columns(candidate, table_columns) if updated.get(c)))
    if not columns:
        return None, ()
    table = candidate.qualified_table
    calls = max(updated[c] for c in columns)
    said = f"{', '.join(columns)} {'is' if len(columns) == 1 else 'are'} set by UPDATEs"
    said += f" the workload ran {calls:,} time{'s' if calls != 1 else ''}"
    if writes is None:
        return f"{said}: this index would make those updates of {table} non-HOT", columns
    row_writes = writes.inserts + writes.updates + writes.deletes
    if row_writes and writes.updates < FREQUENT_UPDATE_SHARE * row_writes:
        return None, ()
    if writes.updates:
        hot = writes.hot_updates / writes.updates
        said += (
            f"; {writes.updates:,} of {table}'s {row_writes:,} row writes are updates, "
            f"{hot:.0%} of them HOT"
        )
    return (
        f"{said}: with this index an update of {', '.join(columns)} can no longer be HOT "
        f"and writes a new entry in every index of {table}",
        columns,
    )


# --- the result --------------------------------------------------------------------------


@dataclass(slots=True)
class IndexFacts:
    """What the workload-wide view adds to a suggestion."""

    size_bytes: int
    size_source: SizeSource
    #: Queries served, heaviest saving first.
    serves: list[QuerySaving]
    write: WriteOverhead | None = None
    hot_update_warning: str | None = None
    hot_update_columns: tuple[str, ...] = ()
    #: Shorter candidates this index replaces (prefix merge).
    replaces: list[IndexCandidate] = field(default_factory=list)

    @property
    def total_saving(self) -> float:
        return sum(s.total for s in self.serves)


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A verified suggestion the limits left out."""

    candidate: IndexCandidate
    #: ``regression``: it made another query of the workload slower (advise/regressions.py);
    #: ``partner``: it paid off only together with indexes that were left out.
    reason: Literal["max_indexes", "max_size", "regression", "partner"]
    size_bytes: int
    total_saving: float
    #: For ``partner``: the left-out indexes it paid off with.
    partners: tuple[IndexCandidate, ...] = ()


@dataclass(slots=True)
class Consolidation:
    """The workload-wide choice: what was merged, chosen and left out, and why."""

    unit: SavingUnit = "ms"
    max_indexes: int | None = None
    max_size_bytes: int | None = None
    facts: dict[IndexCandidate, IndexFacts] = field(default_factory=dict)
    merges: list[Merge] = field(default_factory=list)
    kept_apart: list[KeptApart] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    #: Queries the chosen set made slower, with the index blamed and the decision.
    regressions: list[Regression] = field(default_factory=list)
    #: Queries whose plans the workload check compared / found changed and measured.
    regression_checked: list[str] = field(default_factory=list)
    regression_changed: list[str] = field(default_factory=list)
    #: What the workload check could not do (size guard, a failure), and why a chosen
    #: index was not widened for the queries that use it.
    regression_notes: list[str] = field(default_factory=list)
    #: Chosen indexes replaced by a wider one covering the other queries that use them.
    widenings: list[Widening] = field(default_factory=list)

    def total_size_bytes(self, chosen: Iterable[IndexSuggestion]) -> int:
        return sum(self.facts[s.candidate].size_bytes for s in chosen if s.candidate in self.facts)


def without_partners(
    chosen: list[IndexSuggestion], left: Collection[IndexCandidate], consolidation: Consolidation
) -> tuple[list[IndexSuggestion], bool]:
    """Take back what ``chosen`` was credited with together with an index now ``left``
    out (advise/indexes.py verifies a join's indexes together when one pays off only once
    the other exists): the query whose evidence came from a run with a left-out partner is
    no longer served by it, and an index left with no query is left out too (``partner``),
    which can orphan another in turn. TPC-H Q22 at scale 1: ``customer (substring(c_phone
    ...), c_acctbal)`` saved 176 -> 30 ms only with ``orders (o_custkey)`` in place, and the
    workload check dropped that one for slowing Q5 and Q7. Returns the suggestions kept
    and whether any lost a query (their savings then need weighing again)."""
    gone = set(left)
    changed = False
    while True:
        kept: list[IndexSuggestion] = []
        orphaned = False
        for suggestion in chosen:
            lost = [q for q, partners in suggestion.partners.items() if gone & set(partners)]
            if lost:
                changed = True
                partners = tuple(
                    dict.fromkeys(p for q in lost for p in suggestion.partners[q] if p in gone)
                )
                for query_id in lost:
                    del suggestion.evidence[query_id]
                    del suggestion.partners[query_id]
                if not suggestion.evidence:
                    facts = consolidation.facts.get(suggestion.candidate)
                    consolidation.left_out.append(
                        LeftOut(
                            suggestion.candidate,
                            "partner",
                            facts.size_bytes if facts else 0,
                            facts.total_saving if facts else 0.0,
                            partners,
                        )
                    )
                    gone.add(suggestion.candidate)
                    orphaned = True
                    continue
            kept.append(suggestion)
        chosen = kept
        if not orphaned:
            return chosen, changed


def apply_limits(
    suggestions: list[IndexSuggestion],
    consolidation: Consolidation,
) -> list[IndexSuggestion]:
    """Choose under the consolidation's limits; record what was left out and why; return
    the chosen suggestions, the greatest total saving first."""
    facts = consolidation.facts
    options = [
        Option(
            key=s.candidate,
            table=(s.candidate.schema, s.candidate.table),
            size_bytes=facts[s.candidate].size_bytes,
            savings={q.query: q.total for q in facts[s.candidate].serves},
        )
        for s in suggestions
    ]
    picked = {
        o.key for o in choose(options, consolidation.max_indexes, consolidation.max_size_bytes)
    }
    chosen = [s for s in suggestions if s.candidate in picked]
    full = consolidation.max_indexes is not None and len(chosen) >= consolidation.max_indexes
    for s in suggestions:
        if s.candidate not in picked:
            f = facts[s.candidate]
            reason: Literal["max_indexes", "max_size"] = "max_indexes" if full else "max_size"
            consolidation.left_out.append(
                LeftOut(s.candidate, reason, f.size_bytes, f.total_saving)
            )
    return sorted(chosen, key=lambda s: (-facts[s.candidate].total_saving, s.candidate.name))


# --- what the workload updates -----------------------------------------------------------


def updated_columns(statements: Iterable[tuple[str, int]]) -> dict[str, dict[str, int]]:
    """Columns set by the workload's UPDATEs (and INSERT ... ON CONFLICT DO UPDATE), by
    table name (unqualified: a plan's tables are matched the same way), with the calls of
    the statements that set them. ``statements`` are (SQL, calls); what pglast cannot
    parse is skipped."""
    found: dict[str, dict[str, int]] = {}

    def add(
        relation: ast.RangeVar | None, targets: Iterable[ast.ResTarget] | None, calls: int
    ) -> None:
        if relation is None or not relation.relname:
            return
        columns = found.setdefault(str(relation.relname), {})
        for target in targets or ():
            if target.name:
                columns[target.name] = columns.get(target.name, 0) + calls

    class _Updates(Visitor):
        calls = 0

        def visit_UpdateStmt(self, ancestors: object, node: ast.UpdateStmt) -> None:
            add(node.relation, node.targetList, self.calls)

        def visit_InsertStmt(self, ancestors: object, node: ast.InsertStmt) -> None:
            clause = node.onConflictClause
            if clause is not None and clause.targetList:
                add(node.relation, clause.targetList, self.calls)

    visitor = _Updates()
    for sql, calls in statements:
        if "update" not in sql.lower():
            continue
        try:
            tree = pglast.parse_sql(sql)
        except pglast.parser.ParseError:
            continue
        visitor.calls = calls
        visitor(tree)
    return {table: columns for table, columns in found.items() if columns}
