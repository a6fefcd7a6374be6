"""A workload: captured queries grouped by shape, with the numbers that rank them."""

from __future__ import annotations

import math
import random
import re
from array import array
from dataclasses import dataclass, field
from datetime import date

from explainer.capture.model import CapturedQuery

RESERVOIR_SIZE = 1000
MAX_SAMPLES = 5
#: Distinct sessions remembered per group: enough to tell "one session" from "many",
#: without memory that grows with a long log's backends.
MAX_SESSIONS = 1000
#: Distinct call sites remembered per group (in-app capture): a shape is run from a
#: handful of lines; the bound keeps a generated-code outlier from growing memory.
MAX_LOCATIONS = 8


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
        slot = int(self.rng.random() * self.seen)  # randrange is several times slower
        if slot < self.capacity:
            self.values[slot] = value

    def percentile(self, pct: float) -> float | None:
        """Nearest-rank percentile: always a value that was actually observed."""
        if not self.values:
            return None
        ordered = sorted(self.values)
        rank = max(1, math.ceil(pct / 100 * len(ordered)))
        return ordered[rank - 1]

    def merge(self, other: DurationSample) -> None:
        """Add the durations ``other`` sampled (from later in the input) to this sample.

        Exact, and the same as adding them one by one, while both together hold at most
        ``capacity`` values. Beyond, a uniform sample of the union: how many values come
        from each side is drawn as sampling without replacement from the two populations
        would (each reservoir is a uniform sample of its own), then that many from each.
        """
        total = self.seen + other.seen
        if total <= self.capacity:
            self.values.extend(other.values)
            self.seen = total
            return
        if self.rng is None:
            self.rng = random.Random(0)
        rng = self.rng
        left, right = self.seen, other.seen
        from_self = 0
        for _ in range(min(self.capacity, total)):
            if rng.randrange(left + right) < left:
                from_self += 1
                left -= 1
            else:
                right -= 1
        from_other = min(self.capacity, total) - from_self
        self.values = rng.sample(self.values, from_self) + rng.sample(other.values, from_other)
        self.seen = total


