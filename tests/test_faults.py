"""Issue 9's faults promise: the server restarted or the connection dropped mid-workload.

Each test starts its own throwaway server (independent of ``EXPLAINER_TEST_DSN``, since it
stops that server or kills its sessions) and injects the fault while a statement of the
workload runs on it: the query being explained is reported as failed, explainer
reconnects, the rest of the workload is analyzed, and nothing explained before is lost.
When the server does not come back, the report still comes out, each remaining query
saying why it was not analyzed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from explainer import pipeline
from explainer.capture import read_sql_text
from explainer.cli import main
from explainer.db.explain import Connection
from explainer.db.server import ThrowawayServer, find_binaries
from explainer.pipeline import CANCELLED, AnalyzeOptions, analyze_workload
from explainer.report import QueryReport, Report
from explainer.tui.session import Workbench
from explainer.workload import Workload, build_workload

ORDERS = 20_000

#: The workload, in the order it is explained (pasted SQL keeps its order): two queries
#: with findings, the slow one the fault hits, two more.
BEFORE = [
    "SELECT id, total FROM orders WHERE customer_id = 42",
    "SELECT count(*) FROM orders WHERE status = 'refunded'",
]
SLOW = "SELECT status, pg_sleep(3) FROM orders WHERE id = 1"
AFTER = [
    "SELECT id FROM orders WHERE total > 990 ORDER BY total DESC LIMIT 20",
    "SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = 7",
]
#: A statement the workbench test cancels.
LONG = "SELECT customer_id, pg_sleep(60) FROM orders WHERE id = 2"
SQL = ";\n".join([*BEFORE, SLOW, *AFTER]) + ";\n"


@dataclass
class Server:
    server: ThrowawayServer
    dsn: str


@pytest.fixture
def shop() -> Iterator[Server]:
    """A throwaway server of this test's own, with a small shop: orders without an index
    on customer_id (so the first query has findings and an index suggestion)."""
    with ThrowawayServer(find_binaries("auto")) as server:
        dsn = server.create_database("faults")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
            conn.execute(
                "INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 500) g"
            )
            conn.execute(
                "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, "
                "status text NOT NULL, total numeric NOT NULL)"
            )
            conn.execute(
                "INSERT INTO orders SELECT g, g % 500 + 1, "
                "CASE WHEN g % 50 = 0 THEN 'refunded' ELSE 'paid' END, (g * 7919) % 1000 "
                f"FROM generate_series(1, {ORDERS}) g"
            )
            # The load's counters flushed first, or they would count as changes since the
            # ANALYZE (and the stale-statistics rule would rightly say so).
            conn.execute("SELECT pg_stat_force_next_flush()")
            conn.execute("VACUUM ANALYZE customers, orders")
        yield Server(server, dsn)


def workload() -> Workload:
    queries, _ = read_sql_text(SQL, "<faults>")
    return build_workload(queries)


def options() -> AnalyzeOptions:
    return AnalyzeOptions(verify="rollback", include_utility=True)


def when_running(dsn: str, text: str, fault: Callable[[int], None]) -> threading.Thread:
    """A thread that waits until explainer's session runs ``text`` and then calls
    ``fault`` with that session's pid."""
    admin = make_conninfo(dsn, dbname="postgres")

    def watch() -> None:
        deadline = time.monotonic() + 30
        with psycopg.connect(admin, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'explainer' "
                    "AND state = 'active' AND strpos(query, %s) > 0",
                    (text,),
                ).fetchone()
                if row is not None:
                    break
                time.sleep(0.02)
            else:
                raise AssertionError(f"explainer never ran {text!r}")
        fault(int(row[0]))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def restart(server: ThrowawayServer, down_s: float = 1.0) -> Callable[[int], None]:
    """The fault of a restart: the server goes down (fast shutdown, every session is
    terminated) and is back at the same address ``down_s`` later."""

    def fault(_pid: int) -> None:
        server.halt()
        time.sleep(down_s)
        server.restart()

    return fault


def terminate(dsn: str) -> Callable[[int], None]:
    """The fault of a dropped connection: the session is terminated, the server stays."""
    admin = make_conninfo(dsn, dbname="postgres")

    def fault(pid: int) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))

    return fault


