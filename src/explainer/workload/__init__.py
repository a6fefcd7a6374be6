"""Workload: group captured queries by shape and rank the groups by the time they cost."""

from __future__ import annotations

from collections.abc import Iterable

from explainer.capture.model import CapturedQuery
from explainer.workload.fingerprint import fingerprint, is_utility
from explainer.workload.model import (
    DurationSample,
    QueryGroup,
    SessionTrace,
    Workload,
    heaviest_first,
    value_identity,
)

__all__ = [
    "DurationSample",
    "QueryGroup",
    "SessionTrace",
    "Workload",
    "WorkloadBuilder",
    "build_workload",
    "fingerprint",
    "is_utility",
]


#: At most this many statements are kept in session traces (12 bytes each, plus 8 per
#: transaction: about 100 MB), so that memory stays bounded on a log of any size; the
#: workload's groups, which do not depend on it, still count every statement.
MAX_TRACE_STEPS = 5_000_000


class WorkloadBuilder:
    """Groups queries as they stream in, so a log is read once and never held whole.

    Whether a group is utility is decided once, from its first query: every query of a
    group has the same parse tree shape, so they all answer alike. With ``keep_order``
    each session's sequence of shapes is kept as well, with an identity of each
    statement's values and its time (:class:`SessionTrace`, 12 bytes a statement), for
    detectors that need order, such as N+1 bursts.
    """

    def __init__(self, *, keep_order: bool = False, max_trace_steps: int | None = None) -> None:
        self._groups: dict[str, QueryGroup] = {}
        self._index: dict[str, int] = {}
        self._shapes: list[QueryGroup] = []
        self._traces: dict[str, SessionTrace] | None = {} if keep_order else None
        self._budget = MAX_TRACE_STEPS if max_trace_steps is None else max_trace_steps
        self._untraced = 0
        # Call sites and request ids of the traces, each text once (in-app capture only).
        self._sites: list[str] = []
        self._site_index: dict[str, int] = {}
        self._requests: list[str] = []
        self._request_index: dict[str, int] = {}

    def add(self, query: CapturedQuery) -> None:
        key = fingerprint(query.sql)
        group = self._groups.get(key)
        if group is None:
            group = self._new_group(key, query)
        group.add(query)
        if self._traces is not None and query.session is not None:
            self._trace(query, key)

    def add_all(self, queries: Iterable[CapturedQuery]) -> None:
        """:meth:`add` each query; the loop is :meth:`add` inlined, as it runs per query."""
        groups = self._groups
        traces = self._traces
        for query in queries:
            key = fingerprint(query.sql)
            group = groups.get(key)
            if group is None:
                group = self._new_group(key, query)
            group.add(query)
            if traces is not None and query.session is not None:
                self._trace(query, key)

    def _new_group(self, key: str, query: CapturedQuery) -> QueryGroup:
        group = self._groups[key] = QueryGroup(key, query, is_utility=is_utility(query.sql))
        self._index[key] = len(self._shapes)
        self._shapes.append(group)
        return group

    def _trace(self, query: CapturedQuery, key: str) -> None:
        assert self._traces is not None and query.session is not None
        if self._budget <= 0:
            self._untraced += 1
            return
        self._budget -= 1
        trace = self._traces.get(query.session)
        if trace is None:
            trace = self._traces[query.session] = SessionTrace(
                query.session, site_names=self._sites, request_names=self._requests
            )
        trace.add(self._index[key], query.transaction, value_identity(query), query.timestamp)
        location, request = query.location, query.request
        if location is not None or request is not None:
            trace.mark(
                len(trace.steps) - 1,
                0 if location is None else _intern(location, self._sites, self._site_index),
                0 if request is None else _intern(request, self._requests, self._request_index),
            )

    def build(self) -> Workload:
        ordered = sorted(self._shapes, key=heaviest_first)
        return Workload(
            groups=[g for g in ordered if not g.is_utility],
            utility=[g for g in ordered if g.is_utility],
            shapes=list(self._shapes),
            traces=self._traces or {},
            untraced=self._untraced,
            sites=self._sites,
            requests=self._requests,
        )


def _intern(text: str, names: list[str], index: dict[str, int]) -> int:
    """1 + the position of ``text`` in ``names``, appended when new (0 means none)."""
    number = index.get(text)
    if number is None:
        names.append(text)
        number = index[text] = len(names)
    return number


def build_workload(queries: Iterable[CapturedQuery], *, keep_order: bool = False) -> Workload:
    """Group ``queries`` (consumed once, so a streaming reader works) into a workload."""
    builder = WorkloadBuilder(keep_order=keep_order)
    builder.add_all(queries)
    return builder.build()
