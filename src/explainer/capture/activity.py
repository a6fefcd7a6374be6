"""Connection activity seen in an input: server sessions and the application's pool.

Pooling advice needs how connections come and go, not the statements they ran: how many
sessions a log opened and how long they lived (``log_connections``/``log_disconnections``),
and what the application's pool did (the in-app capture's pool records). Both are folded
into one :class:`ConnectionActivity` as the input streams past, in memory that does not
grow with the log: counters, a bounded sample of session lengths, and the set of sessions
open right now (at most the server's ``max_connections`` at any moment).

A large log is read in parts by several processes (``--jobs``); each part has its own
activity and :meth:`ConnectionActivity.merge` adds them up. Counts and sums merge exactly;
the peak of concurrent sessions is the largest of the parts' peaks (a session opened in one
part and closed in the next is counted in neither), so after a parallel read it is a lower
bound.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

SAMPLE_SIZE = 4096
"""Session lengths kept for the median and p95; beyond it every other one is dropped and
only every ``stride``-th later one is kept (systematic sampling: deterministic, and two
samples of one stride merge without bias)."""

MAX_OPEN = 20_000
"""Sessions tracked as open at once. A server allows far fewer; beyond it the log lost its
``disconnection`` lines (or reuses pids across servers) and the set is cleared rather than
allowed to grow."""

POOL_EVENTS = ("connect", "checkout", "checkin", "close", "invalidate", "timeout")
"""The in-app capture's pool record events (docs: the JSONL contract)."""

WAIT_THRESHOLD_MS = 1.0
"""A checkout that waited at least this long waited for the pool, not for a lock on its
queue: counted as a wait."""