@dataclass(slots=True)
class QueryGroup:
    """All executions of one query shape.

    ``example`` is chosen by :func:`example_rank`: an execution with real values first,
    then the slowest, whose values most likely reproduce the slow plan under EXPLAIN
    ANALYZE.
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
    """Distinct sessions that ran the shape, at most :data:`MAX_SESSIONS` of them."""
    samples: list[CapturedQuery] = field(default_factory=list)
    durations: DurationSample = field(default_factory=DurationSample, repr=False)
    locations: dict[str, int] | None = None
    """Call sites (``path:line``) that ran the shape -> executions, at most
    :data:`MAX_LOCATIONS` of them (the first seen); None when no record had one, so
    groups read from logs carry nothing."""
    _example_rank: tuple[bool, float] | None = field(default=None, repr=False, compare=False)

    @property
    def sessions_capped(self) -> bool:
        """More sessions ran the shape than :attr:`sessions` holds."""
        return len(self.sessions) >= MAX_SESSIONS

    @property
    def location(self) -> str | None:
        """The call site that ran the shape most often (the first seen among equals)."""
        ranked = self.ranked_locations()
        return ranked[0][0] if ranked else None

    def ranked_locations(self) -> list[tuple[str, int]]:
        """(call site, executions), most executions first, then in the order first seen."""
        locations = self.locations
        if not locations:
            return []
        return sorted(locations.items(), key=lambda item: -item[1])

    def add_location(self, location: str, calls: int = 1) -> None:
        """Count ``calls`` executions from ``location``, within :data:`MAX_LOCATIONS`."""
        locations = self.locations
        if locations is None:
            locations = self.locations = {}
        count = locations.get(location)
        if count is not None:
            locations[location] = count + calls
        elif len(locations) < MAX_LOCATIONS:
            locations[location] = calls

    @property
    def mean_ms(self) -> float | None:
        if self.total_ms is None or not self.timed_calls:
            return None
        return self.total_ms / self.timed_calls

    @property
    def p95_ms(self) -> float | None:
        return self.durations.percentile(95)

    def add(self, query: CapturedQuery) -> None:
        """Count one record (one execution, or ``query.calls`` for an aggregate row).

        This runs once per statement of a log, so it is written for speed: the example's
        rank is kept rather than recomputed, a query's own rank (a regex search) is
        computed only when it could beat the example, and :meth:`DurationSample.add`,
        :meth:`_add_timestamp` and :meth:`_keep_sample` are inlined (a method call costs
        as much as their work); tests/test_workload.py checks that they agree.
        """
        calls = query.calls
        self.calls += calls
        ms = query.duration_ms
        per_call = 0.0
        if ms is not None:
            # An aggregate row (pg_stat_statements) adds its total and its mean per call.
            per_call = ms if calls == 1 else ms / max(calls, 1)
            self.timed_calls += calls
            total = self.total_ms
            self.total_ms = ms if total is None else total + ms
            most = self.max_ms
            if most is None or per_call > most:
                self.max_ms = per_call
            # DurationSample.add
            durations = self.durations
            durations.seen = seen = durations.seen + 1
            values = durations.values
            capacity = durations.capacity
            if len(values) < capacity:
                values.append(per_call)
            else:
                rng = durations.rng
                if rng is None:
                    rng = durations.rng = random.Random(0)
                slot = int(rng.random() * seen)
                if slot < capacity:
                    values[slot] = per_call
        timestamp = query.timestamp
        if timestamp is not None:
            first = self.first_seen
            if first is None or timestamp < first:
                self.first_seen = timestamp
            last = self.last_seen
            if last is None or timestamp > last:
                self.last_seen = timestamp
        session = query.session
        if session is not None:
            sessions = self.sessions
            if len(sessions) < MAX_SESSIONS:
                sessions.add(session)
        location = query.location
        if location is not None:
            self.add_location(location, calls)
        current = self._example_rank
        if current is None:
            current = self._example_rank = example_rank(self.example)
        if per_call > current[1] or not current[0]:
            rank = example_rank(query)
            if rank > current:
                self.example, self._example_rank = query, rank
        samples = self.samples
        if len(samples) < MAX_SAMPLES:  # _keep_sample
            sql, parameters = query.sql, query.parameters
            for sample in samples:
                if sample.sql == sql and sample.parameters == parameters:
                    break
            else:
                samples.append(query)

    def _keep_sample(self, query: CapturedQuery) -> None:
        """Keep up to :data:`MAX_SAMPLES` executions with distinct text or values."""
        if len(self.samples) < MAX_SAMPLES and not any(
            s.sql == query.sql and s.parameters == query.parameters for s in self.samples
        ):
            self.samples.append(query)

    def _add_timestamp(self, timestamp: str | None) -> None:
        """Timestamps stay text as logged; their ISO-like form sorts chronologically."""
        if timestamp is None:
            return
        if self.first_seen is None or timestamp < self.first_seen:
            self.first_seen = timestamp
        if self.last_seen is None or timestamp > self.last_seen:
            self.last_seen = timestamp

    def merge(self, other: QueryGroup) -> None:
        """Count ``other``'s executions in this group: the same shape, read from a later
        part of the input (``explainer.workload.parallel`` reads a log in pieces).

        The result is what adding ``other``'s queries one by one after this group's would
        give, except the duration sample once it is full (see
        :meth:`DurationSample.merge`) and the last bits of ``total_ms`` (summed in
        another order).
        """
        self.calls += other.calls
        self.timed_calls += other.timed_calls
        if other.total_ms is not None:
            self.total_ms = (self.total_ms or 0.0) + other.total_ms
        if other.max_ms is not None:
            self.max_ms = other.max_ms if self.max_ms is None else max(self.max_ms, other.max_ms)
        for timestamp in (other.first_seen, other.last_seen):
            self._add_timestamp(timestamp)
        for session in other.sessions:
            if len(self.sessions) >= MAX_SESSIONS:
                break
            self.sessions.add(session)
        if example_rank(other.example) > example_rank(self.example):
            self.example, self._example_rank = other.example, None
        for query in other.samples:
            self._keep_sample(query)
        self.durations.merge(other.durations)
        for location, count in (other.locations or {}).items():
            self.add_location(location, count)


_PLACEHOLDER = re.compile(r"\$\d")


def example_rank(query: CapturedQuery) -> tuple[bool, float]:
    """Which execution best represents a group under EXPLAIN ANALYZE.

    First one that can run with real values (literals in the text, or logged parameters
    that were not truncated) over a ``$n`` shape without values (pg_stat_statements);
    then the slowest per call, whose values most likely reproduce the slow plan.
    """
    has_values = query.replayable and (bool(query.parameters) or not _PLACEHOLDER.search(query.sql))
    per_call = (query.duration_ms or 0.0) / max(query.calls, 1)
    return has_values, per_call


def heaviest_first(group: QueryGroup) -> tuple[bool, float, int]:
    """Sort key: most total time first, untimed groups after timed ones, then most calls."""
    return (group.total_ms is None, -(group.total_ms or 0.0), -group.calls)


#: :attr:`SessionTrace.at` of a statement whose time is unknown.
NO_TIME = 0xFFFFFFFF

_TIMESTAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,3}))?")
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_DAYS: dict[str, int] = {}
#: ms since 1970 of a ``YYYY-MM-DD HH:MM`` / ``YYYY-MM-DD HH:MM:SS`` prefix already read
#: (see :func:`timestamp_ms`).
_MINUTES: dict[str, int] = {}
_SECONDS: dict[str, int] = {}


def timestamp_ms(text: str | None) -> int | None:
    """Milliseconds since 1970 of an ISO-like timestamp as logged (server logs, SQLAlchemy's
    ``asctime``), its time zone ignored: every statement of one session comes from one
    source, so only differences matter. None when the text holds no such timestamp (syslog
    dates without a year).

    It runs once per statement, so the common ``YYYY-MM-DD HH:MM:SS[.fff]`` form is read by
    slicing, with the minute's value cached; anything else goes through the regex.
    """
    if text is None:
        return None
    second = _SECONDS.get(text[:19])
    if second is not None:
        if len(text) >= 23 and text[19] in ".," and text[20:23].isdigit():
            return second + int(text[20:23])
        return second + _millis(text)
    if len(text) >= 19 and text[16] == ":" and text[13] == ":":
        minute = _MINUTES.get(text[:16])
        seconds = text[17:19]
        if minute is not None and seconds.isdigit():
            if len(_SECONDS) >= 100_000:
                _SECONDS.clear()  # a log moves on: old seconds are not read again
            second = _SECONDS[text[:19]] = minute + int(seconds) * 1000
            return second + _millis(text)
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    year, month, day, hour, minute_text, second_text, fraction = match.groups()
    days = _DAYS.get(text[:10])
    if days is None:
        try:
            days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY
        except ValueError:
            return None
        if len(_DAYS) < 1000:  # a log spans few days; the cap keeps odd inputs bounded
            _DAYS[text[:10]] = days
    base = ((days * 24 + int(hour)) * 60 + int(minute_text)) * 60_000
    if len(_MINUTES) < 100_000 and match.start(5) == 14 and text[16:17] == ":":
        _MINUTES[text[:16]] = base  # about 70 days of minutes: bounded
    millis = int(fraction.ljust(3, "0")) if fraction else 0
    return base + int(second_text) * 1000 + millis


def _millis(text: str) -> int:
    """The milliseconds of ``...HH:MM:SS.fff``: up to three digits after the dot."""
    if len(text) <= 20 or text[19] not in ".,":
        return 0
    digits = text[20:23]
    end = 0
    while end < len(digits) and digits[end].isdigit():
        end += 1
    return int(digits[:end].ljust(3, "0")) if end else 0


def value_identity(query: CapturedQuery) -> int:
    """32 bits that tell two executions of one shape with different values apart.

    The values are the logged parameters, or the literals in the text when the driver
    inlined them (psycopg2, client-side binding): two executions of one shape have equal
    text and parameters exactly when they ran with the same values. Python's ``hash`` is
    salted per process, so identities compare within one workload only; two different
    value sets collide with probability 2**-32.
    """
    return hash((query.sql, query.parameters)) & 0xFFFFFFFF


@dataclass(slots=True)
class SessionTrace:
    """The order in which one session ran its statements: what the N+1 detector reads.

    Per statement, 12 bytes in three parallel arrays: ``steps`` holds an index into
    :attr:`Workload.shapes`; ``values`` the statement's :func:`value_identity` (an N+1 burst
    runs one shape with different values, a repeated query the same ones); ``at`` when it
    was logged, in ms after :attr:`start_ms` (:data:`NO_TIME` when unknown; saturated
    after 49 days), to measure bursts and to cut request windows outside transactions.
    Per transaction, 8 bytes: where it starts (``tx_starts``) and its number in the session
    (``tx_numbers``, 1, 2, ...; -1 for statements outside any transaction). The driver's
    own transaction ids are not kept: one string per transaction would cost more than
    the rest of the trace. With the in-app capture, per statement 4 more bytes each for
    its call site and its request (:meth:`site_of`, :meth:`request_of`), interned: the
    arrays are only made when a statement has one.
    """

    session: str
    steps: array[int] = field(default_factory=lambda: array("I"))
    values: array[int] = field(default_factory=lambda: array("I"))
    at: array[int] = field(default_factory=lambda: array("I"))
    tx_starts: array[int] = field(default_factory=lambda: array("I"))
    tx_numbers: array[int] = field(default_factory=lambda: array("i"))
    start_ms: int | None = None
    """The first known timestamp of the session, in ms since 1970 (:func:`timestamp_ms`)."""
    sites: array[int] | None = None
    """Per step, 1 + an index into :attr:`site_names` (0: unknown), when a source gave call
    sites (the in-app capture); None otherwise, so logs without them cost nothing. It may
    be shorter than :attr:`steps`: the steps after its end have no call site."""
    requests: array[int] | None = None
    """Per step, 1 + an index into :attr:`request_names` (0: none), as :attr:`sites`."""
    site_names: list[str] = field(default_factory=list, repr=False)
    """The workload's interned call sites (``path:line``), shared by all its traces."""
    request_names: list[str] = field(default_factory=list, repr=False)
    """The workload's interned request ids, shared by all its traces."""
    _open: str | None = None
    _count: int = 0

    def add(
        self, shape: int, transaction: str | None, value: int = 0, timestamp: str | None = None
    ) -> None:
        if not self.tx_starts or transaction != self._open:
            self._open = transaction
            if transaction is None:
                number = -1
            else:
                self._count += 1
                number = self._count
            self.tx_starts.append(len(self.steps))
            self.tx_numbers.append(number)
        self.steps.append(shape)
        self.values.append(value)
        ms = timestamp_ms(timestamp)
        if ms is None:
            self.at.append(NO_TIME)
            return
        start = self.start_ms
        if start is None:
            start = self.start_ms = ms
        self.at.append(min(max(ms - start, 0), NO_TIME - 1))

    @property
    def transactions(self) -> list[tuple[int, str | None]]:
        """(first step, label) of each run of statements in one transaction, or outside
        any (label None); the label is ``<session>#<n>``, the session's n-th transaction."""
        return [
            (start, None if number < 0 else f"{self.session}#{number}")
            for start, number in zip(self.tx_starts, self.tx_numbers, strict=True)
        ]

    def time_of(self, step: int) -> int | None:
        """When step ``step`` was logged, in ms after :attr:`start_ms`; None if unknown."""
        at = self.at[step]
        return None if at == NO_TIME else at

    def mark(self, step: int, site: int, request: int) -> None:
        """Record step ``step``'s call site and request (1 + their interned index; 0 for
        none). Called only for statements that have one, so the arrays exist only for
        sources that give them; the steps before are filled with 0."""
        if site:
            self.sites = _set_at(self.sites, step, site)
        if request:
            self.requests = _set_at(self.requests, step, request)

    def site_of(self, step: int) -> str | None:
        """The application line (``path:line``) that ran step ``step``, when captured."""
        sites = self.sites
        if sites is None or step >= len(sites):
            return None
        index = sites[step]
        return self.site_names[index - 1] if index else None

    def request_of(self, step: int) -> str | None:
        """The request id step ``step`` ran under, when the application set one."""
        requests = self.requests
        if requests is None or step >= len(requests):
            return None
        index = requests[step]
        return self.request_names[index - 1] if index else None


