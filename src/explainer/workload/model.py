"""A workload: captured queries grouped by shape, with the numbers that rank them."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from explainer.capture.model import CapturedQuery

RESERVOIR_SIZE = 1000
MAX_SAMPLES = 5


@dataclass(slots=True)
class DurationSample:
    """A bounded, uniform sample of durations, for percentiles of any number of calls.

    Reservoir sampling (Algorithm R): exact while there are at most ``capacity`` values,
    a fair sample after. The generator is seeded and only made once the reservoir is
    full, so small groups cost no random state and results are reproducible.
    """

    capacity: int = RESERVOIR_SIZE
    seen: int = 0
    values: list[float] = field(default_factory=list)
    rng: random.Random | None = field(default=None, repr=False, compare=False)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.capacity:
            self.values.append(value)
            return
        if self.rng is None:
            self.rng = random.Random(0)
        slot = self.rng.randrange(self.seen)
        if slot < self.capacity:
            self.values[slot] = value

    def percentile(self, pct: float) -> float | None:
        """Nearest-rank percentile: always a value that was actually observed."""
        if not self.values:
            return None
        ordered = sorted(self.values)
        rank = max(1, math.ceil(pct / 100 * len(ordered)))
        return ordered[rank - 1]


@dataclass(slots=True)
class QueryGroup:
    """All executions of one query shape.

    ``example`` is the slowest execution (the first when none has a duration): its real
    values are the ones most likely to reproduce the slow plan under EXPLAIN ANALYZE.
    ``samples`` keeps up to five executions with distinct text or parameters, to show
    the spread of values. Durations are in ms; the timed figures (``total_ms``,
    ``mean_ms``...) cover only the calls whose source logged a duration, and are ``None``
    when none did.
    """

    fingerprint: str
    example: CapturedQuery
    is_utility: bool = False
    calls: int = 0
    timed_calls: int = 0
    total_ms: float | None = None
    max_ms: float | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    sessions: set[str] = field(default_factory=set)
    samples: list[CapturedQuery] = field(default_factory=list)
    durations: DurationSample = field(default_factory=DurationSample, repr=False)

    @property
    def mean_ms(self) -> float | None:
        if self.total_ms is None or not self.timed_calls:
            return None
        return self.total_ms / self.timed_calls

    @property
    def p95_ms(self) -> float | None:
        return self.durations.percentile(95)

    def add(self, query: CapturedQuery) -> None:
        """Count one execution; the group's first query is added like any other."""
        self.calls += 1
        self._add_duration(query)
        self._add_timestamp(query.timestamp)
        if query.session is not None:
            self.sessions.add(query.session)
        if len(self.samples) < MAX_SAMPLES and not any(
            s.sql == query.sql and s.parameters == query.parameters for s in self.samples
        ):
            self.samples.append(query)

    def _add_duration(self, query: CapturedQuery) -> None:
        ms = query.duration_ms
        if ms is None:
            return
        self.timed_calls += 1
        self.total_ms = ms if self.total_ms is None else self.total_ms + ms
        self.max_ms = ms if self.max_ms is None else max(self.max_ms, ms)
        self.durations.add(ms)
        if self.example.duration_ms is None or ms > self.example.duration_ms:
            self.example = query

    def _add_timestamp(self, timestamp: str | None) -> None:
        """Timestamps stay text as logged; their ISO-like form sorts chronologically."""
        if timestamp is None:
            return
        if self.first_seen is None or timestamp < self.first_seen:
            self.first_seen = timestamp
        if self.last_seen is None or timestamp > self.last_seen:
            self.last_seen = timestamp


def heaviest_first(group: QueryGroup) -> tuple[bool, float, int]:
    """Sort key: most total time first, untimed groups after timed ones, then most calls."""
    return (group.total_ms is None, -(group.total_ms or 0.0), -group.calls)


@dataclass
class Workload:
    """The groups worth analysing, heaviest first, and the utility ones set aside."""

    groups: list[QueryGroup] = field(default_factory=list)
    utility: list[QueryGroup] = field(default_factory=list)

    def top(self, n: int) -> list[QueryGroup]:
        """The ``n`` heaviest non-utility groups."""
        return self.groups[: max(n, 0)]

    @property
    def calls(self) -> int:
        """Every captured execution, utility included."""
        return sum(g.calls for g in self.groups) + sum(g.calls for g in self.utility)