@dataclass(slots=True)
class ConnectionActivity:
    """What an input showed of connections; every field is additive (see :meth:`merge`)."""

    # -- the server log (log_connections / log_disconnections) -------------------------
    received: int = 0
    """``connection received`` lines: connection attempts, including failed ones."""
    opened: int = 0
    """``connection authorized`` lines (PostgreSQL 18: ``connection ready`` when
    authorization is not logged): sessions that started."""
    closed: int = 0
    """``disconnection`` lines."""
    session_seconds: float = 0.0
    """Total ``session time`` of the closed sessions."""
    session_max: float = 0.0
    session_sample: list[float] = field(default_factory=list)
    """Session lengths in seconds, a systematic sample of one in :attr:`sample_stride`."""
    sample_stride: int = 1
    sample_skip: int = 0
    """Lengths still to pass over before the next one is kept."""
    first_open: str | None = None
    """Timestamp (as logged) of the first session opened, for the opening rate."""
    last_open: str | None = None
    peak_sessions: int = 0
    """Most sessions open at once among those the log saw start."""
    open_now: set[str] = field(default_factory=set)
    """Sessions (pids) seen start and not yet end."""
    by_user: dict[str, int] = field(default_factory=dict)
    """Sessions opened per ``user@database`` (bounded: at most 100 keys, then ``other``)."""

    # -- the in-app capture (SQLAlchemy pool events) -----------------------------------
    pool_events: dict[str, int] = field(default_factory=dict)
    """Event -> count (connect, checkout, checkin, close, invalidate, timeout)."""
    waits: int = 0
    """Checkouts that waited at least :data:`WAIT_THRESHOLD_MS` for a connection."""
    wait_ms_total: float = 0.0
    wait_ms_max: float = 0.0
    peak_checked_out: int = 0
    """Most connections one pool had checked out at once."""
    peak_overflow: int = 0
    pool: dict[str, object] | None = None
    """The pool configuration of the last capture header that had one."""
    pool_configs: int = 0
    """Capture headers seen: roughly the application processes, each with its own pool."""
    null_pools: int = 0
    """Headers whose pool was ``null`` (NullPool: a new connection per checkout)."""
    first_pool_event: str | None = None
    last_pool_event: str | None = None

    # -- server log ---------------------------------------------------------------------

    def connection_received(self) -> None:
        self.received += 1

    def connection_opened(
        self, session: str, timestamp: str | None, user: str | None, database: str | None
    ) -> None:
        """A session started (authorized); ``session`` is its pid or session id."""
        self.opened += 1
        if timestamp is not None:
            if self.first_open is None or timestamp < self.first_open:
                self.first_open = timestamp
            if self.last_open is None or timestamp > self.last_open:
                self.last_open = timestamp
        key = f"{user or '?'}@{database or '?'}"
        by_user = self.by_user
        if key in by_user or len(by_user) < 100:
            by_user[key] = by_user.get(key, 0) + 1
        else:
            by_user["other"] = by_user.get("other", 0) + 1
        if not session:
            return
        open_now = self.open_now
        if len(open_now) >= MAX_OPEN:
            open_now.clear()
        open_now.add(session)
        if len(open_now) > self.peak_sessions:
            self.peak_sessions = len(open_now)

    def connection_closed(self, session: str, seconds: float | None) -> None:
        """A session ended after ``seconds`` (``None`` when the line could not be read)."""
        self.closed += 1
        self.open_now.discard(session)
        if seconds is None:
            return
        self.session_seconds += seconds
        if seconds > self.session_max:
            self.session_max = seconds
        if self.sample_skip > 0:
            self.sample_skip -= 1
            return
        self.session_sample.append(seconds)
        self.sample_skip = self.sample_stride - 1
        if len(self.session_sample) >= SAMPLE_SIZE:
            self._thin()

    def _thin(self) -> None:
        """Keep every other sampled length and double the stride."""
        del self.session_sample[1::2]
        self.sample_stride *= 2
        self.sample_skip = self.sample_stride - 1

    # -- in-app capture (the JSONL reader calls these) ------------------------------------

    def pool_event(
        self,
        event: str,
        timestamp: str | None,
        *,
        conn: str | None,
        wait_ms: float | None,
        checked_out: int | None,
        overflow: int | None,
        request: str | None,
    ) -> None:
        """One pool record of the in-app capture (``conn`` and ``request`` are accepted for
        the contract's sake; counting does not need them)."""
        del conn, request
        events = self.pool_events
        events[event] = events.get(event, 0) + 1
        if timestamp is not None:
            if self.first_pool_event is None or timestamp < self.first_pool_event:
                self.first_pool_event = timestamp
            if self.last_pool_event is None or timestamp > self.last_pool_event:
                self.last_pool_event = timestamp
        if wait_ms is not None and wait_ms >= WAIT_THRESHOLD_MS:
            self.waits += 1
            self.wait_ms_total += wait_ms
            if wait_ms > self.wait_ms_max:
                self.wait_ms_max = wait_ms
        if checked_out is not None and checked_out > self.peak_checked_out:
            self.peak_checked_out = checked_out
        if overflow is not None and overflow > self.peak_overflow:
            self.peak_overflow = overflow

    def pool_config(self, pool: dict[str, object] | None, timestamp: str | None) -> None:
        """A capture header: one application process and its pool (``None``: NullPool or
        unknown)."""
        del timestamp
        self.pool_configs += 1
        if pool is None:
            self.null_pools += 1
        else:
            self.pool = dict(pool)

    # -- reading it -----------------------------------------------------------------------

    def any(self) -> bool:
        """Whether the input showed any connection activity at all."""
        return bool(
            self.received or self.opened or self.closed or self.pool_events or self.pool_configs
        )

    def pool_count(self, event: str) -> int:
        return self.pool_events.get(event, 0)

    def session_quantile(self, fraction: float) -> float | None:
        """The ``fraction`` quantile of session lengths in seconds (nearest rank)."""
        sample = sorted(self.session_sample)
        if not sample:
            return None
        rank = max(1, math.ceil(fraction * len(sample)))
        return sample[rank - 1]

    def open_span_seconds(self) -> float | None:
        """Seconds between the first and the last session opened, when both parse."""
        first, last = parse_timestamp(self.first_open), parse_timestamp(self.last_open)
        if first is None or last is None:
            return None
        return max(0.0, (last - first).total_seconds())

    # -- parallel ingest --------------------------------------------------------------------

    def merge(self, other: ConnectionActivity) -> None:
        """Add ``other`` (another input, or another part of this one)."""
        self.received += other.received
        self.opened += other.opened
        self.closed += other.closed
        self.session_seconds += other.session_seconds
        self.session_max = max(self.session_max, other.session_max)
        self._merge_sample(other)
        self.first_open = _earliest(self.first_open, other.first_open)
        self.last_open = _latest(self.last_open, other.last_open)
        self.peak_sessions = max(self.peak_sessions, other.peak_sessions)
        self.open_now |= other.open_now
        if len(self.open_now) > MAX_OPEN:
            self.open_now.clear()
        for key, count in other.by_user.items():
            if key in self.by_user or len(self.by_user) < 100:
                self.by_user[key] = self.by_user.get(key, 0) + count
            else:
                self.by_user["other"] = self.by_user.get("other", 0) + count
        for event, count in other.pool_events.items():
            self.pool_events[event] = self.pool_events.get(event, 0) + count
        self.waits += other.waits
        self.wait_ms_total += other.wait_ms_total
        self.wait_ms_max = max(self.wait_ms_max, other.wait_ms_max)
        self.peak_checked_out = max(self.peak_checked_out, other.peak_checked_out)
        self.peak_overflow = max(self.peak_overflow, other.peak_overflow)
        if other.pool is not None:
            self.pool = dict(other.pool)
        self.pool_configs += other.pool_configs
        self.null_pools += other.null_pools
        self.first_pool_event = _earliest(self.first_pool_event, other.first_pool_event)
        self.last_pool_event = _latest(self.last_pool_event, other.last_pool_event)

    def _merge_sample(self, other: ConnectionActivity) -> None:
        """Bring both samples to one stride, then concatenate (and thin if too long)."""
        theirs = list(other.session_sample)
        stride = other.sample_stride
        while stride < self.sample_stride:
            del theirs[1::2]
            stride *= 2
        while self.sample_stride < stride:
            del self.session_sample[1::2]
            self.sample_stride *= 2
        self.session_sample.extend(theirs)
        while len(self.session_sample) >= SAMPLE_SIZE:
            self._thin()