@dataclass
class Watched:
    """What the callbacks of one analysis saw."""

    connections: list[Connection] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)

    def connected(self, conn: Connection) -> None:
        self.connections.append(conn)
        self.pids.append(conn.info.backend_pid)

    def query(self, entry: QueryReport, _report: Report) -> None:
        self.entries.append(entry.sql)


def analyze(dsn: str, watched: Watched | None = None) -> Report:
    watched = watched or Watched()
    return analyze_workload(
        dsn,
        workload(),
        options(),
        on_connect=watched.connected,
        on_query=watched.query,
    )


def by_sql(report: Report) -> dict[str, QueryReport]:
    return {entry.sql: entry for entry in report.queries}


def assert_kept_and_continued(report: Report) -> None:
    """The queries before the fault keep their plans and findings, the failed one says
    the connection was lost and came back, the ones after it were analyzed, and the
    advice (after the reconnection) still suggests the index the first query needs."""
    assert [e.sql for e in report.queries] == [*BEFORE, SLOW, *AFTER]
    entries = by_sql(report)
    for sql in BEFORE + AFTER:
        entry = entries[sql]
        assert entry.error is None, (sql, entry.error)
        assert entry.plan is not None and entry.analyzed, sql
    assert entries[BEFORE[0]].findings, "the findings explained before the fault are kept"
    slow = entries[SLOW]
    assert slow.error is not None
    assert slow.error.startswith("connection lost: terminating connection"), slow.error
    assert slow.error.endswith("; reconnected")
    assert "\n" not in slow.error
    assert slow.plan is None and not slow.findings
    suggested = {(s.candidate.table, s.candidate.columns): s for s in report.suggestions}
    assert ("orders", ("customer_id",)) in suggested, suggested
    # ...measured on the query explained before the fault.
    assert entries[BEFORE[0]].id in suggested["orders", ("customer_id",)].evidence
    assert not any("connection" in note for note in report.notes), report.notes


def test_a_server_restart_mid_query_fails_that_query_and_the_workload_goes_on(
    shop: Server,
) -> None:
    watched = Watched()
    fault = when_running(shop.dsn, "pg_sleep", restart(shop.server))
    report = analyze(shop.dsn, watched)
    fault.join(10)
    assert_kept_and_continued(report)
    # Every query was handed over as it was done, the failed one included, in order.
    assert watched.entries == [*BEFORE, SLOW, *AFTER]
    # The new connection was handed over too (the workbench cancels on it), and is a new
    # session of the restarted server.
    assert len(watched.connections) == 2
    assert watched.pids[0] != watched.pids[1]
    assert all(conn.closed for conn in watched.connections)


def test_a_terminated_backend_mid_query_fails_that_query_and_the_workload_goes_on(
    shop: Server,
) -> None:
    watched = Watched()
    fault = when_running(shop.dsn, "pg_sleep", terminate(shop.dsn))
    report = analyze(shop.dsn, watched)
    fault.join(10)
    assert_kept_and_continued(report)
    assert len(watched.connections) == 2


@pytest.mark.parametrize("fault", ["restart", "terminate"])
@pytest.mark.parametrize("after", [BEFORE[-1], AFTER[-1]], ids=["mid-workload", "before-advice"])
def test_a_connection_lost_between_two_statements_costs_no_query(
    shop: Server, fault: str, after: str
) -> None:
    """The server restarts (or the session is terminated) while explainer's connection is
    idle: no statement ran into it, so none fails, and the advice is still given."""
    watched = Watched()

    def inject(entry: QueryReport, _report: Report) -> None:
        watched.entries.append(entry.sql)
        if entry.sql != after:
            return
        if fault == "restart":
            shop.server.restart()
        else:
            terminate(shop.dsn)(watched.pids[-1])
        time.sleep(0.2)  # the server's goodbye reaches the idle connection

    report = analyze_workload(
        shop.dsn, workload(), options(), on_connect=watched.connected, on_query=inject
    )
    assert [e.sql for e in report.queries] == [*BEFORE, SLOW, *AFTER]
    assert all(e.error is None and e.plan is not None for e in report.queries), [
        e.error for e in report.queries
    ]
    assert len(watched.connections) == 2, "the connection was made again"
    suggested = {(s.candidate.table, s.candidate.columns) for s in report.suggestions}
    assert ("orders", ("customer_id",)) in suggested, suggested
    # The advice ran once, on the new connection: it was not cut short and run again.
    assert not any("connection" in note for note in report.notes), report.notes