def _set_at(values: array[int] | None, step: int, value: int) -> array[int]:
    """``values[step] = value``, growing (with zeros) or creating the array as needed."""
    if values is None:
        values = array("I")
    missing = step + 1 - len(values)
    if missing > 0:
        values.frombytes(bytes(missing * values.itemsize))
    values[step] = value
    return values


@dataclass
class Workload:
    """The groups worth analysing, heaviest first, and the utility ones set aside."""

    groups: list[QueryGroup] = field(default_factory=list)
    utility: list[QueryGroup] = field(default_factory=list)
    #: Every group, utility included, in the order first seen: what traces index.
    shapes: list[QueryGroup] = field(default_factory=list)
    #: Per session, the order of its statements, their values' identities and times
    #: (only when built with ``keep_order``).
    traces: dict[str, SessionTrace] = field(default_factory=dict)
    #: How many statements the traces left out because the trace budget was spent
    #: (:data:`explainer.workload.MAX_TRACE_STEPS`): order-based detectors saw the others.
    untraced: int = 0
    #: The call sites (``path:line``) and request ids the traces index (in-app capture
    #: only; empty for logs): each distinct text is held once, whatever the steps.
    sites: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def top(self, n: int) -> list[QueryGroup]:
        """The ``n`` heaviest non-utility groups."""
        return self.groups[: max(n, 0)]

    @property
    def calls(self) -> int:
        """Every captured execution, utility included."""
        return sum(g.calls for g in self.groups) + sum(g.calls for g in self.utility)

    def merge(self, *others: Workload) -> None:
        """Add the groups of ``others`` (workloads of later parts of the same input, in
        order): groups of one fingerprint are merged (:meth:`QueryGroup.merge`), and the
        result is ranked again, heaviest first. ``others`` may share groups with the
        result afterwards; they are not meant to be used again. Session traces are not
        merged: parallel ingest does not keep the order of statements."""
        groups = {group.fingerprint: group for group in (*self.groups, *self.utility)}
        for other in others:
            for group in (*other.groups, *other.utility):
                mine = groups.get(group.fingerprint)
                if mine is None:
                    groups[group.fingerprint] = group
                else:
                    mine.merge(group)
        ordered = sorted(groups.values(), key=heaviest_first)
        self.groups = [g for g in ordered if not g.is_utility]
        self.utility = [g for g in ordered if g.is_utility]
