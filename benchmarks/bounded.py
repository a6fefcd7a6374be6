"""How quickly explainer lets go: cancels, Ctrl+C and lock waits, measured on the server.

Prints, over ``--runs`` tries each:

- **cancel (TUI Esc)**: ``analyze_workload`` explaining ``SELECT pg_sleep(30)`` in a
  thread; the stop is asked and ``conn.cancel_safe()`` sent from another thread, as the
  workbench's Esc does. Measured from the cancel to the moment a third connection sees the
  backend no longer ``active`` in pg_stat_activity (polled every 2 ms).
- **Ctrl+C (CLI)**: ``explainer analyze`` in a child process, sent SIGINT while the
  statement runs; the same server-side measure (psycopg cancels on KeyboardInterrupt).
- **lock wait**: another session holds ACCESS EXCLUSIVE on the table; the time
  ``explain()`` takes to give up with ``--lock-timeout`` 0.3 s (the configured wait plus
  explainer's own round trips).

Target (issue 9): the server-side statement ends within 1 s of a cancel.

    python benchmarks/bounded.py [--runs 10] [--dsn DSN]

Without ``--dsn`` (or EXPLAINER_TEST_DSN) a throwaway server is started.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from explainer.capture import read_sql_text
from explainer.db.explain import Execution, ExplainOptions, explain
from explainer.db.safety import check_statement
from explainer.errors import QueryFailed
from explainer.pipeline import AnalyzeOptions, analyze_workload
from explainer.workload import build_workload

SLEEP = "SELECT pg_sleep(30) FROM probe WHERE id = 1"


def wait_for_backend(dsn: str, pattern: str, seconds: float = 30.0) -> int:
    deadline = time.monotonic() + seconds
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
                "AND pid <> pg_backend_pid()",
                (pattern,),
            ).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.01)
    raise RuntimeError(f"no backend ran {pattern}")


def seconds_until_idle(conn: psycopg.Connection[Any], pid: int, start: float) -> float:
    """From ``start`` until the backend stops running its statement (gone counts)."""
    while time.monotonic() - start < 30:
        row = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row is None or row[0] != "active":
            return time.monotonic() - start
        time.sleep(0.002)
    raise RuntimeError(f"backend {pid} still active after 30 s")


def cancel_tui(dsn: str) -> float:
    captured, _ = read_sql_text(SLEEP, "<bench>")
    workload = build_workload(captured)
    connections: list[psycopg.Connection[Any]] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=analyze_workload,
        args=(dsn, workload, AnalyzeOptions(explain=ExplainOptions(timeout_ms=60_000))),
        kwargs={"on_connect": connections.append, "should_stop": stop.is_set},
    )
    worker.start()
    pid = wait_for_backend(dsn, "EXPLAIN%pg_sleep(30)%")
    with psycopg.connect(dsn, autocommit=True) as watcher:
        start = time.monotonic()
        stop.set()
        connections[0].cancel_safe()
        latency = seconds_until_idle(watcher, pid, start)
    worker.join(30)
    return latency


def ctrl_c_cli(dsn: str) -> float:
    command = ["analyze", "--dsn", dsn, "--timeout", "60", "--query", SLEEP]
    child = subprocess.Popen(
        [sys.executable, "-m", "explainer", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pid = wait_for_backend(dsn, "EXPLAIN%pg_sleep(30)%")
        with psycopg.connect(dsn, autocommit=True) as watcher:
            start = time.monotonic()
            child.send_signal(signal.SIGINT)
            latency = seconds_until_idle(watcher, pid, start)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    return latency


def lock_wait(dsn: str, lock_timeout_ms: int) -> float:
    execution = Execution(check_statement("SELECT * FROM probe WHERE id = 2"))
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as conn:
        holder.execute("LOCK TABLE probe IN ACCESS EXCLUSIVE MODE")
        start = time.monotonic()
        try:
            explain(conn, execution, ExplainOptions(lock_timeout_ms=lock_timeout_ms))
        except QueryFailed:
            pass
        else:
            raise RuntimeError("the statement did not wait on the lock")
        elapsed = time.monotonic() - start
        holder.rollback()
    return elapsed


def summary(name: str, values: list[float], target: float | None = None) -> None:
    ms = sorted(v * 1000 for v in values)
    verdict = ""
    if target is not None:
        verdict = "  PASS" if max(values) < target else "  FAIL"
    print(
        f"{name:<22} runs {len(ms):>3}  median {statistics.median(ms):7.1f} ms  "
        f"worst {ms[-1]:7.1f} ms{verdict}"
    )


@contextmanager
def database(server_dsn: str | None) -> Iterator[str]:
    if server_dsn is None:
        from explainer.db.server import ThrowawayServer, find_binaries

        with ThrowawayServer(find_binaries("auto")) as server, database(server.dsn) as dsn:
            yield dsn
        return
    name = f"explainer_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsn = make_conninfo(server_dsn, dbname=name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE probe AS SELECT i AS id FROM generate_series(1, 100) AS i")
        yield dsn
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--dsn", default=os.environ.get("EXPLAINER_TEST_DSN"))
    args = parser.parse_args()
    with database(args.dsn) as dsn:
        with psycopg.connect(dsn) as conn:
            print(f"PostgreSQL {conn.info.server_version}, {args.runs} runs each")
        summary("cancel (TUI Esc)", [cancel_tui(dsn) for _ in range(args.runs)], 1.0)
        summary("Ctrl+C (CLI)", [ctrl_c_cli(dsn) for _ in range(args.runs)], 1.0)
        summary("lock wait, 300 ms", [lock_wait(dsn, 300) for _ in range(args.runs)])


if __name__ == "__main__":
    main()
