"""Connection pooling advice: churn, idle in transaction and pool exhaustion, end to end.

The live tests run a throwaway PostgreSQL of their own with ``log_connections`` and
``log_disconnections`` on and a fixed ``max_connections`` (50, 3 reserved for superusers:
47 usable), so the recommended settings are exact numbers: the server-limit share is
``floor(47 x 0.8) = 37`` connections per application.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast

import psycopg
import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, text

from explainer.advise.pooling import (
    POOLING_RULES,
    advise_pooling,
    engine_settings,
    redact_pooling,
)
from explainer.capture import read_input
from explainer.capture.activity import (
    SAMPLE_SIZE,
    ConnectionActivity,
    parse_timestamp,
    session_seconds,
)
from explainer.cli import main
from explainer.db.activity import IdleTransaction, ServerActivity
from explainer.db.server import ThrowawayServer, find_binaries
from explainer.redact import redact_sql
from explainer.rules import Severity

SERVER = {
    "log_connections": "on",
    "log_disconnections": "on",
    "log_min_duration_statement": "0",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_timezone": "UTC",
    "max_connections": "50",
    "superuser_reserved_connections": "3",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ThrowawayServer]:
    prefer = os.environ.get("EXPLAINER_TEST_SERVER", "auto")
    binaries = find_binaries(cast(Literal["embedded", "system", "auto"], prefer))
    with ThrowawayServer(binaries, settings=SERVER) as running:
        yield running


@pytest.fixture(scope="module")
def shop(server: ThrowawayServer) -> str:
    dsn = server.create_database("pooling")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 500) i")
        conn.execute("ANALYZE items")
    return dsn


def analyze(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["analyze", *args, "--no-lint", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report: dict[str, Any] = json.loads(out)
    return report


def rules(report: dict[str, Any]) -> list[str]:
    return [f["rule"] for f in report["pooling"]["findings"]]


def finding(report: dict[str, Any], rule: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in report["pooling"]["findings"] if f["rule"] == rule]
    assert len(found) == 1, found
    return found[0]


def log_tail(log: Path, offset: int, into: Path, disconnections: int) -> Path:
    """The server log written since ``offset``, once it holds ``disconnections`` lines (a
    backend logs its disconnection as it exits, just after the client closed)."""
    deadline = time.monotonic() + 10
    while True:
        with log.open("rb") as file:
            file.seek(offset)
            tail = file.read()
        if tail.count(b"disconnection: session time:") >= disconnections:
            break
        assert time.monotonic() < deadline, tail.decode(errors="replace")[-2000:]
        time.sleep(0.05)
    into.write_bytes(tail)
    return into


def quiet_offset(server: ThrowawayServer, dsn: str) -> int:
    """An offset into the server log after which only the caller's sessions appear: once no
    other client session is left (an earlier test's, the fixture's), and the log holds the
    disconnection of the session that checked."""
    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as conn:
        pid = conn.info.backend_pid
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
            if row is not None and row[0] == 0:
                break
            assert time.monotonic() < deadline, "other sessions stay connected"
            time.sleep(0.05)
    mark = f"[{pid}] ".encode()
    while True:
        logged = server.log_path.read_bytes()
        if any(mark in line for line in logged.splitlines() if b"disconnection:" in line):
            return len(logged)
        assert time.monotonic() < deadline, "the check's disconnection was not logged"
        time.sleep(0.05)


# -- live: a new engine per request ----------------------------------------------------------


def test_a_new_engine_per_request_gets_churn_and_pool_settings(
    server: ThrowawayServer, shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = quiet_offset(server, shop)
    url = shop.replace("postgresql://", "postgresql+psycopg://", 1)
    for request in range(30):
        engine = create_engine(url)  # the mistake: an engine (so a pool) per request
        with engine.connect() as conn:
            conn.execute(text("SELECT name FROM items WHERE id = :id"), {"id": request + 1})
        engine.dispose()
        time.sleep(0.1)  # requests one after another, as a quiet web worker serves them
    log = log_tail(server.log_path, offset, tmp_path / "churn.log", disconnections=30)

    report = analyze(capsys, "--dsn", shop, "--log", str(log))

    pooling = report["pooling"]
    observed = pooling["observed"]
    assert observed["sessions_opened"] == 30
    assert observed["sessions_closed"] == 30
    assert observed["peak_sessions"] == 1
    assert 0 < observed["median_session_s"] < 1.0
    assert rules(report) == ["connection-churn"]
    churn = finding(report, "connection-churn")
    assert churn["severity"] == "medium"
    assert churn["details"]["sessions_opened"] == 30
    assert churn["message"].startswith("30 sessions opened (")
    assert "Create the engine once per process" in churn["reasoning"]
    recommendation = pooling["recommendation"]
    # peak 1 x 1.25 -> 2; overflow max(2, 2 x 0.5); well within 37 of the 47 usable.
    assert recommendation["create_engine"] == {
        "pool_size": 2,
        "max_overflow": 2,
        "pool_timeout": 10,
        "pool_recycle": 1800,
        "pool_pre_ping": True,
    }
    assert recommendation["create_engine_code"] == (
        "engine = create_engine(\n"
        "    DATABASE_URL,\n"
        "    pool_size=2,\n"
        "    max_overflow=2,\n"
        "    pool_timeout=10,\n"
        "    pool_recycle=1800,\n"
        "    pool_pre_ping=True,\n"
        ")"
    )
    assert recommendation["flask_config"] == (
        "SQLALCHEMY_ENGINE_OPTIONS = {\n"
        '    "pool_size": 2,\n'
        '    "max_overflow": 2,\n'
        '    "pool_timeout": 10,\n'
        '    "pool_recycle": 1800,\n'
        '    "pool_pre_ping": True,\n'
        "}"
    )
    assert "37 per process" in recommendation["reasons"]["max_overflow"]
    assert recommendation["app_changes"][0].startswith("Create the engine once per process")
    assert pooling["server"]["usable"] == 47

    # The same analysis on a terminal and in Markdown has the section.
    assert main(["analyze", "--dsn", shop, "--log", str(log), "--no-lint"]) == 0
    terminal = capsys.readouterr().out
    assert "Connections" in terminal and "connection-churn" in terminal
    assert "SQLALCHEMY_ENGINE_OPTIONS" in terminal
    markdown_args = ["--log", str(log), "--no-lint", "--format", "markdown"]
    assert main(["analyze", "--dsn", shop, *markdown_args]) == 0
    markdown = capsys.readouterr().out
    assert "## Connections" in markdown and "pool_size=2," in markdown


def test_connection_lines_are_activity_not_queries(
    server: ThrowawayServer, shop: str, tmp_path: Path
) -> None:
    offset = quiet_offset(server, shop)
    with psycopg.connect(shop, autocommit=True, application_name="lines") as conn:
        conn.execute("SELECT 1")
    log = log_tail(server.log_path, offset, tmp_path / "one.log", disconnections=1)
    queries, stats = read_input(str(log))
    assert [q.sql for q in queries] == ["SELECT 1"]
    assert stats.skipped == 0
    assert (stats.activity.received, stats.activity.opened, stats.activity.closed) == (1, 1, 1)
    assert stats.activity.by_user == {"postgres@pooling": 1}


# -- live: idle in transaction ---------------------------------------------------------------


def test_an_idle_transaction_holding_locks_is_found_with_its_pid(
    shop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = psycopg.connect(shop, application_name="forgetful")
    waiter = psycopg.connect(shop, autocommit=True)
    try:
        holder.execute("SELECT * FROM items WHERE id = 1 FOR UPDATE")
        holder.execute("UPDATE items SET name = 'held' WHERE id = 2")
        pid = holder.info.backend_pid
        # Another request wants the row the idle transaction updated, and waits.
        waiter.execute("SET statement_timeout = '60s'")
        blocked = threading.Thread(
            target=waiter.execute, args=("UPDATE items SET name = 'next' WHERE id = 2",)
        )
        blocked.start()
        waited = 5.5
        time.sleep(waited)

        report = analyze(capsys, "--dsn", shop, "--query", "SELECT name FROM items WHERE id = 3")
        redacted = analyze(
            capsys, "--dsn", shop, "--query", "SELECT name FROM items WHERE id = 3", "--redact"
        )
        # --fail-on high: the idle transaction (high: it blocks a session) fails the run.
        failed = main(
            ["analyze", "--dsn", shop, "--query", "SELECT name FROM items WHERE id = 3",
             "--no-lint", "--fail-on", "high", "--format", "json"]
        )  # fmt: skip
        capsys.readouterr()
    finally:
        holder.rollback()
        holder.close()
    blocked.join(timeout=30)
    waiter.close()

    assert rules(report) == ["idle-in-transaction"]
    idle = finding(report, "idle-in-transaction")
    details = idle["details"]
    assert details["pid"] == pid
    assert details["application"] == "forgetful"
    assert details["idle_s"] >= waited
    assert details["transaction_s"] >= details["idle_s"]
    assert details["locks"] >= 3  # items, its primary key, the transaction id at least
    assert details["relations"].split(", ")[:1] == ["items"]
    assert details["blocking"] == 1
    assert idle["severity"] == "high"  # it blocks another session
    assert failed == 1  # and by nothing else:
    assert not [f for q in report["queries"] for f in q["findings"] if f["severity"] == "high"]
    assert f"pid {pid} (postgres@pooling) [forgetful] idle in transaction for" in idle["message"]
    assert "with Session.begin()" in idle["reasoning"]
    recommendation = report["pooling"]["recommendation"]
    assert recommendation["server_settings"] == [
        'ALTER ROLE "postgres" IN DATABASE "pooling" '
        "SET idle_in_transaction_session_timeout = '60s';"
    ]
    # No concurrency observed: SQLAlchemy's default 5, overflow ceil(2.5).
    assert recommendation["create_engine"] == {
        "pool_size": 5,
        "max_overflow": 3,
        "pool_timeout": 10,
        "pool_recycle": 1800,
        "pool_pre_ping": True,
    }
    server = report["pooling"]["server"]
    assert server["max_connections"] == 50 and server["usable"] == 47
    assert server["by_state"]["idle in transaction"] == 1
    assert server["by_state"]["active"] == 1  # the waiting UPDATE
    # The idle session's last statement holds the application's values: --redact hides them.
    assert "'held'" in json.dumps(report)
    assert finding(redacted, "idle-in-transaction")["details"]["pid"] == pid
    assert re.search(r"\bheld\b", json.dumps(redacted)) is None


# -- live: pool exhaustion from the in-app capture ---------------------------------------------


def _capture_lines(pid: int) -> list[dict[str, Any]]:
    header = {
        "explainer_capture": 1,
        "ts": "2026-12-06T18:00:00.000000+00:00",
        "pid": pid,
        "dialect": "postgresql",
        "driver": "psycopg",
        "paramstyle": "pyformat",
        "pool": {
            "class": "QueuePool",
            "size": 5,
            "max_overflow": 10,
            "timeout": 30.0,
            "recycle": -1,
            "pre_ping": False,
        },
    }
    lines: list[dict[str, Any]] = [header]
    for n in range(15):
        conn = f"{pid}.{n}"
        lines.append(
            {
                "type": "pool",
                "ts": f"2026-12-06T18:00:01.{n:06d}+00:00",
                "event": "connect",
                "conn": conn,
                "wait_ms": None,
                "checked_out": None,
                "overflow": None,
                "request": None,
            }
        )
        lines.append(
            {
                "type": "pool",
                "ts": f"2026-12-06T18:00:01.{n:06d}+00:00",
                "event": "checkout",
                "conn": conn,
                "wait_ms": 0.2,
                "checked_out": n + 1,
                "overflow": max(0, n - 4),
                "request": f"r{n}",
            }
        )
        lines.append(
            {
                "type": "statement",
                "ts": f"2026-12-06T18:00:01.{n:06d}+00:00",
                "ms": 1.5,
                "sql": "SELECT name FROM items WHERE id = %(id)s",
                "params": {"id": str(n + 1)},
                "many": False,
                "conn": conn,
                "tx": None,
                "request": f"r{n}",
                "site": {"file": "app/views.py", "line": 12, "function": "item"},
            }
        )
    for n, wait in enumerate((250.0, 800.0, 1200.0, 30000.0, 30000.0)):
        event = "timeout" if wait >= 30000 else "checkout"
        lines.append(
            {
                "type": "pool",
                "ts": f"2026-12-06T18:00:31.{n:06d}+00:00",
                "event": event,
                "conn": None if event == "timeout" else f"{pid}.{n}",
                "wait_ms": wait,
                "checked_out": 15,
                "overflow": 10,
                "request": f"w{n}",
            }
        )
    return lines


def test_a_pool_that_ran_out_gets_exhaustion_waits_and_capped_settings(
    shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "capture.jsonl"
    # Two worker processes appending to one capture, each with its own pool.
    records = _capture_lines(4242) + _capture_lines(4243)
    capture.write_text("".join(json.dumps(r) + "\n" for r in records))

    report = analyze(capsys, "--dsn", shop, "--log", str(capture))

    assert rules(report) == ["pool-exhausted", "pool-waits"]
    exhausted = finding(report, "pool-exhausted")
    assert exhausted["severity"] == "high"
    assert exhausted["message"] == (
        "pool exhausted: 4 checkouts waited over pool_timeout (30 s) and failed; "
        "peak 15 checked out of 15"
    )
    waits = finding(report, "pool-waits")
    assert waits["details"]["waits"] == 10  # 3 checkouts + 2 timeouts per process
    assert waits["details"]["max_wait_ms"] == 30000.0
    observed = report["pooling"]["observed"]
    assert (observed["processes"], observed["pool_checkouts"], observed["pool_timeouts"]) == (
        2,
        36,
        4,
    )
    # Saturated: 1.5 x 15 = 23 wanted, but 37 usable-share connections over 2 processes
    # is 18 per process: capped, nothing left for overflow.
    assert report["pooling"]["recommendation"]["create_engine"] == {
        "pool_size": 18,
        "max_overflow": 0,
        "pool_timeout": 10,
        "pool_recycle": 1800,
        "pool_pre_ping": True,
    }
    reasons = report["pooling"]["recommendation"]["reasons"]
    assert reasons["pool_size"].endswith(
        "capped at 80% of the server's 47 usable connections shared by 2 processes = 18 per process"
    )


def test_the_capture_of_a_pool_too_small_for_its_threads_gets_pool_exhausted(
    shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real hook end to end: a pool of one connection, a request that holds it, and
    requests that wait for it and time out."""
    from explainer.capture import capturing

    engine = create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(shop),
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.2,
    )
    path = tmp_path / "capture.jsonl"
    timeouts = 0
    with capturing(engine, path):
        held = threading.Event()
        done = threading.Event()

        def slow_request() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT name FROM items WHERE id = 1")).all()
                held.set()
                done.wait(10)

        holder = threading.Thread(target=slow_request)
        holder.start()
        held.wait(10)
        for _ in range(3):
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except sqlalchemy.exc.TimeoutError:
                timeouts += 1
        done.set()
        holder.join(10)
        with engine.connect() as conn:
            conn.execute(text("SELECT name FROM items WHERE id = 2")).all()
    engine.dispose()
    assert timeouts == 3

    report = analyze(capsys, "--dsn", shop, "--log", str(path))
    assert rules(report)[:1] == ["pool-exhausted"]
    exhausted = finding(report, "pool-exhausted")
    assert exhausted["message"].startswith(
        "pool exhausted: 3 checkouts waited over pool_timeout (0.2 s) and failed"
    )
    observed = report["pooling"]["observed"]
    assert (observed["processes"], observed["pool_timeouts"]) == (1, 3)
    waits = finding(report, "pool-waits")
    # 3 timeouts and the checkout that waited for the connection to come back.
    assert waits["message"].startswith("4 of 5 checkouts waited for a connection")
    recommendation = report["pooling"]["recommendation"]
    # Demand above a full pool of 1: 1.5 x 1 -> the minimum 2, overflow at least 2.
    assert recommendation["create_engine"] == {
        "pool_size": 2,
        "max_overflow": 2,
        "pool_timeout": 1,
        "pool_recycle": 1800,
        "pool_pre_ping": True,
    }
    assert recommendation["reasons"]["pool_timeout"].startswith(
        "at least 1 s: the application's own 0.2 s"
    )


