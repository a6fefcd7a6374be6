"""Connection pooling advice: findings about how the application uses connections, and one
``create_engine`` recommendation derived from what was observed.

Pure functions of what the inputs showed (:class:`~explainer.capture.activity.ConnectionActivity`:
``log_connections``/``log_disconnections`` lines, the in-app capture's pool events) and, when
connected, of the server's snapshot (:class:`~explainer.db.activity.ServerActivity`). Every
threshold is a named constant below and is documented in docs/rules.md ("Connection
pooling"); the recommendation's arithmetic is :func:`engine_settings`, a table of inputs to
outputs in the tests.

The recommendation is one set of settings, because a process has one pool per database:
its size follows the concurrency the application actually reached (connections checked
out at once, or sessions open at once in the server log), with headroom, and its ceiling
follows the server's limit shared among the processes that each hold such a pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from explainer.capture.activity import ConnectionActivity
from explainer.db.activity import IdleTransaction, ServerActivity
from explainer.rules import Severity

# -- thresholds (docs/rules.md, "Connection pooling") -------------------------------------

CHURN_MIN_SESSIONS = 20
"""Sessions (or pool connects) the input must show before churn is called."""
CHURN_MEDIAN_SECONDS = 1.0
"""Median session length below which sessions are per-request rather than pooled."""
CHURN_CONNECTS_PER_CHECKOUT = 0.5
"""In-app: new connections per checkout above which the pool is not reusing them (a
healthy pool connects a handful of times for thousands of checkouts)."""
CHURN_HIGH_RATE = 10.0
"""Sessions opened per second (over at least :data:`CHURN_HIGH_MIN` sessions) that make
churn high severity."""
CHURN_HIGH_MIN = 100
POOL_WAITS_MIN = 3
"""Checkouts that waited (>= 1 ms) before ``pool-waits`` is raised..."""
SLOW_WAIT_MS = 100.0
"""...when one waited at least this long, or the pool ran full."""
IDLE_TX_MIN_SECONDS = 5.0
"""A session idle in transaction for less is between two statements of a request."""
IDLE_TX_HIGH_SECONDS = 60.0
"""Idle in transaction this long (or blocking another session) is high severity."""
NEAR_LIMIT = 0.8
"""Share of the usable connections in use (snapshot or the log's peak) that is near the
limit; :data:`AT_LIMIT` of it is high severity."""
AT_LIMIT = 0.95

# -- the recommendation's arithmetic ------------------------------------------------------

HEADROOM = 1.25
"""pool_size over the observed peak, so an ordinary busier minute does not overflow."""
SATURATED_HEADROOM = 1.5
"""Over the pool's capacity when checkouts waited at full capacity: demand was above it by
an amount the capture cannot see."""
MIN_POOL_SIZE = 2
OVERFLOW_SHARE = 0.5
"""max_overflow as a share of pool_size: bursts, closed again when returned."""
MIN_OVERFLOW = 2
SERVER_SHARE = 0.8
"""Share of the server's usable connections one application's pools may take together:
the rest is for migrations, consoles, monitoring, replicas and a rolling deploy's second
set of processes."""
POOL_TIMEOUT_S = 10
"""Seconds a request may wait for a connection: fail below the usual 30-60 s proxy and
gateway timeouts, so the user gets the application's error and the logs show the pool."""
DEFAULT_RECYCLE_S = 1800
"""Without a server ``idle_session_timeout``: under the idle cutoffs of common firewalls,
NATs and load balancers (often 3600 s)."""
RECYCLE_SHARE = 0.9
"""Of the server's ``idle_session_timeout``, when it has one."""
SQLALCHEMY_DEFAULT_POOL_SIZE = 5
IDLE_TX_TIMEOUT_S = 60
"""The recommended ``idle_in_transaction_session_timeout``: far above any request that
merely pauses between statements, far below a transaction forgotten open."""


@dataclass(frozen=True, slots=True)
class PoolingRule:
    """One rule as ``explainer rules`` lists it."""

    id: str
    title: str
    trigger: str


POOLING_RULES: tuple[PoolingRule, ...] = (
    PoolingRule(
        "connection-churn",
        "A new connection per request",
        f"at least {CHURN_MIN_SESSIONS} sessions with a median length under "
        f"{CHURN_MEDIAN_SECONDS:g} s (server log), or pool connects above "
        f"{CHURN_CONNECTS_PER_CHECKOUT:g} per checkout and beyond what the pools hold, or "
        "NullPool (in-app capture)",
    ),
    PoolingRule(
        "pool-exhausted",
        "Pool exhausted",
        "checkouts failed after waiting pool_timeout (in-app capture: timeout events)",
    ),
    PoolingRule(
        "pool-waits",
        "Requests wait for a connection",
        f"at least {POOL_WAITS_MIN} checkouts waited, one for {SLOW_WAIT_MS:g} ms or more, "
        "or with the pool full (in-app capture)",
    ),
    PoolingRule(
        "idle-in-transaction",
        "Idle in transaction",
        f"a session idle in transaction for {IDLE_TX_MIN_SECONDS:g} s or more "
        "(pg_stat_activity), with the locks it holds and the sessions it blocks",
    ),
    PoolingRule(
        "connections-near-limit",
        "Connections near the server's limit",
        f"client connections (now, or the log's peak) at {NEAR_LIMIT:.0%} of max_connections "
        "less the reserved slots, or pools configured to open more than the server allows",
    ),
)


@dataclass(frozen=True, slots=True)
class PoolingFinding:
    """One finding: a stable id, the numbers behind it, and what to do."""

    id: str
    severity: Severity
    title: str
    message: str
    """One sentence with the numbers."""
    reasoning: str
    """Why it matters and the fix."""
    numbers: dict[str, float | int | str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """``create_engine`` pool arguments, each with the reason for its value."""

    pool_size: int
    max_overflow: int
    pool_timeout: int
    pool_recycle: int
    pool_pre_ping: bool = True
    reasons: tuple[tuple[str, str], ...] = ()
    """(argument, why this value), in argument order."""

    def arguments(self) -> list[tuple[str, int | bool]]:
        return [
            ("pool_size", self.pool_size),
            ("max_overflow", self.max_overflow),
            ("pool_timeout", self.pool_timeout),
            ("pool_recycle", self.pool_recycle),
            ("pool_pre_ping", self.pool_pre_ping),
        ]

    def create_engine_code(self, url: str = "DATABASE_URL") -> str:
        """The call to paste, with ``url`` as the first argument's expression."""
        lines = ["engine = create_engine(", f"    {url},"]
        lines += [f"    {name}={value!r}," for name, value in self.arguments()]
        lines.append(")")
        return "\n".join(lines)

    def flask_config_code(self) -> str:
        """The same settings as Flask-SQLAlchemy's configuration key."""
        lines = ["SQLALCHEMY_ENGINE_OPTIONS = {"]
        lines += [f'    "{name}": {value!r},' for name, value in self.arguments()]
        lines.append("}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class PoolingRecommendation:
    engine: EngineSettings
    server_settings: tuple[str, ...] = ()
    """SQL to run on the server (``ALTER ROLE ... SET idle_in_transaction_session_timeout``)."""
    app_changes: tuple[str, ...] = ()
    """Changes to the application's code, one sentence each."""


@dataclass(frozen=True, slots=True)
class ConnectionSummary:
    """The figures the findings and the recommendation were derived from."""

    sessions_opened: int = 0
    sessions_closed: int = 0
    median_session_s: float | None = None
    p95_session_s: float | None = None
    max_session_s: float | None = None
    opened_per_s: float | None = None
    peak_sessions: int = 0
    pool_connects: int = 0
    pool_checkouts: int = 0
    pool_waits: int = 0
    pool_timeouts: int = 0
    max_wait_ms: float | None = None
    peak_checked_out: int = 0
    processes: int = 0
    """Application processes that wrote the in-app capture (its headers)."""
    pool: dict[str, object] | None = None
    """The application's pool configuration, from the capture's header."""


@dataclass(slots=True)
class PoolingReport:
    summary: ConnectionSummary
    server: ServerActivity | None = None
    findings: list[PoolingFinding] = field(default_factory=list)
    recommendation: PoolingRecommendation | None = None


# -- entry point ----------------------------------------------------------------------------


def advise_pooling(activity: ConnectionActivity, server: ServerActivity | None) -> PoolingReport:
    """The findings and, when there are any, one recommendation."""
    summary = summarize(activity)
    findings: list[PoolingFinding] = []
    churn = churn_finding(summary, activity)
    if churn is not None:
        findings.append(churn)
    findings += pool_findings(summary)
    if server is not None:
        findings += idle_transaction_findings(server)
    findings += limit_findings(summary, server)
    report = PoolingReport(summary=summary, server=server, findings=findings)
    if findings:
        report.recommendation = recommend(summary, server, findings)
    return report


def summarize(activity: ConnectionActivity) -> ConnectionSummary:
    span = activity.open_span_seconds()
    rate = activity.opened / span if span and activity.opened > 1 else None
    return ConnectionSummary(
        sessions_opened=activity.opened,
        sessions_closed=activity.closed,
        median_session_s=activity.session_quantile(0.5),
        p95_session_s=activity.session_quantile(0.95),
        max_session_s=activity.session_max if activity.session_sample else None,
        opened_per_s=rate,
        peak_sessions=activity.peak_sessions,
        pool_connects=activity.pool_count("connect"),
        pool_checkouts=activity.pool_count("checkout"),
        pool_waits=activity.waits,
        pool_timeouts=activity.pool_count("timeout"),
        max_wait_ms=activity.wait_ms_max if activity.waits else None,
        peak_checked_out=activity.peak_checked_out,
        processes=activity.pool_configs,
        pool=activity.pool,
    )


# -- findings ---------------------------------------------------------------------------------

_CHURN_FIX = (
    "Each new connection forks a server process and authenticates it (milliseconds "
    "locally, tens of milliseconds over TLS), and starts with cold caches; a pool keeps "
    "connections open across requests. Create the engine once per process (at import, or "
    "in the application factory) and reuse it for every request; dispose of it only at "
    "shutdown (and call engine.dispose(close=False) in a forked child)."
)


def churn_finding(
    summary: ConnectionSummary, activity: ConnectionActivity
) -> PoolingFinding | None:
    """``connection-churn``: sessions that live for one request, from either source."""
    median = summary.median_session_s
    from_log = (
        summary.sessions_opened >= CHURN_MIN_SESSIONS
        and median is not None
        and median < CHURN_MEDIAN_SECONDS
    )
    checkouts, connects = summary.pool_checkouts, summary.pool_connects
    # A pool filling up connects once per slot: only connects beyond what all the pools
    # could hold at once are connections thrown away and made again.
    capacity = _capacity(summary.pool)
    held = capacity * max(1, summary.processes) if capacity is not None else 0
    from_pool = (
        connects >= CHURN_MIN_SESSIONS
        and connects > held
        and (checkouts == 0 or connects / checkouts > CHURN_CONNECTS_PER_CHECKOUT)
    )
    null_pool = activity.null_pools > 0 and checkouts >= CHURN_MIN_SESSIONS
    if not (from_log or from_pool or null_pool):
        return None
    parts: list[str] = []
    numbers: dict[str, float | int | str | None] = {}
    if from_log:
        rate = summary.opened_per_s
        parts.append(
            f"{summary.sessions_opened} sessions opened"
            + (f" ({rate:.1f}/s)" if rate is not None else "")
            + f", median session {median:.3f} s"
            + (f", p95 {summary.p95_session_s:.3f} s" if summary.p95_session_s is not None else "")
        )
        numbers |= {
            "sessions_opened": summary.sessions_opened,
            "opened_per_s": round(rate, 2) if rate is not None else None,
            "median_session_s": median,
            "p95_session_s": summary.p95_session_s,
        }
    if from_pool or null_pool:
        parts.append(f"{connects} new connections for {checkouts} pool checkouts")
        numbers |= {"pool_connects": connects, "pool_checkouts": checkouts}
    reasoning = _CHURN_FIX
    if null_pool:
        reasoning += (
            " The capture shows NullPool, which opens a connection per checkout: drop "
            "poolclass=NullPool unless a transaction-mode PgBouncer pools in front."
        )
    rate = summary.opened_per_s
    high = (
        summary.sessions_opened >= CHURN_HIGH_MIN and rate is not None and rate >= CHURN_HIGH_RATE
    )
    return PoolingFinding(
        id="connection-churn",
        severity=Severity.HIGH if high else Severity.MEDIUM,
        title="A new connection per request",
        message="; ".join(parts),
        reasoning=reasoning,
        numbers=numbers,
    )


def _capacity(pool: dict[str, object] | None) -> int | None:
    """``size + max_overflow`` of a pool configuration, when both are known numbers."""
    if pool is None:
        return None
    size, overflow = pool.get("size"), pool.get("max_overflow")
    if not isinstance(size, int) or not isinstance(overflow, int) or isinstance(size, bool):
        return None
    return size + max(0, overflow)  # max_overflow -1 means unbounded: no capacity then


def _pool_setting(pool: dict[str, object] | None, key: str) -> float | None:
    value = None if pool is None else pool.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def pool_findings(summary: ConnectionSummary) -> list[PoolingFinding]:
    """``pool-exhausted`` (checkouts that timed out) and ``pool-waits``."""
    findings: list[PoolingFinding] = []
    capacity = _capacity(summary.pool)
    timeout = _pool_setting(summary.pool, "timeout")
    full = capacity is not None and summary.peak_checked_out >= capacity
    held = (
        "Connections are held longer than the requests need them, or more requests run at "
        "once than the pool allows: shorten what runs while a connection is checked out "
        "(slow queries, HTTP calls inside a transaction), then size the pool below."
    )
    if summary.pool_timeouts:
        findings.append(
            PoolingFinding(
                id="pool-exhausted",
                severity=Severity.HIGH,
                title="Pool exhausted",
                message=(
                    f"pool exhausted: {summary.pool_timeouts} checkouts waited over "
                    f"pool_timeout"
                    + (f" ({timeout:g} s)" if timeout is not None else "")
                    + " and failed"
                    + (
                        f"; peak {summary.peak_checked_out} checked out of {capacity}"
                        if capacity is not None
                        else ""
                    )
                ),
                reasoning="Those requests failed with a TimeoutError. " + held,
                numbers={
                    "timeouts": summary.pool_timeouts,
                    "pool_timeout_s": timeout,
                    "peak_checked_out": summary.peak_checked_out,
                    "capacity": capacity,
                },
            )
        )
    slow = summary.max_wait_ms is not None and summary.max_wait_ms >= SLOW_WAIT_MS
    # The waits count the checkouts that timed out too: they waited longest of all.
    attempts = summary.pool_checkouts + summary.pool_timeouts
    if summary.pool_waits >= POOL_WAITS_MIN and (slow or full):
        findings.append(
            PoolingFinding(
                id="pool-waits",
                severity=Severity.MEDIUM,
                title="Requests wait for a connection",
                message=(
                    f"{summary.pool_waits} of {attempts} checkouts waited for a "
                    f"connection (longest {summary.max_wait_ms or 0:.0f} ms)"
                    + (
                        f"; the pool ran full ({summary.peak_checked_out} of {capacity})"
                        if full
                        else ""
                    )
                ),
                reasoning="Time waiting for the pool is added to the request. " + held,
                numbers={
                    "waits": summary.pool_waits,
                    "checkouts": summary.pool_checkouts,
                    "attempts": attempts,
                    "max_wait_ms": summary.max_wait_ms,
                    "peak_checked_out": summary.peak_checked_out,
                    "capacity": capacity,
                },
            )
        )
    return findings


def idle_transaction_findings(server: ServerActivity) -> list[PoolingFinding]:
    """``idle-in-transaction``: one finding per session idle long enough, oldest first."""
    return [
        _idle_finding(idle, server)
        for idle in server.idle_transactions
        if idle.idle_seconds >= IDLE_TX_MIN_SECONDS
    ]


def _idle_finding(idle: IdleTransaction, server: ServerActivity) -> PoolingFinding:
    held = f"holds {idle.locks} lock{'s' if idle.locks != 1 else ''}"
    if idle.relations:
        held += f" (on {', '.join(idle.relations)})"
    blocking = (
        f", blocking {idle.blocking} session{'s' if idle.blocking != 1 else ''}"
        if idle.blocking
        else ""
    )
    who = f"pid {idle.pid}" + (f" ({idle.user}@{idle.database})" if idle.user else "")
    if idle.application:
        who += f" [{idle.application}]"
    high = idle.blocking > 0 or idle.idle_seconds >= IDLE_TX_HIGH_SECONDS
    timeout = server.idle_in_transaction_timeout_ms
    return PoolingFinding(
        id="idle-in-transaction",
        severity=Severity.HIGH if high else Severity.MEDIUM,
        title="Idle in transaction" + (" (aborted)" if idle.aborted else ""),
        message=(
            f"{who} idle in transaction for {idle.idle_seconds:.0f} s "
            f"(transaction open {idle.transaction_seconds:.0f} s) {held}{blocking}; "
            f"last statement: {idle.query}"
        ),
        reasoning=(
            "An open transaction keeps its locks (and its row locks: whoever updates those "
            "rows waits) and its snapshot, so VACUUM cannot remove rows deleted since, and "
            "it occupies a pool connection. In the application, scope every transaction: "
            "`with Session.begin() as session:` (or `with engine.begin() as conn:`), close "
            "sessions at the end of each request (Flask-SQLAlchemy does at teardown), and "
            "do no slow work (HTTP calls, file I/O) between statements of a transaction. "
            "On the server, idle_in_transaction_session_timeout ends such sessions"
            + (
                f" (now {timeout / 1000:g} s for explainer's session)."
                if timeout
                else " (now disabled)."
            )
        ),
        numbers={
            "pid": idle.pid,
            "user": idle.user,
            "database": idle.database,
            "application": idle.application,
            "idle_s": round(idle.idle_seconds, 1),
            "transaction_s": round(idle.transaction_seconds, 1),
            "locks": idle.locks,
            "relations": ", ".join(idle.relations),
            "blocking": idle.blocking,
        },
    )


def limit_findings(
    summary: ConnectionSummary, server: ServerActivity | None
) -> list[PoolingFinding]:
    """``connections-near-limit``: now, at the log's peak, or as the pools are configured."""
    if server is None or server.usable == 0:
        return []
    usable = server.usable
    reserved = server.superuser_reserved + server.reserved
    limit = f"max_connections {server.max_connections} less {reserved} reserved = {usable} usable"
    used, where = max((server.total, "open now"), (summary.peak_sessions, "at the log's peak"))
    capacity = _capacity(summary.pool)
    configured = capacity * summary.processes if capacity is not None and summary.processes else 0
    reasoning = (
        'When the limit is reached, new connections fail with "sorry, too many clients '
        'already" (and a deploy that starts new processes before stopping the old needs '
        "twice the connections). Size the pools so that all processes together stay under "
        f"{SERVER_SHARE:.0%} of the usable connections (below), or put PgBouncer in front "
        "when the application needs more concurrent clients than the server can hold."
    )
    if used >= NEAR_LIMIT * usable:
        return [
            PoolingFinding(
                id="connections-near-limit",
                severity=Severity.HIGH if used >= AT_LIMIT * usable else Severity.MEDIUM,
                title="Connections near the server's limit",
                message=f"{used} client connections {where} of {limit} ({used / usable:.0%})",
                reasoning=reasoning,
                numbers={
                    "connections": used,
                    "usable": usable,
                    "max_connections": server.max_connections,
                },
            )
        ]
    if configured > usable:
        return [
            PoolingFinding(
                id="connections-near-limit",
                severity=Severity.MEDIUM,
                title="Pools can open more connections than the server allows",
                message=(
                    f"{summary.processes} processes x (pool_size + max_overflow = {capacity}) = "
                    f"{configured} connections, over {limit}"
                ),
                reasoning=reasoning,
                numbers={
                    "configured": configured,
                    "usable": usable,
                    "processes": summary.processes,
                },
            )
        ]
    return []


# -- the recommendation ---------------------------------------------------------------------


def engine_settings(
    *,
    peak: int,
    processes: int = 1,
    usable: int | None = None,
    capacity: int | None = None,
    saturated: bool = False,
    current_timeout: float | None = None,
    idle_session_timeout_ms: int = 0,
) -> EngineSettings:
    """The pool arguments for one process.

    ``peak``: connections the process had in use at once (0: not observed); ``capacity``
    and ``saturated``: the pool's size + max_overflow and whether checkouts waited or
    timed out, in which case demand was above it; ``usable``: the server's connections
    for ordinary roles, shared by ``processes``.
    """
    reasons: list[tuple[str, str]] = []
    if saturated and capacity is not None:
        base = max(peak, capacity)
        size = math.ceil(base * SATURATED_HEADROOM)
        why = (
            f"checkouts waited with all {base} connections in use, so demand was above the "
            f"pool: {SATURATED_HEADROOM:g} x {base}"
        )
    elif peak > 0:
        size = math.ceil(peak * HEADROOM)
        plural = "s" if peak != 1 else ""
        why = f"the observed peak of {peak} connection{plural} in use at once x {HEADROOM:g}"
    else:
        size = SQLALCHEMY_DEFAULT_POOL_SIZE
        why = "no concurrency observed: SQLAlchemy's default"
    size = max(MIN_POOL_SIZE, size)
    overflow = max(MIN_OVERFLOW, math.ceil(size * OVERFLOW_SHARE))
    overflow_why = (
        f"bursts above pool_size: {OVERFLOW_SHARE:g} x pool_size (at least {MIN_OVERFLOW})"
    )
    if usable is not None and usable > 0:
        budget = max(1, math.floor(usable * SERVER_SHARE) // max(1, processes))
        share = (
            f"{SERVER_SHARE:.0%} of the server's {usable} usable connections"
            + (f" shared by {processes} processes" if processes > 1 else "")
            + f" = {budget} per process"
        )
        if size > budget:
            size, overflow = budget, 0
            why += f", capped at {share}"
            overflow_why = f"none: pool_size already takes {share}"
        elif size + overflow > budget:
            overflow = budget - size
            overflow_why += f", capped so pool_size + max_overflow <= {share}"
        else:
            overflow_why += f"; pool_size + max_overflow stays within {share}"
    reasons.append(("pool_size", why))
    reasons.append(("max_overflow", overflow_why))
    timeout = POOL_TIMEOUT_S
    timeout_why = (
        f"fail a request after {POOL_TIMEOUT_S} s without a connection, below the usual "
        "proxy and gateway timeouts, instead of SQLAlchemy's 30 s"
    )
    if current_timeout is not None and 1 <= current_timeout < POOL_TIMEOUT_S:
        timeout = math.floor(current_timeout)
        timeout_why = f"the application's own ({current_timeout:g} s), already shorter"
    elif current_timeout is not None and 0 < current_timeout < 1:
        timeout = 1
        timeout_why = (
            f"at least 1 s: the application's own {current_timeout:g} s fails requests that "
            "a moment's wait for a returning connection would serve"
        )
    reasons.append(("pool_timeout", timeout_why))
    if idle_session_timeout_ms > 0:
        recycle = max(1, math.floor(idle_session_timeout_ms / 1000 * RECYCLE_SHARE))
        recycle_why = (
            f"{RECYCLE_SHARE:.0%} of the server's idle_session_timeout "
            f"({idle_session_timeout_ms / 1000:g} s), so the pool retires connections first"
        )
    else:
        recycle = DEFAULT_RECYCLE_S
        recycle_why = (
            "replace connections after 30 minutes, before firewalls and load balancers "
            "drop idle ones (often after an hour)"
        )
    reasons.append(("pool_recycle", recycle_why))
    reasons.append(
        (
            "pool_pre_ping",
            "test a connection at checkout (one round trip) so a restarted "
            "server or a dropped connection costs a reconnect, not a failed request",
        )
    )
    return EngineSettings(
        pool_size=size,
        max_overflow=overflow,
        pool_timeout=timeout,
        pool_recycle=recycle,
        pool_pre_ping=True,
        reasons=tuple(reasons),
    )


def observed_peak(summary: ConnectionSummary) -> tuple[int, int]:
    """(peak connections in use by one process, processes sharing the server).

    The in-app capture counts per pool, so per process; the server log counts sessions of
    all processes together, and does not say how many there are (then 1).
    """
    if summary.pool_checkouts or summary.peak_checked_out:
        return summary.peak_checked_out, max(1, summary.processes)
    return summary.peak_sessions, max(1, summary.processes)


def recommend(
    summary: ConnectionSummary, server: ServerActivity | None, findings: list[PoolingFinding]
) -> PoolingRecommendation:
    ids = {finding.id for finding in findings}
    peak, processes = observed_peak(summary)
    capacity = _capacity(summary.pool)
    engine = engine_settings(
        peak=peak,
        processes=processes,
        usable=server.usable if server is not None else None,
        capacity=capacity,
        saturated=bool({"pool-exhausted", "pool-waits"} & ids),
        current_timeout=_pool_setting(summary.pool, "timeout"),
        idle_session_timeout_ms=server.idle_session_timeout_ms if server is not None else 0,
    )
    server_settings: list[str] = []
    app: list[str] = []
    if "connection-churn" in ids:
        app.append(
            "Create the engine once per process and reuse it; do not call create_engine() "
            "or engine.dispose() per request."
        )
    if server is not None and "idle-in-transaction" in ids:
        timeout = server.idle_in_transaction_timeout_ms
        if timeout == 0 or timeout > IDLE_TX_TIMEOUT_S * 1000:
            seen: set[tuple[str | None, str | None]] = set()
            for idle in server.idle_transactions:
                key = (idle.user, idle.database)
                if idle.idle_seconds < IDLE_TX_MIN_SECONDS or key in seen:
                    continue
                seen.add(key)
                server_settings.append(_idle_timeout_sql(idle.user, idle.database))
        app.append(
            "Scope transactions with `with Session.begin() as session:` (or "
            "`with engine.begin() as conn:`) and close sessions at the end of each request."
        )
    if processes == 1 and not summary.processes and summary.peak_sessions:
        app.append(
            "The server log counts all processes together: with several worker processes, "
            "divide pool_size and max_overflow among them."
        )
    return PoolingRecommendation(
        engine=engine, server_settings=tuple(server_settings), app_changes=tuple(app)
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _idle_timeout_sql(user: str | None, database: str | None) -> str:
    setting = f"SET idle_in_transaction_session_timeout = '{IDLE_TX_TIMEOUT_S}s';"
    if user and database:
        return f"ALTER ROLE {_quote(user)} IN DATABASE {_quote(database)} {setting}"
    if user:
        return f"ALTER ROLE {_quote(user)} {setting}"
    return f"ALTER SYSTEM {setting}  -- then SELECT pg_reload_conf();"


def redact_pooling(report: PoolingReport, redact: Callable[[str], str]) -> PoolingReport:
    """A copy of ``report`` whose idle sessions' last statements (and the findings that
    quote them) went through ``redact`` (``explainer.redact.redact_sql`` for ``--redact``):
    a statement left idle in transaction holds the application's values."""
    server = report.server
    findings = list(report.findings)
    if server is not None:
        idle = tuple(replace(i, query=redact(i.query)) for i in server.idle_transactions)
        quoted = {i.query: r.query for i, r in zip(server.idle_transactions, idle, strict=True)}
        server = replace(server, idle_transactions=idle)
        for n, finding in enumerate(findings):
            for original, redacted in quoted.items():
                if original and original in finding.message:
                    finding = replace(finding, message=finding.message.replace(original, redacted))
            findings[n] = finding
    return PoolingReport(
        summary=report.summary,
        server=server,
        findings=findings,
        recommendation=report.recommendation,
    )