def _earliest(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


def _latest(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def parse_timestamp(text: str | None) -> datetime | None:
    """A log timestamp (``2026-12-06 18:00:00.123 UTC``, ISO 8601, epoch seconds) as a
    naive datetime; the zone is dropped since one input's timestamps share it."""
    if not text:
        return None
    head = text.strip()
    try:
        return datetime.fromtimestamp(float(head))  # %n: Unix epoch with milliseconds
    except ValueError:
        pass
    words = head.split(" ", 2)
    joined = "T".join(words[:2]) if len(words) >= 2 and ":" in words[1] else words[0]
    for cut in ("+", "Z"):
        position = joined.find(cut, 10)
        if position > 0:
            joined = joined[:position]
    try:
        return datetime.fromisoformat(joined).replace(tzinfo=None)
    except ValueError:
        return None


SESSION_TIME_PREFIX = "disconnection: session time: "


def session_seconds(message: str) -> float | None:
    """The ``session time`` of a ``disconnection`` message (``H:MM:SS.mmm``) in seconds."""
    if not message.startswith(SESSION_TIME_PREFIX):
        return None
    text = message[len(SESSION_TIME_PREFIX) :].split(" ", 1)[0]
    parts = text.split(":")
    if len(parts) != 3:
        return None
    try:
        return int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
    except ValueError:
        return None


_USER = re.compile(r"\buser=(\S+)")
_DATABASE = re.compile(r"\bdatabase=(\S+)")


def record_connection(
    activity: ConnectionActivity,
    session: str,
    message: str,
    timestamp: str | None,
    user: str | None,
    database: str | None,
) -> None:
    """Fold one server message starting ``connection `` or ``disconnection:`` into
    ``activity`` (the log readers' assembler calls this; other messages are ignored).

    A session counts as opened at ``connection authorized``; PostgreSQL 18 logs
    ``connection ready`` after it when ``log_connections`` includes ``setup_durations``,
    which opens the session only when its authorization was not logged.
    """
    if message.startswith("disconnection:"):
        activity.connection_closed(session, session_seconds(message))
    elif message.startswith("connection received:"):
        activity.connection_received()
    elif message.startswith("connection authorized:") or (
        message.startswith("connection ready:") and session not in activity.open_now
    ):
        if user is None:
            found = _USER.search(message)
            user = found.group(1) if found else None
        if database is None:
            found = _DATABASE.search(message)
            database = found.group(1) if found else None
        activity.connection_opened(session, timestamp, user, database)
