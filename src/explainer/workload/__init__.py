"""Workload: group captured queries by shape and rank the groups by the time they cost."""

from __future__ import annotations

from collections.abc import Iterable

from explainer.capture.model import CapturedQuery
from explainer.workload.fingerprint import fingerprint, is_utility
from explainer.workload.model import DurationSample, QueryGroup, Workload, heaviest_first

__all__ = [
    "DurationSample",
    "QueryGroup",
    "Workload",
    "build_workload",
    "fingerprint",
    "is_utility",
]


def build_workload(queries: Iterable[CapturedQuery]) -> Workload:
    """Group ``queries`` (consumed once, so a streaming reader works) into a workload.

    Whether a group is utility is decided once, from its first query: every query of a
    group has the same parse tree shape, so they all answer alike.
    """
    groups: dict[str, QueryGroup] = {}
    for query in queries:
        key = fingerprint(query.sql)
        group = groups.get(key)
        if group is None:
            group = groups[key] = QueryGroup(key, query, is_utility=is_utility(query.sql))
        group.add(query)
    ordered = sorted(groups.values(), key=heaviest_first)
    return Workload(
        groups=[g for g in ordered if not g.is_utility],
        utility=[g for g in ordered if g.is_utility],
    )