def test_the_cli_prints_the_report_of_a_workload_the_restart_hit(
    shop: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql_file = tmp_path / "workload.sql"
    sql_file.write_text(SQL)
    fault = when_running(shop.dsn, "pg_sleep", restart(shop.server))
    arguments = ["--sql", str(sql_file), "--verify", "rollback", "--format", "json"]
    code = main(["analyze", "--dsn", shop.dsn, *arguments])
    fault.join(10)
    out, err = capsys.readouterr()
    assert code == 0, err
    document = json.loads(out)
    errors = {q["sql"]: q["error"] for q in document["queries"]}
    assert errors[SLOW].startswith("connection lost: ")
    assert errors[SLOW].endswith("; reconnected")
    assert all(errors[sql] is None for sql in BEFORE + AFTER), errors
    assert any(s["table"] == "orders" for s in document["suggestions"]), document["suggestions"]


def test_a_server_that_does_not_come_back_ends_the_analysis_with_a_report(
    shop: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The promise holds for any budget; a short one keeps the test short.
    monkeypatch.setattr(pipeline, "RECONNECT_WITHIN_S", 2.0)
    fault = when_running(shop.dsn, "pg_sleep", lambda _pid: shop.server.halt())
    started = time.monotonic()
    report = analyze(shop.dsn)
    fault.join(10)
    assert time.monotonic() - started < 15
    entries = by_sql(report)
    for sql in BEFORE:
        assert entries[sql].error is None and entries[sql].plan is not None
    assert entries[BEFORE[0]].findings
    slow = entries[SLOW].error
    assert slow is not None and slow.startswith("connection lost: terminating connection")
    port = shop.server.port
    assert f"; not reconnected within 2 s: cannot connect to postgres@127.0.0.1:{port}/faults" in (
        slow
    )
    for sql in AFTER:
        entry = entries[sql]
        assert entry.plan is None
        assert entry.error is not None
        assert entry.error.startswith(
            "the connection to the server was lost and not reconnected within 2 s: "
            f"cannot connect to postgres@127.0.0.1:{port}/faults: "
        ), entry.error
    assert report.suggestions == []
    assert any(
        note.startswith("the analysis ended at query 3 of 5, without index advice: ")
        for note in report.notes
    ), report.notes


def test_the_cli_reports_a_server_that_does_not_come_back_in_one_line_each(
    shop: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline, "RECONNECT_WITHIN_S", 2.0)
    sql_file = tmp_path / "workload.sql"
    sql_file.write_text(SQL)
    fault = when_running(shop.dsn, "pg_sleep", lambda _pid: shop.server.halt())
    code = main(["analyze", "--dsn", shop.dsn, "--sql", str(sql_file), "--format", "markdown"])
    fault.join(10)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in out + err
    lines = out.splitlines()
    lost = [line for line in lines if "the connection to the server was lost" in line]
    # The note, and each of the two queries after the fault, each on a line of its own.
    assert any("the analysis ended at query 3 of 5" in line for line in lost), lost
    assert sum("not reconnected within 2 s" in line for line in lost) >= 3, lost
    # On stderr, as for any query that failed: one line for each of the last three.
    reasons = err.splitlines()
    assert len(reasons) == 3, reasons
    assert reasons[0].startswith("explainer: q3 (") and "connection lost: " in reasons[0]
    for reason in reasons[1:]:
        assert "the connection to the server was lost and not reconnected within 2 s" in reason


def test_a_lost_connection_during_the_index_advice_runs_the_advice_again(
    shop: Server,
) -> None:
    """The fault hits a test index's CREATE INDEX: the advice starts over on a new
    connection and still suggests the index; the report says what happened."""
    admin = make_conninfo(shop.dsn, dbname="postgres")
    blocker = psycopg.connect(shop.dsn, autocommit=False)
    blocked = threading.Event()

    def block_after_last(entry: QueryReport, _report: Report) -> None:
        if entry.sql == AFTER[-1]:
            # CREATE INDEX needs a SHARE lock: the test index waits behind this one.
            blocker.execute("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE")
            blocked.set()

    def kill_the_waiting_build() -> None:
        assert blocked.wait(60)
        with psycopg.connect(admin, autocommit=True) as conn:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'explainer' "
                    "AND wait_event_type = 'Lock' AND query ILIKE 'CREATE INDEX%'"
                ).fetchone()
                if row is not None:
                    conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    break
                time.sleep(0.02)
        blocker.rollback()

    watched = Watched()
    killer = threading.Thread(target=kill_the_waiting_build, daemon=True)
    killer.start()
    try:
        report = analyze_workload(
            shop.dsn,
            workload(),
            options(),
            on_connect=watched.connected,
            on_query=block_after_last,
        )
    finally:
        killer.join(30)
        blocker.close()
    assert len(watched.connections) == 2, "the advice's connection was lost and remade"
    entries = by_sql(report)
    assert all(entries[sql].error is None for sql in BEFORE + AFTER)
    suggested = {(s.candidate.table, s.candidate.columns) for s in report.suggestions}
    assert ("orders", ("customer_id",)) in suggested, suggested
    assert any(
        note.startswith("the connection was lost during the index advice (")
        and note.endswith("it was reconnected and the advice run again from the start")
        for note in report.notes
    ), report.notes
    # Nothing of the interrupted run is left: no test index on orders.
    with psycopg.connect(shop.dsn) as conn:
        indexes = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'orders'"
        ).fetchall()
    assert indexes == [("orders_pkey",)]


