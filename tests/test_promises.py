"""Issue 9's promises, each tried against a real PostgreSQL: nothing changes, no surprises
in what runs, bounded in time, and the faults a read-only role or a bare database bring.

Every test here looks at what a user would check afterwards: checksums of every table,
the sequences, the catalog (no test index left behind), pg_stat_activity (the statement
ended on the server), and the one line explainer printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from explainer.advise.model import IndexCandidate
from explainer.advise.verify import VerifyOptions, measure, verify_rollback
from explainer.capture import read_sql_text
from explainer.cli import main
from explainer.db.explain import (
    Execution,
    ExplainOptions,
    StatementTimeout,
    bound_session,
    explain,
    rolled_back,
    run_explain,
)
from explainer.db.safety import check_statement
from explainer.errors import QueryFailed
from explainer.pipeline import CANCELLED, AnalyzeOptions, analyze_workload
from explainer.workload import Workload, build_workload

MakeDatabase = Callable[[], str]

ACCOUNTS = 20_000
ORDERS = 40_000
#: How long the promises allow a cancelled statement to keep running on the server.
CANCEL_BOUND_S = 1.0


@pytest.fixture(scope="module")
def shop_dsn(db_dsn: str) -> Iterator[str]:
    """Accounts whose changes a trigger writes to an audit table, orders with an identity
    column, a stand-alone sequence, a volatile function that writes, and ``victim``, the
    table every hidden DROP aims at."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, "
            "balance numeric NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE audit (id bigserial PRIMARY KEY, account_id int, action text NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE orders (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "account_id int NOT NULL, total numeric NOT NULL)"
        )
        conn.execute("CREATE TABLE victim (id int PRIMARY KEY, v text NOT NULL)")
        conn.execute("CREATE SEQUENCE tickets")
        conn.execute(
            """
            CREATE FUNCTION audit_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO audit (account_id, action) VALUES (COALESCE(NEW.id, OLD.id), TG_OP);
                RETURN NULL;
            END $$
            """
        )
        conn.execute(
            "CREATE TRIGGER accounts_audit AFTER INSERT OR UPDATE OR DELETE ON accounts "
            "FOR EACH ROW EXECUTE FUNCTION audit_accounts()"
        )
        conn.execute(
            """
            CREATE FUNCTION touch(account int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                INSERT INTO audit (account_id, action) VALUES (account, 'touched');
                RETURN true;
            END $$
            """
        )
        conn.execute(
            """
            CREATE FUNCTION take_ticket() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                PERFORM nextval('tickets');
                RETURN true;
            END $$
            """
        )
        conn.execute(
            f"INSERT INTO accounts (owner, balance) SELECT 'owner ' || i, i * 1.5 "
            f"FROM generate_series(1, {ACCOUNTS}) AS i"
        )
        conn.execute(
            f"INSERT INTO orders (account_id, total) SELECT 1 + i % {ACCOUNTS}, i % 1000 "
            f"FROM generate_series(1, {ORDERS}) AS i"
        )
        conn.execute("INSERT INTO victim VALUES (1, 'one'), (2, 'two'), (3, 'three')")
        conn.execute("VACUUM ANALYZE")
    yield db_dsn


def table_checksums(dsn: str) -> dict[str, str]:
    """Every table of the public schema and an md5 of all its rows, in a stable order."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        sums = {}
        for table in tables:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*) || ':' || "
                    "coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {} AS t"
                ).format(sql.Identifier(table))
            ).fetchone()
            assert row is not None
            sums[table] = str(row[0])
    return sums


def sequences(dsn: str) -> dict[str, int | None]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT 'public.' || sequencename, last_value FROM pg_sequences "
            "WHERE schemaname = 'public'"
        ).fetchall()
    return {str(name): value for name, value in rows}


def catalog_state(dsn: str) -> dict[str, Any]:
    """What a run must not leave behind: indexes (a test index above all), prepared
    transactions, large objects."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        indexes = [
            str(r[0])
            for r in conn.execute(
                "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                "ORDER BY 1"
            )
        ]
        prepared = conn.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone()
        large_objects = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
    return {"indexes": indexes, "prepared": prepared, "large_objects": large_objects}