# -- the recommendation's arithmetic ----------------------------------------------------------

# (peak, processes, usable, capacity, saturated, current_timeout, idle_session_timeout_ms)
#   -> (pool_size, max_overflow, pool_timeout, pool_recycle)
ARITHMETIC = [
    ((0, 1, None, None, False, None, 0), (5, 3, 10, 1800)),  # nothing seen: the default
    ((1, 1, None, None, False, None, 0), (2, 2, 10, 1800)),  # minimums
    ((4, 1, None, None, False, None, 0), (5, 3, 10, 1800)),  # ceil(4 x 1.25)
    ((16, 1, None, None, False, None, 0), (20, 10, 10, 1800)),
    ((16, 1, 97, None, False, None, 0), (20, 10, 10, 1800)),  # 30 <= floor(97 x .8) = 77
    ((16, 4, 97, None, False, None, 0), (19, 0, 10, 1800)),  # 77 // 4 = 19: capped
    ((16, 3, 97, None, False, None, 0), (20, 5, 10, 1800)),  # 77 // 3 = 25: overflow capped
    ((40, 1, 20, None, False, None, 0), (16, 0, 10, 1800)),  # floor(20 x .8) = 16
    ((10, 1, None, 15, True, None, 0), (23, 12, 10, 1800)),  # saturated: 1.5 x 15
    ((20, 1, None, 15, True, None, 0), (30, 15, 10, 1800)),  # the peak beyond capacity
    ((3, 1, None, None, False, 5.0, 0), (4, 2, 5, 1800)),  # a shorter pool_timeout kept
    ((3, 1, None, None, False, 30.0, 0), (4, 2, 10, 1800)),
    ((3, 1, None, None, False, None, 600_000), (4, 2, 10, 540)),  # 0.9 x idle_session_timeout
    ((3, 1, 1, None, False, None, 0), (1, 0, 10, 1800)),  # at least one connection
]