def test_the_workbench_cancels_on_the_connection_made_after_a_restart(shop: Server) -> None:
    """Esc after a reconnection cancels the statement running on the new connection
    (analyze_workload hands it over through on_connect)."""
    workbench = Workbench(dsn=shop.dsn, options=options())
    workbench.load_text(f"{SLOW};\n{LONG};\n", "sql")
    outcome: list[Report] = []
    thread = threading.Thread(target=lambda: outcome.append(workbench.analyze()), daemon=True)
    fault = when_running(shop.dsn, "pg_sleep(3)", restart(shop.server, down_s=0.5))
    thread.start()
    fault.join(20)
    assert_running = when_running(shop.dsn, "pg_sleep(60)", lambda _pid: None)
    assert_running.join(20)
    started = time.monotonic()
    assert workbench.cancel()
    thread.join(10)
    assert time.monotonic() - started < 2
    report = outcome[0]
    assert workbench.cancelled
    errors = [entry.error for entry in report.queries]
    assert errors[0] is not None and errors[0].endswith("; reconnected")
    assert errors[1] == CANCELLED


def test_esc_while_reconnecting_ends_the_analysis_at_once(shop: Server) -> None:
    """The server is gone and explainer keeps trying to reconnect: a stop ends the
    attempts, and the report holds what was explained before the fault."""
    workbench = Workbench(dsn=shop.dsn, options=options())
    workbench.load_text(SQL, "sql")
    outcome: list[Report] = []
    halted = threading.Event()

    def halt(_pid: int) -> None:
        shop.server.halt()
        halted.set()

    fault = when_running(shop.dsn, "pg_sleep", halt)
    thread = threading.Thread(target=lambda: outcome.append(workbench.analyze()), daemon=True)
    thread.start()
    assert halted.wait(30)
    fault.join(10)
    time.sleep(1.0)  # explainer is between two attempts to reconnect
    assert thread.is_alive()
    started = time.monotonic()
    assert workbench.cancel()
    thread.join(10)
    assert time.monotonic() - started < 2.0
    report = outcome[0]
    entries = by_sql(report)
    assert [e.sql for e in report.queries] == [*BEFORE, SLOW]
    assert all(entries[sql].error is None and entries[sql].plan for sql in BEFORE)
    slow = entries[SLOW].error
    assert slow is not None and slow.startswith("connection lost: ")
    assert slow.endswith("; not reconnected: the analysis was stopped")
    assert report.suggestions == []