def probe_indexes(dsn: str) -> list[str]:
    """Test indexes explainer may have built, valid or not, in the catalog."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [
            str(r[0])
            for r in conn.execute(
                "SELECT relname FROM pg_class WHERE relname LIKE 'explainer\\_probe\\_%' "
                "UNION ALL SELECT c.relname FROM pg_index x "
                "JOIN pg_class c ON c.oid = x.indexrelid WHERE NOT x.indisvalid"
            )
        ]


def analyze_report(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any], str]:
    code = main(["analyze", *args, "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


# -- Nothing changes -----------------------------------------------------------------------

#: Statements that write, directly, through a trigger, a writable CTE, an identity column
#: or a volatile function; and what explainer must say about each: how it was explained
#: and which sequences it names as advanced (a rollback does not reset a sequence).
WRITES: list[tuple[str, str, set[str]]] = [
    (
        "INSERT INTO accounts (owner, balance) VALUES ('new owner', 10)",
        "analyzed",
        {"public.accounts_id_seq", "public.audit_id_seq"},  # serial default, trigger
    ),
    (
        "UPDATE accounts SET balance = balance + 1 WHERE owner = 'owner 7'",
        "analyzed",
        {"public.audit_id_seq"},  # the trigger's insert
    ),
    ("DELETE FROM orders WHERE account_id = 42", "analyzed", set()),
    (
        "MERGE INTO accounts AS a USING (VALUES (1, 5.0), (999999, 1.0)) AS v (id, amount) "
        "ON a.id = v.id WHEN MATCHED THEN UPDATE SET balance = a.balance + v.amount "
        "WHEN NOT MATCHED THEN INSERT (owner, balance) VALUES ('merged', v.amount)",
        "analyzed",
        {"public.accounts_id_seq", "public.audit_id_seq"},
    ),
    (
        "WITH gone AS (DELETE FROM orders WHERE total < 2 RETURNING account_id) "
        "INSERT INTO audit (account_id, action) SELECT account_id, 'gone' FROM gone",
        "analyzed",
        {"public.audit_id_seq"},
    ),
    (
        "INSERT INTO orders (account_id, total) SELECT id, 1 FROM accounts WHERE id <= 10",
        "analyzed",
        {"public.orders_id_seq"},  # identity column
    ),
    ("SELECT * FROM accounts WHERE id = 5 FOR UPDATE", "analyzed", set()),
    # Named functions whose effect outlives the rollback are not executed at all.
    ("SELECT nextval('tickets')", "calls nextval()", set()),
    ("SELECT setval('tickets', 1000)", "calls setval()", set()),
    (
        "UPDATE accounts SET balance = 0 WHERE id = 1 RETURNING nextval('tickets')",
        "calls nextval()",
        set(),
    ),
    # A read runs READ ONLY: a function that writes fails instead of writing.
    ("SELECT * FROM accounts WHERE id = 3 AND touch(id)", "read-only transaction", set()),
]


def outcome(query: dict[str, Any]) -> str:
    if query["error"]:
        return f"error: {query['error']}"
    if query["analyzed"]:
        return "analyzed" + (f": {query['note']}" if query["note"] else "")
    return f"estimated: {query['note']}"


def named_sequences(text: str) -> set[str]:
    marker = "sequences advanced (a rollback does not reset them): "
    if marker not in text:
        return set()
    listed = text.split(marker, 1)[1]
    return {item.split(" ", 1)[0] for item in listed.split(", ")}


def test_writes_triggers_and_volatile_functions_leave_every_table_unchanged(
    shop_dsn: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tables, catalog, seqs = table_checksums(shop_dsn), catalog_state(shop_dsn), sequences(shop_dsn)
    script = tmp_path / "writes.sql"
    script.write_text("".join(f"{statement};\n" for statement, _, _ in WRITES))
    # --verify rollback: the writes are run again around real test indexes, also undone.
    code, report, _ = analyze_report(
        capsys, "--dsn", shop_dsn, "--sql", str(script), "--analyze-writes", "--verify", "rollback"
    )
    assert code == 0
    by_sql = {q["sql"].rstrip(";"): q for q in report["queries"]}
    assert len(by_sql) == len(WRITES)
    named: set[str] = set()
    for statement, expected, advanced in WRITES:
        said = outcome(by_sql[statement])
        assert expected in said, statement
        assert named_sequences(said) == advanced, statement
        named |= advanced
    # The UPDATE was worth an index: it was verified by building one and rolling back.
    assert any(
        s["evidence"]["method"] == "rollback" and s["columns"] == ["owner"]
        for s in report["suggestions"]
    )
    assert table_checksums(shop_dsn) == tables
    assert catalog_state(shop_dsn) == catalog
    assert probe_indexes(shop_dsn) == []
    # Sequences are the one thing a rollback cannot undo: every one that moved was named.
    after = sequences(shop_dsn)
    moved = {name for name, value in after.items() if value != seqs[name]}
    assert moved == named
    assert after["public.tickets"] == seqs["public.tickets"]  # nextval/setval never ran


def test_verification_runs_a_read_read_only_too(shop_dsn: str) -> None:
    """The rollback method's transaction builds an index, so it is read-write; a read
    measured in it still runs READ ONLY, as explain() runs it: a function that writes (here
    ``take_ticket()``, which takes a sequence number) fails instead of writing."""
    before = sequences(shop_dsn)["public.tickets"]
    candidate = IndexCandidate.of("public", "accounts", "owner")
    statement = Execution(
        check_statement("SELECT * FROM accounts WHERE owner = 'owner 3' AND take_ticket()")
    )
    with psycopg.connect(shop_dsn, autocommit=True) as conn:
        with pytest.raises(QueryFailed, match="cannot execute nextval\\(\\) in a read-only"):
            verify_rollback(conn, statement, candidate, VerifyOptions(explain=ExplainOptions()))
        assert conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE
    assert sequences(shop_dsn)["public.tickets"] == before
    assert probe_indexes(shop_dsn) == []


def _backend_running(dsn: str, pattern: str) -> int | None:
    """The pid of the backend running a statement LIKE ``pattern``, if any."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
            "AND pid <> pg_backend_pid()",
            (pattern,),
        ).fetchone()
    return None if row is None else int(row[0])