@pytest.mark.parametrize(("given", "expected"), ARITHMETIC)
def test_engine_settings_arithmetic(
    given: tuple[int, int, int | None, int | None, bool, float | None, int],
    expected: tuple[int, int, int, int],
) -> None:
    peak, processes, usable, capacity, saturated, timeout, idle_session = given
    settings = engine_settings(
        peak=peak,
        processes=processes,
        usable=usable,
        capacity=capacity,
        saturated=saturated,
        current_timeout=timeout,
        idle_session_timeout_ms=idle_session,
    )
    assert (
        settings.pool_size,
        settings.max_overflow,
        settings.pool_timeout,
        settings.pool_recycle,
    ) == expected
    assert settings.pool_pre_ping is True
    assert [name for name, _ in settings.reasons] == [
        "pool_size",
        "max_overflow",
        "pool_timeout",
        "pool_recycle",
        "pool_pre_ping",
    ]


# -- the accumulator and the findings, offline --------------------------------------------------


def _sessions(activity: ConnectionActivity, count: int, seconds: float) -> None:
    for n in range(count):
        activity.connection_opened(str(n), f"2026-12-06 18:00:{n % 60:02d}.000 UTC", "app", "shop")
        activity.connection_closed(str(n), seconds)


@pytest.mark.parametrize(
    ("count", "seconds", "expected"),
    [
        (19, 0.01, []),  # too few to call
        (20, 0.01, ["connection-churn"]),
        (20, 1.0, []),  # sessions of a second or more are not per-request
        (200, 0.5, ["connection-churn"]),
    ],
)
def test_churn_thresholds(count: int, seconds: float, expected: list[str]) -> None:
    activity = ConnectionActivity()
    _sessions(activity, count, seconds)
    assert [f.id for f in advise_pooling(activity, None).findings] == expected


def test_churn_is_high_at_ten_sessions_a_second() -> None:
    activity = ConnectionActivity()
    for n in range(120):
        activity.connection_opened(str(n), f"2026-12-06 18:00:{n / 20:06.3f} UTC", None, None)
        activity.connection_closed(str(n), 0.02)
    (churn,) = advise_pooling(activity, None).findings
    assert churn.severity is Severity.HIGH
    assert churn.numbers["opened_per_s"] == round(120 / 5.95, 2)


def test_null_pool_and_connects_per_checkout_are_churn() -> None:
    pooled = ConnectionActivity()
    for _ in range(100):
        pooled.pool_event(
            "checkout", None, conn="1.1", wait_ms=0.1, checked_out=1, overflow=0, request=None
        )
    for _ in range(5):
        pooled.pool_event(
            "connect", None, conn="1.1", wait_ms=None, checked_out=None, overflow=None, request=None
        )
    assert advise_pooling(pooled, None).findings == []
    null = ConnectionActivity()
    null.pool_config(None, None)
    for _ in range(25):
        null.pool_event(
            "connect", None, conn=None, wait_ms=None, checked_out=None, overflow=None, request=None
        )
        null.pool_event(
            "checkout", None, conn=None, wait_ms=None, checked_out=1, overflow=None, request=None
        )
    (churn,) = advise_pooling(null, None).findings
    assert churn.id == "connection-churn"
    assert churn.message == "25 new connections for 25 pool checkouts"
    assert "NullPool" in churn.reasoning