def _wait_for_backend(dsn: str, pattern: str, seconds: float = 20.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = _backend_running(dsn, pattern)
        if pid is not None:
            return pid
        time.sleep(0.02)
    raise AssertionError(f"no backend ran {pattern} within {seconds} s")


def _seconds_until_idle(dsn: str, pid: int, limit: float = 30.0) -> float:
    """How long the backend ``pid`` keeps running its statement (gone counts as done)."""
    start = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() - start < limit:
            row = conn.execute(
                "SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is None or row[0] != "active":
                return time.monotonic() - start
            time.sleep(0.005)
    raise AssertionError(f"backend {pid} still active after {limit} s")


def test_a_connection_killed_mid_build_leaves_no_index_and_one_clear_error(
    make_database: MakeDatabase,
) -> None:
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        # An index on slow_key() takes ~20 s to build: time to kill it half-way.
        conn.execute(
            """
            CREATE FUNCTION slow_key(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
            BEGIN PERFORM pg_sleep(0.01); RETURN x % 100; END $$
            """
        )
        conn.execute("CREATE TABLE slow_t AS SELECT i AS id FROM generate_series(1, 2000) AS i")
        conn.execute("ANALYZE slow_t")
    execution = Execution(check_statement("SELECT * FROM slow_t WHERE slow_key(id) = 5"))
    candidate = IndexCandidate.of("public", "slow_t", "slow_key(id)")
    options = VerifyOptions(explain=ExplainOptions(timeout_ms=120_000))
    errors: list[BaseException] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        with rolled_back(conn, read_only=True, timeout_ms=10_000, lock_timeout_ms=1_000):
            before = run_explain(conn, execution, analyze=False)

        def build() -> None:
            try:
                verify_rollback(conn, execution, candidate, options, before=before)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=build)
        worker.start()
        pid = _wait_for_backend(dsn, "CREATE INDEX%explainer_probe%")
        time.sleep(0.5)  # well into the build
        with psycopg.connect(dsn, autocommit=True) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        worker.join(30)
        assert not worker.is_alive()
    [error] = errors
    assert isinstance(error, QueryFailed)
    message = str(error)
    assert message.startswith("connection lost: terminating connection due to administrator")
    assert "\n" not in message
    assert probe_indexes(dsn) == []


# -- No surprises in what runs -------------------------------------------------------------

#: Input (a .sql file's text) -> how each statement in it must come out. ``{marker}`` is a
#: file no statement may create, ``{bystander}`` the pid of a session none may end.
NO_SURPRISES: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "SELECT * FROM victim; DROP TABLE victim;",
        [("SELECT * FROM victim", "analyzed"), ("DROP TABLE victim", "DROP statement refused")],
    ),
    (
        "BEGIN;\nDELETE FROM victim;\nCOMMIT;",
        [
            ("BEGIN", "error: transaction control refused"),
            ("DELETE FROM victim", "analyzed"),  # with --analyze-writes: run, then rolled back
            ("COMMIT", "error: transaction control refused"),
        ],
    ),
    (
        "START TRANSACTION; SAVEPOINT a; ROLLBACK TO SAVEPOINT a; PREPARE TRANSACTION 'x';",
        [
            ("START TRANSACTION", "error: transaction control refused"),
            ("SAVEPOINT a", "error: transaction control refused"),
            ("ROLLBACK TO SAVEPOINT a", "error: transaction control refused"),
            ("PREPARE TRANSACTION", "error: transaction control refused"),
        ],
    ),
    (
        "CREATE TABLE intruder (id int); ALTER TABLE victim ADD COLUMN extra int;\n"
        "TRUNCATE victim; CREATE INDEX ON victim (v); GRANT ALL ON victim TO PUBLIC;",
        [
            ("CREATE TABLE", "error: CREATE statement refused"),
            ("ALTER TABLE", "error: ALTER TABLE statement refused"),
            ("TRUNCATE", "error: TRUNCATE statement refused"),
            ("CREATE INDEX", "error: CREATE INDEX statement refused"),
            ("GRANT", "error: GRANT statement refused"),
        ],
    ),
    (
        "COPY victim FROM PROGRAM 'touch {marker}'; COPY victim TO '{marker}';",
        [
            ("COPY victim FROM PROGRAM", "error: COPY statement refused"),
            ("COPY victim TO", "error: COPY statement refused"),
        ],
    ),
    (
        # pg_dump output: the data lines are skipped, never taken for statements.
        "COPY victim (id, v) FROM stdin;\n9\tDROP TABLE victim;\n\\.\nSELECT count(*) FROM victim;",
        [
            ("COPY victim (id, v) FROM stdin", "error: COPY statement refused"),
            ("SELECT count(*) FROM victim", "analyzed"),
        ],
    ),
    (
        "DO $$ BEGIN DROP TABLE victim; END $$;",
        [("DO $$", "error: DO statement refused")],
    ),
    (
        "SET ROLE pg_monitor; RESET ROLE; SET SESSION AUTHORIZATION DEFAULT;",
        [
            ("SET ROLE", "SET ROLE is not explained"),
            ("RESET ROLE", "SET ROLE is not explained"),
            ("SET SESSION AUTHORIZATION", "SET SESSION AUTHORIZATION is not explained"),
        ],
    ),
    (
        # psql meta-commands are dropped: none of them runs, not even a shell.
        "\\! touch {marker}\n\\c postgres\n\\i /etc/passwd\nSELECT * FROM victim WHERE id = 1;\n"
        "SELECT 'DROP TABLE victim' \\gexec\n",
        [
            ("SELECT * FROM victim WHERE id = 1", "analyzed"),
            ("SELECT 'DROP TABLE victim'", "analyzed"),  # only the SELECT: \gexec is psql's
        ],
    ),
    (
        # Each statement reads victim differently: the same shape twice would be one entry.
        "SELECT id FROM victim -- ; DROP TABLE victim\n;\n"
        "/* ; DROP TABLE victim; */ SELECT v FROM victim;\n"
        "/* outer /* inner */ ; DROP TABLE victim; */ SELECT count(*) FROM victim;",
        [
            ("SELECT id FROM victim", "analyzed"),
            ("SELECT v FROM victim", "analyzed"),  # the comment before it is dropped
            ("SELECT count(*) FROM victim", "analyzed"),
        ],
    ),
    (
        "SELECT id FROM victim WHERE v <> $$; DROP TABLE victim; $$;\n"
        "SELECT v FROM victim WHERE v <> $body$ $$; DROP TABLE victim; $$ $body$;\n"
        "SELECT count(*) FROM victim WHERE v <> E'\\'; DROP TABLE victim; --';\n"
        'SELECT max(id) AS "; DROP TABLE victim; --" FROM victim;',
        [
            ("SELECT id FROM victim WHERE v <> $$", "analyzed"),
            ("SELECT v FROM victim WHERE v <> $body$", "analyzed"),
            ("SELECT count(*) FROM victim WHERE v <> E'", "analyzed"),
            ('SELECT max(id) AS "', "analyzed"),
        ],
    ),
    (
        "SELECT 'it''s' AS a; DROP TABLE victim;",
        [("SELECT 'it''s'", "analyzed"), ("DROP TABLE victim", "error: DROP statement refused")],
    ),
    (
        "CREATE FUNCTION evil() RETURNS void LANGUAGE sql AS $$ DROP TABLE victim $$;\n"
        "PREPARE p AS DELETE FROM victim; EXECUTE p; CALL evil_procedure();\n"
        "EXPLAIN ANALYZE DELETE FROM victim; SELECT * INTO stolen FROM victim;",
        [
            ("CREATE FUNCTION", "error: CREATE FUNCTION statement refused"),
            ("PREPARE p", "error: PREPARE statement refused"),
            ("EXECUTE p", "error: EXECUTE statement refused"),
            ("CALL", "error: CALL statement refused"),
            ("EXPLAIN ANALYZE", "error: EXPLAIN statement refused: it is already an EXPLAIN"),
            ("SELECT * INTO stolen", "error: SELECT ... INTO creates a table"),
        ],
    ),
    (
        "LOCK TABLE victim IN ACCESS EXCLUSIVE MODE; VACUUM FULL victim; CHECKPOINT;\n"
        "NOTIFY victims; DISCARD ALL; ALTER SYSTEM SET work_mem = '1GB';",
        [
            ("LOCK TABLE", "error: LOCK statement refused"),
            ("VACUUM", "error: VACUUM statement refused"),
            ("CHECKPOINT", "error: CHECKPOINT statement refused"),
            ("NOTIFY", "error: NOTIFY statement refused"),
            ("DISCARD", "error: DISCARD statement refused"),
            ("ALTER SYSTEM", "error: ALTER SYSTEM statement refused"),
        ],
    ),
    (
        # Queries whose effect reaches past the transaction: explained, never executed.
        "SELECT pg_terminate_backend({bystander}); SELECT pg_advisory_lock(42);\n"
        "SELECT lo_import('/etc/hostname'); SELECT pg_stat_reset();",
        [
            ("SELECT pg_terminate_backend", "estimated: calls pg_terminate_backend()"),
            ("SELECT pg_advisory_lock", "estimated: calls pg_advisory_lock()"),
            ("SELECT lo_import", "estimated: calls lo_import()"),
            ("SELECT pg_stat_reset", "estimated: calls pg_stat_reset()"),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), NO_SURPRISES, ids=lambda v: str(v)[:40])