def _server(**overrides: Any) -> ServerActivity:
    values: dict[str, Any] = {
        "max_connections": 100,
        "superuser_reserved": 3,
        "reserved": 0,
        "idle_in_transaction_timeout_ms": 0,
        "idle_session_timeout_ms": 0,
    }
    values.update(overrides)
    return ServerActivity(**values)


def _idle(seconds: float, blocking: int = 0) -> IdleTransaction:
    return IdleTransaction(
        pid=77,
        user="app",
        database="shop",
        application=None,
        client=None,
        idle_seconds=seconds,
        transaction_seconds=seconds + 1,
        locks=4,
        relations=("orders",),
        blocking=blocking,
        aborted=False,
        query="UPDATE orders ...",
    )


@pytest.mark.parametrize(
    ("seconds", "blocking", "timeout_ms", "severity", "sql"),
    [
        (4.9, 0, 0, None, None),  # a pause between two statements
        (5.0, 0, 0, Severity.MEDIUM, True),
        (59.0, 1, 0, Severity.HIGH, True),  # blocks someone
        (60.0, 0, 0, Severity.HIGH, True),
        (30.0, 0, 60_000, Severity.MEDIUM, False),  # the server already ends them at 60 s
        (30.0, 0, 300_000, Severity.MEDIUM, True),  # ...or too late
    ],
)
def test_idle_in_transaction_thresholds(
    seconds: float, blocking: int, timeout_ms: int, severity: Severity | None, sql: bool | None
) -> None:
    server = _server(
        idle_transactions=(_idle(seconds, blocking),), idle_in_transaction_timeout_ms=timeout_ms
    )
    report = advise_pooling(ConnectionActivity(), server)
    if severity is None:
        assert report.findings == [] and report.recommendation is None
        return
    (found,) = report.findings
    assert (found.id, found.severity) == ("idle-in-transaction", severity)
    assert report.recommendation is not None
    expected = (
        ['ALTER ROLE "app" IN DATABASE "shop" SET idle_in_transaction_session_timeout = \'60s\';']
        if sql
        else []
    )
    assert list(report.recommendation.server_settings) == expected