def test_every_statement_is_refused_or_split_safely_and_nothing_runs(
    shop_dsn: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    text: str,
    expected: list[tuple[str, str]],
) -> None:
    marker = tmp_path / "marker"
    with psycopg.connect(shop_dsn, autocommit=True) as bystander:
        pid = bystander.info.backend_pid
        tables, catalog = table_checksums(shop_dsn), catalog_state(shop_dsn)
        script = tmp_path / "input.sql"
        script.write_text(text.replace("{marker}", str(marker)).replace("{bystander}", str(pid)))
        _, report, _ = analyze_report(
            capsys, "--dsn", shop_dsn, "--sql", str(script), "--analyze-writes", "--verify", "none"
        )
        said = {q["sql"]: outcome(q) for q in report["queries"]}
        assert len(said) == len(expected), said
        for start, wanted in expected:
            [match] = [text for statement, text in said.items() if statement.startswith(start)]
            assert wanted in match, (start, match)
            assert "\n" not in match
        assert bystander.execute("SELECT 1").fetchone() == (1,)  # not terminated
    assert not marker.exists()
    assert table_checksums(shop_dsn) == tables
    assert catalog_state(shop_dsn) == catalog


# -- Bounded -------------------------------------------------------------------------------

#: Fails with "division by zero" unless the statement runs with the timeouts explainer set.
SETTINGS_PROBE = (
    "SELECT 1 / (current_setting('statement_timeout') = '{st}' "
    "AND current_setting('lock_timeout') = '{lt}')::int AS checked FROM victim"
)


def test_timeouts_are_set_where_the_statement_runs(
    shop_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The statement itself sees the values asked for (evaluated while it runs, so a wrong
    # value is a division by zero).
    code, report, _ = analyze_report(
        capsys,
        "--dsn",
        shop_dsn,
        "--timeout",
        "1.234",
        "--lock-timeout",
        "0.567",
        "--query",
        SETTINGS_PROBE.format(st="1234ms", lt="567ms"),
    )
    assert code == 0
    [query] = report["queries"]
    assert query["error"] is None and query["analyzed"] is True
    options = ExplainOptions(timeout_ms=2345, lock_timeout_ms=678)
    probe = Execution(check_statement(SETTINGS_PROBE.format(st="2345ms", lt="678ms")))
    with psycopg.connect(shop_dsn, autocommit=True) as conn:
        session = conn.execute("SHOW statement_timeout").fetchone()
        outcome = explain(conn, probe, options)
        assert outcome.analyzed and outcome.plan.total_ms is not None
        # Index verification's runs get them too.
        measured = measure(conn, probe, VerifyOptions(explain=options, repeats=1))
        assert measured.total_ms is not None
        # SET LOCAL: the session's own settings are untouched afterwards.
        assert conn.execute("SHOW statement_timeout").fetchone() == session
        # bound_session() bounds the rest of the session (catalog reads) the same way.
        bound_session(conn, options)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("2345ms",)
        assert conn.execute("SHOW lock_timeout").fetchone() == ("678ms",)
        assert explain(conn, probe, options).analyzed


@pytest.fixture()
def locked_victim(shop_dsn: str) -> Iterator[str]:
    """Another session holds ACCESS EXCLUSIVE on ``victim`` in an open transaction."""
    with psycopg.connect(shop_dsn) as holder:
        holder.execute("LOCK TABLE victim IN ACCESS EXCLUSIVE MODE")
        yield shop_dsn
        holder.rollback()


def test_a_statement_behind_another_sessions_lock_gives_up_at_lock_timeout(
    locked_victim: str,
) -> None:
    execution = Execution(check_statement("SELECT * FROM victim WHERE v = 'one'"))
    options = ExplainOptions(timeout_ms=60_000, lock_timeout_ms=300)
    with psycopg.connect(locked_victim, autocommit=True) as conn:
        start = time.monotonic()
        with pytest.raises(QueryFailed) as info:
            explain(conn, execution, options)
        waited = time.monotonic() - start
        assert conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE
    assert str(info.value) == (
        "canceling statement due to lock timeout "
        "(another session holds a lock: lock_timeout reached)"
    )
    assert waited < 30  # ended by lock_timeout, far from the 60 s statement_timeout


def test_an_analysis_behind_another_sessions_lock_ends_with_a_clear_message(
    locked_victim: str,
) -> None:
    command = [
        sys.executable,
        "-m",
        "explainer",
        "analyze",
        "--dsn",
        locked_victim,
        "--lock-timeout",
        "0.3",
        "--query",
        "SELECT * FROM victim WHERE v = 'one'",
        "--query",
        "SELECT * FROM orders WHERE account_id = 7",
        "--format",
        "json",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the analysis still waited on the lock after 30 s")
    report = json.loads(done.stdout)
    by_sql = {q["sql"]: q for q in report["queries"]}
    assert "lock_timeout reached" in by_sql["SELECT * FROM victim WHERE v = 'one'"]["error"]
    assert by_sql["SELECT * FROM orders WHERE account_id = 7"]["analyzed"] is True


def test_cancelling_an_analysis_ends_the_server_statement_at_once(
    shop_dsn: str,
) -> None:
    """The TUI's Esc: should_stop, then ``cancel_safe()`` from another thread."""
    workload = sql_workload("SELECT pg_sleep(30) FROM victim WHERE id = 1")
    connections: list[psycopg.Connection[Any]] = []
    stop = threading.Event()
    reports: list[Any] = []
    options = AnalyzeOptions(explain=ExplainOptions(timeout_ms=60_000))
    worker = threading.Thread(
        target=lambda: reports.append(
            analyze_workload(
                shop_dsn,
                workload,
                options,
                on_connect=connections.append,
                should_stop=stop.is_set,
            )
        )
    )
    worker.start()
    pid = _wait_for_backend(shop_dsn, "EXPLAIN%pg_sleep(30)%")
    stop.set()
    connections[0].cancel_safe()
    latency = _seconds_until_idle(shop_dsn, pid)
    worker.join(30)
    assert latency < CANCEL_BOUND_S
    [report] = reports
    [entry] = report.queries
    assert entry.error == CANCELLED


def test_a_statement_cancelled_from_another_session_is_not_taken_for_a_timeout(
    shop_dsn: str,
) -> None:
    """A DBA's pg_cancel_backend() ends the statement; explainer says it was cancelled and
    does not run it again for an estimate, nor blame statement_timeout."""
    execution = Execution(check_statement("SELECT pg_sleep(30) FROM victim WHERE id = 3"))
    errors: list[BaseException] = []
    with psycopg.connect(shop_dsn, autocommit=True) as conn:

        def run() -> None:
            try:
                explain(conn, execution, ExplainOptions(timeout_ms=60_000))
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        pid = _wait_for_backend(shop_dsn, "EXPLAIN%pg_sleep(30)%")
        with psycopg.connect(shop_dsn, autocommit=True) as dba:
            dba.execute("SELECT pg_cancel_backend(%s)", (pid,))
        worker.join(30)
        assert conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE
    [error] = errors
    assert isinstance(error, QueryFailed) and not isinstance(error, StatementTimeout)
    assert str(error) == "canceling statement due to user request (the statement was cancelled)"


def sql_workload(text: str) -> Workload:
    captured, _ = read_sql_text(text, "<query 1>")
    return build_workload(captured)


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.skipif(os.name != "posix", reason="SIGINT is how a terminal sends Ctrl+C")
def test_ctrl_c_in_the_cli_ends_the_server_statement_at_once(shop_dsn: str) -> None:
    """Ctrl+C: psycopg cancels the running statement on the server before the
    KeyboardInterrupt reaches explainer, which prints one line and exits 130."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "explainer",
            "analyze",
            "--dsn",
            shop_dsn,
            "--timeout",
            "60",
            "--query",
            "SELECT pg_sleep(30) FROM victim WHERE id = 2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: a background job of a non-interactive shell (a CI script run
        # with `&`) starts with SIGINT ignored, and a child inherits that (and any mask).
        preexec_fn=_sigint_as_in_a_terminal,
    )
    try:
        pid = _wait_for_backend(shop_dsn, "EXPLAIN%pg_sleep(30)%")
        process.send_signal(signal.SIGINT)
        latency = _seconds_until_idle(shop_dsn, pid)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert latency < CANCEL_BOUND_S
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "explainer: interrupted"


# -- Faults: permissions, missing extensions -----------------------------------------------


@pytest.fixture()
def reader_dsn(shop_dsn: str, pg_dsn: str) -> Iterator[str]:
    """A role that may read ``accounts`` and nothing else."""
    role = f"explainer_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        with psycopg.connect(shop_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("GRANT SELECT ON accounts TO {}").format(sql.Identifier(role)))
        yield make_conninfo(shop_dsn, user=role)
    finally:
        with psycopg.connect(shop_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_role_without_rights_on_a_table_fails_that_query_only(
    reader_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, err = analyze_report(
        capsys,
        "--dsn",
        reader_dsn,
        "--verify",
        "rollback",
        "--query",
        "SELECT * FROM victim WHERE v = 'one'",
        "--query",
        "SELECT * FROM accounts WHERE owner = 'owner 9'",
    )
    assert code == 0
    by_sql = {q["sql"]: q for q in report["queries"]}
    denied = by_sql["SELECT * FROM victim WHERE v = 'one'"]
    assert denied["error"] == "permission denied for table victim [42501]"
    assert "permission denied for table victim" in err
    allowed = by_sql["SELECT * FROM accounts WHERE owner = 'owner 9'"]
    assert allowed["error"] is None and allowed["analyzed"] is True
    assert allowed["findings"]  # a sequential scan of 20,000 rows for one
    # The role may not build a test index either: said for that candidate, not a crash.
    [failure] = allowed["no_suggestion"]
    assert failure["reason"] == "verify_failed"
    assert "must be owner of table accounts" in failure["detail"]


def test_without_hypopg_auto_falls_back_to_rollback_and_hypopg_is_one_clear_error(
    shop_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "SELECT * FROM accounts WHERE owner = 'owner 11'"
    code, report, _ = analyze_report(capsys, "--dsn", shop_dsn, "--query", query)
    assert code == 0
    assert report["database"]["verify_method"] == "rollback"
    # The report says why, and what would do it without building anything.
    assert any(
        "HypoPG is not installed" in note and "CREATE EXTENSION hypopg" in note
        for note in report["notes"]
    )
    [suggestion] = report["suggestions"]
    assert suggestion["evidence"]["method"] == "rollback"
    assert suggestion["evidence"]["index_used"] is True
    assert probe_indexes(shop_dsn) == []
    code = main(["analyze", "--dsn", shop_dsn, "--verify", "hypopg", "--query", query])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(
        "explainer: error: --verify hypopg: the hypopg extension is not installed"
    )
    assert len(err.strip().splitlines()) == 1


def test_pg_stat_statements_created_but_not_loaded_is_one_clear_error(
    make_database: MakeDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
        if preload and "pg_stat_statements" in str(preload[0]):
            pytest.skip("this server preloads pg_stat_statements")
        # CREATE EXTENSION succeeds without the library loaded; reading the view does not.
        conn.execute("CREATE EXTENSION pg_stat_statements")
    code = main(["analyze", "--dsn", dsn, "--from-pg-stat-statements"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "explainer: error: pg_stat_statements is installed in this database but not loaded "
        "by the server: add it to shared_preload_libraries and restart\n"
    )