@pytest.mark.parametrize(
    ("by_state", "peak", "expected"),
    [
        ({"idle": 77}, 0, None),  # 77 of 97 = 79%
        ({"idle": 70, "active": 8}, 0, Severity.MEDIUM),  # 78 = 80%
        ({"idle": 93}, 0, Severity.HIGH),  # 96%
        ({}, 80, Severity.MEDIUM),  # the log's peak
    ],
)
def test_connections_near_the_limit(
    by_state: dict[str, int], peak: int, expected: Severity | None
) -> None:
    activity = ConnectionActivity()
    for n in range(peak):
        activity.connection_opened(str(n), None, None, None)
    report = advise_pooling(activity, _server(by_state=by_state))
    found = [f for f in report.findings if f.id == "connections-near-limit"]
    assert [f.severity for f in found] == ([] if expected is None else [expected])


def test_pools_configured_beyond_the_server() -> None:
    activity = ConnectionActivity()
    for _ in range(8):  # 8 processes x (5 + 10) = 120 > 97
        activity.pool_config({"size": 5, "max_overflow": 10, "timeout": 30.0}, None)
    (found,) = advise_pooling(activity, _server()).findings
    assert found.id == "connections-near-limit"
    assert found.message.startswith("8 processes x (pool_size + max_overflow = 15) = 120")


def test_the_accumulator_merges_parts_as_one_pass() -> None:
    whole, first, second = ConnectionActivity(), ConnectionActivity(), ConnectionActivity()
    lengths = [0.001 * n for n in range(3 * SAMPLE_SIZE)]
    for n, seconds in enumerate(lengths):
        part = first if n < len(lengths) // 2 else second
        for activity in (whole, part):
            activity.connection_opened(str(n), None, "app", "shop")
            activity.connection_closed(str(n), seconds)
    merged = pickle.loads(pickle.dumps(first))  # parts come back from worker processes
    merged.merge(second)
    assert (merged.opened, merged.closed, merged.by_user) == (
        len(lengths),
        len(lengths),
        {"app@shop": len(lengths)},
    )
    assert merged.session_seconds == pytest.approx(whole.session_seconds)
    assert len(merged.session_sample) < SAMPLE_SIZE  # bounded
    median = merged.session_quantile(0.5)
    assert median is not None and abs(median - lengths[len(lengths) // 2]) < 0.05 * max(lengths)


def test_session_time_and_timestamps_parse() -> None:
    message = "disconnection: session time: 1:02:03.456 user=a database=b host=c port=1"
    assert session_seconds(message) == pytest.approx(3723.456)
    assert session_seconds("disconnection: session time: garbage") is None
    assert parse_timestamp("2026-12-06 18:00:00.123 UTC") == parse_timestamp(
        "2026-12-06T18:00:00.123+00:00"
    )
    assert parse_timestamp("not a time") is None


def test_the_rules_are_listed() -> None:
    assert [rule.id for rule in POOLING_RULES] == [
        "connection-churn",
        "pool-exhausted",
        "pool-waits",
        "idle-in-transaction",
        "connections-near-limit",
    ]


def test_redaction_replaces_the_idle_sessions_statements() -> None:
    statement = "UPDATE customers SET email = 'ann@example.com' WHERE id = 42"
    idle = replace(_idle(30.0), query=statement)
    report = advise_pooling(ConnectionActivity(), _server(idle_transactions=(idle,)))
    redacted = redact_pooling(report, redact_sql)
    assert redacted.server is not None
    assert [i.query for i in redacted.server.idle_transactions] == [
        "UPDATE customers SET email = $1 WHERE id = $2"
    ]
    (finding,) = redacted.findings
    assert "ann@example.com" not in finding.message
    assert finding.message.endswith("last statement: UPDATE customers SET email = $1 WHERE id = $2")
    assert report.findings[0].message.endswith(statement)  # the original is left as it was
